//! Region and slice bookkeeping, with a counting unregistration hook.

use pinio_core::conformance::CountingRegistrar;
use pinio_core::{DmaBuf, Error, Region, UnregisterError};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn region(len: usize) -> (Region, Arc<AtomicUsize>) {
    let (domain, released) = CountingRegistrar::domain();
    (domain.register(DmaBuf::new(len).unwrap()).unwrap(), released)
}

#[test]
fn slices_are_disjoint_and_writable() {
    let (r, _) = region(8192);
    let mut a = r.slice(0, 100).unwrap();
    let mut b = r.slice(100, 100).unwrap();
    assert!(matches!(r.slice(50, 100), Err(Error::SliceOverlap { offset: 50, len: 100 })));
    a.fill(1);
    b.fill(2);
    assert_eq!(b.device_addr(), CountingRegistrar::DEVICE_ADDR + 100);
    assert_eq!(r.live_slices(), 2);
    drop(a);
    let a2 = r.slice(0, 100).unwrap();
    assert!(a2.iter().all(|&x| x == 1), "bytes survive a slice being dropped");
}

#[test]
fn split_and_merge_keep_the_lease_table_exact() {
    let (r, _) = region(4096);
    let s = r.slice(10, 1000).unwrap();
    let (a, b) = s.split_at(300).unwrap();
    assert_eq!((a.offset(), a.len(), b.offset(), b.len()), (10, 300, 310, 700));
    assert_eq!(r.live_slices(), 2);
    let (b, a) = b.merge(a).unwrap_err();
    let m = a.merge(b).unwrap();
    assert_eq!((m.offset(), m.len(), r.live_slices()), (10, 1000, 1));
    let m = m.split_at(1000).unwrap_err();
    drop(m);
    assert_eq!(r.live_slices(), 0);
}

#[test]
fn unregister_refuses_while_slices_live_and_hook_runs_once() {
    let (r, hook) = region(4096);
    let s = r.slice(0, 10).unwrap();
    let r = match r.unregister() {
        Err(UnregisterError::Busy { region, outstanding: 1 }) => region,
        other => panic!("expected Busy, got {other:?}"),
    };
    drop(s);
    let buf = r.unregister().unwrap();
    assert_eq!(buf.len(), 4096);
    assert_eq!(hook.load(Ordering::SeqCst), 1);
}

#[test]
fn last_slice_keeps_registration_alive_after_region_handle_drops() {
    let (r, hook) = region(4096);
    let mut s = r.slice(0, 4096).unwrap();
    drop(r);
    assert_eq!(hook.load(Ordering::SeqCst), 0, "a live slice keeps the region registered");
    s[4095] = 1;
    drop(s);
    assert_eq!(hook.load(Ordering::SeqCst), 1);
}
