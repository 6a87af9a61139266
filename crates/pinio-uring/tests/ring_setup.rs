//! The ring setup flags (`UringOptions::coop_taskrun`,
//! `UringOptions::single_issuer`): the conformance checks in every
//! combination, completions found by `poll` alone when the kernel defers
//! them to the issuer, the one-owner rule of a single-issuer queue, and its
//! buffer table fetched on its own thread.

mod common;

use common::Scratch;
use pinio_core::conformance::{self, Plan};
use pinio_core::{Device, Error, Op, Queue};
use pinio_uring::{UringDevice, UringError, UringOptions};

const FILE: usize = 16 << 20;

/// Every combination of the two flags, buffered and direct.
fn setups() -> Vec<UringOptions> {
    let mut v = Vec::new();
    for direct in [true, false] {
        for (coop_taskrun, single_issuer) in [(false, false), (true, false), (false, true), (true, true)] {
            v.push(UringOptions { direct, coop_taskrun, single_issuer, ..UringOptions::default() });
        }
    }
    v
}

fn describe(o: &UringOptions) -> String {
    format!("direct={} coop_taskrun={} single_issuer={}", o.direct, o.coop_taskrun, o.single_issuer)
}

#[test]
fn conformance_in_every_setup() {
    let f = Scratch::new("setup-conf", FILE);
    for opts in setups() {
        let what = describe(&opts);
        let dev = UringDevice::open(&f.path, opts).unwrap_or_else(|e| panic!("{what}: open: {e}"));
        conformance::round_trips(&dev, &Plan::default()).unwrap_or_else(|e| panic!("{what}: {e}"));
        conformance::flush_drains(&dev).unwrap_or_else(|e| panic!("{what}: {e}"));
        conformance::bad_inputs(&dev).unwrap_or_else(|e| panic!("{what}: {e}"));
        // Each thread owns its own queue: the single-issuer case.
        conformance::concurrent_round_trips(&dev, 2, &[4096, 65536]).unwrap_or_else(|e| panic!("{what}: {e}"));
        let s = dev.stats();
        assert!(s.pins == s.unpins && s.bytes_pinned == 0, "{what}: every region was unregistered: {s}");
    }
}

/// With deferred or cooperative task running the kernel posts a completion
/// only when the issuer enters it; `poll` must do so when the ring says
/// work is waiting, or a poller would spin forever.
#[test]
fn poll_alone_collects_every_completion() {
    let f = Scratch::new("setup-poll", FILE);
    for opts in setups() {
        let what = describe(&opts);
        let dev = UringDevice::open(&f.path, opts).unwrap();
        let region = dev.alloc(8 * 4096).unwrap();
        let mut q = dev.queue(8).unwrap();
        for i in 0..8 {
            q.push(Op::read(region.slice(i * 4096, 4096).unwrap(), (i * 4096 * 7) as u64, i as u64)).unwrap();
        }
        q.submit().unwrap();
        let mut out = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while out.len() < 8 {
            q.poll(&mut out).unwrap();
            assert!(std::time::Instant::now() < deadline, "{what}: poll found {} of 8 completions in 20 s", out.len());
            std::hint::spin_loop();
        }
        for c in &out {
            assert_eq!(*c.result.as_ref().unwrap(), 4096, "{what}");
        }
    }
}

/// A single-issuer queue belongs to the thread that first entered the
/// kernel with it: elsewhere every call fails with a typed error naming
/// the rule, and the queue still works on its own thread afterwards.
#[test]
fn a_single_issuer_queue_has_one_owner() {
    let f = Scratch::new("setup-owner", FILE);
    let dev = UringDevice::open(&f.path, UringOptions { single_issuer: true, ..UringOptions::default() }).unwrap();
    let region = dev.alloc(4096).unwrap();
    // Made on another thread, first used on this one: this one owns it.
    let mut q = std::thread::scope(|sc| sc.spawn(|| dev.uring_queue(4).unwrap()).join().unwrap());
    let (n, s) = q.read_at(region.slice_all().unwrap(), 0).unwrap();
    assert_eq!(n, 4096);
    // Moved to another thread: refused with a typed error naming the rule.
    let (mut q, err) = std::thread::scope(|sc| {
        sc.spawn(move || {
            let mut q = q;
            let err = q.read_at(s, 4096).unwrap_err();
            (q, err)
        })
        .join()
        .unwrap()
    });
    let Error::Backend { source, .. } = &err.error else { panic!("not a backend error: {err}") };
    assert!(matches!(source.downcast_ref::<UringError>(), Some(UringError::NotOwner)), "{err}");
    assert!(err.to_string().contains("single_issuer"), "the error names the option: {err}");
    // The read was pushed before the refusal and stays the queue's: back on
    // its owner thread it completes, and the queue goes on working.
    let mut out = Vec::new();
    while q.in_flight() > 0 {
        q.wait(1, &mut out).unwrap();
    }
    assert_eq!(out.len(), 1);
    let c = out.pop().unwrap();
    assert_eq!(*c.result.as_ref().unwrap(), 4096);
    let (n, _s) = q.read_at(c.slice, 8192).unwrap();
    assert_eq!(n, 4096);
}

/// Regions registered on another thread after a single-issuer queue
/// started are usable by it (it fetches the table before it submits), and
/// unregistering them from another thread does not fail.
#[test]
fn a_single_issuer_queue_sees_regions_registered_elsewhere() {
    let f = Scratch::new("setup-table", FILE);
    let dev = UringDevice::open(&f.path, UringOptions { single_issuer: true, ..UringOptions::default() }).unwrap();
    let first = dev.alloc(4096).unwrap();
    let mut q = dev.queue(4).unwrap();
    q.read_at(first.slice_all().unwrap(), 0).unwrap();
    let expected = std::fs::read(&f.path).unwrap();
    for round in 0..3 {
        let region = std::thread::scope(|sc| sc.spawn(|| dev.alloc(8192).unwrap()).join().unwrap());
        let off = (round * 8192 * 5) as u64;
        let (n, s) = q.read_at(region.slice_all().unwrap(), off).unwrap();
        assert_eq!(n, 8192);
        assert_eq!(&s[..], &expected[off as usize..off as usize + 8192], "round {round}");
        drop(s);
        std::thread::scope(|sc| sc.spawn(move || drop(region)).join().unwrap());
    }
    drop(q);
    drop(first);
    let s = dev.stats();
    assert!(s.pins == s.unpins && s.bytes_pinned == 0, "{s}");
}
