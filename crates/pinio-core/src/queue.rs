//! The queue trait every backend implements, and the errors of single operations.

use crate::{Completion, Error, Op, Result, Slice};
use std::os::fd::BorrowedFd;

/// An operation a queue refused, handed back with the reason.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct Rejected {
    /// Why it was refused.
    #[source]
    pub error: Error,
    /// The operation, with its slice, unchanged.
    pub op: Op,
}

/// What a flush makes durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FlushMode {
    /// The data written and the metadata needed to read it back
    /// (`fdatasync`, `IORING_FSYNC_DATASYNC`, NVMe Flush).
    #[default]
    Data,
    /// Data and all metadata, such as modification times (`fsync`).
    All,
}

/// A submission/completion pair owned by one thread.
///
/// Operations are pushed (validated, not yet visible to the device), then
/// submitted in a batch; completions come back in any order, each carrying
/// its tag and its slice. Dropping a queue waits for every operation in
/// flight, so no slice is ever freed while the device may still use it.
pub trait Queue: Send {
    /// How many operations may be in flight at once.
    fn capacity(&self) -> usize;

    /// Operations pushed and not yet returned as completions.
    fn in_flight(&self) -> usize;

    /// Validates `op` and queues it for the next [`Queue::submit`]. A refused
    /// operation comes back inside the error.
    fn push(&mut self, op: Op) -> Result<(), Rejected>;

    /// Hands every pushed operation to the device; returns how many.
    fn submit(&mut self) -> Result<usize>;

    /// Moves finished operations into `out` without blocking; returns how many.
    fn poll(&mut self, out: &mut Vec<Completion>) -> Result<usize>;

    /// Submits what is pushed, then blocks until at least `min` operations
    /// (capped at [`Queue::in_flight`]) have completed; moves them into `out`
    /// and returns how many.
    fn wait(&mut self, min: usize, out: &mut Vec<Completion>) -> Result<usize>;

    /// Makes writes durable, and waits until they are.
    ///
    /// When it returns `Ok`, these writes are durable (they survive a crash
    /// or power loss of the host and the device, as far as the device's
    /// [`Capabilities::persistence`](crate::Capabilities::persistence)
    /// allows):
    ///
    /// - every write whose completion was reaped, on any queue of the same
    ///   device, before the call;
    /// - every write pushed to *this* queue before the call: the queue first
    ///   waits for them (a drain), keeping their completions for the next
    ///   [`Queue::poll`] or [`Queue::wait`].
    ///
    /// Writes pushed to other queues and not yet completed when the call is
    /// made are not covered: complete them first (or push them to this
    /// queue). An error means nothing: some, all or none of those writes may
    /// be durable; write them again and flush again.
    fn flush(&mut self, mode: FlushMode) -> Result<()>;

    /// A file descriptor that becomes readable when completions are ready,
    /// for epoll, where the backend has one.
    fn event_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }

    /// Runs one operation to completion on an idle queue.
    fn run(&mut self, op: Op) -> Result<Completion, OpError> {
        if self.in_flight() != 0 {
            let error = Error::Unsupported {
                what: "run() on a queue with operations in flight".into(),
                hint: "wait for them first, or use push/submit/wait".into(),
            };
            return Err(OpError { error, slice: Some(op.slice) });
        }
        self.push(op).map_err(|r| OpError { error: r.error, slice: Some(r.op.slice) })?;
        let mut out = Vec::with_capacity(1);
        loop {
            match self.wait(1, &mut out) {
                Ok(_) => {
                    if let Some(c) = out.pop() {
                        return Ok(c);
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                // The operation stays owned by the queue; a later wait or
                // the queue's drop collects it.
                Err(error) => return Err(OpError { error, slice: None }),
            }
        }
    }

    /// Reads `slice.len()` bytes at `dev_offset` into `slice` and waits;
    /// returns the bytes read and the slice.
    fn read_at(&mut self, slice: Slice, dev_offset: u64) -> Result<(usize, Slice), OpError> {
        finish(self.run(Op::read(slice, dev_offset, 0)))
    }

    /// Writes `slice` at `dev_offset` and waits; returns the bytes written
    /// and the slice.
    fn write_at(&mut self, slice: Slice, dev_offset: u64) -> Result<(usize, Slice), OpError> {
        finish(self.run(Op::write(slice, dev_offset, 0)))
    }
}

/// A failed single operation ([`Queue::run`], [`Queue::read_at`],
/// [`Queue::write_at`]), with its slice when the caller owns it again.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct OpError {
    /// Why it failed.
    #[source]
    pub error: Error,
    /// The slice, returned; `None` only when the queue itself failed while
    /// waiting, in which case the operation is still in flight and a later
    /// wait (or the queue's drop) collects it.
    pub slice: Option<Slice>,
}

impl From<OpError> for Error {
    fn from(e: OpError) -> Error {
        e.error
    }
}

fn finish(r: Result<Completion, OpError>) -> Result<(usize, Slice), OpError> {
    let c = r?;
    match c.result {
        Ok(n) => Ok((n, c.slice)),
        Err(error) => Err(OpError { error, slice: Some(c.slice) }),
    }
}
