//! async/await on `kmod:/dev/pinio` in the guest: many tasks on a
//! multi-threaded tokio runtime, and a future dropped mid-flight whose slice
//! stays pinned (and with the queue) until the module completed the copy.
//! Every test checks that each FOLL_PIN taken was released and that the
//! kernel reported nothing.
//!
//! Run by `cargo xtask test` in the guest with pinio.ko loaded (PINIO_GUEST=1).

mod common;

#[path = "../../pinio-core/tests/support/aio_checks.rs"]
mod aio_checks;

use common::{Checked, DEV};
use pinio_core::Device;
use pinio_kmod::KmodDevice;

fn open() -> KmodDevice {
    KmodDevice::open(DEV).expect("open kmod:/dev/pinio")
}

#[test]
fn many_tasks_on_a_multi_threaded_runtime_sharing_queues() {
    let c = Checked::start();
    let dev = open();
    let (queues, per_queue) = (4, 8);
    let unit = aio_checks::unit(&dev);
    let len = ((64 << 10).min(dev.capabilities().device_size as usize / (queues * per_queue)) / unit * unit).max(unit);
    aio_checks::many_tasks(&dev, 0, len, queues, per_queue, 8, 4);
    // One queue for all the tasks.
    aio_checks::many_tasks(&dev, 0, len, 1, 16, 4, 4);
    assert_eq!(dev.info().unwrap().regions, 0, "every region unregistered");
    drop(dev);
    c.finish();
}

#[test]
fn a_future_dropped_mid_flight_keeps_its_slice_pinned_until_the_copy_is_done() {
    let c = Checked::start();
    let dev = open();
    let len = (8usize << 20).min(dev.capabilities().device_size as usize);
    let len = len / aio_checks::unit(&dev) * aio_checks::unit(&dev);
    aio_checks::drop_mid_flight(&dev, 0, len);
    assert_eq!(dev.info().unwrap().regions, 0, "every region unregistered");
    assert_eq!(dev.info().unwrap().pinned_pages, 0, "no page left pinned by the session");
    drop(dev);
    c.finish();
}
