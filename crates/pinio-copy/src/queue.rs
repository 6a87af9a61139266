//! The copy queue: operations run on the queue's worker threads (depth >
//! 1) or at `submit` on the caller's thread (depth 1).

use crate::pool::Pool;
use crate::shared::Shared;
use pinio_core::{Completion, Error, FlushMode, Op, Queue, Rejected, Result};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::Arc;

/// A queue of a [`crate::CopyDevice`].
///
/// At depth 1, `submit` performs the operation with `pread`/`pwrite`
/// through the queue's bounce buffer on the calling thread: its completion
/// is ready when `submit` returns, with no thread hop. Deeper queues start
/// worker threads (one per operation in flight, up to
/// the depth and at most 256), each with its own bounce buffer, so `d`
/// operations submitted together run as `d` parallel system calls;
/// completions arrive as they finish, in any order, and the event fd says
/// so. The event fd is made on the first call to [`Queue::event_fd`], so a
/// queue nobody polls pays no eventfd syscalls per operation.
///
/// Dropping the queue submits what was pushed and waits for every
/// operation (the workers finish them, then leave).
pub struct CopyQueue {
    shared: Arc<Shared>,
    capacity: usize,
    /// Pushed, not yet submitted.
    pushed: Vec<Op>,
    /// Submitted and not yet returned as completions.
    outstanding: usize,
    pool: Pool,
}

impl CopyQueue {
    pub(crate) fn new(shared: Arc<Shared>, capacity: usize) -> Result<CopyQueue> {
        let pool = Pool::new(Arc::clone(&shared), capacity)?;
        Ok(CopyQueue { shared, capacity, pushed: Vec::new(), outstanding: 0, pool })
    }

    /// Worker threads this queue has started (0 at depth 1, which runs
    /// operations on the caller's thread).
    pub fn workers(&self) -> usize {
        self.pool.workers()
    }
}

impl Queue for CopyQueue {
    fn capacity(&self) -> usize {
        self.capacity
    }

    fn in_flight(&self) -> usize {
        self.pushed.len() + self.outstanding
    }

    fn push(&mut self, op: Op) -> std::result::Result<(), Rejected> {
        let op = self.shared.core.admit(op, self.in_flight(), self.capacity)?;
        self.pushed.push(op);
        Ok(())
    }

    fn submit(&mut self) -> Result<usize> {
        let n = self.pushed.len();
        self.pool.start(&mut self.pushed);
        self.outstanding += n;
        Ok(n)
    }

    fn poll(&mut self, out: &mut Vec<Completion>) -> Result<usize> {
        let n = self.pool.take(out, 0);
        self.outstanding -= n;
        Ok(n)
    }

    fn wait(&mut self, min: usize, out: &mut Vec<Completion>) -> Result<usize> {
        self.submit()?;
        let n = self.pool.take(out, min.min(self.outstanding));
        self.outstanding -= n;
        Ok(n)
    }

    /// Submits what is pushed and waits for every operation of the queue to
    /// finish (the drain; their completions are kept for the next
    /// `poll`/`wait`), then `fdatasync` ([`FlushMode::Data`]) or `fsync`
    /// ([`FlushMode::All`]) on the file.
    fn flush(&mut self, mode: FlushMode) -> Result<()> {
        self.submit()?;
        self.pool.drain();
        let fd = self.shared.target.file.as_raw_fd();
        let (r, what) = match mode {
            // SAFETY: fdatasync/fsync on an open descriptor; no memory is passed.
            FlushMode::Data => (unsafe { libc::fdatasync(fd) }, "fdatasync"),
            // SAFETY: as above.
            FlushMode::All => (unsafe { libc::fsync(fd) }, "fsync"),
        };
        if r < 0 {
            return Err(Error::last_os(format!("{what} {}", self.shared.target.path.display())));
        }
        Ok(())
    }

    fn event_fd(&self) -> Option<BorrowedFd<'_>> {
        self.pool.event_fd(self.outstanding)
    }
}

impl Drop for CopyQueue {
    /// Submits what was pushed; dropping the pool then waits for every
    /// operation.
    fn drop(&mut self) {
        self.pool.start(&mut self.pushed);
    }
}

impl std::fmt::Debug for CopyQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyQueue")
            .field("capacity", &self.capacity)
            .field("in_flight", &self.in_flight())
            .field("workers", &self.workers())
            .finish()
    }
}
