//! [`ReadWriteV`]: the future of a vectored read or write.

use super::{AsyncQueue, OpFuture};
use crate::{Error, Op, OpError, Result, Slice};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The future of [`AsyncQueue::readv_at`] and [`AsyncQueue::writev_at`]:
/// resolves to the bytes moved and every slice, in order, as the blocking
/// [`Queue::readv_at`](crate::Queue::readv_at) does; on failure the
/// [`OpError`] hands every slice back (`slice` and `rest`). Dropped
/// mid-flight, the operation's slices stay with the queue until the device
/// is done with all of them, then are dropped.
#[must_use = "futures do nothing unless polled"]
pub struct ReadWriteV(State);

enum State {
    Running(OpFuture),
    /// Refused before it was built (an empty slice vector).
    Refused(Option<Error>),
}

impl ReadWriteV {
    pub(super) fn new(q: &AsyncQueue, op: Result<Op>) -> ReadWriteV {
        ReadWriteV(match op {
            Ok(op) => State::Running(q.run(op)),
            Err(e) => State::Refused(Some(e)),
        })
    }
}

impl Future for ReadWriteV {
    type Output = std::result::Result<(usize, Vec<Slice>), OpError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            State::Running(f) => Pin::new(f).poll(cx).map(|r| {
                let c = r?;
                match c.result {
                    Ok(n) => Ok((n, c.into_slices())),
                    Err(error) => Err(OpError { error, slice: Some(c.slice), rest: c.rest.into_vec() }),
                }
            }),
            State::Refused(e) => {
                let error = e.take().expect("ReadWriteV polled after it resolved");
                Poll::Ready(Err(OpError::no_slices(error)))
            }
        }
    }
}

impl std::fmt::Debug for ReadWriteV {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            State::Running(_) => "ReadWriteV(running)",
            State::Refused(_) => "ReadWriteV(refused)",
        })
    }
}
