//! Vectored futures and flush futures on a multi-threaded tokio runtime:
//! many tasks sharing queues, each writing two slices of two regions in
//! one vectored operation, flushing, and reading the range back into two
//! differently split slices, on io_uring (fixed vectored opcodes from an
//! arena, one SQE per slice across registrations) and copy.

use pinio::{Device, FlushMode};
use std::sync::Arc;

fn scratch(name: &str, len: usize) -> std::path::PathBuf {
    let p = std::path::PathBuf::from(format!("/var/tmp/pinio-tokio-vectored-{name}-{}", std::process::id()));
    std::fs::write(&p, vec![0u8; len]).unwrap();
    p
}

async fn many_tasks(dev: Arc<dyn Device>) {
    let (a, b) = (dev.alloc(32 * 8192).unwrap(), dev.alloc(32 * 8192).unwrap());
    let mut tasks = Vec::new();
    for q in 0..4usize {
        let queue = pinio::tokio::async_queue(dev.queue(8).unwrap()).unwrap();
        for t in 0..8usize {
            let (queue, a, b) = (queue.clone(), a.clone(), b.clone());
            let i = q * 8 + t;
            tasks.push(tokio::spawn(async move {
                let off = (i * 8192) as u64;
                for round in 0..10u8 {
                    let (mut x, mut y) = (a.slice(i * 8192, 4096).unwrap(), b.slice(i * 8192, 4096).unwrap());
                    x.fill(round ^ i as u8);
                    y.fill(!(round ^ i as u8));
                    let (n, w) = queue.writev_at(vec![x, y], off).await.unwrap();
                    assert_eq!((n, w.len()), (8192, 2));
                    drop(w);
                    if round % 3 == 0 {
                        queue.flush(FlushMode::Data).await.unwrap();
                    }
                    // Back into one slice of b and one of a, the other way round.
                    let (n, r) = queue
                        .readv_at(vec![b.slice(i * 8192, 4096).unwrap(), a.slice(i * 8192 + 4096, 4096).unwrap()], off)
                        .await
                        .unwrap();
                    assert_eq!(n, 8192);
                    assert!(r[0].iter().all(|&v| v == round ^ i as u8), "task {i} round {round}: first half");
                    assert!(r[1].iter().all(|&v| v == !(round ^ i as u8)), "task {i} round {round}: second half");
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(dev.stats().errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn vectored_and_flush_futures_from_many_tasks() {
    let p = scratch("many", 32 * 8192);
    for spec in [format!("uring:{}", p.display()), format!("copy:{}", p.display())] {
        many_tasks(Arc::from(pinio::open(&spec).unwrap())).await;
    }
    // The arena: every slice in one buffer slot, so each vectored operation
    // is one READV_FIXED/WRITEV_FIXED SQE.
    let dev = pinio::Builder::parse(&format!("uring:{}", p.display())).unwrap().arena_bytes(4 << 20).open().unwrap();
    many_tasks(Arc::from(dev)).await;
    std::fs::remove_file(p).unwrap();
}
