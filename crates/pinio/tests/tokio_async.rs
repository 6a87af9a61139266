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

/// `pinio::tokio::AsyncZcSender`: SEND_ZC from registered memory awaited in
/// tokio; a send future dropped while the socket is full leaves its slice
/// with the sender (live, never freed early) and the next send waits for
/// its notification first; every byte arrives, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_copy_sends_awaited_in_tokio_and_a_dropped_send() {
    use std::io::Read;
    let p = scratch("zc", 4096);
    let dev = pinio::open(&format!("uring:{}", p.display())).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (go, start) = std::sync::mpsc::channel::<()>();
    let rx = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        start.recv().unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        all
    });
    let stream = std::net::TcpStream::connect(addr).unwrap();
    let mut tx = pinio::tokio::AsyncZcSender::new(dev.domain(), stream).unwrap();
    let region = dev.alloc(40 << 20).unwrap();
    let mut expect = Vec::new();
    // 32 MiB while nobody reads: more than the socket buffers hold, so the
    // send cannot finish; polled once, then dropped.
    let mut big = region.slice(0, 32 << 20).unwrap();
    big.iter_mut().enumerate().for_each(|(i, b)| *b = (i / 4096) as u8 ^ 0x3c);
    expect.extend_from_slice(&big);
    {
        let fut = tx.send(big);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), fut).await.is_err(),
            "32 MiB sent with nobody reading?"
        );
    }
    assert_eq!(region.live_slices(), 1, "the dropped send's slice stays with the sender");
    go.send(()).unwrap();
    for (i, len) in [4096usize, 1 << 20].into_iter().enumerate() {
        let mut s = region.slice((32 << 20) + i * (4 << 20), len).unwrap();
        s.fill(0xa0 + i as u8);
        expect.extend_from_slice(&s);
        let sent = tx.send(s).await.unwrap();
        assert!(sent.bytes == len && sent.fixed, "{sent:?}");
        assert_eq!(
            region.live_slices(),
            1,
            "only the slice just sent is alive: the abandoned one was released after its notification"
        );
    }
    let st = tx.sender().stats();
    assert_eq!(st.notifications, st.sends, "{st:?}");
    drop(tx);
    let got = rx.join().unwrap();
    assert_eq!(got.len(), expect.len());
    assert!(got == expect, "received bytes differ from what was sent");
    std::fs::remove_file(p).unwrap();
}
