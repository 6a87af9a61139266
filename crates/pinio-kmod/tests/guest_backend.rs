//! Guest tests of the `kmod:/dev/pinio` backend: the generic conformance checks of pinio-core,
//! unchanged, plus what is specific to the module (pins released, no CPU copy counted).
//!
//! Run by `cargo xtask test` in the guest with pinio.ko loaded (PINIO_GUEST=1).

mod common;

use common::{Checked, DEV, pins_outstanding};
use pinio_core::conformance::{self, Plan};
use pinio_core::{Device, Error};
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
fn conformance_round_trips_batched_in_small_chunks() {
    let c = Checked::start();
    let dev = open();
    // Depth 300 exceeds the module's default queue_depth of 256: the backend must make room.
    let plan = Plan { sizes: vec![1 << 20, (3 << 20) + 5], depth: 300, ..Plan::default() };
    conformance::round_trips(&dev, &plan).unwrap_or_else(|e| panic!("{e}"));
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
fn conformance_foreign_region() {
    let c = Checked::start();
    let (a, b) = (open(), open());
    conformance::foreign_region(&a, &b).unwrap_or_else(|e| panic!("{e}"));
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
    assert_eq!(pins_outstanding() - before, 16, "16 pages pinned by one registration");
    assert_eq!(dev.info().unwrap().pinned_pages, 16);
    let slice = region.slice(0, 4096).unwrap();
    drop(region); // the slice keeps the registration alive
    assert_eq!(pins_outstanding() - before, 16);
    let mut q = dev.queue(4).unwrap();
    let (n, slice) = q.write_at(slice, 0).unwrap();
    assert_eq!(n, 4096);
    drop((slice, q));
    assert_eq!(pins_outstanding(), before, "dropping the last slice unpinned the region");
    drop(dev);
    c.finish();
}

#[test]
fn over_the_cap_is_a_typed_pin_limit_error() {
    let c = Checked::start();
    let dev = open();
    let cap = dev.capabilities().max_pinned_bytes.unwrap();
    let e = dev.alloc(cap as usize + 4096).unwrap_err();
    assert!(matches!(e, Error::PinLimit { .. }), "{e}");
    assert!(e.to_string().contains("max_pinned_pages"), "{e}");
    drop(dev);
    c.finish();
}
