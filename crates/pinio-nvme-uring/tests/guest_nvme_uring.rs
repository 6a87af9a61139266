//! NVMe passthrough in the QEMU guest (`cargo xtask test`): the namespace's
//! generic device `/dev/ngXn1` driven with NVMe commands through io_uring,
//! fixed buffers from the uring domain's table, the conformance suite, the
//! controller's own error statuses, a reset with commands in flight, and
//! the same disk through the block layer, passthrough and pinio's
//! userspace driver in one boot. Every byte written is restored.

mod common;

use common::{Ns, read_bytes, wait_live};
use pinio_core::{Completion, Device, Error, FlushMode, Op, Persistence, Queue, conformance};
use pinio_nvme_uring::{NvmeUringDevice, NvmeUringError, NvmeUringOptions};
use pinio_uring::{UringDevice, UringOptions};

const IRQ: NvmeUringOptions =
    NvmeUringOptions { fixed_buffers: true, iopoll: false, ring_entries: 128, writable: true };
const POLLED: NvmeUringOptions = NvmeUringOptions { iopoll: true, ..IRQ };
const PLAIN: NvmeUringOptions = NvmeUringOptions { fixed_buffers: false, ..IRQ };

fn sysfs_block(block: &std::path::Path, attr: &str) -> String {
    let name = block.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::read_to_string(format!("/sys/block/{name}/{attr}"))
        .unwrap_or_else(|e| panic!("/sys/block/{name}/{attr}: {e}"))
        .trim()
        .to_string()
}

#[test]
fn identify_agrees_with_the_kernel() {
    let ns = Ns::open(IRQ);
    let caps = ns.dev.capabilities();
    let g = ns.dev.geometry();
    let lbs: u64 = sysfs_block(&ns.block, "queue/logical_block_size").parse().unwrap();
    let sectors: u64 = sysfs_block(&ns.block, "size").parse().unwrap();
    assert_eq!(g.ns.block_size as u64, lbs, "Identify Namespace block size against the kernel's");
    assert_eq!(caps.device_size, sectors * 512, "namespace capacity against the kernel's");
    assert_eq!((caps.offset_align, caps.len_align), (lbs, lbs));
    let max_kb: u64 = sysfs_block(&ns.block, "queue/max_hw_sectors_kb").parse().unwrap();
    assert_eq!(caps.max_transfer, max_kb * 1024);
    let write_cache = sysfs_block(&ns.block, "queue/write_cache");
    assert_eq!(
        g.ctrl.volatile_write_cache,
        write_cache == "write back",
        "VWC against the kernel's write_cache ({write_cache})"
    );
    let want = if g.ctrl.volatile_write_cache { Persistence::WriteBack } else { Persistence::WriteThrough };
    assert_eq!(caps.persistence, want);
    assert!(
        g.ctrl.mdts > 0 && g.ctrl.max_transfer(4096).unwrap() >= caps.max_transfer,
        "MDTS {} vs {}",
        g.ctrl.mdts,
        caps.max_transfer
    );
    assert_eq!(g.nsid, 1);
    let d = ns.dev.describe();
    assert!(d.starts_with("nvme-uring:/dev/ng") && d.contains("fixed buffers"), "{d}");
    eprintln!("{d}");
}

#[test]
fn conformance_in_every_mode() {
    for opts in [IRQ, POLLED, PLAIN] {
        let mut ns = Ns::open(opts);
        let window = ns.tail(24 << 20);
        ns.save(window.0, window.1);
        // flush_drains writes at the start of the device.
        ns.save(0, 1 << 20);
        let dev = &ns.dev;
        let plan = conformance::Plan { window, ..Default::default() };
        let r = conformance::round_trips(dev, &plan).unwrap_or_else(|e| panic!("{opts:?}: {e}"));
        assert!(r.sizes >= 7, "{r:?}");
        conformance::bad_inputs(dev).unwrap_or_else(|e| panic!("{opts:?}: {e}"));
        conformance::flush_drains(dev).unwrap_or_else(|e| panic!("{opts:?}: {e}"));
        // Vectored operations are refused with Error::Unsupported, every slice back.
        conformance::vectored(dev).unwrap_or_else(|e| panic!("{opts:?}: {e}"));
        let half = window.1 / 2;
        std::thread::scope(|s| {
            let hs: Vec<_> = (0..2u64)
                .map(|i| {
                    let plan = conformance::Plan {
                        sizes: vec![512, 4096, 65536, 1 << 20],
                        seed: 50 + i,
                        depth: 8,
                        window: (window.0 + i * half, half),
                        unaligned: true,
                    };
                    s.spawn(move || conformance::round_trips(dev, &plan))
                })
                .collect();
            for h in hs {
                h.join().unwrap().unwrap_or_else(|e| panic!("{opts:?}: {e}"));
            }
        });
        let stats = dev.stats();
        assert_eq!(stats.bytes_copied, 0, "passthrough copies nothing on the CPU");
        let other = NvmeUringDevice::open(&ns.generic, opts).unwrap();
        conformance::foreign_region(dev, &other).unwrap_or_else(|e| panic!("{e}"));
        conformance::foreign_region(&other, dev).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// The core's multi-threaded check writes at random places across the
/// whole namespace, so the whole namespace is saved and restored around it.
#[test]
fn conformance_concurrent_round_trips_across_the_namespace() {
    let mut ns = Ns::open(IRQ);
    let size = ns.dev.capabilities().device_size;
    ns.save(0, size);
    conformance::concurrent_round_trips(&ns.dev, 3, &[512, 4096, 65536, 1 << 20]).unwrap_or_else(|e| panic!("{e}"));
}

/// One registration, two paths: a region of the passthrough device's uring
/// domain is written through passthrough (buffer index) and read back
/// through the block device opened in the same domain (READ_FIXED), and
/// the other way round; the domain pinned it once.
#[test]
fn one_registration_serves_the_block_device_and_passthrough() {
    let mut ns = Ns::open(IRQ);
    let size = ns.dev.capabilities().max_transfer.min(1 << 20) as usize;
    let (base, len) = ns.tail(size as u64);
    ns.save(base, len);
    let block = UringDevice::open_in(ns.dev.domain(), &ns.block, UringOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", ns.block.display()));
    let pins_before = ns.dev.stats().pins;
    let region = ns.dev.alloc(size).unwrap();
    assert_eq!(ns.dev.stats().pins, pins_before + 1);
    let (mut pt, mut bq) = (ns.dev.queue(4).unwrap(), block.queue(4).unwrap());
    let data = conformance::pattern(9, size);
    let mut s = region.slice_all().unwrap();
    s.copy_from_slice(&data);
    let (_, s) = pt.write_at(s, base).unwrap();
    let (_, mut s) = {
        let mut s = s;
        s.fill(0);
        bq.read_at(s, base).unwrap()
    };
    assert!(s[..] == data[..], "the block device reads what passthrough wrote");
    let data2 = conformance::pattern(10, size);
    s.copy_from_slice(&data2);
    let (_, mut s) = bq.write_at(s, base).unwrap();
    s.fill(0);
    let (_, s) = pt.read_at(s, base).unwrap();
    assert!(s[..] == data2[..], "passthrough reads what the block device wrote");
    assert_eq!(ns.dev.stats().pins, pins_before + 1, "still one registration");
    assert_eq!(block.stats().pins, ns.dev.stats().pins, "one domain, one count");
    drop((s, pt, bq, region, block));
}

#[test]
fn bad_lba_is_refused_at_push_and_by_the_controller() {
    let ns = Ns::open(IRQ);
    let caps = ns.dev.capabilities().clone();
    let region = ns.dev.alloc(4096).unwrap();
    let mut q = ns.dev.nvme_queue(4).unwrap();
    let s = region.slice_all().unwrap();
    let r = q.push(Op::read(s, caps.device_size, 1)).expect_err("past the end");
    assert!(matches!(r.error, Error::OutOfBounds { .. }), "{}", r.error);
    // Past the end for real: the controller answers LBA Out of Range.
    let far = caps.device_size + (1 << 30);
    q.push_unchecked(Op::read(r.op.slice, far, 2)).unwrap();
    let mut out: Vec<Completion> = Vec::new();
    q.wait(1, &mut out).unwrap();
    let c = out.pop().unwrap();
    let e = c.result.expect_err("a read past the namespace fails");
    let status = NvmeUringError::status(&e).unwrap_or_else(|| panic!("not an NVMe status: {e}"));
    assert_eq!((status.sct, status.sc), (0, 0x80), "{e}");
    assert!(e.to_string().contains("LBA Out of Range"), "{e}");
    assert_eq!(c.slice.len(), 4096, "the slice comes back");
    assert_eq!(ns.dev.stats().errors, 1);
}

#[test]
fn oversized_transfers_are_refused_at_push_and_by_the_kernel() {
    let ns = Ns::open(IRQ);
    let max = ns.dev.capabilities().max_transfer as usize;
    let bs = ns.dev.geometry().ns.block_size as usize;
    let region = ns.dev.alloc(max + 64 * bs).unwrap();
    let mut q = ns.dev.nvme_queue(4).unwrap();
    let s = region.slice(0, max + bs).unwrap();
    let r = q.push(Op::read(s, 0, 1)).expect_err("larger than the transfer limit");
    assert!(matches!(r.error, Error::TooLarge { .. }), "{}", r.error);
    // Beyond the kernel's limit for real: the kernel refuses to map it.
    q.push_unchecked(Op::read(r.op.slice, 0, 2)).unwrap();
    let mut out: Vec<Completion> = Vec::new();
    q.wait(1, &mut out).unwrap();
    let c = out.pop().unwrap();
    let e = c.result.expect_err("an oversized command fails");
    assert!(
        e.raw_os_error().is_some() || NvmeUringError::status(&e).is_some(),
        "typed: an errno or an NVMe status: {e}"
    );
    eprintln!("oversized: {e}");
    assert_eq!(c.slice.len(), max + bs);
    drop(c.slice);
    // The largest allowed transfer works.
    let s = region.slice(0, max).unwrap();
    let (n, _) = q.read_at(s, 0).unwrap();
    assert_eq!(n, max);
}

#[test]
fn a_read_only_device_refuses_writes_and_reads() {
    let ns = Ns::open(NvmeUringOptions { writable: false, ..IRQ });
    assert!(!ns.dev.capabilities().writable);
    let region = ns.dev.alloc(4096).unwrap();
    let mut q = ns.dev.queue(2).unwrap();
    let r = q.push(Op::write(region.slice_all().unwrap(), 0, 1)).expect_err("read-only");
    assert!(matches!(r.error, Error::ReadOnly), "{}", r.error);
    let (n, _) = q.read_at(r.op.slice, 0).unwrap();
    assert_eq!(n, 4096);
}

#[test]
fn polled_completions_use_the_poll_queues() {
    let poll_queues = std::fs::read_to_string("/sys/module/nvme/parameters/poll_queues").unwrap_or_default();
    eprintln!("nvme.poll_queues = {}", poll_queues.trim());
    let mut ns = Ns::open(POLLED);
    assert_eq!(ns.dev.capabilities().completion, pinio_core::CompletionMode::Poll);
    let size = ns.dev.capabilities().max_transfer as usize;
    let (base, len) = ns.tail(size as u64);
    ns.save(base, len);
    let region = ns.dev.alloc(size).unwrap();
    let mut q = ns.dev.queue(32).unwrap();
    let data = conformance::pattern(3, size);
    let mut s = region.slice_all().unwrap();
    s.copy_from_slice(&data);
    let (_, mut s) = q.write_at(s, base).unwrap();
    s.fill(0);
    let (_, s) = q.read_at(s, base).unwrap();
    assert!(s[..] == data[..]);
    assert!(
        poll_queues.trim().parse::<u32>().unwrap_or(0) > 0,
        "the guest kernel runs nvme with poll queues (nvme.poll_queues on the command line)"
    );
}

/// The block path with polled completions (`UringOptions::iopoll`,
/// `IORING_SETUP_IOPOLL` on `/dev/nvmeXnY`): the conformance suite, with
/// fixed and with plain buffers. The block layer fails a polled bio to a
/// queue that cannot poll with `EOPNOTSUPP` (`blk_mq_submit_bio`), so every
/// operation that succeeds here went through the nvme driver's poll queues
/// (`nvme.poll_queues=2`), and its completion was found by spinning in
/// `io_uring_enter(GETEVENTS)`. The flush, which cannot be an `FSYNC` on
/// such a ring, drains the queue and then calls `fdatasync`.
#[test]
fn the_block_path_with_iopoll_passes_conformance() {
    let mut ns = Ns::open(IRQ);
    let window = ns.tail(24 << 20);
    ns.save(window.0, window.1);
    // flush_drains and the vectored checks write at the start of the device.
    ns.save(0, 1 << 20);
    for fixed_buffers in [true, false] {
        let opts = UringOptions { iopoll: true, fixed_buffers, ..UringOptions::default() };
        let dev = UringDevice::open(&ns.block, opts).unwrap_or_else(|e| panic!("{}: {e}", ns.block.display()));
        let what = dev.describe();
        assert!(what.contains("IOPOLL") && what.contains("O_DIRECT"), "{what}");
        assert_eq!(dev.capabilities().completion, pinio_core::CompletionMode::Poll);
        let plan = conformance::Plan { window, ..Default::default() };
        let r = conformance::round_trips(&dev, &plan).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(r.sizes >= 7, "{r:?}");
        conformance::bad_inputs(&dev).unwrap_or_else(|e| panic!("{what}: {e}"));
        conformance::flush_drains(&dev).unwrap_or_else(|e| panic!("{what}: {e}"));
        conformance::vectored(&dev).unwrap_or_else(|e| panic!("{what}: {e}"));
        let mid_flight = conformance::async_vectored_and_flush(&dev, 0).unwrap_or_else(|e| panic!("{what}: {e}"));
        // A passthrough read waits for the controller: in flight at the first poll.
        assert!(!matches!(mid_flight, conformance::MidFlight::AlwaysInline { .. }), "{what}: {mid_flight:?}");
        let half = window.1 / 2;
        std::thread::scope(|s| {
            let dev = &dev;
            let hs: Vec<_> = (0..2u64)
                .map(|i| {
                    let plan = conformance::Plan {
                        sizes: vec![512, 4096, 65536, 1 << 20],
                        seed: 70 + i,
                        depth: 8,
                        window: (window.0 + i * half, half),
                        unaligned: true,
                    };
                    s.spawn(move || conformance::round_trips(dev, &plan))
                })
                .collect();
            for h in hs {
                h.join().unwrap().unwrap_or_else(|e| panic!("{what}: {e}"));
            }
        });
        let stats = dev.stats();
        assert_eq!(stats.bytes_copied, 0, "{what}: O_DIRECT copies nothing on the CPU");
        assert!(stats.pins == stats.unpins && stats.bytes_pinned == 0, "{what}: every region unregistered: {stats}");
    }
}

/// A controller reset with 32 maximal reads in flight: every command completes
/// (done, or failed with a typed error), every slice comes back, and the
/// namespace works again once the controller is live.
#[test]
fn reset_mid_flight_hands_every_slice_back() {
    let ns = Ns::open(IRQ);
    // The largest commands, so that the device is still moving data when
    // the reset arrives.
    let bs = ns.dev.capabilities().max_transfer as usize;
    let region = ns.dev.alloc(32 * bs).unwrap();
    let mut q = ns.dev.nvme_queue(32).unwrap();
    for i in 0..32 {
        q.push(Op::read(region.slice(i * bs, bs).unwrap(), (i * bs) as u64, i as u64)).unwrap();
    }
    q.submit().unwrap();
    ns.dev.reset_controller().unwrap_or_else(|e| panic!("NVME_IOCTL_RESET: {e}"));
    let mut out: Vec<Completion> = Vec::new();
    while q.in_flight() > 0 {
        q.wait(1, &mut out).unwrap();
    }
    assert_eq!(out.len(), 32);
    let (mut ok, mut failed) = (0, 0);
    for c in &out {
        match &c.result {
            Ok(n) => {
                assert_eq!(*n, bs);
                ok += 1;
            }
            Err(e) => {
                assert!(e.raw_os_error().is_some() || NvmeUringError::status(e).is_some(), "untyped failure: {e}");
                failed += 1;
            }
        }
    }
    eprintln!("reset mid-flight: {ok} completed, {failed} failed");
    drop(out);
    let ctrl = common::controller_dir(&ns.bdf);
    wait_live(&ctrl);
    let (n, _) = q.read_at(region.slice(0, bs).unwrap(), 0).unwrap();
    assert_eq!(n, bs);
}

/// The same disk, one boot: written through passthrough, read through the
/// block layer, then through pinio's userspace driver after the controller
/// was bound to vfio-pci, then through passthrough again once it is back
/// with the kernel; the disk is restored at the end.
#[test]
fn three_paths_to_one_disk_in_one_boot() {
    let _g = common::lock();
    let ns = Ns::open_locked(IRQ);
    let (base, len) = ns.tail(1 << 20);
    let saved = read_bytes(&ns.dev, base, len);
    let data = conformance::pattern(21, 1 << 20);
    common::write_bytes(&ns.dev, base, &data);
    ns.dev.queue(1).unwrap().flush(FlushMode::Data).unwrap();
    let block = UringDevice::open(&ns.block, UringOptions::default()).unwrap();
    assert!(read_bytes(&block, base, len) == data, "the block layer reads what passthrough wrote");
    let bdf = ns.bdf;
    // Every kernel-side handle is closed before the controller leaves the kernel.
    drop((block, ns));
    {
        let opts = pinio_nvme::NvmeOptions { take_from_driver: true, ..Default::default() };
        let user = pinio_nvme::NvmeDevice::open(&bdf, opts).unwrap_or_else(|e| panic!("pinio-nvme on {bdf}: {e}"));
        assert_eq!(common::driver_of(&bdf).as_deref(), Some("vfio-pci"));
        assert!(read_bytes(&user, base, len) == data, "the userspace driver reads it");
    }
    pinio_nvme::release_to_kernel(&bdf).unwrap();
    let back = Ns::open_locked(IRQ);
    assert_eq!(common::driver_of(&bdf).as_deref(), Some("nvme"));
    assert!(read_bytes(&back.dev, base, len) == data, "passthrough reads it after the round trip");
    common::write_bytes(&back.dev, base, &saved);
    back.dev.queue(1).unwrap().flush(FlushMode::Data).unwrap();
    assert!(read_bytes(&back.dev, base, len) == saved, "the disk is restored");
}
