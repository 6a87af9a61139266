//! Vectored operations on QEMU's edu through VFIO in the guest: its DMA
//! engine moves one contiguous range per command, with no scatter-gather
//! list, so a vectored operation is refused at push with
//! `Error::Unsupported` naming the backend, every slice handed back
//! (through push, the blocking `readv_at` and the async future).

mod common;

use common::{edu_lock, open_edu};
use pinio_core::{Device, VectoredIo, conformance};
use pinio_edu::{CompletionMode, EduOptions};

#[test]
fn vectored_operations_are_refused_with_every_slice_back() {
    let _g = edu_lock();
    let dev = open_edu(EduOptions { take_from_driver: false, completion: CompletionMode::Interrupt });
    assert_eq!(dev.capabilities().vectored, VectoredIo::Unsupported);
    conformance::vectored(&dev).unwrap();
    assert_eq!(conformance::async_vectored_and_flush(&dev, 0).unwrap(), conformance::MidFlight::NoVectored);
    assert_eq!(dev.stats().errors, 0);
}
