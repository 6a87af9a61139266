//! Vectored operations on the userspace NVMe driver in the guest: one NVMe
//! command with a PRP list across slices of several regions (the vectored
//! conformance check, in both completion modes), the typed refusal of
//! slices whose inner boundaries are not page aligned, and the async
//! vectored futures and flush. The bytes the tests overwrite are saved and
//! restored.

mod common;

use common::{TAKE_IRQ, TAKE_POLL, Taken};
use pinio_core::conformance;
use pinio_core::{Device, Error, Op, VectoredIo};

#[test]
fn vectored_conformance_in_both_completion_modes() {
    for opts in [TAKE_IRQ, TAKE_POLL] {
        let mut t = Taken::new(opts);
        assert_eq!(t.dev().capabilities().vectored, VectoredIo::Native);
        t.save(0, 64 << 10);
        conformance::vectored(t.dev()).unwrap_or_else(|e| panic!("{:?}: {e}", opts.completion));
        let s = t.dev().stats();
        assert_eq!(s.errors, 0, "{s}");
    }
}

#[test]
fn inner_boundaries_off_a_page_are_refused_with_every_slice_back() {
    let t = Taken::new(TAKE_POLL);
    let dev = t.dev();
    let bs = dev.capabilities().len_align as usize;
    let (a, b) = (dev.alloc(8192).unwrap(), dev.alloc(8192).unwrap());
    let mut q = dev.queue(2).unwrap();
    // The first slice ends mid-page: no PRP list can follow it.
    let op = Op::readv(vec![a.slice(0, bs).unwrap(), b.slice(0, 4096).unwrap()], 0, 1).unwrap();
    let r = q.push(op).expect_err("an inner boundary off a page");
    assert!(matches!(r.error, Error::Misaligned { required: 4096, .. }), "{}", r.error);
    assert!(r.error.to_string().contains("PRP list"), "{}", r.error);
    let back = r.op.into_slices();
    assert_eq!(back.iter().map(|s| s.len()).collect::<Vec<_>>(), [bs, 4096]);
    drop(back);
    // A later slice starting mid-page.
    let op = Op::readv(vec![a.slice(0, 4096).unwrap(), b.slice(bs, bs).unwrap()], 0, 2).unwrap();
    let r = q.push(op).expect_err("a later slice starting off a page");
    assert!(matches!(r.error, Error::Misaligned { .. }), "{}", r.error);
    assert_eq!(r.op.segment_count(), 2);
    assert_eq!(q.in_flight(), 0);
}

#[test]
fn async_vectored_futures_and_flush() {
    for opts in [TAKE_IRQ, TAKE_POLL] {
        let mut t = Taken::new(opts);
        let base = t.dev().capabilities().device_size - (4 << 20);
        t.save(base, 4 << 20);
        let mid_flight = conformance::async_vectored_and_flush(t.dev(), base)
            .unwrap_or_else(|e| panic!("{:?}: {e}", opts.completion));
        // A read waits for the controller: in flight at the first poll.
        assert_eq!(mid_flight, conformance::MidFlight::Checked, "{:?}", opts.completion);
    }
}
