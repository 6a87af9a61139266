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
/// An ordinary operation moves one slice (`rest` is empty: a null pointer,
/// no allocation, so an `Op` is 56 bytes). A *vectored* operation ([`Op::readv`], [`Op::writev`]) moves
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
    pub rest: SliceTail,
}

impl Op {
    /// An ordinary (one-slice) operation.
    #[inline]
    pub fn new(dir: Direction, slice: Slice, dev_offset: u64, tag: u64) -> Op {
        Op { dir, slice, dev_offset, tag, rest: SliceTail::new() }
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
        Ok(Op { dir, slice, dev_offset, tag, rest: SliceTail::from(rest) })
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
fn join(first: Slice, rest: SliceTail) -> Vec<Slice> {
    let mut all = rest.into_vec();
    all.insert(0, first);
    all
}

/// The further segments of a vectored [`Op`] or [`Completion`] (those after
/// its first slice), kept out of line: one pointer, null when there are
/// none, so that the ordinary one-slice operation carries 8 bytes for them
/// instead of a 24-byte `Vec` and moving or dropping it costs a null test.
///
/// It reads as a `[Slice]` (`len`, `iter`, indexing) and converts from and
/// into a `Vec<Slice>`.
#[derive(Debug, Default)]
// A boxed `Vec` on purpose: a thin pointer (8 bytes with a null niche),
// where a `Vec` is 24 and a `Box<[Slice]>` 16 on every one-slice operation.
#[allow(clippy::box_collection)]
pub struct SliceTail(Option<Box<Vec<Slice>>>);

impl SliceTail {
    /// No further segments (no allocation).
    #[inline]
    pub const fn new() -> SliceTail {
        SliceTail(None)
    }

    /// Whether there are none (a null test).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The segments, as one vector (empty when there are none).
    pub fn into_vec(self) -> Vec<Slice> {
        match self.0 {
            Some(v) => *v,
            None => Vec::new(),
        }
    }

    /// Appends `slice` as the last segment.
    pub fn push(&mut self, slice: Slice) {
        self.0.get_or_insert_with(Box::default).push(slice);
    }
}

impl From<Vec<Slice>> for SliceTail {
    /// Keeps `v` out of line; an empty vector becomes the null tail.
    fn from(v: Vec<Slice>) -> SliceTail {
        if v.is_empty() { SliceTail(None) } else { SliceTail(Some(Box::new(v))) }
    }
}

impl From<SliceTail> for Vec<Slice> {
    fn from(t: SliceTail) -> Vec<Slice> {
        t.into_vec()
    }
}

impl std::ops::Deref for SliceTail {
    type Target = [Slice];
    #[inline]
    fn deref(&self) -> &[Slice] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }
}

impl std::ops::DerefMut for SliceTail {
    #[inline]
    fn deref_mut(&mut self) -> &mut [Slice] {
        self.0.as_deref_mut().map_or(&mut [], Vec::as_mut_slice)
    }
}

impl IntoIterator for SliceTail {
    type Item = Slice;
    type IntoIter = std::vec::IntoIter<Slice>;
    fn into_iter(self) -> Self::IntoIter {
        self.into_vec().into_iter()
    }
}

impl<'a> IntoIterator for &'a SliceTail {
    type Item = &'a Slice;
    type IntoIter = std::slice::Iter<'a, Slice>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
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
    pub rest: SliceTail,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-slice path moves these by value through every queue: the
    /// vectored tail must stay one nullable pointer.
    #[test]
    fn the_tail_is_one_pointer() {
        assert_eq!(std::mem::size_of::<SliceTail>(), std::mem::size_of::<usize>());
        assert_eq!(std::mem::size_of::<Op>(), 56);
        assert_eq!(std::mem::size_of::<Completion>(), 112);
        assert!(SliceTail::from(Vec::new()).is_empty());
        assert_eq!(SliceTail::new().len(), 0);
    }
}
