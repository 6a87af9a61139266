//! Guest tests of the raw `/dev/pinio` ABI: data integrity of the DMA engine and of the copy
//! path, one errno per bad input, and region lifetime. After each test every FOLL_PIN taken
//! is released and the kernel logged no warning.
//!
//! Run by `cargo xtask test` in the guest with pinio.ko loaded (PINIO_GUEST=1).

mod common;

use common::{Checked, DEV, Mapping, fill, pins_outstanding, vm_lck_kb};
use pinio_kmod::abi::{self, Desc};
use pinio_kmod::sys::PinioFd;

const PAGE: usize = 4096;

fn open() -> PinioFd {
    PinioFd::open(DEV).expect("open /dev/pinio")
}

fn desc(tag: u64, region_id: u32, dir: u32, region_offset: u64, dev_offset: u64, len: u64) -> Desc {
    Desc { tag, region_offset, dev_offset, len, region_id, dir }
}

/// Submits `descs` and reaps exactly that many completions, checking each succeeded.
fn run(fd: &PinioFd, descs: &[Desc]) {
    let info = fd.info().expect("info");
    for batch in descs.chunks(info.max_batch as usize) {
        assert_eq!(fd.submit(batch).expect("submit"), batch.len());
        let mut got = Vec::with_capacity(batch.len());
        while got.len() < batch.len() {
            let want = (batch.len() - got.len()) as u32;
            fd.reap(&mut got, want).expect("reap");
        }
        let mut tags: Vec<u64> = got.iter().map(|c| c.tag).collect();
        tags.sort_unstable();
        let mut want: Vec<u64> = batch.iter().map(|d| d.tag).collect();
        want.sort_unstable();
        assert_eq!(tags, want, "completion tags");
        for (c, d) in got.iter().zip(batch) {
            assert_eq!(c.status, 0, "descriptor {d:?} failed");
        }
        for c in &got {
            let d = batch.iter().find(|d| d.tag == c.tag).unwrap();
            assert_eq!(c.bytes, d.len, "bytes of tag {}", c.tag);
        }
    }
}

/// Writes `len` random bytes at a memory offset `mem_off` and device offset `dev_off` through the
/// DMA engine and reads them back into another region, in descriptors of `chunk` bytes.
fn round_trip(fd: &PinioFd, len: usize, mem_off: usize, dev_off: u64, chunk: usize, seed: u64) {
    let span = (mem_off + len).div_ceil(PAGE) * PAGE;
    let mut src = Mapping::rw(span);
    let mut dst = Mapping::rw(span);
    fill(&mut src.bytes()[mem_off..mem_off + len], seed);
    dst.bytes().fill(0xee);
    let s = fd.register(src.addr() + mem_off as u64, len as u64, abi::ACCESS_DEVICE_READ).expect("register src");
    let d = fd.register(dst.addr() + mem_off as u64, len as u64, abi::ACCESS_DEVICE_WRITE).expect("register dst");
    let pieces = |region: u32, dir: u32, tag0: u64| -> Vec<Desc> {
        (0..len)
            .step_by(chunk)
            .enumerate()
            .map(|(i, off)| {
                let n = chunk.min(len - off) as u64;
                desc(tag0 + i as u64, region, dir, off as u64, dev_off + off as u64, n)
            })
            .collect()
    };
    run(fd, &pieces(s, abi::DIR_TO_DEVICE, 1 << 32));
    run(fd, &pieces(d, abi::DIR_FROM_DEVICE, 2 << 32));
    let (a, b) = (&src.bytes()[mem_off..mem_off + len].to_vec(), &dst.bytes()[mem_off..mem_off + len]);
    if let Some(i) = (0..len).find(|&i| a[i] != b[i]) {
        panic!("len {len} mem_off {mem_off} dev_off {dev_off:#x} chunk {chunk}: mismatch at byte {i}");
    }
    // Bytes around the region were not touched by the device.
    assert!(dst.bytes()[..mem_off].iter().all(|&x| x == 0xee), "device wrote before the region");
    assert!(dst.bytes()[mem_off + len..].iter().all(|&x| x == 0xee), "device wrote after the region");
    fd.unregister(s).expect("unregister src");
    fd.unregister(d).expect("unregister dst");
}

#[test]
fn dma_round_trips_1_byte_to_8_mib_unaligned_single_and_batched() {
    let c = Checked::start();
    let fd = open();
    let info = fd.info().unwrap();
    assert!(info.dev_mem_size >= 16 << 20, "tests assume mem_size >= 16 MiB");
    let sizes = [1usize, 7, 511, 4095, 4096, 4097, 65537, (1 << 20) + 3, 8 << 20];
    for (i, &len) in sizes.iter().enumerate() {
        let mem_off = [0usize, 1, 17, 4095, 2049][i % 5];
        let dev_off = (i as u64 * 12345 + 3) % (info.dev_mem_size - len as u64);
        round_trip(&fd, len, mem_off, dev_off, len, i as u64 + 1); // one descriptor
        round_trip(&fd, len, mem_off, dev_off, 65521.min(len), i as u64 + 100); // batched
    }
    drop(fd);
    c.finish();
}

#[test]
fn dma_round_trips_on_several_threads() {
    let c = Checked::start();
    let fd = open();
    // Each thread runs round trips in its own session on a disjoint part of device memory,
    // while all of them also register and unregister concurrently in one shared session.
    std::thread::scope(|s| {
        for t in 0..3u64 {
            let fd = &fd;
            s.spawn(move || {
                let mine = open();
                for (k, len) in [1usize, 4097, 300_000, 2 << 20].into_iter().enumerate() {
                    round_trip(&mine, len, 1 + k * 7, t * (4 << 20) + k as u64, 65536, t * 10 + k as u64);
                }
                let m = Mapping::rw(PAGE);
                let id = fd.register(m.addr(), PAGE as u64, abi::ACCESS_ALL).unwrap();
                fd.unregister(id).unwrap();
            });
        }
    });
    drop(fd);
    c.finish();
}

#[test]
fn copy_path_and_dma_see_the_same_device_memory() {
    let c = Checked::start();
    let fd = open();
    let len = 300_001usize;
    let mut data = vec![0u8; len];
    fill(&mut data, 42);
    assert_eq!(fd.pwrite(&data, 12345).unwrap(), len);
    let mut m = Mapping::rw(len.div_ceil(PAGE) * PAGE + PAGE);
    let id = fd.register(m.addr() + 3, len as u64, abi::ACCESS_DEVICE_WRITE).unwrap();
    run(&fd, &[desc(7, id, abi::DIR_FROM_DEVICE, 0, 12345, len as u64)]);
    assert!(m.bytes()[3..3 + len] == data[..], "DMA read of pwrite data differs");
    // And back: DMA write, pread.
    let mut m2 = Mapping::rw(PAGE);
    m2.bytes().fill(0x5a);
    let id2 = fd.register(m2.addr(), PAGE as u64, abi::ACCESS_DEVICE_READ).unwrap();
    run(&fd, &[desc(8, id2, abi::DIR_TO_DEVICE, 0, 999, PAGE as u64)]);
    let mut back = vec![0u8; PAGE];
    assert_eq!(fd.pread(&mut back, 999).unwrap(), PAGE);
    assert!(back.iter().all(|&b| b == 0x5a));
    // End of device memory: pread returns 0, pwrite ENOSPC, a pread across the end is short.
    let size = fd.info().unwrap().dev_mem_size;
    assert_eq!(fd.pread(&mut back, size).unwrap(), 0);
    assert_eq!(fd.pwrite(&back, size).unwrap_err().errno(), Some(libc::ENOSPC));
    assert_eq!(fd.pread(&mut back, size - 10).unwrap(), 10);
    fd.unregister(id).unwrap();
    fd.unregister(id2).unwrap();
    drop(fd);
    c.finish();
}

#[test]
fn pages_the_device_wrote_are_visible_and_only_those_change() {
    let c = Checked::start();
    let fd = open();
    // A registration that the device only reads must never be written: the source stays intact
    // even after a FROM_DEVICE request is refused.
    let mut m = Mapping::rw(2 * PAGE);
    m.bytes().fill(1);
    let ro = fd.register(m.addr(), 2 * PAGE as u64, abi::ACCESS_DEVICE_READ).unwrap();
    let err = fd.submit(&[desc(1, ro, abi::DIR_FROM_DEVICE, 0, 0, 16)]).unwrap_err();
    assert_eq!(err.errno(), Some(libc::EACCES), "{err}");
    assert!(m.bytes().iter().all(|&b| b == 1));
    fd.unregister(ro).unwrap();
    drop(fd);
    c.finish();
}

fn errno<T: std::fmt::Debug>(r: Result<T, pinio_kmod::KmodError>) -> i32 {
    match r {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => e.errno().unwrap_or_else(|| panic!("no errno in {e}")),
    }
}

#[test]
fn every_bad_input_gets_its_errno() {
    let c = Checked::start();
    let fd = open();
    let info = fd.info().unwrap();
    let m = Mapping::rw(4 * PAGE);
    let ro_map = Mapping::new(PAGE, libc::PROT_READ);

    // REGISTER
    // An inaccessible page kept reserved for the whole test: an address
    // freed with munmap could be mapped again meanwhile by another thread of
    // this binary (a stack, an allocator arena), and then reads "succeed".
    let hole = Mapping::new(PAGE, libc::PROT_NONE);
    let unmapped = hole.addr();
    assert_eq!(errno(fd.register(unmapped, PAGE as u64, abi::ACCESS_DEVICE_READ)), libc::EFAULT, "unmapped address");
    assert_eq!(
        errno(fd.register(ro_map.addr(), PAGE as u64, abi::ACCESS_DEVICE_WRITE)),
        libc::EFAULT,
        "read-only mapping for device writes"
    );
    assert_eq!(errno(fd.register(m.addr(), 0, abi::ACCESS_DEVICE_READ)), libc::EINVAL, "zero length");
    assert_eq!(
        errno(fd.register(m.addr(), u64::MAX - 10, abi::ACCESS_DEVICE_READ)),
        libc::EOVERFLOW,
        "length overflow"
    );
    assert_eq!(errno(fd.register(m.addr(), PAGE as u64, 0)), libc::EINVAL, "no access bits");
    assert_eq!(errno(fd.register(m.addr(), PAGE as u64, 0x80)), libc::EINVAL, "unknown access bits");
    let over_cap = (info.max_pinned_pages + 1) * PAGE as u64;
    assert_eq!(errno(fd.register(m.addr(), over_cap, abi::ACCESS_DEVICE_READ)), libc::ENOSPC, "beyond the cap");
    assert_eq!(
        errno(fd.register(0xffff_8000_0000_0000, PAGE as u64, abi::ACCESS_DEVICE_READ)),
        libc::EFAULT,
        "kernel address"
    );
    // A read-only mapping may be registered for device reads.
    let ok = fd.register(ro_map.addr(), PAGE as u64, abi::ACCESS_DEVICE_READ).unwrap();
    fd.unregister(ok).unwrap();

    // UNREGISTER
    assert_eq!(errno(fd.unregister(12345)), libc::ENOENT, "unknown region id");

    // SUBMIT
    let r = fd.register(m.addr() + 1, 3 * PAGE as u64, abi::ACCESS_ALL).unwrap();
    let len = 3 * PAGE as u64;
    let good = desc(1, r, abi::DIR_TO_DEVICE, 0, 0, 16);
    let cases: Vec<(&str, Desc, i32)> = vec![
        ("unknown region id", Desc { region_id: r + 1000, ..good }, libc::ENOENT),
        ("descriptor outside its region", Desc { region_offset: len - 8, ..good }, libc::ERANGE),
        ("descriptor offset overflow", Desc { region_offset: u64::MAX - 4, ..good }, libc::ERANGE),
        ("outside device memory", Desc { dev_offset: info.dev_mem_size - 8, ..good }, libc::ERANGE),
        ("device offset overflow", Desc { dev_offset: u64::MAX - 4, ..good }, libc::ERANGE),
        ("zero length", Desc { len: 0, ..good }, libc::EINVAL),
        ("bad direction", Desc { dir: 9, ..good }, libc::EINVAL),
    ];
    for (what, bad, want) in &cases {
        // The bad descriptor is last of a batch: nothing of the batch may be queued.
        let batch = [good, good, *bad];
        assert_eq!(errno(fd.submit(&batch)), *want, "{what}");
        assert_eq!(fd.info().unwrap().outstanding, 0, "{what}: part of a refused batch was queued");
    }
    assert_eq!(errno(fd.submit_raw(m.addr(), 1_000_000)), libc::EINVAL, "absurd batch count");
    assert_eq!(errno(fd.submit_raw(m.addr(), 0)), libc::EINVAL, "empty batch");
    assert_eq!(errno(fd.submit_raw(unmapped, 1)), libc::EFAULT, "unreadable descriptor array");
    // Queue full: queue_depth outstanding, one more is EAGAIN.
    let depth = info.queue_depth as usize;
    let full: Vec<Desc> = (0..depth as u64).map(|i| Desc { tag: i, ..good }).collect();
    assert_eq!(fd.submit(&full).unwrap(), depth);
    assert_eq!(errno(fd.submit(&[good])), libc::EAGAIN, "queue full");
    let mut got = Vec::with_capacity(depth);
    while got.len() < depth {
        let want = (depth - got.len()) as u32;
        fd.reap(&mut got, want).unwrap();
    }
    assert!(got.iter().all(|c| c.status == 0));

    // REAP
    let mut args = abi::ReapArgs { records: m.addr(), max: 0, min: 0, count: 0, reserved: 0 };
    // SAFETY: `args` is a valid ReapArgs; the kernel validates it.
    let rc = unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(&std::os::fd::AsFd::as_fd(&fd)),
            abi::PINIO_IOC_REAP as _,
            &mut args,
        )
    };
    assert_eq!((rc, std::io::Error::last_os_error().raw_os_error()), (-1, Some(libc::EINVAL)), "reap max 0");

    // Unknown ioctls, and known numbers with the wrong size.
    assert_eq!(errno(fd.raw_ioctl(abi::ioc(abi::IOC_NONE, abi::IOC_MAGIC, 0x7f, 0), 0)), libc::ENOTTY, "unknown ioctl");
    assert_eq!(
        errno(fd.raw_ioctl(abi::ioc(abi::IOC_READ, abi::IOC_MAGIC, 1, 8), m.addr())),
        libc::ENOTTY,
        "INFO with a wrong size"
    );
    assert_eq!(errno(fd.raw_ioctl(abi::ioc(abi::IOC_WRITE, b'T' as u32, 1, 4), 0)), libc::ENOTTY, "foreign ioctl");
    // Bad argument addresses of known ioctls.
    assert_eq!(errno(fd.raw_ioctl(abi::PINIO_IOC_INFO, 0)), libc::EFAULT, "INFO to NULL");
    assert_eq!(errno(fd.raw_ioctl(abi::PINIO_IOC_REGISTER, unmapped)), libc::EFAULT, "REGISTER from unmapped");

    fd.unregister(r).unwrap();
    assert_eq!(fd.info().unwrap().pinned_pages, 0);
    drop(fd);
    c.finish();
}

/// A batch big enough to keep the DMA engine busy for a while under emulation.
fn long_batch(region: u32, len: u64, n: u64) -> Vec<Desc> {
    (0..n).map(|i| desc(i, region, abi::DIR_FROM_DEVICE, 0, 0, len)).collect()
}

#[test]
fn unregister_with_dma_in_flight_is_ebusy() {
    let c = Checked::start();
    let fd = open();
    let len = 8 << 20;
    let m = Mapping::rw(len);
    let id = fd.register(m.addr(), len as u64, abi::ACCESS_DEVICE_WRITE).unwrap();
    let batch = long_batch(id, len as u64, 64);
    fd.submit(&batch).unwrap();
    assert_eq!(errno(fd.unregister(id)), libc::EBUSY, "unregister while DMA is in flight");
    let mut got = Vec::with_capacity(batch.len());
    while got.len() < batch.len() {
        let want = (batch.len() - got.len()) as u32;
        fd.reap(&mut got, want).unwrap();
    }
    fd.unregister(id).unwrap();
    drop(fd);
    c.finish();
}

#[test]
fn close_with_dma_in_flight_waits_and_releases_everything() {
    let c = Checked::start();
    let before = pins_outstanding();
    let len = 8 << 20;
    let m = Mapping::rw(len);
    let fd = open();
    let id = fd.register(m.addr(), len as u64, abi::ACCESS_DEVICE_WRITE).unwrap();
    let _second = fd.register(m.addr(), PAGE as u64, abi::ACCESS_DEVICE_READ).unwrap();
    assert_eq!(pins_outstanding() - before, (len / PAGE + 1) as i64, "pins taken by two registrations");
    fd.submit(&long_batch(id, len as u64, 64)).unwrap();
    drop(fd); // close while the engine is busy: release waits, then unpins both regions
    drop(m);
    c.finish();
}

#[test]
fn killed_process_with_dma_in_flight_releases_everything() {
    let c = Checked::start();
    let mut ready = [0i32; 2];
    // SAFETY: `ready` is a valid array of two fds.
    assert_eq!(unsafe { libc::pipe(ready.as_mut_ptr()) }, 0);
    // Everything the child needs is prepared before fork: after fork in a multi-threaded
    // process the child makes raw system calls only (no allocation).
    let len = 8usize << 20;
    let m = Mapping::rw(len);
    let path = c"/dev/pinio";
    let mut reg = abi::RegisterArgs { addr: m.addr(), len: len as u64, access: abi::ACCESS_DEVICE_WRITE, region_id: 0 };
    let mut descs = long_batch(0, len as u64, 64);
    let mut submit = abi::SubmitArgs { descs: descs.as_ptr() as u64, count: descs.len() as u32, flags: 0 };
    // SAFETY: The child only makes system calls on memory prepared above and exits (killed).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        // SAFETY: Raw system calls on valid, prepared memory; `_exit` on any failure.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_RDWR);
            if fd < 0 || libc::ioctl(fd, abi::PINIO_IOC_REGISTER as _, &mut reg) != 0 {
                libc::_exit(2);
            }
            for d in descs.iter_mut() {
                d.region_id = reg.region_id;
            }
            if libc::ioctl(fd, abi::PINIO_IOC_SUBMIT as _, &mut submit) < 0 {
                libc::_exit(3);
            }
            libc::write(ready[1], [1u8].as_ptr().cast(), 1);
            loop {
                libc::pause();
            }
        }
    }
    // SAFETY: Closing our copy of the write end, so a child that dies early gives EOF.
    unsafe { libc::close(ready[1]) };
    let mut b = [0u8; 1];
    // SAFETY: Reads one byte into a valid buffer.
    assert_eq!(unsafe { libc::read(ready[0], b.as_mut_ptr().cast(), 1) }, 1, "child did not get ready");
    // SAFETY: `pid` is our child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let mut status = 0;
    // SAFETY: Waits for our child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFSIGNALED(status), "child was not killed (status {status:#x})");
    drop((m, descs));
    // SAFETY: Closing our read end.
    unsafe { libc::close(ready[0]) };
    c.finish();
}

#[test]
fn registration_is_charged_to_rlimit_memlock() {
    let c = Checked::start();
    let m = Mapping::rw(1 << 20);
    let fd = open();
    let raw = std::os::fd::AsRawFd::as_raw_fd(&std::os::fd::AsFd::as_fd(&fd));
    let mut big = abi::RegisterArgs { addr: m.addr(), len: 1 << 20, access: abi::ACCESS_DEVICE_READ, region_id: 0 };
    let mut small = abi::RegisterArgs { addr: m.addr(), len: 32 << 10, access: abi::ACCESS_DEVICE_READ, region_id: 0 };
    // SAFETY: The child makes raw system calls on memory prepared before fork, then `_exit`s with
    // a code naming the first failed check.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        // SAFETY: See above.
        unsafe {
            let lim = libc::rlimit { rlim_cur: 64 << 10, rlim_max: 64 << 10 };
            // Without CAP_IPC_LOCK (an unprivileged uid) the limit applies.
            if libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) != 0 || libc::setuid(65534) != 0 {
                libc::_exit(10);
            }
            let before = vm_lck_kb();
            if libc::ioctl(raw, abi::PINIO_IOC_REGISTER as _, &mut big) != -1
                || *libc::__errno_location() != libc::ENOMEM
            {
                libc::_exit(11); // 1 MiB over a 64 KiB limit must be ENOMEM
            }
            if vm_lck_kb() != before {
                libc::_exit(12); // a refused registration charges nothing
            }
            if libc::ioctl(raw, abi::PINIO_IOC_REGISTER as _, &mut small) != 0 {
                libc::_exit(13); // 32 KiB fits
            }
            if vm_lck_kb() != before + 32 {
                libc::_exit(14); // and is charged: VmLck grows by 32 kB
            }
            let mut u = abi::UnregisterArgs { region_id: small.region_id, reserved: 0 };
            if libc::ioctl(raw, abi::PINIO_IOC_UNREGISTER as _, &mut u) != 0 || vm_lck_kb() != before {
                libc::_exit(15); // unregistering returns the charge
            }
            libc::_exit(0);
        }
    }
    let mut status = 0;
    // SAFETY: Waits for our child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "child died: status {status:#x}");
    assert_eq!(libc::WEXITSTATUS(status), 0, "RLIMIT_MEMLOCK check failed in the child (exit code names the check)");
    drop((fd, m));
    c.finish();
}
