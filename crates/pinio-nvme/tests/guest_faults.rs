//! Device faults in the guest, with I/O in flight:
//!
//! - a controller reset (CC.EN = 0 from another thread through
//!   `NvmeDevice::reset_controller`, what a driver does on a command
//!   timeout or a fatal status): commands the controller completed keep
//!   their result, every other one comes back with `NvmeError::Reset`,
//!   acknowledged writes are on the disk, new queues work;
//! - the controller's removal with QEMU's monitor `device_del` (the
//!   controller sits behind a `pcie-root-port`; the host unplugs it on the
//!   test's request, see `common/hotplug.rs`): the guest's ACPI PCI
//!   hotplug driver removes the device, vfio-pci relays the kernel's request to the driver, which
//!   stops the controller and hands every command back with
//!   `NvmeError::Removed`; the removal completes once the device and its
//!   domain are dropped; the host plugs the controller back and the kernel
//!   takes it again.
//!
//! Both: no hang (bounds below, far under the driver's 60 s command
//! timeout), every slice handed back, the regions' IOMMU mappings gone.

mod common;

use common::hotplug::{self, Request};
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
/// completion modes; repeated until the reset caught at least one command
/// in flight (aborted), at most ten times.
///
/// Whether it catches one is up to the device model, not the driver: QEMU
/// drains the commands it has fetched before it stops (they complete), so
/// only those still in the submission queue are aborted, and under
/// single-threaded TCG the controller often fetches every command before
/// the reset lands. Every attempt checks what must hold either way; the
/// abort path itself is checked deterministically by
/// `commands_the_controller_never_fetched_come_back_with_reset`.
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
            if attempt == 10 {
                eprintln!("  ten resets found every command already fetched by the controller (see the test's docs)");
            }
        }
        assert!(dev.resets() >= 1);
    }
}

/// Writes pushed but not yet rung (per-batch doorbells: the tail doorbell
/// waits for `submit`) when the controller resets: the controller never saw
/// them, so every one comes back with `NvmeError::Reset` at the next wait,
/// every slice is handed back, the disk keeps its old bytes, and the queue
/// refuses more work; in both completion modes.
#[test]
fn commands_the_controller_never_fetched_come_back_with_reset() {
    for opts in [TAKE_IRQ, TAKE_POLL] {
        assert_eq!(opts.doorbells, pinio_nvme::DoorbellMode::PerBatch, "the test needs the tail doorbell held back");
        let mut t = Taken::new(opts);
        let len = (DEPTH * CHUNK) as u64;
        let base = t.dev().capabilities().device_size - 2 * len;
        t.save(base, len);
        let dev = t.dev();
        let old = read_bytes(dev, base, len);
        let region = dev.alloc(DEPTH * CHUNK).unwrap();
        let mut q = dev.nvme_queue(DEPTH).unwrap();
        let resets = dev.resets();
        for slot in 0..DEPTH {
            let mut s = region.slice(slot * CHUNK, CHUNK).unwrap();
            for (b, o) in s.iter_mut().zip(&old[slot * CHUNK..]) {
                *b = !o;
            }
            q.push(Op::write(s, base + (slot * CHUNK) as u64, slot as u64))
                .unwrap_or_else(|r| panic!("push: {}", r.error));
        }
        assert_eq!(q.in_flight(), DEPTH);
        dev.reset_controller().unwrap_or_else(|e| panic!("reset: {e}"));
        assert_eq!(dev.resets(), resets + 1);
        let started = Instant::now();
        let mut done: Vec<Completion> = Vec::new();
        while q.in_flight() > 0 {
            assert!(started.elapsed() < NO_HANG, "{} of {DEPTH} commands handed back after {NO_HANG:?}", done.len());
            q.wait(q.in_flight(), &mut done).unwrap_or_else(|e| panic!("wait: {e}"));
        }
        let mut tags: Vec<u64> = done.iter().map(|c| c.tag).collect();
        tags.sort_unstable();
        assert_eq!(tags, (0..DEPTH as u64).collect::<Vec<_>>(), "each command came back once");
        for c in &done {
            match &c.result {
                Err(e) => {
                    assert!(matches!(NvmeError::find(e), Some(NvmeError::Reset { .. })), "tag {}: {e}", c.tag)
                }
                Ok(n) => panic!("tag {}: the controller never saw this write, yet it completed ({n} bytes)", c.tag),
            }
        }
        eprintln!("{opts:?}: {DEPTH} unrung writes handed back with Reset in {:?}", started.elapsed());
        drop(done);
        assert_eq!(region.live_slices(), 0, "every slice handed back");
        let e = q.write_at(region.slice(0, CHUNK).unwrap(), base).expect_err("the queue pair is gone");
        assert!(matches!(NvmeError::find(&e.error), Some(NvmeError::Reset { .. })), "{}", e.error);
        drop(e);
        drop(q);
        assert!(read_bytes(dev, base, len) == old, "a write the controller never fetched changed the disk");
    }
}

/// How long the controller may take to leave the bus once the application
/// dropped it, and to come back after `device_add` (the kernel's ACPI hotplug and
/// nvme probe under TCG).
const BUS_CHANGE: Duration = Duration::from_secs(60);

/// `nr_foll_pin_acquired` and `nr_foll_pin_released`, the per-CPU counts
/// folded first (VFIO's type1 IOMMU driver pins with FOLL_PIN).
fn pins() -> (u64, u64) {
    let _ = std::fs::write("/proc/sys/vm/stat_refresh", "1");
    let vmstat = std::fs::read_to_string("/proc/vmstat").expect("reading /proc/vmstat");
    let get = |key: &str| {
        vmstat
            .lines()
            .find_map(|l| l.strip_prefix(key)?.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {key} in /proc/vmstat"))
    };
    (get("nr_foll_pin_acquired "), get("nr_foll_pin_released "))
}

/// Waits until `cond` holds, up to `within`; panics with `what` otherwise.
fn wait_for(within: Duration, what: impl Fn() -> String, cond: impl Fn() -> bool) -> Duration {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < within, "{} (waited {within:?})", what());
        std::thread::sleep(Duration::from_millis(50));
    }
    t.elapsed()
}

/// The hotplug slot the guest kernel registered for `bdf` (its
/// `/sys/bus/pci/slots/<name>` directory), if any.
fn hotplug_slot(bdf: &pinio_vfio::PciAddress) -> Option<std::path::PathBuf> {
    let addr = bdf.to_string();
    let slot_addr = addr.rsplit_once('.').map_or(addr.as_str(), |(a, _)| a);
    std::fs::read_dir("/sys/bus/pci/slots")
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| std::fs::read_to_string(p.join("address")).is_ok_and(|a| a.trim() == slot_addr))
}

/// The controller's removal with QEMU's monitor `device_del` while 32 reads
/// are in flight (reads: the disk stays as it was). The host unplugs the
/// controller from its PCIe root port; the guest's ACPI PCI hotplug driver
/// (acpiphp) removes it, vfio-pci relays the kernel's request to
/// the driver, which stops the controller and hands every command back with
/// `NvmeError::Removed`; the removal completes once the device and its domain
/// are dropped; then the host plugs the controller back and the kernel's nvme
/// driver takes it, and pinio can take it again.
#[test]
fn a_controller_unplugged_by_device_del_with_io_in_flight_hands_every_command_back() {
    let guard = lock();
    let bdf = nvme_addr();
    let dir = Path::new("/sys/bus/pci/devices").join(bdf.to_string());
    // Without a hotplug driver for the slot, device_del would be accepted by
    // QEMU and never reach the guest.
    let slot = hotplug_slot(&bdf).unwrap_or_else(|| {
        panic!("no hotplug slot for {bdf} in /sys/bus/pci/slots: the guest kernel needs CONFIG_HOTPLUG_PCI_ACPI (QEMU's ACPI PCI hotplug, see docs/guest.md)")
    });
    eprintln!("device_del: {bdf} sits in hotplug slot {}", slot.display());
    let pins_before = pins();
    let dev = NvmeDevice::open(&bdf, TAKE_IRQ).unwrap_or_else(|e| panic!("opening {bdf}: {e}"));
    let reg_before = dev.registrar().unwrap().vfio_stats();
    let region = dev.alloc(DEPTH * CHUNK).unwrap();
    let mut q = dev.nvme_queue(DEPTH).unwrap();
    let running = AtomicBool::new(false);
    let unplug_asked = std::thread::scope(|s| {
        let unplugger = s.spawn(|| {
            while !running.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(5));
            }
            let answer = hotplug::ask(Request::UnplugNvme, Duration::from_secs(60))
                .unwrap_or_else(|e| panic!("device_del of {bdf}: {e}"));
            eprintln!("device_del: I/O running, the host says: {answer}");
            Instant::now()
        });
        let seen = io_until_fault(&mut q, &region, 0, false, &running, |e| {
            matches!(NvmeError::find(e), Some(NvmeError::Removed { .. }))
        });
        let asked = unplugger.join().expect("the unplugging thread");
        eprintln!(
            "device_del: {} reads completed, {} handed back with Removed within {:?} of the first sign, {:?} after device_del was accepted",
            seen.ok,
            seen.faulted,
            seen.drain,
            asked.elapsed().saturating_sub(seen.drain)
        );
        assert!(seen.drain < NO_HANG, "handing the commands back took {:?}", seen.drain);
        assert_eq!(region.live_slices(), 0, "every slice handed back");
        assert!(dev.removal_requested());
        let Err(e) = dev.nvme_queue(1) else { panic!("no queue after the removal request") };
        assert!(matches!(NvmeError::find(&e), Some(NvmeError::Removed { .. })), "{e}");
        drop(q);
        drop(region);
        let stats = dev.registrar().unwrap().vfio_stats();
        assert_eq!(
            stats.mappings, reg_before.mappings,
            "the region's IOMMU mapping is gone: {reg_before:?} -> {stats:?}"
        );
        assert!(stats.unmap_dma_calls > reg_before.unmap_dma_calls);
        // The kernel's removal waits for the application.
        assert!(dir.exists(), "{bdf} left the bus while pinio still had it open");
        asked
    });
    drop(dev); // its domain with it: the device file and the container close
    let gone =
        wait_for(BUS_CHANGE, || format!("{bdf} is still on the bus after the device was dropped"), || !dir.exists());
    eprintln!(
        "device_del: {bdf} left the bus {gone:?} after the device was dropped ({:?} after device_del)",
        unplug_asked.elapsed()
    );
    let (acq, rel) = pins();
    assert_eq!(acq - pins_before.0, rel - pins_before.1, "pages VFIO pinned for the device are all released");
    let answer =
        hotplug::ask(Request::PlugNvme, Duration::from_secs(180)).unwrap_or_else(|e| panic!("device_add: {e}"));
    eprintln!("device_add: the host says: {answer}");
    let back = wait_for(
        BUS_CHANGE,
        || format!("{bdf} did not come back to the nvme driver after device_add (driver {:?})", driver_of(&bdf)),
        || driver_of(&bdf).as_deref() == Some("nvme"),
    );
    let disk = kernel_block_device(&bdf);
    eprintln!("device_add: the kernel's nvme driver has {bdf} again {back:?} later: {}", disk.display());
    // And pinio can take it again.
    drop(guard);
    let t = Taken::new(TAKE_POLL);
    assert_eq!(read_bytes(t.dev(), 0, 4096).len(), 4096);
    drop(t);
    if driver_of(&bdf).as_deref() != Some("nvme") {
        give_back(&bdf);
    }
}
