//! Guest tests of the `kmod:/dev/pinio` backend on the whole-memory channel of a session: the
//! generic conformance checks of pinio-core, unchanged, plus what is specific to the module
//! (pins released, no CPU copy counted, the session's queue depth). tests/guest_channels.rs
//! tests several channels of one session.
//!
//! Run by `cargo xtask test` in the guest with pinio.ko loaded (PINIO_GUEST=1).

mod common;

use common::{Checked, DEV, pins_outstanding};
use pinio_core::conformance::{self, Plan};
use pinio_core::{Device, Error, Registration};
use pinio_kmod::KmodDevice;

fn open() -> KmodDevice {
    KmodDevice::open(DEV).expect("open kmod:/dev/pinio")
}

#[test]
fn conformance_round_trips_1_byte_to_8_mib() {
    let c = Checked::start();
    let dev = open();
    let report = conformance::round_trips(&dev, &Plan::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.sizes, Plan::default().sizes.len(), "every size ran");
    let st = dev.stats();
    assert_eq!(st.bytes_copied, 0, "the application-side path copies nothing");
    assert_eq!(st.pins, st.unpins, "every region was unpinned");
    assert!(st.bytes_read >= report.bytes / 2 && st.bytes_written >= report.bytes / 2);
    drop(dev);
    c.finish();
}

#[test]
fn conformance_round_trips_batched_in_small_chunks_at_the_deepest_queue() {
    let c = Checked::start();
    let dev = open();
    let depth = dev.capabilities().max_queue_depth;
    assert_eq!(depth, dev.info().unwrap().queue_depth as usize, "the session's cap of outstanding descriptors");
    let plan = Plan { sizes: vec![1 << 20, (3 << 20) + 5], depth, ..Plan::default() };
    conformance::round_trips(&dev, &plan).unwrap_or_else(|e| panic!("{e}"));
    drop(dev);
    c.finish();
}

#[test]
fn a_queue_deeper_than_the_session_cap_is_refused() {
    let c = Checked::start();
    let dev = open();
    let max = dev.info().unwrap().queue_depth as usize;
    match dev.queue(max + 1) {
        Err(Error::QueueTooDeep { depth, max: m }) => assert_eq!((depth, m), (max + 1, max)),
        Err(e) => panic!("depth {}: wrong error {e}", max + 1),
        Ok(_) => panic!("depth {} accepted over the session's queue_depth {max}", max + 1),
    }
    assert!(matches!(dev.queue(0), Err(Error::ZeroLength { .. })));
    drop(dev);
    c.finish();
}

/// The echo device's memory lives in the module: a flush is a drain, and nothing more.
#[test]
fn conformance_flush_drains() {
    let c = Checked::start();
    let dev = open();
    assert_eq!(dev.capabilities().persistence, pinio_core::Persistence::None);
    conformance::flush_drains(&dev).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(dev.stats().errors, 0);
    drop(dev);
    c.finish();
}

#[test]
fn conformance_bad_inputs() {
    let c = Checked::start();
    let dev = open();
    conformance::bad_inputs(&dev).unwrap_or_else(|e| panic!("{e}"));
    drop(dev);
    c.finish();
}

#[test]
fn conformance_foreign_region_of_another_session() {
    let c = Checked::start();
    // Two sessions (two open files): region ids are local to each, so their domains differ.
    let (a, b) = (open(), open());
    assert_ne!(a.domain().id(), b.domain().id());
    conformance::foreign_region(&a, &b).unwrap_or_else(|e| panic!("{e}"));
    conformance::foreign_region(&b, &a).unwrap_or_else(|e| panic!("{e}"));
    drop((a, b));
    c.finish();
}

#[test]
fn conformance_concurrent_round_trips_on_one_device() {
    let c = Checked::start();
    let dev = open();
    conformance::concurrent_round_trips(&dev, 4, &[1, 4097, 65536, 1 << 20]).unwrap_or_else(|e| panic!("{e}"));
    drop(dev);
    c.finish();
}

#[test]
fn registration_pins_until_the_last_slice_is_gone() {
    let c = Checked::start();
    let before = pins_outstanding();
    let dev = open();
    let region = dev.alloc(16 * 4096).unwrap();
    assert!(matches!(region.key().registration, Registration::Own(_)), "{:?}", region.key());
    assert_eq!(pins_outstanding() - before, 16, "16 pages pinned by one registration");
    assert_eq!(dev.info().unwrap().pinned_pages, 16);
    assert_eq!(dev.domain().stats().bytes_pinned, 16 * 4096);
    let slice = region.slice(0, 4096).unwrap();
    drop(region); // the slice keeps the registration alive
    assert_eq!(pins_outstanding() - before, 16);
    let mut q = dev.queue(4).unwrap();
    let (n, slice) = q.write_at(slice, 0).unwrap();
    assert_eq!(n, 4096);
    drop((slice, q));
    assert_eq!(pins_outstanding(), before, "dropping the last slice unpinned the region");
    assert_eq!(dev.info().unwrap().regions, 0);
    drop(dev);
    c.finish();
}

#[test]
fn over_the_cap_is_a_typed_pin_limit_error() {
    let c = Checked::start();
    let dev = open();
    let cap = dev.capabilities().max_pinned_bytes.unwrap();
    assert_eq!(dev.domain().max_registered_bytes(), Some(cap));
    let e = dev.alloc(cap as usize + 4096).unwrap_err();
    assert!(matches!(e, Error::PinLimit { limit, .. } if limit == cap), "{e}");
    assert!(e.to_string().contains("max_pinned_pages"), "{e}");
    // Nothing stayed pinned or counted.
    assert_eq!(dev.domain().stats().pins, 0);
    assert_eq!(dev.info().unwrap().pinned_pages, 0);
    drop(dev);
    c.finish();
}
