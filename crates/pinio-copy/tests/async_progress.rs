//! A task waiting for room in a full queue is woken by whichever task
//! collects a completion, not only by the completion fd: the task that
//! drains the queue also resets the fd, so a reactor looking after that
//! sees no event (a multi-threaded tokio test once hung exactly so).
//! The readiness here never wakes anyone, standing in for that lost event.

use pinio_copy::{CopyDevice, CopyOptions};
use pinio_core::Device;
use pinio_core::aio::{AsyncQueue, Readiness};
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// A completion fd whose events are all lost.
struct LostEvents;

impl Readiness for LostEvents {
    fn arm(&self, _cx: &mut Context<'_>) -> bool {
        false
    }
}

#[derive(Default)]
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_push_waiting_for_room_is_woken_by_another_tasks_collection() {
    let p = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("copy-progress-{}", std::process::id()));
    // A queue of depth 2 (so worker threads run the reads); a and a2 read
    // 64 MiB each, so that they are still in flight when b is first polled.
    const BIG: usize = 64 << 20;
    std::fs::write(&p, vec![7u8; 2 * BIG + 4096]).unwrap();
    let dev = CopyDevice::open(&p, CopyOptions::default()).unwrap();
    let region = dev.alloc(2 * BIG + 4096).unwrap();
    let q = AsyncQueue::with_readiness(dev.queue(2).unwrap(), Box::new(LostEvents));

    let (flag_a, flag_b) = (Arc::new(Flag::default()), Arc::new(Flag::default()));
    let (waker_a, waker_b) = (Waker::from(flag_a.clone()), Waker::from(flag_b.clone()));
    let mut a = pin!(q.read_at(region.slice(0, BIG).unwrap(), 0));
    let mut a2 = pin!(q.read_at(region.slice(BIG, BIG).unwrap(), BIG as u64));
    let mut b = pin!(q.read_at(region.slice(2 * BIG, 4096).unwrap(), 2 * BIG as u64));
    match a.as_mut().poll(&mut Context::from_waker(&waker_a)) {
        Poll::Pending => {}
        Poll::Ready(r) => panic!("a resolved at once: {:?}", r.map(|c| c.0).map_err(|e| e.error)),
    }
    assert!(a2.as_mut().poll(&mut Context::from_waker(&waker_a)).is_pending(), "a2 is pushed and in flight");
    assert!(b.as_mut().poll(&mut Context::from_waker(&waker_b)).is_pending(), "b finds the queue full");
    assert!(!flag_b.0.load(Ordering::SeqCst));

    // a's own task collects a's completion (polled without a wake-up, as a
    // task woken for another reason would): that makes room, so b is woken.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Poll::Ready(r) = a.as_mut().poll(&mut Context::from_waker(&waker_a)) {
            assert_eq!(r.unwrap().0, BIG);
            break;
        }
        assert!(Instant::now() < deadline, "a never completed");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(flag_b.0.load(Ordering::SeqCst), "the task waiting for room was not woken when room was made");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Poll::Ready(r) = b.as_mut().poll(&mut Context::from_waker(&waker_b)) {
            assert_eq!(r.unwrap().0, 4096);
            break;
        }
        assert!(Instant::now() < deadline, "b never completed");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::fs::remove_file(p).unwrap();
}
