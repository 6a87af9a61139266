//! Operations handed to a queue and the completions that hand their slices back.

use crate::{Result, Slice};
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

/// One transfer between a slice of registered memory and the device address
/// space. Pushing an `Op` moves the slice into the queue; the matching
/// [`Completion`] moves it back.
#[derive(Debug)]
pub struct Op {
    /// Which way the bytes move.
    pub dir: Direction,
    /// The memory side: `slice.len()` bytes are transferred.
    pub slice: Slice,
    /// The device side: byte offset in the device address space.
    pub dev_offset: u64,
    /// The caller's tag, returned in the completion.
    pub tag: u64,
}

impl Op {
    /// Device to memory: fill `slice` from `dev_offset`.
    pub fn read(slice: Slice, dev_offset: u64, tag: u64) -> Op {
        Op { dir: Direction::Read, slice, dev_offset, tag }
    }

    /// Memory to device: store `slice` at `dev_offset`.
    pub fn write(slice: Slice, dev_offset: u64, tag: u64) -> Op {
        Op { dir: Direction::Write, slice, dev_offset, tag }
    }
}

/// The end of an [`Op`]: its tag, its outcome and its slice, now owned by the
/// caller again.
#[derive(Debug)]
pub struct Completion {
    /// The tag the operation was pushed with.
    pub tag: u64,
    /// Its direction.
    pub dir: Direction,
    /// Its device offset.
    pub dev_offset: u64,
    /// The slice, returned. For a read, its bytes are the device's data.
    pub slice: Slice,
    /// Bytes transferred, or why the operation failed. A read may transfer
    /// fewer bytes than asked at the end of a file.
    pub result: Result<usize>,
}

impl Completion {
    /// Completes `op` with `result`.
    pub fn of(op: Op, result: Result<usize>) -> Completion {
        Completion { tag: op.tag, dir: op.dir, dev_offset: op.dev_offset, slice: op.slice, result }
    }
}
