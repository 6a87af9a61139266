//! The worker pool: a queue of depth d has d operations in flight at once
//! (observed with userfaultfd: every worker stops in the middle of its
//! operation, on a page of the caller's slice, until the test lets it go),
//! depth 1 runs on the caller's thread, and dropping a queue waits for
//! every operation.

use pinio_copy::{CopyDevice, CopyOptions};
use pinio_core::conformance;
use pinio_core::{Completion, Device, Op, Queue};
use std::collections::HashSet;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::Duration;

const PAGE: usize = 4096;

fn scratch(name: &str, len: usize) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("copy-workers-{name}-{}", std::process::id()));
    std::fs::write(&p, conformance::pattern(7, len)).unwrap();
    p
}

/// `_IOWR(0xAA, nr, size)`.
const fn uffd_iowr(nr: u64, size: u64) -> u64 {
    (3 << 30) | (size << 16) | (0xAA << 8) | nr
}
const UFFDIO_API: u64 = uffd_iowr(0x3F, 24);
const UFFDIO_REGISTER: u64 = uffd_iowr(0x00, 32);
const UFFDIO_COPY: u64 = uffd_iowr(0x03, 40);
const UFFD_EVENT_PAGEFAULT: u8 = 0x12;
/// `UFFD_USER_MODE_ONLY`: faults taken in user mode only (the workers'
/// copy into the slice), which unprivileged processes may ask for.
const UFFD_USER_MODE_ONLY: libc::c_int = 1;

#[repr(C)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

#[repr(C)]
struct UffdioRegister {
    start: u64,
    len: u64,
    mode: u64,
    ioctls: u64,
}

#[repr(C)]
struct UffdioCopy {
    dst: u64,
    src: u64,
    len: u64,
    mode: u64,
    copy: i64,
}

#[repr(C)]
#[derive(Default)]
struct UffdMsg {
    event: u8,
    reserved: [u8; 7],
    flags: u64,
    address: u64,
    ptid: u32,
    pad: u32,
}

/// A userfaultfd watching for missing pages in `[start, start + len)`.
fn watch_missing(start: *mut u8, len: usize) -> OwnedFd {
    // SAFETY: the range belongs to a region this test owns and no slice of
    // it is alive; dropping its pages only makes them read as zeros again.
    assert_eq!(unsafe { libc::madvise(start.cast(), len, libc::MADV_DONTNEED) }, 0);
    // SAFETY: userfaultfd(2) takes flags only.
    let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | libc::O_NONBLOCK | UFFD_USER_MODE_ONLY) };
    assert!(fd >= 0, "userfaultfd: {}", std::io::Error::last_os_error());
    // SAFETY: a fresh descriptor owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let mut api = UffdioApi { api: 0xAA, features: 0, ioctls: 0 };
    assert_eq!(
        // SAFETY: UFFDIO_API reads and writes one UffdioApi.
        unsafe { libc::ioctl(fd.as_raw_fd(), UFFDIO_API as _, &mut api) },
        0,
        "UFFDIO_API: {}",
        std::io::Error::last_os_error()
    );
    let mut reg = UffdioRegister { start: start as u64, len: len as u64, mode: 1, ioctls: 0 };
    // SAFETY: UFFDIO_REGISTER reads and writes one UffdioRegister.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), UFFDIO_REGISTER as _, &mut reg) };
    assert_eq!(r, 0, "UFFDIO_REGISTER: {}", std::io::Error::last_os_error());
    fd
}

/// The next page fault's address, or `None` after `timeout`.
fn next_fault(fd: &OwnedFd, timeout: Duration) -> Option<u64> {
    loop {
        let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as i32) } <= 0 {
            return None;
        }
        let mut msg = UffdMsg::default();
        // SAFETY: reads one 32-byte message into a 32-byte struct.
        let n = unsafe { libc::read(fd.as_raw_fd(), (&mut msg as *mut UffdMsg).cast(), 32) };
        if n == 32 && msg.event == UFFD_EVENT_PAGEFAULT {
            return Some(msg.address & !(PAGE as u64 - 1));
        }
    }
}

/// Maps a zeroed page at `page` and wakes the thread waiting on it.
fn resolve(fd: &OwnedFd, page: u64, zeros: &[u8]) {
    let mut c = UffdioCopy { dst: page, src: zeros.as_ptr() as u64, len: PAGE as u64, mode: 0, copy: 0 };
    // SAFETY: UFFDIO_COPY reads one UffdioCopy, copies a page from `zeros`
    // (valid for PAGE bytes) to the registered, missing page `page`.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), UFFDIO_COPY as _, &mut c) };
    assert!(
        r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EEXIST),
        "UFFDIO_COPY: {}",
        std::io::Error::last_os_error()
    );
}

#[test]
fn qd32_has_32_operations_in_flight_at_once() {
    const QD: usize = 32;
    let p = scratch("qd32", QD * PAGE);
    let dev = CopyDevice::open(&p, CopyOptions::default()).unwrap();
    let region = dev.alloc(QD * PAGE).unwrap();
    let uffd = watch_missing(region.slice_all().unwrap().as_ptr().cast_mut(), QD * PAGE);
    let mut q = dev.copy_queue(QD).unwrap();
    for i in 0..QD {
        q.push(Op::read(region.slice(i * PAGE, PAGE).unwrap(), (i * PAGE) as u64, i as u64)).unwrap();
    }
    // The submitter is another thread: a queue that ran operations on the
    // submitting thread would stop there at the first fault.
    let submitter = std::thread::spawn(move || {
        let mut out: Vec<Completion> = Vec::new();
        q.submit().unwrap();
        while q.in_flight() > 0 {
            q.wait(1, &mut out).unwrap();
        }
        (out, q.workers())
    });
    // Collect faults without resolving any: each is one operation stopped
    // in flight. Resolve them when all are in, or when no more come (a
    // queue that does not run them all at once), and go on.
    let zeros = vec![0u8; PAGE];
    let (mut pending, mut resolved) = (Vec::new(), HashSet::new());
    let mut most_at_once = 0;
    while resolved.len() < QD {
        if let Some(page) = next_fault(&uffd, Duration::from_secs(2)) {
            pending.push(page);
            most_at_once = most_at_once.max(pending.len());
            if pending.len() + resolved.len() < QD {
                continue;
            }
        }
        assert!(!pending.is_empty(), "no operation stopped on its slice, none left to release");
        for page in pending.drain(..) {
            resolve(&uffd, page, &zeros);
            resolved.insert(page);
        }
    }
    let (out, workers) = submitter.join().unwrap();
    assert_eq!(most_at_once, QD, "{most_at_once} of {QD} operations were in flight at once");
    assert_eq!(workers, QD);
    assert_eq!(out.len(), QD);
    let data = conformance::pattern(7, QD * PAGE);
    for c in out {
        let i = c.tag as usize;
        assert_eq!(*c.result.as_ref().unwrap(), PAGE);
        assert!(c.slice[..] == data[i * PAGE..(i + 1) * PAGE], "read {i} has the file's bytes");
    }
    std::fs::remove_file(p).unwrap();
}

#[test]
fn depth_one_runs_on_the_callers_thread() {
    let p = scratch("qd1", 64 * 1024);
    let dev = CopyDevice::open(&p, CopyOptions::default()).unwrap();
    let region = dev.alloc(4096).unwrap();
    let mut q = dev.copy_queue(1).unwrap();
    let mut s = region.slice(0, 4096).unwrap();
    for round in 0..10u64 {
        q.push(Op::read(s, round * 4096, round)).unwrap();
        q.submit().unwrap();
        // Done when submit returns: poll finds it without waiting.
        let mut out = Vec::new();
        assert_eq!(q.poll(&mut out).unwrap(), 1, "round {round}");
        s = out.pop().unwrap().slice;
    }
    assert_eq!(q.workers(), 0, "no thread was started");
    std::fs::remove_file(p).unwrap();
}

#[test]
fn dropping_a_queue_waits_for_every_operation() {
    const N: usize = 32;
    const LEN: usize = 64 * 1024;
    let p = scratch("drop", N * LEN);
    let dev = CopyDevice::open(&p, CopyOptions::default()).unwrap();
    let region = dev.alloc(N * LEN).unwrap();
    let data = conformance::pattern(99, N * LEN);
    {
        let mut q = dev.copy_queue(N).unwrap();
        for i in 0..N {
            let mut s = region.slice(i * LEN, LEN).unwrap();
            s.copy_from_slice(&data[i * LEN..(i + 1) * LEN]);
            q.push(Op::write(s, (i * LEN) as u64, i as u64)).unwrap();
            // Half submitted, half only pushed: the drop runs both.
            if i == N / 2 {
                q.submit().unwrap();
            }
        }
    }
    // Every slice is back (no worker holds one) and every write landed.
    region.unregister().expect("no slice outlives the queue");
    assert!(std::fs::read(&p).unwrap() == data, "all writes done before the drop returned");
    let s = dev.stats();
    assert_eq!((s.ops, s.bytes_written, s.errors), (N as u64, (N * LEN) as u64, 0));
    std::fs::remove_file(p).unwrap();
}
