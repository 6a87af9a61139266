//! Guest tests of channels: several devices (disjoint windows of the echo device's memory) in
//! one kernel session, sharing its registrations, its completion queue and its queue depth;
//! and the channels that must be refused.
//!
//! Run by `cargo xtask test` in the guest with pinio.ko loaded (PINIO_GUEST=1).

mod common;

use common::{Checked, DEV, fill};
use pinio_core::conformance::{self, CountingRegistrar, Plan};
use pinio_core::{Completion, Device, Error, Op};
use pinio_kmod::{KmodDevice, KmodError, Window};
use std::os::fd::{AsFd, AsRawFd};

const PAGE: usize = 4096;
const MIB: u64 = 1 << 20;

fn open(location: &str) -> KmodDevice {
    KmodDevice::open(location).unwrap_or_else(|e| panic!("open kmod:{location}: {e}"))
}

fn open_in(dev: &KmodDevice, location: &str) -> KmodDevice {
    KmodDevice::open_in(dev.domain(), location)
        .unwrap_or_else(|e| panic!("open kmod:{location} in {}: {e}", dev.domain().describe()))
}

fn mem_size(dev: &KmodDevice) -> u64 {
    dev.info().unwrap().dev_mem_size
}

/// The device memory, read through the copy path of the session (`pread` at memory offsets).
fn memory(dev: &KmodDevice, base: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    assert_eq!(dev.raw().pread(&mut out, base).unwrap(), len);
    out
}

#[test]
fn two_channels_of_one_session_share_registrations() {
    let c = Checked::start();
    let low = open(&format!("{DEV}#0/2"));
    let high = open_in(&low, &format!("{DEV}#1/2"));
    let half = mem_size(&low) / 2;
    assert_eq!(low.domain().id(), high.domain().id());
    assert_eq!(low.raw().as_fd().as_raw_fd(), high.raw().as_fd().as_raw_fd(), "one open file");
    assert_eq!((low.window(), high.window()), (Window { base: 0, len: half }, Window { base: half, len: half }));
    assert_eq!(high.capabilities().device_size, half);
    assert_eq!(high.capabilities().max_transfer, half);
    conformance::shared_domain(&low, &high).unwrap_or_else(|e| panic!("{e}"));
    conformance::shared_domain(&high, &low).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(low.info().unwrap().regions, 0, "every region was unregistered");
    assert!(low.domain().describe().contains("2 channel(s) open"), "{}", low.domain().describe());
    drop((low, high));
    c.finish();
}

#[test]
fn a_channel_moves_bytes_in_its_own_window() {
    let c = Checked::start();
    let (base, len) = (4 * MIB, 64 * 1024);
    let ch = open(&format!("{DEV}@4M+64K"));
    assert_eq!(ch.window(), Window { base, len });
    let mem = mem_size(&ch) as usize;
    assert_eq!(ch.raw().pwrite(&vec![0u8; mem], 0).unwrap(), mem);
    let region = ch.alloc(2 * PAGE).unwrap();
    let mut q = ch.queue(4).unwrap();
    // DMA to channel offset 0x1000 lands at base + 0x1000 of the memory, and nowhere else.
    let mut s = region.slice(0, PAGE).unwrap();
    fill(&mut s, 7);
    let want = s.to_vec();
    let (n, s) = q.write_at(s, 0x1000).unwrap();
    assert_eq!(n, PAGE);
    assert_eq!(memory(&ch, base + 0x1000, PAGE), want);
    assert!(memory(&ch, 0x1000, PAGE).iter().all(|&b| b == 0), "the memory outside the window is untouched");
    // Bytes put at base + 0x2000 by the copy path are channel offset 0x2000.
    let mut other = vec![0u8; PAGE];
    fill(&mut other, 8);
    ch.raw().pwrite(&other, base + 0x2000).unwrap();
    let (n, r) = q.read_at(region.slice(PAGE, PAGE).unwrap(), 0x2000).unwrap();
    assert_eq!((n, &r[..]), (PAGE, &other[..]));
    drop((s, r, q, region, ch));
    c.finish();
}

#[test]
fn a_channel_enforces_its_own_bounds() {
    let c = Checked::start();
    let ch = open(&format!("{DEV}@4M+1M"));
    let len = MIB;
    assert_eq!(ch.capabilities().device_size, len);
    let region = ch.alloc(2 * PAGE).unwrap();
    let mut q = ch.queue(4).unwrap();
    // The channel's last page is fine; one byte further is out of the channel (not of the
    // 16 MiB memory, which goes on).
    let (n, s) = q.read_at(region.slice(0, PAGE).unwrap(), len - PAGE as u64).unwrap();
    assert_eq!(n, PAGE);
    let r = q.push(Op::read(s, len - PAGE as u64 + 1, 1)).unwrap_err();
    match r.error {
        Error::OutOfBounds { offset, len: l, limit, .. } => {
            assert_eq!((offset, l, limit), (len - PAGE as u64 + 1, PAGE as u64, len))
        }
        e => panic!("wrong error past the channel's end: {e}"),
    }
    let r = q.push(Op::write(r.op.slice, len, 2)).unwrap_err();
    assert!(matches!(r.error, Error::OutOfBounds { limit, .. } if limit == len), "{}", r.error);
    drop((r, q, region));
    // The generic checks take the channel's size for the device's.
    conformance::bad_inputs(&ch).unwrap_or_else(|e| panic!("{e}"));
    let plan = Plan { sizes: vec![1, 4097, 65536, MIB as usize], ..Plan::default() };
    conformance::round_trips(&ch, &plan).unwrap_or_else(|e| panic!("{e}"));
    drop(ch);
    c.finish();
}

fn overlap(e: &Error) -> Option<(Window, Window)> {
    match KmodError::of(e) {
        Some(KmodError::ChannelOverlap { asked, open }) => Some((*asked, *open)),
        _ => None,
    }
}

#[test]
fn overlapping_channels_are_refused_while_open() {
    let c = Checked::start();
    let whole = open(DEV);
    let size = mem_size(&whole);
    let half = Window { base: size / 2, len: size / 2 };
    let e = KmodDevice::open_in(whole.domain(), format!("{DEV}#1/2")).err().expect("a half inside the open whole");
    assert_eq!(overlap(&e), Some((half, Window { base: 0, len: size })), "{e}");
    assert!(e.to_string().contains("overlaps"), "{e}");
    // A queue keeps its channel open after the device is dropped.
    let domain = whole.domain().clone();
    let q = whole.queue(2).unwrap();
    drop(whole);
    assert!(KmodDevice::open_in(&domain, format!("{DEV}#1/2")).is_err(), "the queue still uses the whole memory");
    drop(q);
    let low = KmodDevice::open_in(&domain, format!("{DEV}#0/2")).expect("freed with its last queue");
    let high = KmodDevice::open_in(&domain, format!("{DEV}#1/2")).expect("the other half");
    // One byte across the border overlaps the first half (the last one starting before its end).
    let e = KmodDevice::open_in(&domain, format!("{DEV}@{}+2", size / 2 - 1)).err().expect("across the halves");
    assert_eq!(overlap(&e), Some((Window { base: size / 2 - 1, len: 2 }, high.window())), "{e}");
    // Another session has channels of its own.
    let other = open(&format!("{DEV}#0/2"));
    assert_ne!(other.domain().id(), low.domain().id());
    drop((low, high, other, domain));
    c.finish();
}

#[test]
fn bad_channels_get_typed_errors() {
    let c = Checked::start();
    let dev = open(&format!("{DEV}@0+4K"));
    let size = mem_size(&dev);
    let domain = dev.domain();
    match KmodDevice::open_in(domain, format!("{DEV}@15M+2M")) {
        Err(Error::OutOfBounds { offset, len, limit, .. }) => {
            assert_eq!((offset, len, limit), (15 * MIB, 2 * MIB, size))
        }
        Err(e) => panic!("past the memory: wrong error {e}"),
        Ok(_) => panic!("a channel past the memory was opened"),
    }
    assert!(matches!(KmodDevice::open_in(domain, format!("{DEV}@4K+0")), Err(Error::ZeroLength { what: "channel" })));
    assert!(matches!(KmodDevice::open_in(domain, format!("{DEV}#2/2")), Err(Error::InvalidTarget { .. })));
    assert!(matches!(KmodDevice::open(format!("{DEV}@4K")), Err(Error::InvalidTarget { .. })));
    // Another device node: its own session, not a channel of this one.
    let e = KmodDevice::open_in(domain, "/dev/Sample").err().expect("a channel of /dev/Sample");
    assert!(matches!(KmodError::of(&e), Some(KmodError::OtherNode { .. })), "{e}");
    let e = KmodDevice::open_in(domain, "/nonexistent/pinio").err().expect("a missing node");
    assert!(matches!(KmodError::of(&e), Some(KmodError::Open { .. })), "{e}");
    // Another name of the same node is the same device.
    let link = std::env::temp_dir().join(format!("pinio-link-{}", std::process::id()));
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(DEV, &link).expect("symlink to /dev/pinio");
    let via_link = KmodDevice::open_in(domain, format!("{}@4K+4K", link.display()));
    std::fs::remove_file(&link).unwrap();
    assert_eq!(via_link.expect("a channel through a symlink").window(), Window { base: 4096, len: 4096 });
    // A domain of another backend.
    let (counting, _) = CountingRegistrar::domain();
    assert!(matches!(KmodDevice::open_in(&counting, DEV), Err(Error::WrongDomain { device_backend: "kmod", .. })));
    drop(dev);
    c.finish();
}

#[test]
fn queues_of_two_channels_share_the_session_queue_depth() {
    let c = Checked::start();
    let low = open(&format!("{DEV}#0/2"));
    let high = open_in(&low, &format!("{DEV}#1/2"));
    let depth = low.capabilities().max_queue_depth;
    let mem = mem_size(&low) as usize;
    let mut pattern = vec![0u8; mem];
    fill(&mut pattern, 42);
    assert_eq!(low.raw().pwrite(&pattern, 0).unwrap(), mem);
    // Each queue fills the whole session cap: the second submit finds the module's queue full
    // of the first one's descriptors and must reap (filing them for the first queue) to fit.
    let region = low.alloc(2 * depth * PAGE).unwrap();
    let mut queues = Vec::new();
    for (i, dev) in [&low, &high].into_iter().enumerate() {
        let mut q = dev.queue(depth).unwrap();
        for k in 0..depth {
            let s = region.slice((i * depth + k) * PAGE, PAGE).unwrap();
            q.push(Op::read(s, (k * PAGE) as u64, k as u64)).unwrap_or_else(|r| panic!("push {k}: {}", r.error));
        }
        assert_eq!(q.submit().unwrap(), depth);
        queues.push((q, dev.window().base as usize));
    }
    for (q, base) in &mut queues {
        let mut done: Vec<Completion> = Vec::new();
        while done.len() < depth {
            q.wait(depth - done.len(), &mut done).unwrap();
        }
        for c in &done {
            let off = base.to_owned() + c.tag as usize * PAGE;
            assert_eq!(*c.result.as_ref().unwrap(), PAGE);
            assert!(c.slice[..] == pattern[off..off + PAGE], "tag {} read the wrong bytes", c.tag);
        }
        assert_eq!(q.in_flight(), 0);
    }
    assert_eq!(low.info().unwrap().outstanding, 0);
    let st = high.stats();
    assert_eq!((st.bytes_read, st.bytes_copied), ((depth * PAGE) as u64, 0));
    drop((queues, region, low, high));
    c.finish();
}
