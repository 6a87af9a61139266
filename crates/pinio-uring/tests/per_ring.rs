//! The registration mode for kernels without IORING_REGISTER_CLONE_BUFFERS
//! (before 6.13), forced with PINIO_URING_NO_CLONE=1: every queue ring
//! registers each region itself. One test in this binary, because the mode
//! is chosen from the environment.

mod common;

use common::Scratch;
use pinio_core::conformance::{self, Plan};
use pinio_core::{Device, DmaBuf, Registration, RegistrationSharing};
use pinio_uring::{UringDevice, UringDomainOptions, UringOptions, UringRegistrar};

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
        let Registration::Own(id) = r.key().registration else { panic!("registered: {:?}", r.key()) };
        assert!(slot.is_none_or(|s| s == id), "slot reused");
        slot = Some(id);
        let off = round * 4096;
        let (_, s) = q.read_at(r.slice(0, 4096).unwrap(), off as u64).unwrap();
        assert!(s[..] == expect[off..off + 4096], "round {round}");
        drop(s);
        r.unregister().unwrap();
    }
    let s = dev.stats();
    assert_eq!((s.bytes_copied, s.unregistered_fallbacks, s.bytes_pinned, s.errors), (0, 0, 0, 0), "{s}");
    assert_eq!(dev.capabilities().sharing, RegistrationSharing::PerQueue);

    // Two files in one domain, with and without an arena: every ring of
    // both files registers each region itself, and the regions still serve
    // both.
    let g = Scratch::new("per-ring-b", 4 << 20);
    for arena_bytes in [0, 1 << 20] {
        let domain =
            UringRegistrar::domain(UringDomainOptions { arena_bytes, ..UringDomainOptions::default() }).unwrap();
        let a = UringDevice::open_in(&domain, &f.path, UringOptions::default()).unwrap();
        let b = UringDevice::open_in(&domain, &g.path, UringOptions::default()).unwrap();
        assert_eq!(
            (a.capabilities().sharing, b.capabilities().sharing),
            (RegistrationSharing::PerQueue, RegistrationSharing::PerQueue)
        );
        let _idle = (a.queue(2).unwrap(), b.queue(2).unwrap()); // rings that exist before the registrations
        conformance::shared_domain(&a, &b).unwrap_or_else(|e| panic!("arena {arena_bytes}: {e}"));
        for d in [&a, &b] {
            let s = d.stats();
            // The arena is registered once with the domain and stays registered.
            assert_eq!(
                (s.bytes_copied, s.errors, s.bytes_pinned),
                (0, 0, arena_bytes as u64),
                "arena {arena_bytes}: {s}"
            );
        }
        let other = UringDevice::open(&g.path, UringOptions::default()).unwrap();
        conformance::foreign_region(&a, &other).unwrap();
    }
}
