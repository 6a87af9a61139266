//! The operations of one copy queue in flight: run by the queue's own
//! worker threads (a queue deeper than 1), or on the queue's thread at
//! `submit` (depth 1: no thread hop).
//!
//! A queue of depth `d > 1` starts up to `min(d, MAX_WORKERS)` threads, as
//! an application doing blocking IO in parallel would: one more each time
//! an operation is submitted and no worker is idle. Each worker has its own
//! bounce buffer and runs one `pread`/`pwrite` at a time, so `d` operations
//! submitted together are `d` system calls in flight. A finished operation
//! goes to the completed list, wakes a waiting `wait`, and signals the
//! queue's eventfd (once one was asked for).

use crate::eventfd::EventFd;
use crate::exec::complete;
use crate::shared::Shared;
use pinio_core::{Completion, DmaBuf, Op, Result};
use std::collections::VecDeque;
use std::os::fd::BorrowedFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;

/// The most worker threads one queue starts: deeper queues hold more
/// operations, but run this many at a time.
pub(crate) const MAX_WORKERS: usize = 256;

/// Stack of a worker thread: it only copies and makes system calls.
const WORKER_STACK: usize = 256 << 10;

/// What the queue and its workers share.
struct Inner {
    shared: Arc<Shared>,
    state: Mutex<State>,
    /// Signalled when an operation is queued for the workers (or closing).
    work: Condvar,
    /// Signalled when an operation finished.
    finished: Condvar,
    /// The queue's eventfd, made on the first `event_fd` call.
    event: OnceLock<Option<EventFd>>,
}

#[derive(Default)]
struct State {
    /// Submitted, not yet taken by a worker.
    jobs: VecDeque<Op>,
    /// Finished, not yet collected by the queue.
    done: VecDeque<Completion>,
    /// Taken by a worker, not finished.
    running: usize,
    /// Workers waiting for a job.
    idle: usize,
    /// The queue is being dropped: workers leave once `jobs` is empty.
    closing: bool,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        // Every update is a complete assignment, and no code that can
        // panic runs under the lock: a poisoned lock holds a valid state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands a finished operation to the queue.
    fn post(&self, c: Completion) {
        let mut st = self.state();
        st.done.push_back(c);
        drop(st);
        self.finished.notify_one();
        if let Some(Some(e)) = self.event.get() {
            e.signal(1);
        }
    }
}

/// The execution side of one queue.
pub(crate) struct Pool {
    inner: Arc<Inner>,
    workers: Vec<JoinHandle<()>>,
    max_workers: usize,
    /// Bounce buffer of operations run on the queue's thread (depth 1, or
    /// no worker could be started).
    bounce: Option<DmaBuf>,
}

impl Pool {
    /// The pool of a queue of `depth`: run on the caller's thread at depth
    /// 1 (its bounce buffer allocated now), on up to `min(depth,
    /// MAX_WORKERS)` workers otherwise.
    pub(crate) fn new(shared: Arc<Shared>, depth: usize) -> Result<Pool> {
        let max_workers = if depth <= 1 { 0 } else { depth.min(MAX_WORKERS) };
        let bounce = if max_workers == 0 { Some(DmaBuf::new(shared.bounce_bytes)?) } else { None };
        let inner = Inner {
            shared,
            state: Mutex::default(),
            work: Condvar::new(),
            finished: Condvar::new(),
            event: OnceLock::new(),
        };
        Ok(Pool { inner: Arc::new(inner), workers: Vec::new(), max_workers, bounce })
    }

    /// Worker threads started so far.
    pub(crate) fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Starts every operation of `ops` (emptied): on the workers, starting
    /// more while operations wait and no worker is idle; at depth 1, runs
    /// them here.
    pub(crate) fn start(&mut self, ops: &mut Vec<Op>) {
        if ops.is_empty() {
            return;
        }
        if self.max_workers == 0 {
            self.run_here(ops.drain(..));
            return;
        }
        let n = ops.len();
        let spawn = {
            let mut st = self.inner.state();
            st.jobs.extend(ops.drain(..));
            st.jobs.len().saturating_sub(st.idle).min(self.max_workers - self.workers.len())
        };
        if n == 1 {
            self.inner.work.notify_one();
        } else {
            self.inner.work.notify_all();
        }
        for _ in 0..spawn {
            if self.spawn().is_err() {
                if self.workers.is_empty() {
                    // No thread at all: run them here rather than never.
                    let jobs: Vec<Op> = self.inner.state().jobs.drain(..).collect();
                    self.run_here(jobs.into_iter());
                }
                break;
            }
        }
    }

    fn spawn(&mut self) -> Result<()> {
        let bounce = DmaBuf::new(self.inner.shared.bounce_bytes)?;
        let inner = Arc::clone(&self.inner);
        let name = format!("pinio-copy-{}", self.workers.len());
        let handle = std::thread::Builder::new()
            .name(name)
            .stack_size(WORKER_STACK)
            .spawn(move || work(&inner, bounce))
            .map_err(|e| pinio_core::Error::io("starting a copy worker thread", e))?;
        self.workers.push(handle);
        Ok(())
    }

    /// Runs `ops` one after the other on this thread.
    fn run_here(&mut self, ops: impl Iterator<Item = Op>) {
        if self.bounce.is_none() {
            match DmaBuf::new(self.inner.shared.bounce_bytes) {
                Ok(b) => self.bounce = Some(b),
                Err(e) => {
                    // Nothing can run: each operation fails with the reason.
                    let why = e.to_string();
                    for op in ops {
                        let result = Err(pinio_core::Error::io(
                            format!("allocating a {} byte bounce buffer", self.inner.shared.bounce_bytes),
                            std::io::Error::other(why.clone()),
                        ));
                        self.inner.shared.core.record(op.dir, &result);
                        self.inner.post(Completion::of(op, result));
                    }
                    return;
                }
            }
        }
        let bounce = self.bounce.as_mut().expect("allocated above");
        for op in ops {
            let c = complete(&self.inner.shared, bounce, op);
            self.inner.post(c);
        }
    }

    /// Moves finished operations into `out`, first waiting until at least
    /// `min` are finished (`min` must not exceed the operations started and
    /// not yet taken); returns how many.
    pub(crate) fn take(&self, out: &mut Vec<Completion>, min: usize) -> usize {
        // Reset the eventfd before looking: a completion posted after the
        // look signals again, so none is left without the fd readable.
        if let Some(Some(e)) = self.inner.event.get() {
            e.drain();
        }
        let mut st = self.inner.state();
        while st.done.len() < min {
            st = self.inner.finished.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        let n = st.done.len();
        out.extend(st.done.drain(..));
        n
    }

    /// Waits until every started operation has finished (their completions
    /// stay for [`Pool::take`]).
    pub(crate) fn drain(&self) {
        let mut st = self.inner.state();
        while !st.jobs.is_empty() || st.running > 0 {
            st = self.inner.finished.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The eventfd that becomes readable when completions are ready, made
    /// now if needed; readable at once when `outstanding` operations were
    /// started and not yet taken (some may have finished unsignalled).
    pub(crate) fn event_fd(&self, outstanding: usize) -> Option<BorrowedFd<'_>> {
        let event = self.inner.event.get_or_init(|| {
            let e = EventFd::new().ok()?;
            if outstanding > 0 {
                e.signal(1);
            }
            Some(e)
        });
        event.as_ref().map(EventFd::fd)
    }
}

impl Drop for Pool {
    /// Waits for every started operation: the workers finish the queued
    /// jobs, then leave.
    fn drop(&mut self) {
        self.inner.state().closing = true;
        self.inner.work.notify_all();
        for w in self.workers.drain(..) {
            // A worker that panicked has already handed its operation back
            // (or lost it to the panic, which `complete` catches).
            let _ = w.join();
        }
    }
}

/// A worker: takes jobs until the queue closes and no job is left.
fn work(inner: &Inner, mut bounce: DmaBuf) {
    let mut st = inner.state();
    loop {
        let Some(op) = st.jobs.pop_front() else {
            if st.closing {
                return;
            }
            st.idle += 1;
            st = inner.work.wait(st).unwrap_or_else(|p| p.into_inner());
            st.idle -= 1;
            continue;
        };
        st.running += 1;
        drop(st);
        let c = complete(&inner.shared, &mut bounce, op);
        st = inner.state();
        st.running -= 1;
        st.done.push_back(c);
        drop(st);
        inner.finished.notify_one();
        if let Some(Some(e)) = inner.event.get() {
            e.signal(1);
        }
        st = inner.state();
    }
}
