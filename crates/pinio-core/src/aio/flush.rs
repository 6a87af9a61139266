//! [`Flush`]: the future of [`super::AsyncQueue::flush`].

use super::{Shared, poll_with};
use crate::{FlushMode, Result};
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
/// always). Then, in the poll that finds them done, it runs the device's
/// flush ([`Queue::flush`](crate::Queue::flush): an io_uring `FSYNC`, an
/// `fdatasync`, an NVMe Flush, a drain) on the queue; that call blocks the
/// polling thread for the flush command itself, and for operations other
/// tasks pushed in the meantime (the queue drains before flushing), whose
/// completions then go to their futures as usual.
///
/// Dropping it before it resolves flushes nothing and leaves nothing
/// behind: the operations it was waiting for stay in flight and complete
/// as they would have; nothing that was pushed is dropped early, and
/// whether a write is durable is only ever promised by a flush that
/// resolved `Ok`.
///
/// [`AsyncQueue::flush`]: super::AsyncQueue::flush
#[must_use = "futures do nothing unless polled"]
pub struct Flush {
    shared: Arc<Shared>,
    mode: FlushMode,
    /// The queue's next tag at the call: operations with a smaller tag were
    /// pushed before it and are waited for.
    mark: u64,
    /// Whether the future has resolved (polled again, it panics as futures
    /// may; it does not flush twice).
    done: bool,
}

impl Flush {
    pub(super) fn new(shared: Arc<Shared>, mode: FlushMode) -> Flush {
        let mark = shared.lock().next_tag;
        Flush { shared, mode, mark, done: false }
    }

    /// One look: collect completions; once nothing pushed before the call
    /// is in flight, flush.
    fn look(&mut self) -> Option<Result<()>> {
        let shared = self.shared.clone();
        let mut st = shared.lock();
        if let Err(e) = st.drive() {
            return Some(Err(e));
        }
        if st.pending.range(..self.mark).next().is_some() {
            return None;
        }
        let r = st.queue.flush(self.mode);
        // The flush drained the queue: hand what it collected to the
        // futures waiting for it (an error here does not undo the flush).
        let _ = st.drive();
        Some(r)
    }
}

impl Future for Flush {
    type Output = Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        assert!(!self.done, "Flush polled after it resolved");
        let shared = self.shared.clone();
        let r = poll_with(&shared, cx, |_| self.look());
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
