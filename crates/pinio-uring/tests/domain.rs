//! Several files in one uring domain: one registration in the domain's
//! buffer table serves the queues of every file; devices of another domain
//! refuse its regions; a domain of another backend is refused.

mod common;

use common::Scratch;
use pinio_copy::{CopyDevice, CopyOptions, CopyRegistrar};
use pinio_core::conformance::{self, Plan};
use pinio_core::{Device, DmaBuf, Domain, Error, Registration};
use pinio_uring::{RegistrationPolicy, UringDevice, UringDomainOptions, UringOptions, UringRegistrar};

const FILE: usize = 4 << 20;

fn domain(opts: UringDomainOptions) -> Domain {
    UringRegistrar::domain(opts).unwrap_or_else(|e| panic!("domain {opts:?}: {e}"))
}

fn open_in(domain: &Domain, file: &Scratch, opts: UringOptions) -> UringDevice {
    UringDevice::open_in(domain, &file.path, opts)
        .unwrap_or_else(|e| panic!("open {} in {domain:?}: {e}", file.path.display()))
}

fn registrar(domain: &Domain) -> &UringRegistrar {
    domain.registrar::<UringRegistrar>().expect("a uring domain")
}

#[test]
fn two_files_in_one_domain_share_registrations() {
    let (a, b) = (Scratch::new("dom-a", FILE), Scratch::new("dom-b", FILE));
    let d = domain(UringDomainOptions::default());
    let da = open_in(&d, &a, UringOptions::default());
    // The domain-wide fields of the options are the domain's, whatever is asked.
    let asked = UringOptions { fixed_buffers: false, arena_bytes: 1 << 20, ..UringOptions::default() };
    let db = open_in(&d, &b, asked);
    assert_eq!((db.options().fixed_buffers, db.options().arena_bytes), (true, 0), "{:?}", db.options());
    assert_eq!((da.domain().id(), db.domain().id()), (d.id(), d.id()));
    assert_ne!(da.id(), db.id());
    let sharing = registrar(&d).sharing();
    assert_eq!((da.capabilities().sharing, db.capabilities().sharing), (sharing, sharing));
    assert!(da.capabilities().pins_memory && !da.capabilities().cpu_copies);

    conformance::shared_domain(&da, &db).unwrap();
    conformance::shared_domain(&db, &da).unwrap();
    // Both files at once, each with its own threads and queues, registering
    // and releasing in the one table.
    std::thread::scope(|s| {
        let ta = s.spawn(|| conformance::concurrent_round_trips(&da, 2, &[512, 4096, 1 << 20]));
        let tb = s.spawn(|| conformance::concurrent_round_trips(&db, 2, &[512, 65536, 1 << 20]));
        ta.join().unwrap().unwrap();
        tb.join().unwrap().unwrap();
    });

    for dev in [&da, &db] {
        let s = dev.stats();
        assert_eq!((s.bytes_copied, s.unregistered_fallbacks, s.errors, s.bytes_pinned), (0, 0, 0, 0), "{s}");
        assert!(s.pins > 0 && s.pins == s.unpins, "{s}");
    }
    assert_eq!(da.stats().pins, d.stats().pins, "a device reports its domain's registrations");
    assert!(d.describe().contains("io_uring buffer table"), "{}", d.describe());

    // Devices of another domain refuse the regions, both ways.
    let other = UringDevice::open(&b.path, UringOptions::default()).unwrap();
    conformance::foreign_region(&da, &other).unwrap();
    conformance::foreign_region(&other, &db).unwrap();
}

#[test]
fn two_files_in_one_domain_with_the_arena() {
    let (a, b) = (Scratch::new("dom-arena-a", FILE), Scratch::new("dom-arena-b", FILE));
    let d = domain(UringDomainOptions { arena_bytes: 2 << 20, ..UringDomainOptions::default() });
    let full = registrar(&d).arena_free_bytes();
    assert_eq!(full, 2 << 20);
    let da = open_in(&d, &a, UringOptions::default());
    // A buffered file in the same domain: same table, the page cache copies.
    let db = open_in(&d, &b, UringOptions { direct: false, ..UringOptions::default() });
    assert!(db.capabilities().cpu_copies && !da.capabilities().cpu_copies);
    let piece = d.alloc(4096).unwrap();
    assert!(matches!(piece.key().registration, Registration::Piece(_)), "{:?}", piece.key());
    assert_eq!(da.arena_free_bytes(), full - 4096);
    assert_eq!(db.arena_free_bytes(), full - 4096, "one arena for the domain");
    drop(piece);

    let pins = d.stats().pins;
    conformance::shared_domain(&da, &db).unwrap();
    assert_eq!(d.stats().pins, pins, "arena pieces need no registration of their own");
    assert_eq!(da.arena_free_bytes(), full, "pieces return to the arena");

    // Larger than the arena: a region of its own, still shared.
    conformance::round_trips(&da, &Plan { sizes: vec![4096, 4 << 20], ..Plan::default() }).unwrap();
    let big = db.alloc(3 << 20).unwrap();
    assert!(matches!(big.key().registration, Registration::Own(_)), "{:?}", big.key());
    let (mut qa, mut qb) = (da.queue(2).unwrap(), db.queue(2).unwrap());
    let (n, s) = qa.read_at(big.slice_all().unwrap(), 0).unwrap();
    let (m, s) = qb.write_at(s, 0).unwrap();
    assert_eq!((n, m), (3 << 20, 3 << 20));
    drop(s);
    big.unregister().unwrap();
    let (x, y) = (std::fs::read(&a.path).unwrap(), std::fs::read(&b.path).unwrap());
    assert!(x[..3 << 20] == y[..3 << 20], "copied through one registered region");
    assert_eq!((da.stats().bytes_copied, da.stats().unregistered_fallbacks), (0, 0), "{}", da.stats());
    assert_eq!(d.stats().bytes_pinned, full as u64, "only the arena stays registered");
}

#[test]
fn two_files_in_one_domain_without_fixed_buffers() {
    let (a, b) = (Scratch::new("dom-plain-a", FILE), Scratch::new("dom-plain-b", FILE));
    let d = domain(UringDomainOptions { fixed_buffers: false, ..UringDomainOptions::default() });
    let (da, db) = (open_in(&d, &a, UringOptions::default()), open_in(&d, &b, UringOptions::default()));
    assert!(!da.capabilities().pins_memory && !da.options().fixed_buffers);
    conformance::shared_domain(&da, &db).unwrap();
    let s = d.stats();
    assert_eq!((s.pins, s.unpins), (0, 0), "nothing registered: {s}");
    assert_eq!((da.stats().bytes_copied, db.stats().unregistered_fallbacks), (0, 0));
}

#[test]
fn a_region_outlives_the_devices_and_reaches_files_opened_later() {
    let (a, b) = (Scratch::new("dom-late-a", FILE), Scratch::new("dom-late-b", FILE));
    let d = domain(UringDomainOptions::default());
    let region = {
        let da = open_in(&d, &a, UringOptions::default());
        let region = da.register(DmaBuf::new(1 << 20).unwrap()).unwrap();
        let (_, s) = da.queue(2).unwrap().read_at(region.slice(0, 4096).unwrap(), 0).unwrap();
        drop(s);
        region
    };
    // The first device and its queue are gone; the domain and its table stay.
    let db = open_in(&d, &b, UringOptions::default());
    let mut q = db.queue(2).unwrap();
    let (n, s) = q.read_at(region.slice(4096, 4096).unwrap(), 8192).unwrap();
    assert_eq!(n, 4096);
    assert!(s[..] == std::fs::read(&b.path).unwrap()[8192..12288]);
    drop((s, q, db));
    drop(d);
    // The region keeps its domain (and the table) alive; releasing it
    // empties its slot.
    region.unregister().unwrap();
}

#[test]
fn a_uring_device_in_a_copy_domain_is_the_wrong_domain() {
    let f = Scratch::new("dom-wrong", 1 << 20);
    let copy = CopyRegistrar::domain();
    match UringDevice::open_in(&copy, &f.path, UringOptions::default()) {
        Err(Error::WrongDomain { device_backend: "uring", domain_backend: "copy" }) => {}
        other => panic!("expected WrongDomain, got {other:?}"),
    }
    let e = pinio_uring::net::ZcSender::new(&copy, std::net::TcpStream::connect(listener()).unwrap()).unwrap_err();
    assert!(matches!(e, Error::WrongDomain { device_backend: "uring", .. }), "{e}");
    // And the other way round.
    let uring = domain(UringDomainOptions::default());
    match CopyDevice::open_in(&uring, &f.path, CopyOptions::default()) {
        Err(Error::WrongDomain { device_backend: "copy", domain_backend: "uring" }) => {}
        Err(e) => panic!("expected WrongDomain, got {e}"),
        Ok(_) => panic!("a copy device opened in a uring domain"),
    }
}

/// A listening socket's address (the listener is leaked for the test's life).
fn listener() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::mem::forget(l);
    addr
}

#[test]
fn the_fallback_policy_changes_nothing_while_registration_succeeds() {
    // Refusals are tested in tests/memlock.rs (a child process under an
    // 8 MiB limit); here the arena fits, so it is registered and its pieces
    // are registered pieces.
    let f = Scratch::new("dom-policy", 1 << 20);
    let d = domain(UringDomainOptions {
        registration: RegistrationPolicy::Fallback,
        arena_bytes: 1 << 20,
        ..Default::default()
    });
    let dev = open_in(&d, &f, UringOptions::default());
    assert_eq!(dev.options().registration, RegistrationPolicy::Fallback);
    let piece = dev.alloc(4096).unwrap();
    assert!(piece.key().is_registered());
    let mut q = dev.queue(1).unwrap();
    q.read_at(piece.slice_all().unwrap(), 0).unwrap();
    assert_eq!(dev.stats().unregistered_fallbacks, 0);
}
