//! Guest benchmark of pinio.ko, run by `cargo xtask vm bench` (root, module loaded, debugfs
//! mounted). Writes JSON to `$PINIO_BENCH_OUT` and a table to stdout.
//!
//! 1. Pin + unpin cost per page: REGISTER/UNREGISTER of `pages_per_call` pages at a time over a
//!    buffer, against the kernel's own `gup_test` PIN_FAST_BENCHMARK (pin_user_pages_fast) with
//!    the same gup flags (FOLL_WRITE | FOLL_LONGTERM), size and pages per call, for THP-backed
//!    and 4 KiB-backed buffers (AnonHugePages recorded with each figure). gup_test times in the
//!    kernel; ours from userspace around the ioctls, so ours includes the system call.
//!    Beside the one-region-per-call REGISTER ("single"), the vectored REGISTER_VEC /
//!    UNREGISTER_VEC ("vec"): regions of `pages_per_call` pages, up to `MAX_VEC` of them per
//!    system call, so the whole buffer takes one call (or four, at one page per region) as it
//!    takes gup_test one: the like-for-like comparison with gup_test's in-kernel loop. The
//!    regions tile the buffer, so the module pins each call's regions as one run; "apart" leaves
//!    one page between each two regions, so every region is a run of its own (per page pinned).
//!    The
//!    entry arrays are filled outside the timers, as gup_test's page array is allocated outside
//!    its own. Single, vec and gup_test run back to back in each of `PINIO_BENCH_REPS` (default
//!    5) repeats; the ratios are per repeat, reported as median [min-max].
//!    Beside it, what a caller of either pays per call, both timed from userspace: gup_test
//!    driven one ioctl per call (`size` = one call's pages; pin + unpin in one system call), the
//!    cost of an empty ioctl on /dev/pinio (`ENOTTY`: entry, fd lookup, dispatch, exit), and
//!    from these the module's own in-kernel cost per call (pinio minus two empty ioctls).
//! 2. Echo (write to device memory, read back) of 4 KiB .. 4 MiB: zero-copy (SUBMIT of a
//!    TO_DEVICE and a FROM_DEVICE descriptor, REAP) against the copy path (pwrite + pread):
//!    throughput, and the submitting thread's CPU time per byte.

use pinio_kmod::abi::{self, Desc};
use pinio_kmod::sys::PinioFd;
use std::fmt::Write as _;
use std::time::Instant;

const PAGE: usize = 4096;
const HUGE: usize = 2 << 20;
const FOLL_WRITE: u32 = 0x1;
const FOLL_LONGTERM: u32 = 0x100;

/// `struct gup_test` of mm/gup_test.h.
#[repr(C)]
#[derive(Default)]
struct GupTest {
    get_delta_usec: u64,
    put_delta_usec: u64,
    addr: u64,
    size: u64,
    nr_pages_per_call: u32,
    gup_flags: u32,
    test_flags: u32,
    which_pages: [u32; 8],
}

/// `PIN_FAST_BENCHMARK = _IOWR('g', 2, struct gup_test)`.
const PIN_FAST_BENCHMARK: u32 = abi::ioc(abi::IOC_READ | abi::IOC_WRITE, b'g' as u32, 2, size_of::<GupTest>());

struct Buffer {
    base: *mut u8,
    map_len: usize,
    ptr: *mut u8,
    len: usize,
}

impl Buffer {
    /// `len` bytes, 2 MiB aligned, faulted in; THP requested or refused.
    fn new(len: usize, thp: bool) -> Buffer {
        let map_len = len + HUGE;
        // SAFETY: A fresh anonymous mapping; checked below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED, "mmap");
        let base = base.cast::<u8>();
        let ptr = ((base as usize).div_ceil(HUGE) * HUGE) as *mut u8;
        let advice = if thp { libc::MADV_HUGEPAGE } else { libc::MADV_NOHUGEPAGE };
        // SAFETY: `ptr..ptr+len` lies inside the mapping; madvise only changes THP policy.
        unsafe { libc::madvise(ptr.cast(), len, advice) };
        for off in (0..len).step_by(PAGE) {
            // SAFETY: In bounds of the mapping, which is writable.
            unsafe { ptr.add(off).write_volatile(1) };
        }
        Buffer { base, map_len, ptr, len }
    }

    /// AnonHugePages (kB) of the mapping, from /proc/self/smaps.
    fn anon_huge_kb(&self) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
        let (lo, hi) = (self.base as usize, self.base as usize + self.map_len);
        let mut inside = false;
        let mut kb = 0;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ')
                && let Some((a, b)) = range.split_once('-')
                && let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            {
                inside = a < hi && lo < b;
                continue;
            }
            if inside && let Some(v) = line.strip_prefix("AnonHugePages:") {
                kb += v.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap_or(0);
            }
        }
        kb
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: Exactly the mapping made in `new`.
        unsafe { libc::munmap(self.base.cast(), self.map_len) };
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// (median, min, max).
fn spread(v: &[f64]) -> (f64, f64, f64) {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (median(v.to_vec()), min, max)
}

/// (pin ns/page, unpin ns/page) of REGISTER/UNREGISTER, median of `reps`.
fn pinio_pin(fd: &PinioFd, buf: &Buffer, per_call: usize, reps: usize) -> (f64, f64) {
    let pages = buf.len / PAGE;
    let (mut pin, mut unpin) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let mut ids = Vec::with_capacity(pages.div_ceil(per_call));
        let t0 = Instant::now();
        for first in (0..pages).step_by(per_call) {
            let n = per_call.min(pages - first);
            let addr = buf.ptr as u64 + (first * PAGE) as u64;
            ids.push(fd.register(addr, (n * PAGE) as u64, abi::ACCESS_ALL).expect("REGISTER"));
        }
        let t1 = Instant::now();
        for id in ids {
            fd.unregister(id).expect("UNREGISTER");
        }
        let t2 = Instant::now();
        pin.push((t1 - t0).as_nanos() as f64 / pages as f64);
        unpin.push((t2 - t1).as_nanos() as f64 / pages as f64);
    }
    (median(pin), median(unpin))
}

/// (pin ns/page, unpin ns/page) of REGISTER_VEC/UNREGISTER_VEC of regions of `per_region`
/// pages, [`abi::MAX_VEC`] regions per call, median of `reps`. The regions tile the buffer (the
/// module pins adjacent regions of one call as one run), or with `apart` leave one page between
/// each two (every region a run of its own; the figure is per page pinned).
fn pinio_pin_vec(fd: &PinioFd, buf: &Buffer, per_region: usize, reps: usize, apart: bool) -> (f64, f64) {
    let (mut pin, mut unpin) = (Vec::new(), Vec::new());
    let stride = per_region + usize::from(apart);
    for _ in 0..reps {
        let mut entries: Vec<abi::RegisterArgs> = (0..buf.len / PAGE)
            .step_by(stride)
            .map(|first| abi::RegisterArgs {
                addr: buf.ptr as u64 + (first * PAGE) as u64,
                len: (per_region.min(buf.len / PAGE - first) * PAGE) as u64,
                access: abi::ACCESS_ALL,
                region_id: 0,
            })
            .collect();
        let pages: usize = entries.iter().map(|e| e.len as usize / PAGE).sum();
        let t0 = Instant::now();
        for chunk in entries.chunks_mut(abi::MAX_VEC as usize) {
            assert_eq!(fd.register_vec(chunk).expect("REGISTER_VEC"), chunk.len());
        }
        let t1 = Instant::now();
        let unreg: Vec<abi::UnregisterArgs> =
            entries.iter().map(|e| abi::UnregisterArgs { region_id: e.region_id, reserved: 0 }).collect();
        let t2 = Instant::now();
        for chunk in unreg.chunks(abi::MAX_VEC as usize) {
            assert_eq!(fd.unregister_vec(chunk).expect("UNREGISTER_VEC"), chunk.len());
        }
        let t3 = Instant::now();
        pin.push((t1 - t0).as_nanos() as f64 / pages as f64);
        unpin.push((t3 - t2).as_nanos() as f64 / pages as f64);
    }
    (median(pin), median(unpin))
}

/// (pin ns/page, unpin ns/page) of gup_test PIN_FAST_BENCHMARK, median of `reps`.
fn gup_pin(buf: &Buffer, per_call: usize, reps: usize) -> Option<(f64, f64)> {
    let f = std::fs::OpenOptions::new().read(true).write(true).open("/sys/kernel/debug/gup_test").ok()?;
    let pages = buf.len / PAGE;
    let (mut pin, mut unpin) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let mut g = GupTest {
            addr: buf.ptr as u64,
            size: buf.len as u64,
            nr_pages_per_call: per_call as u32,
            gup_flags: FOLL_WRITE | FOLL_LONGTERM,
            ..GupTest::default()
        };
        // SAFETY: `g` is a valid struct gup_test for PIN_FAST_BENCHMARK.
        let r =
            unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&f), PIN_FAST_BENCHMARK as libc::c_ulong, &mut g) };
        if r != 0 || g.size != buf.len as u64 {
            eprintln!("gup_test: ioctl {r}, size {} of {} ({})", g.size, buf.len, std::io::Error::last_os_error());
            return None;
        }
        pin.push(g.get_delta_usec as f64 * 1000.0 / pages as f64);
        unpin.push(g.put_delta_usec as f64 * 1000.0 / pages as f64);
    }
    Some((median(pin), median(unpin)))
}

/// Nanoseconds per empty ioctl on `fd` (an unknown command: `ENOTTY` after the dispatch).
fn null_ioctl_ns(fd: &PinioFd, reps: usize) -> f64 {
    let cmd = abi::ioc(abi::IOC_NONE, abi::IOC_MAGIC, 0x7f, 0);
    let raw = std::os::fd::AsRawFd::as_raw_fd(&std::os::fd::AsFd::as_fd(fd));
    let mut runs = Vec::new();
    for _ in 0..3 {
        let t0 = Instant::now();
        for _ in 0..reps {
            // SAFETY: An unknown command with no argument; the module returns ENOTTY.
            let r = unsafe { libc::ioctl(raw, cmd as libc::c_ulong, 0) };
            assert_eq!(r, -1, "an unknown ioctl must fail");
        }
        runs.push(t0.elapsed().as_nanos() as f64 / reps as f64);
    }
    median(runs)
}

/// ns per page of gup_test PIN_FAST_BENCHMARK driven one ioctl per `per_call` pages over the
/// buffer (pin + unpin of one call's pages per system call), timed from userspace, median of
/// `reps`.
fn gup_per_call_from_user(buf: &Buffer, per_call: usize, reps: usize) -> Option<f64> {
    let f = std::fs::OpenOptions::new().read(true).write(true).open("/sys/kernel/debug/gup_test").ok()?;
    let raw = std::os::fd::AsRawFd::as_raw_fd(&f);
    let pages = buf.len / PAGE;
    let mut runs = Vec::new();
    for _ in 0..reps {
        let t0 = Instant::now();
        for first in (0..pages).step_by(per_call) {
            let n = per_call.min(pages - first);
            let mut g = GupTest {
                addr: buf.ptr as u64 + (first * PAGE) as u64,
                size: (n * PAGE) as u64,
                nr_pages_per_call: n as u32,
                gup_flags: FOLL_WRITE | FOLL_LONGTERM,
                ..GupTest::default()
            };
            // SAFETY: `g` is a valid struct gup_test for PIN_FAST_BENCHMARK.
            let r = unsafe { libc::ioctl(raw, PIN_FAST_BENCHMARK as libc::c_ulong, &mut g) };
            if r != 0 || g.size != (n * PAGE) as u64 {
                eprintln!(
                    "gup_test per call: ioctl {r}, size {} of {} ({})",
                    g.size,
                    n * PAGE,
                    std::io::Error::last_os_error()
                );
                return None;
            }
        }
        runs.push(t0.elapsed().as_nanos() as f64 / pages as f64);
    }
    Some(median(runs))
}

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

struct Echo {
    mb_s: f64,
    cpu_ns_per_byte: f64,
}

fn echo_zero_copy(fd: &PinioFd, src: &Buffer, dst: &Buffer, size: usize, iters: usize) -> Echo {
    let s = fd.register(src.ptr as u64, size as u64, abi::ACCESS_DEVICE_READ).expect("REGISTER src");
    let d = fd.register(dst.ptr as u64, size as u64, abi::ACCESS_DEVICE_WRITE).expect("REGISTER dst");
    let descs = [
        Desc { tag: 1, region_offset: 0, dev_offset: 0, len: size as u64, region_id: s, dir: abi::DIR_TO_DEVICE },
        Desc { tag: 2, region_offset: 0, dev_offset: 0, len: size as u64, region_id: d, dir: abi::DIR_FROM_DEVICE },
    ];
    let mut recs = Vec::with_capacity(2);
    let (c0, t0) = (thread_cpu_ns(), Instant::now());
    for _ in 0..iters {
        fd.submit(&descs).expect("SUBMIT");
        recs.clear();
        while recs.len() < 2 {
            fd.reap(&mut recs, 2).expect("REAP");
        }
    }
    let (c1, t1) = (thread_cpu_ns(), Instant::now());
    assert!(recs.iter().all(|r| r.status == 0));
    fd.unregister(s).unwrap();
    fd.unregister(d).unwrap();
    let bytes = (2 * size * iters) as f64;
    Echo { mb_s: bytes / (t1 - t0).as_secs_f64() / 1e6, cpu_ns_per_byte: (c1 - c0) as f64 / bytes }
}

fn echo_copy(fd: &PinioFd, src: &Buffer, dst: &Buffer, size: usize, iters: usize) -> Echo {
    // SAFETY: Both buffers are mapped for at least `size` bytes and not aliased here.
    let (a, b) = unsafe { (std::slice::from_raw_parts(src.ptr, size), std::slice::from_raw_parts_mut(dst.ptr, size)) };
    let (c0, t0) = (thread_cpu_ns(), Instant::now());
    for _ in 0..iters {
        assert_eq!(fd.pwrite(a, 0).expect("pwrite"), size);
        assert_eq!(fd.pread(b, 0).expect("pread"), size);
    }
    let (c1, t1) = (thread_cpu_ns(), Instant::now());
    let bytes = (2 * size * iters) as f64;
    Echo { mb_s: bytes / (t1 - t0).as_secs_f64() / 1e6, cpu_ns_per_byte: (c1 - c0) as f64 / bytes }
}

fn main() {
    let fd = PinioFd::open("/dev/pinio").expect("open /dev/pinio: is pinio.ko loaded?");
    let info = fd.info().expect("INFO");
    let mut json = String::from("{\n  \"pin\": [\n");
    let mut table = String::new();
    let size = 64 << 20;
    let reps: usize = std::env::var("PINIO_BENCH_REPS").ok().and_then(|v| v.parse().ok()).unwrap_or(5).max(1);
    writeln!(
        table,
        "pin+unpin per page, {} MiB, gup flags FOLL_WRITE|FOLL_LONGTERM, {reps} interleaved repeats: \
         ns/page medians; ratios (pinio pin+unpin / gup_test pin+unpin, per repeat) median [min-max]",
        size >> 20
    )
    .unwrap();
    let null_ns = null_ioctl_ns(&fd, 20_000);
    writeln!(table, "empty ioctl on /dev/pinio (ENOTTY): {null_ns:.0} ns").unwrap();
    writeln!(
        table,
        "{:>5} {:>9} {:>5} | {:>15} | {:>15} | {:>15} | {:>15} | {:>19} | {:>19} | {:>19} | {:>8} {:>6} | {:>8} {:>6}",
        "thp",
        "anonhuge",
        "pages",
        "single pin/unp",
        "vec pin/unp",
        "apart pin/unp",
        "gup pin/unp",
        "ratio single",
        "ratio vec",
        "ratio apart",
        "gup/call",
        "ratio2",
        "kernel",
        "ratio3"
    )
    .unwrap();
    let mut first = true;
    for thp in [true, false] {
        let buf = Buffer::new(size, thp);
        let huge_kb = buf.anon_huge_kb();
        for per_call in [1usize, 64, 512] {
            let (mut sp, mut su, mut vp, mut vu, mut gp, mut gu) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let (mut ap, mut au) = (Vec::new(), Vec::new());
            let (mut r_single, mut r_vec, mut r_apart) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..reps {
                let (a, b) = pinio_pin(&fd, &buf, per_call, 1);
                let (c, d) = pinio_pin_vec(&fd, &buf, per_call, 1, false);
                let (g, h) = pinio_pin_vec(&fd, &buf, per_call, 1, true);
                let (e, f) = gup_pin(&buf, per_call, 1).unwrap_or((f64::NAN, f64::NAN));
                r_single.push((a + b) / (e + f));
                r_vec.push((c + d) / (e + f));
                r_apart.push((g + h) / (e + f));
                sp.push(a);
                su.push(b);
                vp.push(c);
                vu.push(d);
                ap.push(g);
                au.push(h);
                gp.push(e);
                gu.push(f);
            }
            let (pp, pu, vpm, vum, gpm, gum) = (median(sp), median(su), median(vp), median(vu), median(gp), median(gu));
            let (apm, aum) = (median(ap), median(au));
            let rs = spread(&r_single);
            let rv = spread(&r_vec);
            let ra = spread(&r_apart);
            // Per call from userspace: gup_test pays one system call per pin + unpin, pinio two
            // (REGISTER, UNREGISTER); `ratio2` gives gup_test the second one.
            let gup_user = gup_per_call_from_user(&buf, per_call, 3).unwrap_or(f64::NAN);
            let ratio2 = (pp + pu) / (gup_user + null_ns / per_call as f64);
            // The module's in-kernel cost per page: pinio minus its two system calls.
            let kernel = pp + pu - 2.0 * null_ns / per_call as f64;
            let ratio3 = kernel / (gpm + gum);
            writeln!(
                table,
                "{:>5} {:>7}kB {:>5} | {:>7.1} {:>7.1} | {:>7.1} {:>7.1} | {:>7.1} {:>7.1} | {:>7.1} {:>7.1} | {:>5.2} [{:>5.2}-{:>5.2}] | {:>5.2} [{:>5.2}-{:>5.2}] | {:>5.2} [{:>5.2}-{:>5.2}] | {:>8.1} {:>6.2} | {:>8.1} {:>6.2}",
                thp, huge_kb, per_call, pp, pu, vpm, vum, apm, aum, gpm, gum, rs.0, rs.1, rs.2, rv.0, rv.1, rv.2, ra.0, ra.1, ra.2, gup_user, ratio2, kernel, ratio3
            )
            .unwrap();
            if !first {
                json.push_str(",\n");
            }
            first = false;
            write!(
                json,
                "    {{\"thp_requested\": {thp}, \"anon_huge_kb\": {huge_kb}, \"bytes\": {size}, \"pages_per_call\": {per_call}, \
                 \"repeats\": {reps}, \"pinio_pin_ns_per_page\": {pp:.2}, \"pinio_unpin_ns_per_page\": {pu:.2}, \
                 \"pinio_vec_pin_ns_per_page\": {vpm:.2}, \"pinio_vec_unpin_ns_per_page\": {vum:.2}, \
                 \"pinio_vec_apart_pin_ns_per_page\": {apm:.2}, \"pinio_vec_apart_unpin_ns_per_page\": {aum:.2}, \
                 \"gup_test_pin_ns_per_page\": {}, \"gup_test_unpin_ns_per_page\": {}, \
                 \"ratio\": {}, \"ratio_min\": {}, \"ratio_max\": {}, \
                 \"ratio_vec\": {}, \"ratio_vec_min\": {}, \"ratio_vec_max\": {}, \
                 \"ratio_vec_apart\": {}, \"ratio_vec_apart_min\": {}, \"ratio_vec_apart_max\": {}, \
                 \"empty_ioctl_ns\": {}, \"gup_test_per_call_from_user_ns_per_page\": {}, \"ratio_per_syscall\": {}, \
                 \"pinio_in_kernel_ns_per_page\": {}, \"ratio_in_kernel\": {}}}",
                num(gpm),
                num(gum),
                num(rs.0),
                num(rs.1),
                num(rs.2),
                num(rv.0),
                num(rv.1),
                num(rv.2),
                num(ra.0),
                num(ra.1),
                num(ra.2),
                num(null_ns),
                num(gup_user),
                num(ratio2),
                num(kernel),
                num(ratio3)
            )
            .unwrap();
        }
    }
    json.push_str("\n  ],\n  \"echo\": [\n");
    writeln!(table, "\necho (write + read back), bytes moved = 2 x size").unwrap();
    writeln!(
        table,
        "{:>8} | {:>12} {:>14} | {:>12} {:>14} | {:>9}",
        "size", "zc MB/s", "zc cpu ns/B", "copy MB/s", "copy cpu ns/B", "cpu ratio"
    )
    .unwrap();
    let src = Buffer::new(4 << 20, false);
    let dst = Buffer::new(4 << 20, false);
    first = true;
    for size in [4usize << 10, 64 << 10, 1 << 20, 4 << 20] {
        if size as u64 > info.dev_mem_size {
            continue;
        }
        let iters = ((32usize << 20) / size).clamp(16, 2000);
        let z = echo_zero_copy(&fd, &src, &dst, size, iters);
        let c = echo_copy(&fd, &src, &dst, size, iters);
        let ratio = z.cpu_ns_per_byte / c.cpu_ns_per_byte;
        writeln!(
            table,
            "{:>8} | {:>12.1} {:>14.4} | {:>12.1} {:>14.4} | {:>9.3}",
            size, z.mb_s, z.cpu_ns_per_byte, c.mb_s, c.cpu_ns_per_byte, ratio
        )
        .unwrap();
        if !first {
            json.push_str(",\n");
        }
        first = false;
        write!(
            json,
            "    {{\"size\": {size}, \"iterations\": {iters}, \"zero_copy_mb_s\": {}, \"zero_copy_cpu_ns_per_byte\": {}, \
             \"copy_mb_s\": {}, \"copy_cpu_ns_per_byte\": {}, \"cpu_ratio\": {}}}",
            num(z.mb_s),
            num(z.cpu_ns_per_byte),
            num(c.mb_s),
            num(c.cpu_ns_per_byte),
            num(ratio)
        )
        .unwrap();
    }
    json.push_str("\n  ]\n}\n");
    print!("{table}");
    if let Some(out) = std::env::var_os("PINIO_BENCH_OUT") {
        std::fs::write(&out, json).expect("write PINIO_BENCH_OUT");
    }
}

/// A JSON number, or null for NaN/infinite.
fn num(x: f64) -> String {
    if x.is_finite() { format!("{x:.4}") } else { "null".into() }
}
