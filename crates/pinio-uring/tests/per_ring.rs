//! The registration mode for kernels without IORING_REGISTER_CLONE_BUFFERS
//! (before 6.13), forced with PINIO_URING_NO_CLONE=1: every queue ring
//! registers each region itself. One test in this binary, because the mode
//! is chosen from the environment.

mod common;

use common::Scratch;
use pinio_core::conformance::{self, Plan};
use pinio_core::{Device, DmaBuf};
use pinio_uring::{UNREGISTERED, UringDevice, UringOptions};

#[test]
fn per_ring_registration_round_trips_and_reuses_slots() {
    // SAFETY: this binary runs this single test; no other thread reads or
    // writes the environment while it is changed.
    unsafe { std::env::set_var("PINIO_URING_NO_CLONE", "1") };
    let f = Scratch::new("per-ring", 64 << 20);
    let dev = UringDevice::open(&f.path, UringOptions::default()).unwrap();
    assert!(dev.describe().contains("per-ring"), "{}", dev.describe());
    conformance::round_trips(&dev, &Plan::default()).unwrap();
    conformance::concurrent_round_trips(&dev, 3, &[512, 4096, 1 << 20]).unwrap();
    conformance::bad_inputs(&dev).unwrap();

    // A queue made before a registration sees it; a reused slot is fresh.
    let expect = std::fs::read(&f.path).unwrap();
    let mut q = dev.queue(2).unwrap();
    let mut slot = None;
    for round in 0..4usize {
        let r = dev.register(DmaBuf::new(64 << 10).unwrap()).unwrap();
        assert_ne!(r.key().id, UNREGISTERED);
        assert!(slot.is_none_or(|s| s == r.key().id), "slot reused");
        slot = Some(r.key().id);
        let off = round * 4096;
        let (_, s) = q.read_at(r.slice(0, 4096).unwrap(), off as u64).unwrap();
        assert!(s[..] == expect[off..off + 4096], "round {round}");
        drop(s);
        r.unregister().unwrap();
    }
    let s = dev.stats();
    assert_eq!((s.bytes_copied, s.unregistered_fallbacks, s.bytes_pinned, s.errors), (0, 0, 0, 0), "{s}");
}
