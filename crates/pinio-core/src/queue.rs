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

/// How a flush started with [`Queue::start_flush`] is going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlushProgress {
    /// It finished successfully: [`Queue::flush`]'s contract holds for the
    /// writes it covers.
    Done,
    /// It is still running: ask [`Queue::poll_flush`] again after the
    /// queue's completion fd signals (at once, for a queue without one).
    Running,
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

    /// Pushes the operations `ops` yields, in order, as [`Queue::push`]
    /// would one at a time (the same checks, the same errors); returns how
    /// many it pushed. At the first refusal it stops: the operations before
    /// it stay pushed, the refused one comes back inside the error, and
    /// those after it are not taken from `ops` (the caller still owns them).
    ///
    /// The default calls [`Queue::push`] for each. A backend may do better:
    /// the uring queue publishes the whole batch to its submission ring with
    /// one tail update (and `UringQueue::push_batch` takes any iterator,
    /// inlined, when the caller holds the concrete queue).
    ///
    /// ```no_run
    /// # use pinio_core::{Completion, Op, Queue};
    /// # fn refill(q: &mut dyn Queue, out: &mut Vec<Completion>, next: &mut impl FnMut() -> u64) -> pinio_core::Result<()> {
    /// // Reap into a reused vector, then push one read per completed slice.
    /// q.wait(1, out)?;
    /// let mut ops = out.drain(..).map(|c| Op::read(c.slice, next(), c.tag));
    /// q.push_batch(&mut ops).map_err(|r| r.error)?;
    /// # Ok(()) }
    /// ```
    fn push_batch(&mut self, ops: &mut dyn Iterator<Item = Op>) -> Result<usize, Rejected> {
        let mut pushed = 0;
        for op in ops {
            self.push(op)?;
            pushed += 1;
        }
        Ok(pushed)
    }

    /// Hands every pushed operation to the device; returns how many.
    fn submit(&mut self) -> Result<usize>;

    /// Moves finished operations into `out` without blocking; returns how
    /// many. Completions are appended to the caller's vector, which it
    /// reuses from call to call (drained, or cleared): reaping a batch
    /// allocates nothing once the vector has grown to the queue's depth.
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

    /// Starts a flush with [`Queue::flush`]'s contract (for the writes
    /// completed before the call and those pushed to this queue before it)
    /// and returns without waiting for it where the backend can: for event
    /// loops and async code ([`crate::aio::AsyncQueue::flush`]). Its end is
    /// reported by [`Queue::poll_flush`]; completions of other operations
    /// found meanwhile wait for the next [`Queue::poll`] or [`Queue::wait`].
    /// One started flush at a time: start the next after this one is done.
    ///
    /// The default runs [`Queue::flush`] here, blocking, and reports
    /// [`FlushProgress::Done`]; the uring backend submits its `FSYNC` and
    /// returns [`FlushProgress::Running`].
    fn start_flush(&mut self, mode: FlushMode) -> Result<FlushProgress> {
        self.flush(mode).map(|()| FlushProgress::Done)
    }

    /// Looks, without blocking, whether the flush started with
    /// [`Queue::start_flush`] has finished: [`FlushProgress::Done`] (also
    /// when none is running), [`FlushProgress::Running`], or its error
    /// (then, as for [`Queue::flush`], nothing is promised).
    fn poll_flush(&mut self) -> Result<FlushProgress> {
        Ok(FlushProgress::Done)
    }

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
            return Err(OpError::of_op(error, op));
        }
        self.push(op).map_err(|r| OpError::of_op(r.error, r.op))?;
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
                Err(error) => return Err(OpError::no_slices(error)),
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

    /// Reads the device range at `dev_offset` into `slices`, in order, as
    /// one vectored operation ([`Op::readv`]), and waits; returns the bytes
    /// read and the slices.
    fn readv_at(&mut self, slices: Vec<Slice>, dev_offset: u64) -> Result<(usize, Vec<Slice>), OpError> {
        finish_vectored(self.run(Op::readv(slices, dev_offset, 0).map_err(OpError::no_slices)?))
    }

    /// Writes `slices`, in order, at `dev_offset` as one vectored operation
    /// ([`Op::writev`]), and waits; returns the bytes written and the
    /// slices.
    fn writev_at(&mut self, slices: Vec<Slice>, dev_offset: u64) -> Result<(usize, Vec<Slice>), OpError> {
        finish_vectored(self.run(Op::writev(slices, dev_offset, 0).map_err(OpError::no_slices)?))
    }
}

/// A failed single operation ([`Queue::run`], [`Queue::read_at`],
/// [`Queue::write_at`], [`Queue::readv_at`], ...), with its slices when the
/// caller owns them again.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct OpError {
    /// Why it failed.
    #[source]
    pub error: Error,
    /// The slice, returned (the first of a vectored operation); `None` only
    /// when the queue itself failed while waiting, in which case the
    /// operation is still in flight and a later wait (or the queue's drop)
    /// collects it, or when a vectored operation was built from no slices.
    pub slice: Option<Slice>,
    /// The further slices of a vectored operation, returned in order (empty
    /// whenever `slice` is `None`).
    pub rest: Vec<Slice>,
}

impl OpError {
    /// `error`, handing back every slice of `op`.
    pub fn of_op(error: Error, op: Op) -> OpError {
        OpError { error, slice: Some(op.slice), rest: op.rest.into_vec() }
    }

    /// `error`, handing back one slice.
    pub fn with_slice(error: Error, slice: Slice) -> OpError {
        OpError { error, slice: Some(slice), rest: Vec::new() }
    }

    /// `error` with no slice to hand back: the operation is still in flight
    /// (the queue owns its slices), or it had none (an empty slice vector).
    pub fn no_slices(error: Error) -> OpError {
        OpError { error, slice: None, rest: Vec::new() }
    }

    /// Every slice handed back, in order.
    pub fn into_slices(self) -> Vec<Slice> {
        self.slice.into_iter().chain(self.rest).collect()
    }
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
        Err(error) => Err(OpError::with_slice(error, c.slice)),
    }
}

fn finish_vectored(r: Result<Completion, OpError>) -> Result<(usize, Vec<Slice>), OpError> {
    let c = r?;
    match c.result {
        Ok(n) => Ok((n, join(c.slice, c.rest))),
        Err(error) => Err(OpError { error, slice: Some(c.slice), rest: c.rest.into_vec() }),
    }
}

fn join(first: Slice, rest: crate::SliceTail) -> Vec<Slice> {
    let mut all = rest.into_vec();
    all.insert(0, first);
    all
}
