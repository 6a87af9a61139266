//! Vectored operations on `kmod:/dev/pinio` in the guest: the ABI's
//! descriptor names one range of one region and has no chain, so a
//! vectored operation is refused at push with `Error::Unsupported` naming
//! the backend, every slice handed back (through push, the blocking
//! `readv_at` and the async future), and nothing reaches the module.
//!
//! Run by `cargo xtask test` in the guest with pinio.ko loaded (PINIO_GUEST=1).

mod common;

use common::{Checked, DEV};
use pinio_core::{Device, VectoredIo, conformance};
use pinio_kmod::KmodDevice;

#[test]
fn vectored_operations_are_refused_with_every_slice_back() {
    let c = Checked::start();
    let dev = KmodDevice::open(DEV).expect("open kmod:/dev/pinio");
    assert_eq!(dev.capabilities().vectored, VectoredIo::Unsupported);
    conformance::vectored(&dev).unwrap();
    assert_eq!(conformance::async_vectored_and_flush(&dev, 0).unwrap(), conformance::MidFlight::NoVectored);
    let s = dev.stats();
    assert_eq!(s.errors, 0, "refused operations never reached the module: {s}");
    assert_eq!(dev.info().unwrap().regions, 0, "every region unregistered");
    drop(dev);
    c.finish();
}
