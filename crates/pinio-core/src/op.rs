//! Operations handed to a queue and the completions that hand their slices back.

use crate::{Error, Result, Slice};
use std::fmt;

/// Which way bytes move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Device to memory: the device writes the slice.
    Read,
    /// Memory to device: the device reads the slice.
    Write,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Read => "read (device to memory)",
            Direction::Write => "write (memory to device)",
        })
    }
}

/// One transfer between registered memory and the device address space.
/// Pushing an `Op` moves its slices into the queue; the matching
/// [`Completion`] moves them back.
///
/// An ordinary operation moves one slice (`rest` is empty, which costs no
/// allocation). A *vectored* operation ([`Op::readv`], [`Op::writev`]) moves
/// several slices, of any regions of the device's domain, to or from one
/// contiguous range of the device address space: `slice` first, then each
/// slice of `rest` in order, like `preadv`/`pwritev`. Whether a backend runs
/// it as one device command, splits it, or refuses it is
/// [`Capabilities::vectored`](crate::Capabilities::vectored).
#[derive(Debug)]
pub struct Op {
    /// Which way the bytes move.
    pub dir: Direction,
    /// The memory side (the first segment of a vectored operation).
    pub slice: Slice,
    /// The device side: byte offset in the device address space.
    pub dev_offset: u64,
    /// The caller's tag, returned in the completion.
    pub tag: u64,
    /// The further segments of a vectored operation, in order; empty for an
    /// ordinary one.
    pub rest: Vec<Slice>,
}

impl Op {
    /// An ordinary (one-slice) operation.
    #[inline]
    pub fn new(dir: Direction, slice: Slice, dev_offset: u64, tag: u64) -> Op {
        Op { dir, slice, dev_offset, tag, rest: Vec::new() }
    }

    /// Device to memory: fill `slice` from `dev_offset`.
    #[inline]
    pub fn read(slice: Slice, dev_offset: u64, tag: u64) -> Op {
        Op::new(Direction::Read, slice, dev_offset, tag)
    }

    /// Memory to device: store `slice` at `dev_offset`.
    #[inline]
    pub fn write(slice: Slice, dev_offset: u64, tag: u64) -> Op {
        Op::new(Direction::Write, slice, dev_offset, tag)
    }

    /// A vectored operation over `slices` (in order) and the device range
    /// starting at `dev_offset`. An empty vector is refused with
    /// [`Error::ZeroLength`] (it holds nothing to hand back); a vector of
    /// one slice is an ordinary operation.
    pub fn vectored(dir: Direction, slices: Vec<Slice>, dev_offset: u64, tag: u64) -> Result<Op> {
        let mut rest = slices;
        if rest.is_empty() {
            return Err(Error::ZeroLength { what: "the slice vector of a vectored operation" });
        }
        let slice = rest.remove(0);
        Ok(Op { dir, slice, dev_offset, tag, rest })
    }

    /// Device to memory, vectored: fill `slices` in order from the device
    /// range starting at `dev_offset` (`preadv`).
    pub fn readv(slices: Vec<Slice>, dev_offset: u64, tag: u64) -> Result<Op> {
        Op::vectored(Direction::Read, slices, dev_offset, tag)
    }

    /// Memory to device, vectored: store `slices` in order at `dev_offset`
    /// (`pwritev`).
    pub fn writev(slices: Vec<Slice>, dev_offset: u64, tag: u64) -> Result<Op> {
        Op::vectored(Direction::Write, slices, dev_offset, tag)
    }

    /// Whether the operation has more than one segment.
    #[inline]
    pub fn is_vectored(&self) -> bool {
        !self.rest.is_empty()
    }

    /// Its segments, in order: `slice`, then `rest`.
    pub fn segments(&self) -> impl Iterator<Item = &Slice> + '_ {
        std::iter::once(&self.slice).chain(self.rest.iter())
    }

    /// Its segments, in order, mutably.
    pub fn segments_mut(&mut self) -> impl Iterator<Item = &mut Slice> + '_ {
        std::iter::once(&mut self.slice).chain(self.rest.iter_mut())
    }

    /// How many segments it has (1 for an ordinary operation).
    #[inline]
    pub fn segment_count(&self) -> usize {
        1 + self.rest.len()
    }

    /// Bytes it moves: the sum of its segments' lengths.
    #[inline]
    pub fn len(&self) -> usize {
        self.slice.len() + self.rest.iter().map(Slice::len).sum::<usize>()
    }

    /// Whether it moves no bytes (never, for an operation a queue admitted).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every slice, in order (for a caller taking a refused operation apart).
    pub fn into_slices(self) -> Vec<Slice> {
        join(self.slice, self.rest)
    }
}

/// `first` followed by `rest`, as one vector.
fn join(first: Slice, mut rest: Vec<Slice>) -> Vec<Slice> {
    rest.insert(0, first);
    rest
}

/// The end of an [`Op`]: its tag, its outcome and its slices, now owned by
/// the caller again.
#[derive(Debug)]
pub struct Completion {
    /// The tag the operation was pushed with.
    pub tag: u64,
    /// Its direction.
    pub dir: Direction,
    /// Its device offset.
    pub dev_offset: u64,
    /// The slice, returned (the first segment of a vectored operation). For
    /// a read, its bytes are the device's data.
    pub slice: Slice,
    /// Bytes transferred, or why the operation failed. A read may transfer
    /// fewer bytes than asked at the end of a file; a vectored one then
    /// filled its segments in order up to that count, as `preadv` does.
    pub result: Result<usize>,
    /// The further segments of a vectored operation, returned in order;
    /// empty for an ordinary one.
    pub rest: Vec<Slice>,
}

impl Completion {
    /// Completes `op` with `result`.
    #[inline]
    pub fn of(op: Op, result: Result<usize>) -> Completion {
        Completion { tag: op.tag, dir: op.dir, dev_offset: op.dev_offset, slice: op.slice, result, rest: op.rest }
    }

    /// Its segments, in order: `slice`, then `rest`.
    pub fn segments(&self) -> impl Iterator<Item = &Slice> + '_ {
        std::iter::once(&self.slice).chain(self.rest.iter())
    }

    /// Every slice, in order.
    pub fn into_slices(self) -> Vec<Slice> {
        join(self.slice, self.rest)
    }
}
