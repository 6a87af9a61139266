//! Helpers of the guest tests: anonymous mappings, the FOLL_PIN counters of /proc/vmstat, and
//! kernel reports in /dev/kmsg.

#![allow(dead_code)]

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Mutex, MutexGuard};

pub const DEV: &str = "/dev/pinio";

/// Guest tests share global counters (pins, kernel log): run them one at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Fails loudly when not in the guest: these tests need pinio.ko loaded.
pub fn require_guest() {
    assert!(
        std::env::var_os("PINIO_GUEST").is_some() && std::path::Path::new(DEV).exists(),
        "guest test run outside the guest or without pinio.ko: use `cargo xtask test`"
    );
}

/// An anonymous private mapping, unmapped on drop.
pub struct Mapping {
    pub ptr: *mut u8,
    pub len: usize,
}

// SAFETY: The mapping is owned memory; tests hand it between threads explicitly.
unsafe impl Send for Mapping {}

impl Mapping {
    pub fn new(len: usize, prot: i32) -> Mapping {
        // SAFETY: A fresh anonymous mapping; the result is checked.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0) };
        assert_ne!(p, libc::MAP_FAILED, "mmap {len}: {}", std::io::Error::last_os_error());
        Mapping { ptr: p.cast(), len }
    }

    pub fn rw(len: usize) -> Mapping {
        Self::new(len, libc::PROT_READ | libc::PROT_WRITE)
    }

    pub fn addr(&self) -> u64 {
        self.ptr as u64
    }

    pub fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: The mapping is readable and writable for `len` bytes (rw mappings only).
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly the mapping made in `new`.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// Deterministic pseudo-random bytes.
pub fn fill(buf: &mut [u8], seed: u64) {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for b in buf.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
}

/// `nr_foll_pin_acquired - nr_foll_pin_released` after folding the per-CPU counters.
pub fn pins_outstanding() -> i64 {
    // Fold per-CPU vmstat deltas so the counters are exact (root only; best effort).
    let _ = std::fs::write("/proc/sys/vm/stat_refresh", "1");
    let s = std::fs::read_to_string("/proc/vmstat").expect("read /proc/vmstat");
    let get = |k: &str| -> i64 {
        s.lines()
            .find_map(|l| l.strip_prefix(k).and_then(|r| r.trim().parse().ok()))
            .unwrap_or_else(|| panic!("{k} missing from /proc/vmstat"))
    };
    get("nr_foll_pin_acquired ") - get("nr_foll_pin_released ")
}

/// Reads the kernel log from now on and reports warnings, BUGs, KASAN or lockdep splats.
pub struct KernelLog {
    kmsg: File,
}

impl KernelLog {
    pub fn start() -> KernelLog {
        let mut kmsg =
            OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open("/dev/kmsg").expect("open /dev/kmsg");
        kmsg.seek(SeekFrom::End(0)).expect("seek /dev/kmsg");
        KernelLog { kmsg }
    }

    /// Lines logged since `start` that signal a kernel problem.
    pub fn problems(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let mut rec = vec![0u8; 8192];
        loop {
            match self.kmsg.read(&mut rec) {
                Ok(0) => break,
                Ok(n) => {
                    let line = String::from_utf8_lossy(&rec[..n]).to_string();
                    let msg = line.split_once(';').map_or(line.as_str(), |x| x.1);
                    const BAD: [&str; 8] =
                        ["BUG", "WARNING", "KASAN", "Oops", "circular locking", "lockdep", "refcount_t", "UBSAN"];
                    if BAD.iter().any(|b| msg.contains(b)) {
                        out.push(msg.trim_end().to_string());
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => break,
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue, // overwritten records
                Err(e) => panic!("read /dev/kmsg: {e}"),
            }
        }
        out
    }
}

/// Per-test guard: serialises, records the pin baseline and the kernel log, and checks both at
/// the end (`finish`).
pub struct Checked {
    _serial: MutexGuard<'static, ()>,
    pins: i64,
    log: KernelLog,
}

impl Checked {
    pub fn start() -> Checked {
        let serial = serial();
        require_guest();
        Checked { _serial: serial, pins: pins_outstanding(), log: KernelLog::start() }
    }

    /// Asserts every pin taken since `start` was released and the kernel reported nothing.
    pub fn finish(mut self) {
        let now = pins_outstanding();
        assert_eq!(now, self.pins, "FOLL_PIN leak: {} pins outstanding before, {} after", self.pins, now);
        let problems = self.log.problems();
        assert!(problems.is_empty(), "kernel reported problems:\n{}", problems.join("\n"));
    }
}

/// `VmLck` of /proc/self/status in kB, read without allocating (safe after fork).
pub fn vm_lck_kb() -> i64 {
    let mut buf = [0u8; 4096];
    // SAFETY: Raw open/read/close on a stack buffer.
    let n = unsafe {
        let fd = libc::open(c"/proc/self/status".as_ptr(), libc::O_RDONLY);
        if fd < 0 {
            return -1;
        }
        let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
        libc::close(fd);
        n
    };
    if n <= 0 {
        return -1;
    }
    let text = &buf[..n as usize];
    let key = b"VmLck:";
    let Some(at) = text.windows(key.len()).position(|w| w == key) else {
        return -1;
    };
    let mut v = 0i64;
    for &b in text[at + key.len()..].iter().skip_while(|b| **b == b' ' || **b == b'\t') {
        if !b.is_ascii_digit() {
            break;
        }
        v = v * 10 + i64::from(b - b'0');
    }
    v
}
