//! The device-wide registration table: every queue sees every region, a
//! freed slot reused by another buffer never reaches the old pages, and the
//! table's size is a clear error.

mod common;

use common::Scratch;
use pinio_core::{Device, DmaBuf, Error};
use pinio_uring::{SLOTS, UNREGISTERED, UringDevice, UringError, UringOptions};

#[test]
fn queues_made_before_and_after_see_each_region_and_a_reused_slot_is_fresh() {
    let f = Scratch::new("slots", 1 << 20);
    let expect = std::fs::read(&f.path).unwrap();
    let dev = UringDevice::open(&f.path, UringOptions::default()).unwrap();
    let mut before = dev.queue(4).unwrap();
    let r1 = dev.register(DmaBuf::new(64 << 10).unwrap()).unwrap();
    let slot = r1.key().id;
    assert_ne!(slot, UNREGISTERED);
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
        assert_eq!(r2.key().id, slot, "slot reused");
        for (i, q) in [&mut before, &mut after].into_iter().enumerate() {
            let off = 8192 + round * 8192 + i * 4096;
            let (n, s) = q.read_at(r2.slice(off, 4096).unwrap(), off as u64).unwrap();
            assert!(n == 4096 && s[..] == expect[off..off + 4096], "round {round}: queue {i} reads into the new buffer");
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
