//! async/await on the userspace NVMe driver in the guest, in both completion
//! modes (MSI-X eventfd woken through the waiter thread; polled queues, whose
//! futures poll again at once): many tasks on a multi-threaded tokio
//! runtime, and a future dropped mid-flight whose slice stays mapped (and
//! with the queue) until the controller completed the read. The bytes the
//! tests overwrite are saved and restored, and every FOLL_PIN of the VFIO
//! mappings is released once the device is dropped.

mod common;

#[path = "../../pinio-core/tests/support/aio_checks.rs"]
mod aio_checks;

use common::{TAKE_IRQ, TAKE_POLL, Taken};
use pinio_core::Device;

#[test]
fn many_tasks_on_a_multi_threaded_runtime_in_both_completion_modes() {
    for opts in [TAKE_IRQ, TAKE_POLL] {
        let pins = aio_checks::pins_outstanding();
        {
            let mut t = Taken::new(opts);
            let (queues, per_queue, len) = (3usize, 6usize, 16usize << 10);
            let size = t.dev().capabilities().device_size;
            let base = size - (queues * per_queue * len) as u64;
            t.save(base, (queues * per_queue * len) as u64);
            aio_checks::many_tasks(t.dev(), base, len, queues, per_queue, 4, 4);
            // One queue for all the tasks.
            aio_checks::many_tasks(t.dev(), base, len, 1, 12, 3, 4);
            assert_eq!(t.dev().stats().errors, 0, "{:?}", opts.completion);
        }
        assert_eq!(aio_checks::pins_outstanding(), pins, "{:?}: FOLL_PIN leak", opts.completion);
    }
}

#[test]
fn a_future_dropped_mid_flight_keeps_its_slice_mapped_until_the_read_is_done() {
    for opts in [TAKE_IRQ, TAKE_POLL] {
        let pins = aio_checks::pins_outstanding();
        {
            let mut t = Taken::new(opts);
            let len = (t.dev().capabilities().max_transfer as usize).min(1 << 20);
            let base = t.dev().capabilities().device_size - len as u64;
            t.save(base, len as u64);
            aio_checks::drop_mid_flight(t.dev(), base, len);
        }
        assert_eq!(aio_checks::pins_outstanding(), pins, "{:?}: FOLL_PIN leak", opts.completion);
    }
}
