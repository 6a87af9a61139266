//! async/await on QEMU's edu through VFIO in the guest, in both completion
//! modes (MSI eventfd woken through the waiter thread; polled): many tasks
//! on a multi-threaded tokio runtime sharing edu's 4 KiB of device memory,
//! and a future dropped mid-flight (each edu DMA takes 100 ms of virtual
//! time, so one poll always leaves it in flight) whose slice stays mapped
//! and with the queue until the DMA is done. Every FOLL_PIN of the VFIO
//! mappings is released once the device is dropped.

mod common;

#[path = "../../pinio-core/tests/support/aio_checks.rs"]
mod aio_checks;

use common::{edu_lock, open_edu};
use pinio_core::Device;
use pinio_edu::{CompletionMode, EduOptions};

const MODES: [EduOptions; 2] = [
    EduOptions { take_from_driver: false, completion: CompletionMode::Interrupt },
    EduOptions { take_from_driver: false, completion: CompletionMode::Poll },
];

#[test]
fn many_tasks_on_a_multi_threaded_runtime_in_both_completion_modes() {
    let _g = edu_lock();
    for opts in MODES {
        let pins = aio_checks::pins_outstanding();
        {
            let dev = open_edu(opts);
            let size = dev.capabilities().device_size as usize;
            let (queues, per_queue) = (2usize, 4usize);
            let len = (size / (queues * per_queue)) / aio_checks::unit(&dev) * aio_checks::unit(&dev);
            assert!(len > 0, "edu's {size} bytes split among {} tasks", queues * per_queue);
            aio_checks::many_tasks(&dev, 0, len, queues, per_queue, 2, 4);
            assert_eq!(dev.stats().errors, 0, "{:?}", opts.completion);
        }
        assert_eq!(aio_checks::pins_outstanding(), pins, "{:?}: FOLL_PIN leak", opts.completion);
    }
}

#[test]
fn a_future_dropped_mid_flight_keeps_its_slice_mapped_until_the_dma_is_done() {
    let _g = edu_lock();
    for opts in MODES {
        let pins = aio_checks::pins_outstanding();
        {
            let dev = open_edu(opts);
            let len = dev.capabilities().device_size as usize;
            aio_checks::drop_mid_flight(&dev, 0, len);
        }
        assert_eq!(aio_checks::pins_outstanding(), pins, "{:?}: FOLL_PIN leak", opts.completion);
    }
}
