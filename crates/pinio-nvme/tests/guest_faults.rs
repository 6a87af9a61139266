//! Device faults in the guest, with I/O in flight:
//!
//! - a controller reset (CC.EN = 0 from another thread through
//!   `NvmeDevice::reset_controller`, what a driver does on a command
//!   timeout or a fatal status): commands the controller completed keep
//!   their result, every other one comes back with `NvmeError::Reset`,
//!   acknowledged writes are on the disk, new queues work;
//! - the controller's removal: the guest kernel's PCI removal path
//!   (`remove` in sysfs, which is what pciehp runs once the guest accepts a
//!   QEMU `device_del`; this guest kernel has no PCI hotplug driver and
//!   q35's root bus none either, so `device_del` itself is refused: see
//!   docs/reliability.md). vfio-pci relays the kernel's request to the
//!   driver, which stops the controller and hands every command back with
//!   `NvmeError::Removed`; the removal completes once the device and its
//!   domain are dropped; the bus is rescanned and the kernel takes the
//!   controller again.
//!
//! Both: no hang (bounds below, far under the driver's 60 s command
//! timeout), every slice handed back, the regions' IOMMU mappings gone.

mod common;

use common::{TAKE_IRQ, TAKE_POLL, Taken, driver_of, give_back, kernel_block_device, lock, nvme_addr, read_bytes};
use pinio_core::{Completion, Device, Op, Queue, Region};
use pinio_nvme::{NvmeDevice, NvmeError};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Commands in flight at once.
const DEPTH: usize = 32;
/// Bytes per command.
const CHUNK: usize = 16 << 10;
/// How long handing back every command after the fault may take: the
/// driver notices within one 100 ms wait; the rest is a loaded TCG host.
const NO_HANG: Duration = Duration::from_secs(10);

fn pattern(round: u64, slot: usize) -> u8 {
    (round as u8).wrapping_mul(37) ^ (slot as u8).wrapping_mul(11) ^ 0x5a
}

/// What the I/O loop saw.
#[derive(Default, Debug)]
struct Seen {
    ok: u64,
    faulted: u64,
    /// Per slot: the round of its last acknowledged write, and whether a
    /// write to it was aborted after that (its bytes are then unknown).
    last_ok: Vec<(Option<u64>, bool)>,
    /// From the fault's first sign to the last command handed back.
    drain: Duration,
}

/// Keeps `DEPTH` commands in flight (writes when `write`, else reads) on
/// slots `[base + i * CHUNK]` until one comes back with `is_fault`, then
/// collects the rest. `running` is set after the first hundred completions.
fn io_until_fault(
    q: &mut dyn Queue,
    region: &Region,
    base: u64,
    write: bool,
    running: &AtomicBool,
    is_fault: impl Fn(&pinio_core::Error) -> bool,
) -> Seen {
    let mut seen = Seen { last_ok: vec![(None, false); DEPTH], ..Seen::default() };
    let mut round = 0u64;
    let mut free: Vec<usize> = (0..DEPTH).collect();
    let mut done: Vec<Completion> = Vec::new();
    let mut fault_at: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "no fault seen within 120 s: {seen:?}");
        if fault_at.is_none() {
            for slot in std::mem::take(&mut free) {
                let mut s = region.slice(slot * CHUNK, CHUNK).unwrap();
                round += 1;
                if write {
                    s.fill(pattern(round, slot));
                }
                let off = base + (slot * CHUNK) as u64;
                let op = if write {
                    Op::write(s, off, round << 8 | slot as u64)
                } else {
                    Op::read(s, off, round << 8 | slot as u64)
                };
                if let Err(r) = q.push(op) {
                    assert!(is_fault(&r.error), "push refused with an unexpected error: {}", r.error);
                    fault_at.get_or_insert_with(Instant::now);
                    drop(r.op); // the slice comes back with the refusal
                    free.push(slot);
                }
            }
        }
        if q.in_flight() == 0 {
            break;
        }
        q.wait(1, &mut done).unwrap_or_else(|e| panic!("wait: {e}"));
        for c in done.drain(..) {
            let (round, slot) = (c.tag >> 8, (c.tag & 0xff) as usize);
            match &c.result {
                Ok(n) => {
                    assert_eq!(*n, CHUNK);
                    seen.ok += 1;
                    if write && seen.last_ok[slot].0.is_none_or(|r| r < round) {
                        seen.last_ok[slot] = (Some(round), false);
                    }
                }
                Err(e) => {
                    assert!(is_fault(e), "a command failed with an unexpected error: {e}");
                    seen.faulted += 1;
                    seen.last_ok[slot].1 = true;
                    fault_at.get_or_insert_with(Instant::now);
                }
            }
            free.push(slot);
            if seen.ok == 100 {
                running.store(true, Ordering::Release);
            }
        }
    }
    seen.drain = fault_at.map_or(Duration::ZERO, |t| t.elapsed());
    seen
}

/// A reset from another thread while 32 writes are in flight, in both
/// completion modes; repeated until at least one command was caught in
/// flight (aborted), at most ten times.
#[test]
fn a_controller_reset_with_io_in_flight_hands_every_command_back() {
    for opts in [TAKE_IRQ, TAKE_POLL] {
        let mut t = Taken::new(opts);
        let len = (DEPTH * CHUNK) as u64;
        let base = t.dev().capabilities().device_size - 2 * len;
        t.save(base, len);
        let dev = t.dev();
        let reg = dev.registrar().unwrap();
        for attempt in 1..=10 {
            let before = reg.vfio_stats();
            let region = dev.alloc(DEPTH * CHUNK).unwrap();
            let mut q = dev.nvme_queue(DEPTH).unwrap();
            let running = AtomicBool::new(false);
            let reset_took = AtomicU64::new(0);
            let seen = std::thread::scope(|s| {
                s.spawn(|| {
                    while !running.load(Ordering::Acquire) {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    let t = Instant::now();
                    dev.reset_controller().unwrap_or_else(|e| panic!("reset: {e}"));
                    reset_took.store(t.elapsed().as_millis() as u64, Ordering::Relaxed);
                });
                io_until_fault(&mut q, &region, base, true, &running, |e| {
                    matches!(NvmeError::find(e), Some(NvmeError::Reset { .. }))
                })
            });
            eprintln!(
                "{opts:?} attempt {attempt}: {} writes acknowledged, {} aborted by the reset (reset took {} ms, all handed back {:?} after the first sign)",
                seen.ok,
                seen.faulted,
                reset_took.load(Ordering::Relaxed),
                seen.drain
            );
            assert!(seen.drain < NO_HANG, "handing the commands back took {:?}", seen.drain);
            assert_eq!(region.live_slices(), 0, "every slice handed back");
            // The old queue refuses more work with the same typed error.
            let e = q.write_at(region.slice(0, CHUNK).unwrap(), base).expect_err("the queue pair is gone");
            assert!(matches!(NvmeError::find(&e.error), Some(NvmeError::Reset { .. })), "{}", e.error);
            drop(e);
            drop(q);
            // Acknowledged writes survived; slots with an aborted write later are unknown.
            let back = read_bytes(dev, base, len);
            let mut checked = 0;
            for (slot, (round, aborted)) in seen.last_ok.iter().enumerate() {
                if let (Some(r), false) = (round, aborted) {
                    let got = &back[slot * CHUNK..(slot + 1) * CHUNK];
                    assert!(
                        got.iter().all(|&b| b == pattern(*r, slot)),
                        "slot {slot}: acknowledged write of round {r} lost after the reset"
                    );
                    checked += 1;
                }
            }
            eprintln!("  {checked} slot(s) whose last write was acknowledged read back intact");
            drop(region);
            let after = reg.vfio_stats();
            assert_eq!(after.mappings, before.mappings, "the region's IOMMU mapping is gone: {before:?} -> {after:?}");
            assert!(after.unmap_dma_calls > before.unmap_dma_calls);
            if seen.faulted > 0 {
                break;
            }
            assert!(attempt < 10, "ten resets never caught a command in flight");
        }
        assert!(dev.resets() >= 1);
    }
}

/// The controller's removal (the kernel's PCI removal path) with 32 reads
/// in flight (reads: the disk stays as it was).
#[test]
#[ignore = "passed when run by itself (--ignored); in 1 of 2 runs the guest died (QEMU exited, no kernel message) as this test started right after the controller was handed back to the kernel: kept out of cargo xtask test until understood, see docs/reliability.md"]
fn a_controller_removal_with_io_in_flight_hands_every_command_back() {
    let guard = lock();
    let bdf = nvme_addr();
    let dir = Path::new("/sys/bus/pci/devices").join(bdf.to_string());
    let dev = NvmeDevice::open(&bdf, TAKE_IRQ).unwrap_or_else(|e| panic!("opening {bdf}: {e}"));
    let reg_before = dev.registrar().unwrap().vfio_stats();
    let region = dev.alloc(DEPTH * CHUNK).unwrap();
    let mut q = dev.nvme_queue(DEPTH).unwrap();
    let running = AtomicBool::new(false);
    let removed_after = std::thread::scope(|s| {
        let remover = s.spawn(|| {
            while !running.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(5));
            }
            let t = Instant::now();
            eprintln!("removal: I/O running, writing 1 to {}", dir.join("remove").display());
            // Blocks until the device file is closed (the domain dropped).
            std::fs::write(dir.join("remove"), "1").unwrap_or_else(|e| panic!("removing {bdf}: {e}"));
            t.elapsed()
        });
        let seen = io_until_fault(&mut q, &region, 0, false, &running, |e| {
            matches!(NvmeError::find(e), Some(NvmeError::Removed { .. }))
        });
        eprintln!(
            "removal: {} reads completed, {} handed back with Removed within {:?}",
            seen.ok, seen.faulted, seen.drain
        );
        assert!(seen.drain < NO_HANG, "handing the commands back took {:?}", seen.drain);
        assert_eq!(region.live_slices(), 0, "every slice handed back");
        assert!(dev.removal_requested());
        let Err(e) = dev.nvme_queue(1) else { panic!("no queue after the removal request") };
        assert!(matches!(NvmeError::find(&e), Some(NvmeError::Removed { .. })), "{e}");
        assert!(!remover.is_finished(), "the removal waits for the application");
        drop(q);
        drop(region);
        let stats = dev.registrar().unwrap().vfio_stats();
        assert_eq!(
            stats.mappings, reg_before.mappings,
            "the region's IOMMU mapping is gone: {reg_before:?} -> {stats:?}"
        );
        drop(dev); // the domain with it: the device file closes
        let t = Instant::now();
        let took = remover.join().expect("the remover thread");
        eprintln!("removal completed {:?} after the device was dropped ({took:?} in all)", t.elapsed());
        took
    });
    assert!(removed_after < Duration::from_secs(60));
    assert!(!dir.exists(), "{bdf} is gone from the bus");
    std::fs::write("/sys/bus/pci/rescan", "1").expect("rescanning the PCI bus");
    let deadline = Instant::now() + Duration::from_secs(30);
    while driver_of(&bdf).as_deref() != Some("nvme") {
        assert!(
            Instant::now() < deadline,
            "{bdf} did not come back to the nvme driver after the rescan (driver {:?})",
            driver_of(&bdf)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let disk = kernel_block_device(&bdf);
    eprintln!("after the rescan the kernel has {bdf} again: {}", disk.display());
    // And pinio can take it again.
    drop(guard);
    let t = Taken::new(TAKE_POLL);
    assert_eq!(read_bytes(t.dev(), 0, 4096).len(), 4096);
    drop(t);
    if driver_of(&bdf).as_deref() != Some("nvme") {
        give_back(&bdf);
    }
}
