//! The device-wide registration table: every queue sees every region, a
//! freed slot reused by another buffer never reaches the old pages, and the
//! table's size is a clear error.

mod common;

use common::Scratch;
use pinio_core::{Device, DmaBuf, Error, Registration};
use pinio_uring::{SLOTS, UringDevice, UringError, UringOptions};

#[test]
fn queues_made_before_and_after_see_each_region_and_a_reused_slot_is_fresh() {
    let f = Scratch::new("slots", 1 << 20);
    let expect = std::fs::read(&f.path).unwrap();
    let dev = UringDevice::open(&f.path, UringOptions::default()).unwrap();
    let mut before = dev.queue(4).unwrap();
    let r1 = dev.register(DmaBuf::new(64 << 10).unwrap()).unwrap();
    let slot = r1.key().registration;
    assert!(matches!(slot, Registration::Own(_)), "{slot:?}");
    let mut after = dev.queue(4).unwrap();
    for (i, q) in [&mut before, &mut after].into_iter().enumerate() {
        let off = i * 4096;
        let (n, s) = q.read_at(r1.slice(off, 4096).unwrap(), off as u64).unwrap();
        assert!(n == 4096 && s[..] == expect[off..off + 4096], "queue {i} reads into the region");
    }
    r1.unregister().unwrap();
    // The next registration takes the freed slot, very likely at the same
    // virtual address. A ring still holding the old buffer would send the
    // data to the old pages and leave these zero.
    for round in 0..4 {
        let r2 = dev.register(DmaBuf::new(64 << 10).unwrap()).unwrap();
        assert_eq!(r2.key().registration, slot, "slot reused");
        for (i, q) in [&mut before, &mut after].into_iter().enumerate() {
            let off = 8192 + round * 8192 + i * 4096;
            let (n, s) = q.read_at(r2.slice(off, 4096).unwrap(), off as u64).unwrap();
            assert!(
                n == 4096 && s[..] == expect[off..off + 4096],
                "round {round}: queue {i} reads into the new buffer"
            );
        }
        r2.unregister().unwrap();
    }
    assert_eq!(dev.stats().bytes_pinned, 0);
}

#[test]
fn the_table_size_is_a_clear_error() {
    let f = Scratch::new("exhaust", 1 << 20);
    let dev = UringDevice::open(&f.path, UringOptions::default()).unwrap();
    let _q = dev.queue(2).unwrap();
    let regions: Vec<_> = (0..SLOTS).map(|_| dev.register(DmaBuf::new(4096).unwrap()).unwrap()).collect();
    let e = dev.register(DmaBuf::new(4096).unwrap()).unwrap_err();
    match &e.error {
        Error::Backend { source, .. } => {
            let u = source.downcast_ref::<UringError>().expect("a UringError");
            assert!(matches!(u, UringError::SlotsExhausted { slots } if *slots == SLOTS), "{u}");
            assert!(e.to_string().contains("arena"), "the message names the remedy: {e}");
        }
        other => panic!("expected a backend error, got {other}"),
    }
    drop(regions);
    dev.register(DmaBuf::new(4096).unwrap()).expect("slots come back when regions go");
}

#[test]
fn registering_and_unregistering_while_another_queue_does_io() {
    use pinio_core::Op;
    let f = Scratch::new("churn", 4 << 20);
    let expect = std::fs::read(&f.path).unwrap();
    let dev = UringDevice::open(&f.path, UringOptions::default()).unwrap();
    let busy = dev.register(DmaBuf::new(8 * 4096).unwrap()).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut q = dev.queue(8).unwrap();
            let mut out = Vec::new();
            let mut done = 0u64;
            for i in 0..8 {
                q.push(Op::read(busy.slice(i * 4096, 4096).unwrap(), (i * 4096) as u64, i as u64)).unwrap();
            }
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || q.in_flight() > 0 {
                out.clear();
                q.wait(1, &mut out).unwrap();
                for c in out.drain(..) {
                    let off = c.dev_offset as usize;
                    assert_eq!(*c.result.as_ref().unwrap(), 4096, "read {done} failed");
                    assert!(c.slice[..] == expect[off..off + 4096], "read {done} at {off:#x} got wrong bytes");
                    done += 1;
                    if !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let next = ((off + 8 * 4096) % (4 << 20)) as u64;
                        q.push(Op::read(c.slice, next, c.tag)).unwrap();
                    }
                }
            }
            done
        });
        let mut q = dev.queue(2).unwrap();
        for round in 0..200usize {
            let r = dev.register(DmaBuf::new(64 << 10).unwrap()).unwrap();
            let off = (round * 4096) % (4 << 20);
            let (_, sl) = q.read_at(r.slice(0, 4096).unwrap(), off as u64).unwrap();
            assert!(sl[..] == expect[off..off + 4096], "round {round}");
            drop(sl);
            r.unregister().unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let done = reader.join().unwrap();
        assert!(done >= 8, "the reader made progress ({done} reads)");
    });
    assert_eq!(dev.stats().errors, 0);
}
