//! Async checks of one device, shared by the guest tests of kmod, nvme and
//! edu (`tests/guest_async.rs` of each includes this file with `#[path]`):
//! many tasks on a multi-threaded tokio runtime with content checked, and an
//! operation whose future is dropped mid-flight.
//!
//! Both run [`AsyncQueue::new`], pinio-core's runtime-agnostic readiness (the
//! process-wide epoll waiter thread, or polling for a queue without a
//! completion fd), under tokio's multi-threaded scheduler: the tasks move
//! between worker threads between polls.
#![allow(dead_code)]

use pinio_core::aio::AsyncQueue;
use pinio_core::conformance::pattern;
use pinio_core::{Device, UnregisterError};
use std::future::Future;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// A multi-threaded tokio runtime with `workers` worker threads.
pub fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_time().build().expect("a tokio runtime")
}

/// The device's alignment unit for offsets, lengths and memory (at least 1).
pub fn unit(dev: &dyn Device) -> usize {
    let c = dev.capabilities();
    c.offset_align.max(c.len_align).max(c.mem_align).max(1) as usize
}

/// `nr_foll_pin_acquired - nr_foll_pin_released` (per-CPU deltas folded
/// first): pins the kernel holds for user memory (the module's
/// `pin_user_pages`, VFIO type1 mappings).
pub fn pins_outstanding() -> i64 {
    let _ = std::fs::write("/proc/sys/vm/stat_refresh", "1");
    let s = std::fs::read_to_string("/proc/vmstat").expect("read /proc/vmstat");
    let get = |k: &str| -> i64 {
        s.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{k} missing from /proc/vmstat"))
    };
    get("nr_foll_pin_acquired ") - get("nr_foll_pin_released ")
}

/// `queues` async queues of `dev`, `per_queue` tasks sharing each, on a
/// runtime of `workers` threads. Task `i` owns the device range
/// `[base + i * len, base + (i + 1) * len)` and a slice of the same place in
/// one shared region; each round it writes a pattern of its own, reads it
/// back into the zeroed slice and compares every byte.
pub fn many_tasks(
    dev: &dyn Device,
    base: u64,
    len: usize,
    queues: usize,
    per_queue: usize,
    rounds: u64,
    workers: usize,
) {
    let tasks = queues * per_queue;
    let region = dev.alloc(tasks * len).expect("a region for every task");
    let rt = runtime(workers);
    let mut handles = Vec::new();
    {
        for q in 0..queues {
            let queue = AsyncQueue::new(dev.queue(per_queue.max(2)).expect("a queue")).expect("an async queue");
            for t in 0..per_queue {
                let (queue, region) = (queue.clone(), region.clone());
                let i = q * per_queue + t;
                handles.push(rt.spawn(async move {
                    let at = base + (i * len) as u64;
                    let mut threads = std::collections::BTreeSet::new();
                    for round in 0..rounds {
                        let want = pattern((i as u64) << 16 | round, len);
                        let mut s = region.slice(i * len, len).expect("the task's slice");
                        s.copy_from_slice(&want);
                        let (n, mut s) =
                            queue.write_at(s, at).await.unwrap_or_else(|e| panic!("task {i} write: {}", e.error));
                        assert_eq!(n, len, "task {i}: short write");
                        threads.insert(format!("{:?}", std::thread::current().id()));
                        s.fill(0);
                        let (n, s) =
                            queue.read_at(s, at).await.unwrap_or_else(|e| panic!("task {i} read: {}", e.error));
                        assert_eq!(n, len, "task {i}: short read");
                        if let Some(b) = (0..len).find(|&b| s[b] != want[b]) {
                            panic!(
                                "task {i} round {round}: byte {b} at {:#x} read {:#04x}, wrote {:#04x}",
                                at + b as u64,
                                s[b],
                                want[b]
                            );
                        }
                    }
                    threads.len()
                }));
            }
        }
    }
    let threads: usize = rt.block_on(async {
        let mut most = 0;
        for h in handles {
            most = most.max(h.await.expect("a task panicked"));
        }
        most
    });
    drop(rt);
    assert_eq!(region.live_slices(), 0, "every slice came back");
    region.unregister().unwrap_or_else(|e| panic!("unregistering after all tasks: {e}"));
    eprintln!("many_tasks: {tasks} tasks on {queues} queues, {workers} workers; a task ran on up to {threads} threads");
}

/// Polls `f` once with a waker that does nothing.
fn poll_once<F: Future>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    f.poll(&mut Context::from_waker(Waker::noop()))
}

/// A read of `len` bytes at `at` whose future is polled once (the read is
/// pushed) and dropped while in flight:
///
/// - the slice stays with the queue: the region still has it as a live
///   slice and refuses to unregister (`Busy`);
/// - later operations on the queue collect the abandoned completion and
///   drop the slice then; the device's bytes are in the region (it wrote
///   into memory that was still registered, not freed or reused);
/// - a second read abandoned the same way comes back when the queue itself
///   is dropped (the drop waits for everything in flight);
/// - the region unregisters once everything is dropped.
///
/// `at..at + len` of the device is overwritten with a pattern first.
pub fn drop_mid_flight(dev: &dyn Device, at: u64, len: usize) {
    let small_len = unit(dev);
    let want = pattern(0xd209, len);
    {
        let src = dev.alloc(len).expect("a source region");
        let mut s = src.slice_all().unwrap();
        s.copy_from_slice(&want);
        let mut q = dev.queue(1).expect("a queue");
        let (n, _) = q.write_at(s, at).unwrap_or_else(|e| panic!("writing the pattern: {}", e.error));
        assert_eq!(n, len);
    }
    let rt = runtime(2);
    let q = AsyncQueue::new(dev.queue(4).expect("a queue")).expect("an async queue");
    let big = dev.alloc(len).expect("the read's region");
    let small = dev.alloc(small_len).expect("a small region");

    // Polled once, then dropped. A backend that completes within that poll
    // (the drive right after the push finds the completion) gives no
    // in-flight read to drop: try again, a few times.
    // At least 8 tries, then more for up to 5 s: an emulated NVMe controller
    // with a host core idle beside it finished a 512 KiB read within the poll
    // 8 times in a row (2026-12-02), while a try of kmod's 8 MiB copy takes
    // a good part of a second on the debug kernel.
    let mut caught = false;
    let started = std::time::Instant::now();
    for attempt in 0.. {
        if attempt >= 8 && started.elapsed() > std::time::Duration::from_secs(5) {
            break;
        }
        let mut fut = Box::pin(q.read_at(big.slice_all().unwrap(), at));
        match poll_once(fut.as_mut()) {
            Poll::Ready(r) => drop(r.unwrap_or_else(|e| panic!("the read: {}", e.error))),
            Poll::Pending => {
                drop(fut);
                caught = true;
                break;
            }
        }
    }
    assert!(caught, "{}: every read completed within its first poll; nothing to drop mid-flight", dev.describe());
    assert_eq!(big.live_slices(), 1, "the dropped future's slice is in flight, owned by the queue");
    assert!(q.in_flight() >= 1, "the abandoned read is still counted in flight");
    let big = match big.unregister() {
        Err(UnregisterError::Busy { region, .. }) => region,
        other => panic!("unregistering a region with a read in flight must be refused: {other:?}"),
    };

    // Later operations drive the queue; the abandoned read's completion is
    // found and its slice dropped then.
    let deadline = Instant::now() + Duration::from_secs(120);
    rt.block_on(async {
        while big.live_slices() > 0 {
            assert!(Instant::now() < deadline, "the abandoned slice never came back");
            let (_, s) =
                q.read_at(small.slice_all().unwrap(), 0).await.unwrap_or_else(|e| panic!("a later read: {}", e.error));
            drop(s);
        }
    });
    assert_eq!(q.in_flight(), 0);
    let got = big.slice_all().unwrap();
    if let Some(b) = (0..len).find(|&b| got[b] != want[b]) {
        panic!("the abandoned read did not land: byte {b} is {:#04x}, the device holds {:#04x}", got[b], want[b]);
    }
    drop(got);

    // Abandoned again; this time the queue's drop collects it.
    {
        let mut fut = Box::pin(q.read_at(big.slice_all().unwrap(), at));
        let pending = poll_once(fut.as_mut()).is_pending();
        drop(fut);
        if pending {
            assert_eq!(big.live_slices(), 1, "abandoned again: in flight");
        }
    }
    drop(q);
    assert_eq!(big.live_slices(), 0, "dropping the queue waited for the abandoned read and dropped its slice");
    big.unregister().unwrap_or_else(|e| panic!("unregistering after everything was dropped: {e}"));
    small.unregister().unwrap_or_else(|e| panic!("unregistering the small region: {e}"));
}
