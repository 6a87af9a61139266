//! The tokio integration on a multi-threaded runtime: many tasks on one
//! device with io_uring and copy queues, and a future dropped mid-flight
//! whose slice stays with the queue until the device is done with it.

use pinio::{Device, Error, UnregisterError};
use std::sync::Arc;
use std::time::Duration;

fn scratch(name: &str, len: usize) -> std::path::PathBuf {
    let p = std::path::PathBuf::from(format!("/var/tmp/pinio-tokio-{name}-{}", std::process::id()));
    std::fs::write(&p, vec![0x5au8; len]).unwrap();
    p
}

async fn many_tasks(spec: String) {
    let dev: Arc<dyn Device> = Arc::from(pinio::open(&spec).unwrap());
    let region = dev.alloc(64 * 4096).unwrap();
    let mut tasks = Vec::new();
    for q in 0..4u64 {
        // One queue per group of tasks, as the docs advise; several tasks share each.
        let queue = pinio::tokio::async_queue(dev.queue(8).unwrap()).unwrap();
        for t in 0..16u64 {
            let (queue, region) = (queue.clone(), region.clone());
            let i = (q * 16 + t) as usize;
            tasks.push(tokio::spawn(async move {
                for round in 0..20u8 {
                    let mut s = region.slice(i * 4096, 4096).unwrap();
                    s.fill(round ^ i as u8);
                    let (n, s) = queue.write_at(s, (i * 4096) as u64).await.unwrap();
                    assert_eq!(n, 4096);
                    let mut s = s;
                    s.fill(0);
                    let (_, s) = queue.read_at(s, (i * 4096) as u64).await.unwrap();
                    assert!(s.iter().all(|&b| b == round ^ i as u8), "task {i} round {round}");
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_on_a_multi_threaded_runtime() {
    let p = scratch("many", 64 * 4096);
    many_tasks(format!("uring:{}", p.display())).await;
    many_tasks(format!("copy:{}", p.display())).await;
    std::fs::remove_file(p).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_future_dropped_mid_flight_leaves_its_slice_to_the_queue() {
    let p = scratch("drop", 32 << 20);
    let dev = pinio::open(&format!("uring:{}", p.display())).unwrap();
    let q = pinio::tokio::async_queue(dev.queue(4).unwrap()).unwrap();
    let big = dev.alloc(32 << 20).unwrap();
    let small = dev.alloc(4096).unwrap();
    // Polled once (the read is pushed), then dropped: 32 MiB of O_DIRECT
    // reads cannot finish before the zero timeout fires.
    let fut = q.read_at(big.slice_all().unwrap(), 0);
    assert!(tokio::time::timeout(Duration::ZERO, fut).await.is_err(), "the read finished at once?");
    assert_eq!(big.live_slices(), 1, "the slice is in flight, owned by the queue");
    let big = match big.unregister() {
        Err(UnregisterError::Busy { region, .. }) => region,
        other => panic!("unregistering a region with a slice in flight must be refused: {other:?}"),
    };
    // Later operations drive the queue; the abandoned read's completion is
    // collected and its slice dropped then.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while big.live_slices() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the abandoned slice never came back");
        let (_, s) = q.read_at(small.slice_all().unwrap(), 0).await.unwrap();
        drop(s);
    }
    assert_eq!(q.in_flight(), 0);
    big.unregister().unwrap();
    // A refused push resolves to its typed error with the slice.
    let e = q.read_at(small.slice(0, 100).unwrap(), 0).await.unwrap_err();
    assert!(matches!(e.error, Error::Misaligned { .. }) && e.slice.is_some(), "{}", e.error);
    std::fs::remove_file(p).unwrap();
}

#[test]
fn outside_a_runtime_is_a_typed_error() {
    let p = scratch("outside", 4096);
    let dev = pinio::open(&format!("copy:{}", p.display())).unwrap();
    let e = pinio::tokio::async_queue(dev.queue(2).unwrap()).expect_err("no runtime here");
    assert!(matches!(e, Error::Unsupported { .. }) && e.to_string().contains("outside a tokio runtime"), "{e}");
    std::fs::remove_file(p).unwrap();
}
