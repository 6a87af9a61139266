//! The userspace NVMe driver on QEMU's emulated controller, in the guest
//! (`cargo xtask test`). Every test takes the controller from the kernel's
//! nvme driver, saves the bytes it is about to overwrite, restores them,
//! and hands the controller back, so /dev/nvme0n1 (an ext4 scratch disk)
//! is as it was for whatever runs next.

mod common;

use common::{TAKE_IRQ, TAKE_POLL, Taken, driver_of, edu_addr, give_back, lock, nvme_addr};
use pinio_core::{Completion, Device, Error, FlushMode, Op, Persistence, Queue, conformance};
use pinio_nvme::{DoorbellMode, NvmeDevice, NvmeError, NvmeOptions};
use pinio_vfio::{PciAddress, VfioError};
use rand::{Rng, SeedableRng, rngs::StdRng};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

/// The last `len` bytes of the namespace: the scratch window of the
/// conformance runs.
fn tail_window(dev: &NvmeDevice, len: u64) -> (u64, u64) {
    (dev.capabilities().device_size - len, len)
}

#[test]
fn refuses_the_kernel_drivers_disk_unless_told_to_take_it() {
    let _g = lock();
    let bdf = nvme_addr();
    if driver_of(&bdf).as_deref() != Some("nvme") {
        give_back(&bdf);
    }
    let e = NvmeDevice::open(&bdf, NvmeOptions::default()).expect_err("a disk bound to nvme must be refused");
    let s = e.to_string();
    assert!(s.contains("\"nvme\"") && s.contains("take_from_driver"), "{s}");
    assert_eq!(driver_of(&bdf).as_deref(), Some("nvme"), "left bound");
    let absent: PciAddress = "0000:00:1f.7".parse().unwrap();
    let e = NvmeDevice::open(&absent, TAKE_POLL).expect_err("no such device");
    assert!(matches!(VfioError::find(&e), Some(VfioError::DeviceAbsent { .. })), "{e}");
    assert!(e.to_string().contains("0000:00:1f.7"), "{e}");
}

/// Another kind of PCI device (QEMU's edu) is refused before anything is
/// unbound or bound.
#[test]
fn refuses_a_device_that_is_not_nvme() {
    let _g = lock();
    let edu = edu_addr();
    let before = driver_of(&edu);
    let e = NvmeDevice::open(&edu, TAKE_POLL).expect_err("edu is not an NVMe controller");
    assert!(matches!(NvmeError::find(&e), Some(NvmeError::NotNvme { .. })), "{e}");
    assert!(e.to_string().contains("0x010802"), "{e}");
    assert_eq!(driver_of(&edu), before, "binding untouched");
}

fn kernel_namespace_sectors(bdf: &PciAddress) -> Option<u64> {
    let ctrl_dir = Path::new("/sys/bus/pci/devices").join(bdf.to_string()).join("nvme");
    for c in std::fs::read_dir(ctrl_dir).ok()?.flatten() {
        for n in std::fs::read_dir(c.path()).ok()?.flatten() {
            let name = n.file_name().to_string_lossy().into_owned();
            if name.starts_with("nvme") && name.ends_with("n1") {
                return std::fs::read_to_string(n.path().join("size")).ok()?.trim().parse().ok();
            }
        }
    }
    None
}

#[test]
fn brings_up_and_identifies_namespace_1() {
    let blocks_from_kernel = {
        let _g = lock();
        let bdf = nvme_addr();
        if driver_of(&bdf).as_deref() != Some("nvme") {
            give_back(&bdf);
        }
        // The kernel's view of the same namespace, in 512-byte sectors:
        // /sys/bus/pci/devices/BDF/nvme/nvmeX/nvmeXn1/size.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = kernel_namespace_sectors(&bdf) {
                break s;
            }
            assert!(Instant::now() < deadline, "the kernel never showed namespace 1 of {bdf}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let t = Taken::new(TAKE_POLL);
    let dev = t.dev();
    let caps = dev.capabilities();
    eprintln!("{}", dev.describe());
    eprintln!("{caps:?}");
    assert_eq!(caps.device_size, blocks_from_kernel * 512, "namespace size agrees with the kernel's");
    assert_eq!(caps.offset_align, dev.block_size() as u64);
    assert_eq!(caps.len_align, dev.block_size() as u64);
    assert_eq!(caps.mem_align, 4);
    assert!(caps.max_transfer >= dev.block_size() as u64 && caps.max_transfer.is_multiple_of(dev.block_size() as u64));
    assert!(!caps.cpu_copies && caps.pins_memory);
    let (major, minor, _) = dev.version();
    assert!((major, minor) >= (1, 0), "version {major}.{minor}");
    assert_eq!(dev.cap().max_queue_entries, 2048, "QEMU's MQES");
    assert_eq!(dev.controller_info().vid, 0x1b36);
    assert!(dev.queue_pairs() >= 1);
    assert!(dev.describe().starts_with("nvme:"));
    assert_eq!((caps.max_queue_depth, caps.sharing), (2047, pinio_core::RegistrationSharing::Domain));
    let reg = dev.registrar().unwrap();
    assert_eq!((reg.dma_bits(), reg.devices()), (28, vec![t.bdf]));
    // The admin queues and Identify buffer are the driver's own mappings, not regions.
    let st = reg.vfio_stats();
    assert_eq!((st.mappings, dev.stats().pins), (3, 0), "{st:?}");
}

#[test]
fn integrity_at_random_lbas_from_one_block_to_the_max_transfer() {
    for opts in [TAKE_POLL, TAKE_IRQ] {
        let mut t = Taken::new(opts);
        let (bs, size, max) = {
            let c = t.dev().capabilities();
            (c.len_align, c.device_size, c.max_transfer)
        };
        let mut rng = StdRng::seed_from_u64(0x6e766d65);
        // Sizes: one block, a page, odd block counts, the max transfer.
        let mut lens = vec![bs, 4096, 3 * bs, 4096 + bs, 65536 - bs, max];
        for _ in 0..10 {
            lens.push(rng.random_range(1..=max / bs) * bs);
        }
        let mut plan = Vec::new();
        for (i, &len) in lens.iter().enumerate() {
            let off = rng.random_range(0..=(size - len) / bs) * bs;
            // Memory offsets: 0, a dword, odd dwords.
            let mem_off = [0usize, 4, 508, 4092, 1 << 12, 2052][i % 6];
            plan.push((off, len, mem_off));
        }
        // Overlapping ranges would make the expected bytes depend on order;
        // keep them disjoint.
        plan.sort_by_key(|p| p.0);
        plan.dedup_by(|b, a| b.0 < a.0 + a.1);
        for &(off, len, _) in &plan {
            t.save(off, len);
        }
        let dev = t.dev();
        let mut q = dev.queue(16).unwrap();
        let mut expected = Vec::new();
        for (i, &(off, len, mem_off)) in plan.iter().enumerate() {
            let region = dev.alloc(mem_off + len as usize).unwrap();
            let mut s = region.slice(mem_off, len as usize).unwrap();
            let data = conformance::pattern(i as u64 + 1, len as usize);
            s.copy_from_slice(&data);
            q.push(Op::write(s, off, i as u64)).unwrap_or_else(|r| panic!("write {len} at {off:#x}: {}", r.error));
            expected.push((off, len, mem_off, data, region));
        }
        let mut done = Vec::new();
        while q.in_flight() > 0 {
            q.wait(1, &mut done).unwrap();
        }
        for c in &done {
            assert!(c.result.is_ok(), "write tag {}: {:?}", c.tag, c.result);
        }
        drop(done);
        for (i, (off, len, mem_off, data, _)) in expected.iter().enumerate() {
            // Read into a fresh region at another memory offset.
            let mo = (mem_off + 4) % 4096;
            let region = dev.alloc(mo + *len as usize).unwrap();
            let s = region.slice(mo, *len as usize).unwrap();
            let (n, s) = q.read_at(s, *off).unwrap_or_else(|e| panic!("read back {len} at {off:#x}: {e}"));
            assert_eq!(n as u64, *len);
            if let Some(b) = (0..data.len()).find(|&b| s[b] != data[b]) {
                panic!("range {i} ({len} bytes at {off:#x}, memory offset {mem_off}): first difference at byte {b}");
            }
        }
        let st = dev.stats();
        assert!(st.bytes_written >= plan.iter().map(|p| p.1).sum::<u64>() && st.bytes_copied == 0, "{st}");
    }
}

#[test]
fn prp_boundary_cases() {
    let mut t = Taken::new(TAKE_POLL);
    let (base, span) = tail_window(t.dev(), 4 << 20);
    t.save(base, span);
    let dev = t.dev();
    let bs = dev.block_size() as usize;
    let page = 4096usize;
    let max = dev.capabilities().max_transfer as usize;
    // (memory offset, length): exactly one page; one page plus one block
    // (the "plus one byte" of a byte-granular device is one block here);
    // crossing pages at odd dword offsets; two pages (PRP2 is a page);
    // three pieces (PRP2 is a list); the max transfer at the worst offset.
    let cases = [
        (0, page),
        (0, page + bs),
        (4, page),
        (page - 4, bs),
        (2052, 2 * page),
        (0, 2 * page),
        (12, 2 * page + bs),
        (page - 4, max),
        (0, max),
        (3 * page + 500, 5 * bs),
    ];
    let mut q = dev.queue(4).unwrap();
    for (i, &(mem_off, len)) in cases.iter().enumerate() {
        let dev_off = base + (i as u64 * 8192) % (span - max as u64);
        let dev_off = dev_off - dev_off % bs as u64;
        let region = dev.alloc(mem_off + len + page).unwrap();
        // Guard bytes around the slice must stay untouched by reads.
        let mut all = region.slice_all().unwrap();
        all.fill(0xee);
        drop(all);
        let mut w = region.slice(mem_off, len).unwrap();
        let data = conformance::pattern(100 + i as u64, len);
        w.copy_from_slice(&data);
        let (_, w) = q.write_at(w, dev_off).unwrap_or_else(|e| panic!("case {i} write: {e}"));
        drop(w);
        let mut r = region.slice(mem_off, len).unwrap();
        r.fill(0);
        let (_, r) = q.read_at(r, dev_off).unwrap_or_else(|e| panic!("case {i} read: {e}"));
        assert!(r[..] == data[..], "case {i} (memory offset {mem_off}, {len} bytes): data differs");
        drop(r);
        let all = region.slice_all().unwrap();
        assert!(all[..mem_off].iter().all(|&b| b == 0xee), "case {i}: bytes before the slice were written");
        assert!(all[mem_off + len..].iter().all(|&b| b == 0xee), "case {i}: bytes after the slice were written");
    }
}

#[test]
fn out_of_range_lba_and_misaligned_requests_get_typed_errors() {
    let t = Taken::new(TAKE_POLL);
    let dev = t.dev();
    let caps = dev.capabilities().clone();
    let bs = caps.len_align as usize;
    let region = dev.alloc(4 * 4096).unwrap();
    let mut q = dev.nvme_queue(4).unwrap();
    // Refused before reaching the device.
    let s = region.slice(0, bs).unwrap();
    let r = q.push(Op::read(s, caps.device_size, 0)).expect_err("past the end");
    assert!(matches!(r.error, Error::OutOfBounds { .. }), "{}", r.error);
    let r = q.push(Op::read(r.op.slice, 1, 0)).expect_err("misaligned offset");
    assert!(matches!(r.error, Error::Misaligned { what: "device offset", .. }), "{}", r.error);
    drop(r);
    let s = region.slice(0, bs - 1).unwrap();
    let r = q.push(Op::read(s, 0, 0)).expect_err("misaligned length");
    assert!(matches!(r.error, Error::Misaligned { what: "length", .. }), "{}", r.error);
    assert!(r.error.to_string().contains(&bs.to_string()), "{}", r.error);
    drop(r);
    let s = region.slice(2, bs).unwrap();
    let r = q.push(Op::read(s, 0, 0)).expect_err("address not dword aligned");
    assert!(matches!(r.error, Error::Misaligned { what: "buffer address", required: 4, .. }), "{}", r.error);
    drop(r);
    let s = region.slice(0, 4 * 4096).unwrap();
    if caps.max_transfer < 4 * 4096 {
        let r = q.push(Op::read(s, 0, 0)).expect_err("too large");
        assert!(matches!(r.error, Error::TooLarge { .. }));
    } else {
        drop(s);
    }
    // Past the end, sent anyway: the controller's own status comes back named.
    let s = region.slice(0, bs).unwrap();
    q.push_unchecked(Op::read(s, caps.device_size, 7)).unwrap_or_else(|r| panic!("{}", r.error));
    let mut out = Vec::new();
    q.wait(1, &mut out).unwrap();
    let c = out.pop().unwrap();
    assert_eq!(c.tag, 7);
    let e = c.result.expect_err("the controller must refuse an LBA past the namespace");
    let status = NvmeError::status(&e).unwrap_or_else(|| panic!("not a status error: {e}"));
    assert_eq!(status.name(), "LBA Out of Range", "{e}");
    assert!(e.to_string().contains("LBA Out of Range"), "{e}");
    assert_eq!(dev.stats().errors, 1);
    // The queue still works afterwards.
    let (_, _) = q.read_at(c.slice, 0).unwrap();
}

#[test]
fn queue_full_back_pressure() {
    let t = Taken::new(TAKE_IRQ);
    let dev = t.dev();
    let bs = dev.block_size() as usize;
    let region = dev.alloc(64 * 4096).unwrap();
    let mut q = dev.queue(4).unwrap();
    assert_eq!(q.capacity(), 4);
    let mut next = 0usize;
    let mut slice = || {
        next += 1;
        region.slice(next * 4096, bs).unwrap()
    };
    for i in 0..4 {
        q.push(Op::read(slice(), (i * bs) as u64, i as u64)).unwrap();
    }
    let r = q.push(Op::read(slice(), 0, 99)).expect_err("a fifth op in a queue of 4");
    assert!(matches!(r.error, Error::QueueFull { capacity: 4 }), "{}", r.error);
    let held = r.op.slice;
    assert_eq!(q.submit().unwrap(), 4);
    let mut out: Vec<Completion> = Vec::new();
    q.wait(1, &mut out).unwrap();
    assert!(!out.is_empty());
    q.push(Op::read(held, 0, 4)).unwrap_or_else(|r| panic!("room after a completion: {}", r.error));
    // Keep a queue of 4 full for a while: many more ops than slots, each
    // completion making room for the next.
    let (mut issued, mut completed) = (5, 0);
    let mut spare = Vec::new();
    loop {
        for c in out.drain(..) {
            assert!(c.result.is_ok(), "{:?}", c.result);
            completed += 1;
            spare.push(c.slice);
        }
        while issued < 200 && q.in_flight() < q.capacity() {
            let s = spare.pop().expect("a completed op's slice");
            q.push(Op::read(s, ((issued % 64) * bs) as u64, issued as u64)).unwrap_or_else(|r| panic!("{}", r.error));
            issued += 1;
        }
        if issued < 200 {
            // Full again: one more is refused until something completes.
            let s = spare.pop().unwrap_or_else(|| region.slice(63 * 4096, bs).unwrap());
            let r = q.push(Op::read(s, 0, 999)).expect_err("full");
            assert!(matches!(r.error, Error::QueueFull { .. }), "{}", r.error);
            spare.push(r.op.slice);
        }
        if q.in_flight() == 0 {
            break;
        }
        q.wait(1, &mut out).unwrap();
    }
    assert_eq!((issued, completed), (200, 200));
    // A depth beyond what the controller allows (MQES: 2048 entries, one
    // kept empty) is refused with the limit; the limit itself works.
    let e = dev.queue(100_000).err().expect("deeper than the controller allows");
    assert!(matches!(e, Error::QueueTooDeep { depth: 100_000, max: 2047 }), "{e}");
    drop(q);
    let big = dev.queue(2047).unwrap();
    assert_eq!(big.capacity(), 2047);
}

#[test]
fn reset_while_idle_keeps_the_data_and_the_device_usable() {
    let mut t = Taken::new(TAKE_POLL);
    let (base, _) = tail_window(t.dev(), 1 << 20);
    t.save(base, 65536);
    let dev = t.dev();
    let region = dev.alloc(65536).unwrap();
    let mut q = dev.nvme_queue(2).unwrap();
    let mut s = region.slice_all().unwrap();
    let data = conformance::pattern(77, 65536);
    s.copy_from_slice(&data);
    let (_, s) = q.write_at(s, base).unwrap();
    q.flush(FlushMode::Data).unwrap();
    let e = dev.reset().expect_err("reset with a queue alive");
    assert!(matches!(NvmeError::find(&e), Some(NvmeError::QueuesAlive { queues: 1 })), "{e}");
    drop(q);
    dev.reset().unwrap_or_else(|e| panic!("reset: {e}"));
    let mut q = dev.queue(2).unwrap();
    let mut s = s;
    s.fill(0);
    let (_, s) = q.read_at(s, base).unwrap();
    assert!(s[..] == data[..], "data survives the reset");
    // And again, twice in a row.
    drop(q);
    dev.reset().unwrap();
    dev.reset().unwrap();
    let mut q = dev.queue(2).unwrap();
    q.read_at(s, base).unwrap();
}

#[test]
fn conformance_in_both_completion_modes() {
    for opts in [TAKE_POLL, TAKE_IRQ] {
        let mut t = Taken::new(opts);
        let window = tail_window(t.dev(), 24 << 20);
        t.save(window.0, window.1);
        let dev = t.dev();
        let plan = conformance::Plan { window, ..Default::default() };
        let r = conformance::round_trips(dev, &plan).unwrap_or_else(|e| panic!("{:?}: {e}", opts.completion));
        assert!(r.sizes >= 7, "{r:?}");
        conformance::bad_inputs(dev).unwrap_or_else(|e| panic!("{e}"));
        // Two threads, two queue pairs, disjoint halves of the window.
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
                h.join().unwrap().unwrap_or_else(|e| panic!("{e}"));
            }
        });
        let tmp = std::env::temp_dir().join(format!("pinio-nvme-foreign-{}", std::process::id()));
        std::fs::write(&tmp, vec![0u8; 65536]).unwrap();
        let other = pinio_copy::CopyDevice::open(&tmp, Default::default()).unwrap();
        conformance::foreign_region(dev, &other).unwrap_or_else(|e| panic!("{e}"));
        conformance::foreign_region(&other, dev).unwrap_or_else(|e| panic!("{e}"));
        drop(other);
        let _ = std::fs::remove_file(tmp);
    }
}

/// The core's multi-threaded check writes at random places across the
/// whole namespace, so the whole namespace is saved and restored around it.
#[test]
fn conformance_concurrent_round_trips_across_the_namespace() {
    let mut t = Taken::new(TAKE_IRQ);
    let size = t.dev().capabilities().device_size;
    t.save(0, size);
    conformance::concurrent_round_trips(t.dev(), 3, &[512, 4096, 65536, 1 << 20]).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn msix_completions_wake_the_queues_eventfd() {
    let t = Taken::new(TAKE_IRQ);
    let dev = t.dev();
    let region = dev.alloc(4096).unwrap();
    let mut q = dev.queue(2).unwrap();
    let fd = q.event_fd().expect("interrupt mode has an eventfd").as_raw_fd();
    q.push(Op::read(region.slice_all().unwrap(), 0, 1)).unwrap();
    q.submit().unwrap();
    let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd on the stack.
    let n = unsafe { libc::poll(&mut pfd, 1, 20_000) };
    assert_eq!(n, 1, "no MSI-X interrupt within 20 s");
    let mut out = Vec::new();
    q.wait(1, &mut out).unwrap();
    assert!(out[0].result.is_ok());
    // Poll mode has none.
    drop((q, out, region, t));
    let t = Taken::new(TAKE_POLL);
    assert!(t.dev().queue(1).unwrap().event_fd().is_none());
}

#[test]
fn many_queue_pairs_and_flush() {
    let t = Taken::new(TAKE_IRQ);
    let dev = t.dev();
    let n = dev.queue_pairs() as usize;
    let qs: Vec<_> = (0..n).map(|_| dev.queue(2).unwrap()).collect();
    let e = dev.queue(2).err().expect("one queue more than the pairs granted");
    assert!(matches!(NvmeError::find(&e), Some(NvmeError::NoQueuePair { .. })), "{e}");
    drop(qs);
    let mut q = dev.nvme_queue(4).unwrap();
    q.flush(FlushMode::Data).unwrap();
    drop(q);
    dev.flush().unwrap();
}

/// The conformance check of `Queue::flush` (writes pushed before it have
/// completed when it returns, their completions kept), in both completion
/// modes; QEMU's controller has a volatile write cache, so the flush also
/// issues an NVMe Flush.
#[test]
fn flush_drains_then_flushes() {
    for opts in [TAKE_POLL, TAKE_IRQ] {
        let mut t = Taken::new(opts);
        let caps = t.dev().capabilities().clone();
        assert_eq!(caps.persistence, Persistence::WriteBack, "QEMU's controller reports a volatile write cache");
        // flush_drains writes 4 units from offset 0.
        let unit = caps.len_align.max(caps.offset_align).max(caps.mem_align).max(512);
        t.save(0, 4 * unit);
        conformance::flush_drains(t.dev()).unwrap_or_else(|e| panic!("{:?}: {e}", opts.completion));
        assert_eq!(t.dev().stats().errors, 0);
    }
}

/// A Flush the controller refuses (namespace 0 is no namespace) comes back
/// as a typed error naming its NVMe status; the writes before it were
/// drained anyway, and the queue flushes normally afterwards.
#[test]
fn a_failed_flush_is_a_typed_error() {
    let mut t = Taken::new(TAKE_IRQ);
    let (base, _) = tail_window(t.dev(), 1 << 20);
    t.save(base, 8192);
    let dev = t.dev();
    let region = dev.alloc(8192).unwrap();
    let mut q = dev.nvme_queue(4).unwrap();
    for i in 0..2u64 {
        let mut s = region.slice(i as usize * 4096, 4096).unwrap();
        s.copy_from_slice(&conformance::pattern(900 + i, 4096));
        q.push(Op::write(s, base + i * 4096, i)).unwrap_or_else(|r| panic!("{}", r.error));
    }
    let e = q.flush_namespace_unchecked(0).expect_err("a Flush of namespace 0 must fail");
    assert!(matches!(NvmeError::find(&e), Some(NvmeError::Command { .. })), "{e}");
    let status = NvmeError::status(&e).unwrap_or_else(|| panic!("not a status error: {e}"));
    assert_eq!(status.name(), "Invalid Namespace or Format", "{e}");
    assert!(e.to_string().contains("flush of namespace 0"), "{e}");
    // The drain happened before the Flush was issued.
    let mut out = Vec::new();
    q.poll(&mut out).unwrap();
    assert_eq!((out.len(), q.in_flight()), (2, 0), "both writes completed before the flush");
    assert!(out.iter().all(|c| c.result.is_ok()), "{out:?}");
    q.flush(FlushMode::All).unwrap_or_else(|e| panic!("a flush after the failed one: {e}"));
    let s = out.pop().unwrap().slice;
    let (_, s) = q.read_at(s, base + 4096).unwrap();
    assert!(s[..] == conformance::pattern(901, 4096)[..]);
}

/// Doorbell writes are counted, and batched: a submit of 32 commands rings
/// the submission queue tail once, a reap rings the completion queue head
/// once however many entries it consumed; in per-command mode one write per
/// command and one per completion entry. The data is the same either way.
#[test]
fn doorbells_ring_once_per_batch_or_once_per_command() {
    for mode in [DoorbellMode::PerBatch, DoorbellMode::PerCommand] {
        let t = Taken::new(NvmeOptions { doorbells: mode, ..TAKE_POLL });
        let dev = t.dev();
        let bs = dev.block_size() as usize;
        let region = dev.alloc(32 * 4096).unwrap();
        let mut q = dev.queue(32).unwrap();
        let before = dev.doorbells();
        for i in 0..32 {
            q.push(Op::read(region.slice(i * 4096, bs).unwrap(), (i * bs) as u64, i as u64)).unwrap();
        }
        let pushed = dev.doorbells();
        assert_eq!(q.submit().unwrap(), 32);
        let submitted = dev.doorbells();
        let mut out: Vec<Completion> = Vec::new();
        let mut reaps_with_entries = 0u64;
        while out.len() < 32 {
            let n = q.poll(&mut out).unwrap();
            if n > 0 {
                reaps_with_entries += 1;
            }
        }
        let reaped = dev.doorbells();
        assert!(out.iter().all(|c| c.result.is_ok()), "{out:?}");
        match mode {
            DoorbellMode::PerBatch => {
                assert_eq!(pushed, before, "push rings nothing");
                assert_eq!(submitted.sq - before.sq, 1, "one tail write for 32 commands");
                assert_eq!(
                    reaped.cq - submitted.cq,
                    reaps_with_entries,
                    "one head write per reap that consumed entries"
                );
                assert!(reaps_with_entries <= 32);
            }
            DoorbellMode::PerCommand => {
                assert_eq!(pushed.sq - before.sq, 32, "one tail write per command");
                assert_eq!(submitted, pushed, "submit rings nothing more");
                assert_eq!(reaped.cq - submitted.cq, 32, "one head write per completion entry");
            }
        }
        assert_eq!(reaped.sq, submitted.sq, "reaping rings no submission doorbell");
        let described = dev.describe();
        assert!(
            described.contains(&format!("doorbells_sq {}", reaped.sq))
                && described.contains(&format!("doorbells_cq {}", reaped.cq)),
            "{described}"
        );
        drop(q);
    }
}
