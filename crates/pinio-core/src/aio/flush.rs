//! [`Flush`]: the future of [`super::AsyncQueue::flush`].

use super::{Shared, poll_with};
use crate::{FlushMode, FlushProgress, Result};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The future of [`AsyncQueue::flush`](super::AsyncQueue::flush): resolves
/// when the writes it covers are durable, with the contract of
/// [`Queue::flush`](crate::Queue::flush): every write whose completion was
/// collected (on any queue of the device) before the call, and every
/// operation pushed to this async queue before the call.
///
/// It runs in two steps. First it waits, without blocking the thread, until
/// every operation pushed to the queue before [`AsyncQueue::flush`] was
/// called has completed (their completions go to their own futures, as
/// always). Then it starts the device's flush with
/// [`Queue::start_flush`](crate::Queue::start_flush) and waits for it the
/// same way: on io_uring the `FSYNC` runs in the kernel while the task
/// sleeps, and its CQE wakes it like any completion. Backends without a
/// non-blocking flush (the default of `start_flush`) run
/// [`Queue::flush`](crate::Queue::flush) in that poll (an `fdatasync`, an
/// NVMe Flush, a drain), blocking the polling thread for the flush command
/// and for operations other tasks pushed meanwhile. Flushes of one async
/// queue run one at a time, in the order they are started.
///
/// Dropping it before it resolves leaves nothing behind: the operations it
/// was waiting for stay in flight and complete as they would have; a flush
/// it had started finishes on the queue (the next one starts after it) and
/// its outcome is dropped; whether a write is durable is only ever promised
/// by a flush that resolved `Ok`.
///
/// [`AsyncQueue::flush`]: super::AsyncQueue::flush
#[must_use = "futures do nothing unless polled"]
pub struct Flush {
    shared: Arc<Shared>,
    mode: FlushMode,
    /// The queue's next tag at the call: operations with a smaller tag were
    /// pushed before it and are waited for.
    mark: u64,
    /// Names this flush in [`Flushes`].
    id: u64,
    /// Whether the future has resolved (polled again, it panics as futures
    /// may; it does not flush twice).
    done: bool,
}

/// The queue's flushes, shared by the [`Flush`] futures of one async
/// queue: one runs on the queue at a time ([`crate::Queue::start_flush`]).
#[derive(Debug, Default)]
pub(super) struct Flushes {
    next_id: u64,
    /// The flush started on the queue and not yet seen done, by id.
    running: Option<u64>,
    /// Outcomes of flushes another future saw finish, for their owners.
    finished: HashMap<u64, Result<()>>,
    /// Running flushes whose future was dropped: their outcome is dropped.
    orphans: HashSet<u64>,
}

impl Flush {
    pub(super) fn new(shared: Arc<Shared>, mode: FlushMode) -> Flush {
        let (mark, id) = {
            let mut st = shared.lock();
            st.flushes.next_id += 1;
            (st.next_tag, st.flushes.next_id)
        };
        Flush { shared, mode, mark, id, done: false }
    }

    /// One look: collect completions; see to the flush running on the
    /// queue (whoever started it); once nothing pushed before the call is
    /// in flight and no flush runs, start this one.
    fn look(&mut self, cx: &Context<'_>) -> Option<Result<()>> {
        let shared = self.shared.clone();
        let mut st = shared.lock();
        if let Err(e) = st.drive() {
            return Some(Err(e));
        }
        if let Some(r) = st.flushes.finished.remove(&self.id) {
            return Some(r);
        }
        if let Some(owner) = st.flushes.running {
            let r = match st.queue.poll_flush() {
                Ok(FlushProgress::Running) => return None,
                Ok(FlushProgress::Done) => Ok(()),
                Err(e) => Err(e),
            };
            st.flushes.running = None;
            // What the queue collected meanwhile goes to its futures.
            let _ = st.drive();
            if owner == self.id {
                return Some(r);
            }
            if !st.flushes.orphans.remove(&owner) {
                st.flushes.finished.insert(owner, r);
            }
        }
        if st.pending.range(..self.mark).next().is_some() {
            // Another task may collect those completions.
            st.wait_for_progress(cx.waker());
            return None;
        }
        match st.queue.start_flush(self.mode) {
            Err(e) => Some(Err(e)),
            Ok(FlushProgress::Done) => {
                let _ = st.drive();
                Some(Ok(()))
            }
            Ok(FlushProgress::Running) => {
                st.flushes.running = Some(self.id);
                None
            }
        }
    }
}

impl Drop for Flush {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut st = self.shared.lock();
        st.flushes.finished.remove(&self.id);
        if st.flushes.running == Some(self.id) {
            // Still running on the queue: whoever sees it finish drops its
            // outcome; the next flush starts after it.
            st.flushes.orphans.insert(self.id);
        }
    }
}

impl Future for Flush {
    type Output = Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        assert!(!self.done, "Flush polled after it resolved");
        let shared = self.shared.clone();
        let r = poll_with(&shared, cx, |cx| self.look(cx));
        if r.is_ready() {
            self.done = true;
        }
        r
    }
}

impl std::fmt::Debug for Flush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flush").field("mode", &self.mode).field("mark", &self.mark).field("done", &self.done).finish()
    }
}
