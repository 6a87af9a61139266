//! Scenarios around the kernel module that a fuzzer cannot judge on its own: fork while pinned,
//! munmap of a registered range, SIGKILL during DMA, memory limits, module unload, and the
//! charge of the right address space. Run in the guest by `cargo xtask test`; each scenario runs
//! between a pin guard and a kernel-log watch (`pinio_fuzz::harness`).

use pinio_fuzz::harness::{Scenario, require_guest, run};
use pinio_fuzz::mapping::{Mapping, page_size};
use pinio_fuzz::proc::{Exit, Pipe, fork};
use pinio_fuzz::vmstat::PinGuard;
use pinio_fuzz::{Errno, FuzzError, ensure};
use pinio_kmod::abi::{self, CompletionRecord, Desc};
use pinio_kmod::sys::PinioFd;
use std::os::fd::{AsFd, AsRawFd};
use std::process::ExitCode;
use std::time::Duration;

const DEV: &str = "/dev/pinio";

fn main() -> ExitCode {
    if let Err(e) = require_guest(DEV) {
        println!("guest_scenarios: {e}");
        return ExitCode::FAILURE;
    }
    run(
        "guest_scenarios",
        &[
            Scenario {
                name: "register_charges_the_callers_address_space",
                run: register_charges_the_callers_address_space,
            },
            Scenario { name: "fork_while_pinned_keeps_device_and_child_views_apart", run: fork_while_pinned },
            Scenario {
                name: "fork_child_closing_inherited_fd_keeps_parent_regions",
                run: fork_child_closing_inherited_fd,
            },
            Scenario { name: "munmap_of_registered_range_keeps_pages_until_unregister", run: munmap_registered_range },
            Scenario { name: "sigkill_during_dma_releases_everything", run: sigkill_during_dma },
            Scenario { name: "memlock_limit_gives_enomem_and_pins_nothing", run: memlock_limit },
            Scenario { name: "per_open_cap_gives_enospc_and_pins_nothing_more", run: per_open_cap },
            Scenario { name: "rmmod_refused_while_a_file_is_open", run: rmmod_refused_while_open },
            Scenario { name: "reap_with_read_only_argument_loses_no_record", run: reap_read_only_argument },
            Scenario { name: "concurrent_reapers_do_not_wait_for_taken_records", run: concurrent_reapers },
        ],
    )
}

/// A `KmodError` as a scenario failure.
fn k<T>(what: &str, r: Result<T, pinio_kmod::KmodError>) -> Result<T, FuzzError> {
    r.map_err(|e| FuzzError::Check(format!("{what}: {e}")))
}

/// The errno of a call that must fail.
fn errno_of<T>(what: &str, r: Result<T, pinio_kmod::KmodError>) -> Result<i32, FuzzError> {
    match r {
        Ok(_) => Err(FuzzError::Check(format!("{what}: succeeded, expected an error"))),
        Err(e) => Ok(e.errno().unwrap_or(0)),
    }
}

fn open() -> Result<PinioFd, FuzzError> {
    k("open /dev/pinio", PinioFd::open(DEV))
}

/// Runs `descs` and waits for all their records; checks status 0.
fn run_dma(fd: &PinioFd, descs: &[Desc]) -> Result<(), FuzzError> {
    k("SUBMIT", fd.submit(descs))?;
    let mut out: Vec<CompletionRecord> = Vec::with_capacity(descs.len());
    while out.len() < descs.len() {
        let missing = (descs.len() - out.len()) as u32;
        k("REAP", fd.reap(&mut out, missing))?;
    }
    for r in &out {
        ensure!(r.status == 0, "DMA record {r:?} failed");
    }
    Ok(())
}

fn desc(region: u32, dir: u32, region_offset: u64, dev_offset: u64, len: u64) -> Desc {
    Desc { tag: region_offset ^ dev_offset, region_offset, dev_offset, len, region_id: region, dir }
}

/// `VmLck` of /proc/self/status in kB.
fn vm_locked_kb() -> Result<u64, FuzzError> {
    let s = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| FuzzError::Check(format!("/proc/self/status: {e}")))?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| FuzzError::Check("no VmLck in /proc/self/status".into()))
}

/// REGISTER charges the registering process's own `mm` (`VmLck` grows by the pages pinned) and
/// UNREGISTER returns the charge. Reproducer of the first fuzzer finding: the module read
/// `current->mm` through the Rust view of `task_struct`, whose layout differs from C's in these
/// kernels, and the first REGISTER panicked (misaligned `mm_struct` reference).
fn register_charges_the_callers_address_space() -> Result<(), FuzzError> {
    let page = page_size() as u64;
    let m = Mapping::rw(16 * page as usize)?;
    let fd = open()?;
    let before = vm_locked_kb()?;
    let id = k("REGISTER", fd.register(m.addr() + 100, 10 * page, abi::ACCESS_ALL))?;
    let during = vm_locked_kb()?;
    ensure!(during == before + 11 * page / 1024, "VmLck {before} kB -> {during} kB after pinning 11 pages");
    k("UNREGISTER", fd.unregister(id))?;
    let after = vm_locked_kb()?;
    ensure!(after == before, "VmLck {after} kB after UNREGISTER, {before} kB before");
    Ok(())
}

/// fork() with a registered buffer: the kernel gives the child copies of pinned anonymous pages
/// at fork (pinned pages are never shared copy-on-write), so neither side's writes reach the
/// other, and the device keeps working on the parent's pages. Checked for a region the device
/// writes and for one it only reads (pinned without FOLL_WRITE: the classic GUP-after-fork case).
fn fork_while_pinned() -> Result<(), FuzzError> {
    let page = page_size();
    let len = 8 * page;
    for access in [abi::ACCESS_ALL, abi::ACCESS_DEVICE_READ] {
        let mut m = Mapping::rw(len)?;
        // SAFETY: fresh read-write mapping.
        unsafe { m.bytes() }.fill(b'A');
        let fd = open()?;
        let id = k("REGISTER", fd.register(m.addr(), len as u64, access))?;
        let to_parent = Pipe::new()?;
        let to_child = Pipe::new()?;
        let addr = m.addr();
        let child = fork(|| {
            // SAFETY: The child's private copy of the mapping, readable and writable.
            let mine = unsafe { std::slice::from_raw_parts_mut(addr as *mut u8, len) };
            ensure!(mine.iter().all(|&b| b == b'A'), "child: inherited bytes are not the parent's");
            mine.fill(b'C'); // the child's copy-on-write pages
            to_parent.send(1)?;
            to_child.recv()?; // the parent wrote and the device wrote the parent's pages
            ensure!(
                mine.iter().all(|&b| b == b'C'),
                "child: its pages changed after the parent and the device wrote theirs"
            );
            Ok(())
        })?;
        ensure!(to_parent.recv()? == Some(1), "child did not write its pages");
        // The device reads what the parent sees, not what the child wrote.
        run_dma(&fd, &[desc(id, abi::DIR_TO_DEVICE, 0, 0, len as u64)])?;
        let mut dev = vec![0u8; len];
        k("pread", fd.pread(&mut dev, 0))?;
        ensure!(dev.iter().all(|&b| b == b'A'), "access {access}: the device read the child's bytes, not the parent's");
        // The parent writes its pages: the device sees it, the child must not.
        // SAFETY: our mapping, readable and writable.
        (unsafe { m.bytes() })[..page].fill(b'P');
        run_dma(&fd, &[desc(id, abi::DIR_TO_DEVICE, 0, 0, page as u64)])?;
        k("pread", fd.pread(&mut dev[..page], 0))?;
        ensure!(
            dev[..page].iter().all(|&b| b == b'P'),
            "access {access}: the device does not see the parent's new bytes"
        );
        if access & abi::ACCESS_DEVICE_WRITE != 0 {
            // The device writes the pinned pages: the parent sees it.
            k("pwrite", fd.pwrite(&vec![b'D'; page], 1 << 20))?;
            run_dma(&fd, &[desc(id, abi::DIR_FROM_DEVICE, page as u64, 1 << 20, page as u64)])?;
            // SAFETY: our mapping.
            let b = unsafe { m.bytes() };
            ensure!(b[page..2 * page].iter().all(|&x| x == b'D'), "the parent does not see the device's write");
        }
        to_child.send(2)?;
        child.expect_success("fork child")?;
        k("UNREGISTER", fd.unregister(id))?;
    }
    Ok(())
}

/// A child that inherits the open file and exits does not release the parent's regions (release
/// runs at the last close): the parent's DMA still works afterwards.
fn fork_child_closing_inherited_fd() -> Result<(), FuzzError> {
    let page = page_size();
    let mut m = Mapping::rw(4 * page)?;
    let fd = open()?;
    let id = k("REGISTER", fd.register(m.addr(), 4 * page as u64, abi::ACCESS_ALL))?;
    let before = k("INFO", fd.info())?;
    let child = fork(|| {
        // Uses the inherited session, then exits (closing its copy of the descriptor).
        let info = k("INFO in child", fd.info())?;
        ensure!(info.regions == 1, "child sees {} regions of the shared session", info.regions);
        Ok(())
    })?;
    child.expect_success("fork child")?;
    let after = k("INFO", fd.info())?;
    ensure!(after == before, "the child's exit changed the session: {before:?} -> {after:?}");
    // SAFETY: our mapping.
    unsafe { m.bytes() }.fill(7);
    run_dma(&fd, &[desc(id, abi::DIR_TO_DEVICE, 0, 4096, 4 * page as u64)])?;
    k("UNREGISTER", fd.unregister(id))?;
    Ok(())
}

/// munmap of a registered range: the pages stay pinned (the counters say so) until UNREGISTER;
/// the device still reads the old bytes, and its writes land in the old pages only — never in the
/// memory mapped at the same address afterwards, nor in the neighbours.
fn munmap_registered_range() -> Result<(), FuzzError> {
    let page = page_size();
    let guard = PinGuard::start()?;
    // [neighbour][registered 4 pages][neighbour]
    let mut m = Mapping::rw(6 * page)?;
    // SAFETY: fresh read-write mapping.
    let bytes = unsafe { m.bytes() };
    bytes.fill(b'N');
    bytes[page..5 * page].fill(b'R');
    let fd = open()?;
    let id = k("REGISTER", fd.register(m.addr() + page as u64, 4 * page as u64, abi::ACCESS_ALL))?;
    guard.expect_alive(4)?;
    m.unmap_part(page, 4 * page)?;
    guard.expect_alive(4)?;
    // The device still reads the old pages.
    run_dma(&fd, &[desc(id, abi::DIR_TO_DEVICE, 0, 0, 4 * page as u64)])?;
    let mut dev = vec![0u8; 4 * page];
    k("pread", fd.pread(&mut dev, 0))?;
    ensure!(dev.iter().all(|&b| b == b'R'), "the device did not read the unmapped (still pinned) pages");
    // New memory at the same address; then the device writes the region.
    m.remap_fixed_noreplace(page, 4 * page, libc::PROT_READ | libc::PROT_WRITE)?;
    // SAFETY: the whole mapping is readable and writable again.
    (unsafe { m.bytes() })[page..5 * page].fill(b'Z');
    k("pwrite", fd.pwrite(&vec![b'W'; 4 * page], 1 << 20))?;
    run_dma(&fd, &[desc(id, abi::DIR_FROM_DEVICE, 0, 1 << 20, 4 * page as u64)])?;
    // SAFETY: as above.
    let b = unsafe { m.bytes() };
    ensure!(b[page..5 * page].iter().all(|&x| x == b'Z'), "the device wrote into memory mapped after the munmap");
    ensure!(b[..page].iter().chain(&b[5 * page..]).all(|&x| x == b'N'), "the device wrote into a neighbouring page");
    // And the old pages did receive the write: read them back through the device.
    run_dma(&fd, &[desc(id, abi::DIR_TO_DEVICE, 0, 2 << 20, 4 * page as u64)])?;
    k("pread", fd.pread(&mut dev, 2 << 20))?;
    ensure!(dev.iter().all(|&x| x == b'W'), "the device's write did not land in the pinned pages");
    guard.expect_alive(4)?;
    k("UNREGISTER", fd.unregister(id))?;
    guard.expect_alive(0)?;
    Ok(())
}

/// SIGKILL at random moments of a child that registers, submits long batches and waits:
/// release waits for the DMA and unpins everything; the counters come back every time.
fn sigkill_during_dma() -> Result<(), FuzzError> {
    let len = 4 << 20;
    for round in 0..12u64 {
        let guard = PinGuard::start()?;
        let ready = Pipe::new()?;
        let child = fork(|| {
            let m = Mapping::rw(len)?;
            let fd = open()?;
            let id = k("REGISTER", fd.register(m.addr(), len as u64, abi::ACCESS_ALL))?;
            let descs: Vec<Desc> =
                (0..64).map(|i| desc(id, 1 + (i % 2) as u32, (i * 4096) % len as u64, 0, (len / 4) as u64)).collect();
            ready.send(1)?;
            loop {
                let _ = fd.submit(&descs);
                let mut out = Vec::with_capacity(64);
                let _ = fd.reap(&mut out, 1);
            }
        })?;
        ensure!(ready.recv()? == Some(1), "round {round}: child did not start");
        std::thread::sleep(Duration::from_millis(round * 7 % 50));
        child.kill();
        let exit = child.wait()?;
        ensure!(exit == Exit::Signal(libc::SIGKILL), "round {round}: child ended with {exit:?}");
        guard.finish()?;
    }
    Ok(())
}

/// Without CAP_IPC_LOCK, REGISTER beyond RLIMIT_MEMLOCK is ENOMEM (checked before pinning),
/// nothing stays pinned or charged, and registrations within the limit still work.
fn memlock_limit() -> Result<(), FuzzError> {
    let page = page_size() as u64;
    let guard = PinGuard::start()?;
    let fd = open()?;
    let m = Mapping::rw(64 * page as usize)?;
    let child = fork(|| {
        let lim = libc::rlimit { rlim_cur: 16 * page, rlim_max: 16 * page };
        // SAFETY: plain system calls with valid arguments; the child drops root (and with it
        // CAP_IPC_LOCK) after opening the device.
        unsafe {
            ensure!(libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) == 0, "setrlimit: {}", Errno::last());
            ensure!(libc::syscall(libc::SYS_setresgid, 65534, 65534, 65534) == 0, "setresgid: {}", Errno::last());
            ensure!(libc::syscall(libc::SYS_setresuid, 65534, 65534, 65534) == 0, "setresuid: {}", Errno::last());
        }
        let e =
            errno_of("REGISTER of 17 pages over a 16-page limit", fd.register(m.addr(), 17 * page, abi::ACCESS_ALL))?;
        ensure!(e == libc::ENOMEM, "REGISTER over RLIMIT_MEMLOCK: {} (expected ENOMEM)", Errno(e));
        ensure!(vm_locked_kb()? == 0, "VmLck not 0 after a refused REGISTER");
        let a = k("REGISTER of 10 pages", fd.register(m.addr(), 10 * page, abi::ACCESS_ALL))?;
        let e = errno_of("REGISTER of 7 more pages", fd.register(m.addr(), 7 * page, abi::ACCESS_ALL))?;
        ensure!(e == libc::ENOMEM, "second REGISTER over the limit: {} (expected ENOMEM)", Errno(e));
        let info = k("INFO", fd.info())?;
        ensure!(info.pinned_pages == 10 && info.regions == 1, "after the refusal: {info:?}");
        k("UNREGISTER", fd.unregister(a))?;
        ensure!(vm_locked_kb()? == 0, "VmLck not 0 after UNREGISTER");
        Ok(())
    })?;
    child.expect_success("memlock child")?;
    drop(fd);
    guard.finish()
}

/// The per-open cap (module parameter max_pinned_pages): the REGISTER that would exceed it is
/// ENOSPC before anything is pinned; another open file has its own budget.
fn per_open_cap() -> Result<(), FuzzError> {
    let page = page_size() as u64;
    let guard = PinGuard::start()?;
    let fd = open()?;
    let cap = k("INFO", fd.info())?.max_pinned_pages;
    let chunk: u64 = 4096; // pages per registration of one 16 MiB buffer
    let m = Mapping::rw((chunk * page) as usize)?;
    let mut ids = Vec::new();
    while (ids.len() as u64 + 1) * chunk <= cap {
        ids.push(k("REGISTER", fd.register(m.addr(), chunk * page, abi::ACCESS_DEVICE_READ))?);
    }
    let used = ids.len() as u64 * chunk;
    guard.expect_alive(used as i64)?;
    let over = cap - used + 1;
    let e = errno_of("REGISTER over the cap", fd.register(m.addr(), over * page, abi::ACCESS_DEVICE_READ))?;
    ensure!(e == libc::ENOSPC, "REGISTER over the per-open cap: {} (expected ENOSPC)", Errno(e));
    guard.expect_alive(used as i64)?;
    let other = open()?;
    let id = k("REGISTER on another open file", other.register(m.addr(), page, abi::ACCESS_DEVICE_READ))?;
    k("UNREGISTER", other.unregister(id))?;
    drop(fd); // releases all of them
    guard.expect_alive(0)?;
    Ok(())
}

/// `delete_module` is refused (EWOULDBLOCK) while a file of /dev/pinio is open — even with
/// regions registered and DMA in flight — and works once it is closed; the module is then loaded
/// again from kmod/pinio.ko so later tests find it.
fn rmmod_refused_while_open() -> Result<(), FuzzError> {
    let ko = std::path::Path::new("kmod/pinio.ko");
    ensure!(
        ko.exists(),
        "kmod/pinio.ko not found from {:?} (the guest runs tests from the repository root)",
        std::env::current_dir()
    );
    let delete = || -> i64 {
        // SAFETY: delete_module with a NUL-terminated name and O_NONBLOCK.
        unsafe { libc::syscall(libc::SYS_delete_module, c"pinio".as_ptr(), libc::O_NONBLOCK) }
    };
    let len = 8 << 20;
    let m = Mapping::rw(len)?;
    let fd = open()?;
    let id = k("REGISTER", fd.register(m.addr(), len as u64, abi::ACCESS_ALL))?;
    let descs: Vec<Desc> = (0..32).map(|i| desc(id, abi::DIR_TO_DEVICE, 0, i * 4096, len as u64 / 2)).collect();
    k("SUBMIT", fd.submit(&descs))?;
    let r = delete();
    let e = Errno::last();
    ensure!(r != 0 && e.0 == libc::EWOULDBLOCK, "rmmod with an open file and DMA in flight: {r} {e}");
    ensure!(std::path::Path::new(DEV).exists(), "/dev/pinio vanished after a refused rmmod");
    drop(fd);
    let r = delete();
    let e = Errno::last();
    let reload = || -> Result<(), FuzzError> {
        let f = std::fs::File::open(ko).map_err(|e| FuzzError::Check(format!("open {ko:?}: {e}")))?;
        use std::os::fd::AsRawFd;
        // SAFETY: finit_module with an open module file and an empty parameter string.
        let r = unsafe { libc::syscall(libc::SYS_finit_module, f.as_raw_fd(), c"".as_ptr(), 0) };
        ensure!(r == 0, "insmod kmod/pinio.ko again: {}", Errno::last());
        Ok(())
    };
    if r != 0 {
        return Err(FuzzError::Check(format!("rmmod after the last close: {e}")));
    }
    ensure!(!std::path::Path::new(DEV).exists(), "/dev/pinio still present after rmmod");
    reload()?;
    for _ in 0..100 {
        if std::path::Path::new(DEV).exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let fd = open()?;
    k("INFO after reload", fd.info())?;
    Ok(())
}

/// REAP whose argument is readable but not writable must fail without consuming records (the
/// caller cannot learn how many were written). Reproducer of the second fuzzer finding: the module
/// removed the records, then failed to write the count back, and they were lost.
fn reap_read_only_argument() -> Result<(), FuzzError> {
    let page = page_size();
    let m = Mapping::rw(4 * page)?;
    let fd = open()?;
    let id = k("REGISTER", fd.register(m.addr(), 4 * page as u64, abi::ACCESS_DEVICE_READ))?;
    let descs: Vec<Desc> = (0..3).map(|i| desc(id, abi::DIR_TO_DEVICE, 0, i * 4096, 4096)).collect();
    k("SUBMIT", fd.submit(&descs))?;
    std::thread::sleep(Duration::from_millis(200)); // let the engine complete them
    let mut records = vec![CompletionRecord::default(); 8];
    let mut arg_page = Mapping::rw(page)?;
    let args = abi::ReapArgs { records: records.as_mut_ptr() as u64, max: 8, min: 3, count: 0, reserved: 0 };
    // SAFETY: the page is readable and writable until protected below; ReapArgs is plain data.
    unsafe { std::ptr::write(arg_page.addr() as *mut abi::ReapArgs, args) };
    arg_page.protect(0, page, libc::PROT_READ)?;
    // SAFETY: the argument page is read-only; records land in `records`, which we own.
    let r = unsafe { pinio_fuzz::raw::ioctl(fd.as_fd().as_raw_fd(), abi::PINIO_IOC_REAP, arg_page.addr()) };
    ensure!(r == Err(Errno(libc::EFAULT)), "REAP with a read-only argument: {r:?} (expected EFAULT)");
    let info = k("INFO", fd.info())?;
    ensure!(
        info.outstanding == 3,
        "after the failed REAP {} of 3 records are left: the others were lost",
        info.outstanding
    );
    let mut out = Vec::with_capacity(3);
    k("REAP", fd.reap(&mut out, 3))?;
    ensure!(out.len() == 3, "REAP got {} of the 3 records", out.len());
    k("UNREGISTER", fd.unregister(id))?;
    Ok(())
}

extern "C" fn on_sigusr1(_: i32) {}

/// Two threads REAP one open file: one waits for 2 records, the other takes 1 of them. Once every
/// descriptor has completed, the first must return with what is left instead of waiting forever
/// for a record that was taken ("min is capped at the number outstanding"). Reproducer of the
/// third fuzzer finding (race phase).
fn concurrent_reapers() -> Result<(), FuzzError> {
    // SAFETY: installs a no-op handler without SA_RESTART so a blocked REAP returns EINTR.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigusr1 as *const () as usize;
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
    }
    let len = 8 << 20;
    let m = Mapping::rw(len)?;
    let fd = open()?;
    let id = k("REGISTER", fd.register(m.addr(), len as u64, abi::ACCESS_DEVICE_READ))?;
    for round in 0..5 {
        let descs = [desc(id, abi::DIR_TO_DEVICE, 0, 0, len as u64), desc(id, abi::DIR_TO_DEVICE, 0, 0, len as u64)];
        k("SUBMIT", fd.submit(&descs))?;
        let result = std::thread::scope(|s| -> Result<(), FuzzError> {
            let (tx, rx) = std::sync::mpsc::channel();
            let fd = &fd;
            let waiter = s.spawn(move || {
                // SAFETY: pthread_self has no preconditions.
                tx.send(unsafe { libc::pthread_self() }).ok();
                let mut out = Vec::with_capacity(2);
                fd.reap(&mut out, 2).map(|_| out.len())
            });
            let t = rx.recv().map_err(|_| FuzzError::Check("waiter thread did not start".into()))?;
            std::thread::sleep(Duration::from_millis(5));
            let mut one = Vec::with_capacity(1);
            k("REAP(min 1)", fd.reap(&mut one, 1))?;
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            let mut hung = false;
            while !waiter.is_finished() {
                if std::time::Instant::now() > deadline {
                    hung = true;
                    // SAFETY: `t` is the waiter thread, alive until joined below.
                    unsafe { libc::pthread_kill(t, libc::SIGUSR1) };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let got = waiter.join().map_err(|_| FuzzError::Check("waiter panicked".into()))?;
            ensure!(
                !hung,
                "round {round}: REAP(min 2) still waited 10 s after both descriptors completed and one record was taken by another REAP ({got:?} after SIGUSR1)"
            );
            let n = got.map_err(|e| FuzzError::Check(format!("REAP(min 2): {e}")))?;
            ensure!(n + one.len() == 2, "round {round}: the two REAPs got {n} + {} of 2 records", one.len());
            Ok(())
        });
        result?;
    }
    k("UNREGISTER", fd.unregister(id))?;
    Ok(())
}
