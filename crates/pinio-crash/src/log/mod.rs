//! The crash log: what [`crate::RecordDevice`] writes and the crash-state
//! generator reads.
//!
//! # Format (version 1, little endian)
//!
//! A **header**, then **records** back to back until the end of the file.
//!
//! Header:
//!
//! | bytes | field |
//! | --- | --- |
//! | 8 | magic `PINIOREC` |
//! | 4 | format version (1) |
//! | 4 | header length in bytes, this field's checksum included |
//! | 8 | device size in bytes when recording began |
//! | 4 | the device's offset alignment (`Capabilities::offset_align`) |
//! | 4 | the device's length alignment (`Capabilities::len_align`) |
//! | 1 | persistence: 0 none, 1 write-through, 2 write-back |
//! | 3 | zero |
//! | 4 | length `n` of the description |
//! | n | the recorded device's description (UTF-8, e.g. `uring:/var/tmp/kv.dat (O_DIRECT, ...)`) |
//! | 4 | CRC-32 (IEEE) of every header byte before it |
//!
//! Record: `kind` (1 byte), 3 zero bytes, payload length `len` (4 bytes),
//! `len` bytes of payload, then a CRC-32 (IEEE) of the kind, the zeros, the
//! length and the payload. A reader stops at the first record that is
//! incomplete or whose checksum fails: a log cut short by a crash of the
//! recording process is a valid log of what happened before the cut (every
//! record is appended in the order the events happened, so a prefix never
//! holds a flush's completion without the writes it covers).
//!
//! | kind | name | payload |
//! | --- | --- | --- |
//! | 1 | `BASE` | offset u64, then the bytes the device held there before recording began (only non-zero 4 KiB blocks are logged; everything else was zero) |
//! | 2 | `WRITE` | id u64, queue u32, segment count `s` u32, device offset u64, `s` segment lengths u32, then the bytes of every segment in order (segment `i` lands at the device offset plus the lengths of the segments before it) |
//! | 3 | `DONE` | id u64, result i64: the completion of write `id`, logged when the queue handed it to the application |
//! | 4 | `FLUSH` | id u64, queue u32, mode u8 (0 data, 1 all): a flush called |
//! | 5 | `FLUSHED` | id u64, result i64: that flush returned |
//! | 6 | `END` | records before it u64: the recorder was closed cleanly |
//!
//! Ids are one sequence per recorded device, shared by writes and flushes,
//! from 1. A result is the bytes transferred (`>= 0`), `-errno` for an OS
//! error, [`RESULT_OTHER`] for any other error and [`RESULT_REJECTED`] for a
//! write the queue refused at push (it never reached the device).
//! Reads are forwarded but not logged: they change nothing on the device.

mod reader;
mod writer;

pub use reader::{LogReader, ReadLog};
pub use writer::LogWriter;

/// The magic bytes at the start of a crash log.
pub const MAGIC: &[u8; 8] = b"PINIOREC";
/// The format version this crate writes and reads.
pub const VERSION: u32 = 1;
/// A result: an error that carries no OS error number.
pub const RESULT_OTHER: i64 = -100_000;
/// A result: a write the queue refused at push; it never reached the device.
pub const RESULT_REJECTED: i64 = -100_001;
/// Bytes of a record around its payload: kind, zeros, length, checksum.
pub const RECORD_OVERHEAD: usize = 12;

/// Record kinds.
pub(crate) mod kind {
    pub const BASE: u8 = 1;
    pub const WRITE: u8 = 2;
    pub const DONE: u8 = 3;
    pub const FLUSH: u8 = 4;
    pub const FLUSHED: u8 = 5;
    pub const END: u8 = 6;
}

/// What the log says about the recorded device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogHeader {
    /// Device size in bytes when recording began.
    pub device_size: u64,
    /// The device's offset alignment.
    pub offset_align: u32,
    /// The device's length alignment.
    pub len_align: u32,
    /// 0 none, 1 write-through, 2 write-back.
    pub persistence: u8,
    /// The recorded device's description.
    pub description: String,
}

impl LogHeader {
    /// The header's bytes, checksum included.
    pub fn encode(&self) -> Vec<u8> {
        let desc = self.description.as_bytes();
        let len = 8 + 4 + 4 + 8 + 4 + 4 + 4 + 4 + desc.len() + 4;
        let mut b = Vec::with_capacity(len);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&VERSION.to_le_bytes());
        b.extend_from_slice(&(len as u32).to_le_bytes());
        b.extend_from_slice(&self.device_size.to_le_bytes());
        b.extend_from_slice(&self.offset_align.to_le_bytes());
        b.extend_from_slice(&self.len_align.to_le_bytes());
        b.extend_from_slice(&[self.persistence, 0, 0, 0]);
        b.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        b.extend_from_slice(desc);
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }
}

/// One record of the log, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// Bytes the device held at `offset` before recording began.
    Base {
        /// Device offset.
        offset: u64,
        /// The bytes.
        data: Vec<u8>,
    },
    /// A write pushed to a queue.
    Write {
        /// Its id.
        id: u64,
        /// The queue it was pushed to (numbered per device from 0).
        queue: u32,
        /// Device offset of its first byte.
        dev_offset: u64,
        /// Each segment's length, in order (one for an ordinary write).
        segments: Vec<u32>,
        /// Every segment's bytes, in order.
        data: Vec<u8>,
    },
    /// A write's completion, as the application received it.
    Done {
        /// The write's id.
        id: u64,
        /// Bytes written, `-errno`, [`RESULT_OTHER`] or [`RESULT_REJECTED`].
        result: i64,
    },
    /// A flush called.
    Flush {
        /// Its id.
        id: u64,
        /// The queue it was called on.
        queue: u32,
        /// 0 data, 1 all.
        mode: u8,
    },
    /// A flush returned.
    Flushed {
        /// The flush's id.
        id: u64,
        /// 0, `-errno` or [`RESULT_OTHER`].
        result: i64,
    },
    /// The recorder closed cleanly.
    End {
        /// Records before this one.
        records: u64,
    },
}

/// The result code of an operation's outcome.
pub fn result_code(r: &pinio_core::Result<usize>) -> i64 {
    match r {
        Ok(n) => *n as i64,
        Err(e) => e.raw_os_error().map_or(RESULT_OTHER, |errno| -(errno as i64)),
    }
}

#[cfg(test)]
mod tests;
