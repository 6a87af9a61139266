//! Reading a crash log back.

use super::{LogHeader, MAGIC, RECORD_OVERHEAD, Record, VERSION, kind};
use pinio_core::{Error, Result};
use std::path::Path;

/// A crash log, read: its header, its records, and how it ends.
#[derive(Debug, Clone)]
pub struct ReadLog {
    /// The header.
    pub header: LogHeader,
    /// Every valid record, in order.
    pub records: Vec<Record>,
    /// Whether the log ends with `END` (the recorder closed cleanly).
    pub closed: bool,
    /// Why reading stopped before the end of the file, if it did (a record
    /// cut short or failing its checksum: the recording process died
    /// mid-record, or the file is damaged).
    pub tail: Option<String>,
}

/// Reads crash logs.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogReader;

fn bad(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::Unsupported {
        what: format!("{} as a crash log: {why}", path.display()),
        hint: "give the log a `record:<log>:<selection>` device wrote".into(),
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    u64_at(b, at) as i64
}

impl LogReader {
    /// Reads the log at `path`.
    pub fn read(path: &Path) -> Result<ReadLog> {
        let bytes =
            std::fs::read(path).map_err(|e| Error::io(format!("reading the crash log {}", path.display()), e))?;
        LogReader::parse(path, &bytes)
    }

    /// Parses the bytes of a log (`path` names it in errors).
    pub fn parse(path: &Path, b: &[u8]) -> Result<ReadLog> {
        if b.len() < 44 || &b[..8] != MAGIC {
            return Err(bad(path, "no PINIOREC magic at its start"));
        }
        let version = u32_at(b, 8);
        if version != VERSION {
            return Err(bad(path, format!("format version {version}; this pinio reads version {VERSION}")));
        }
        let hlen = u32_at(b, 12) as usize;
        if hlen < 44 || hlen > b.len() {
            return Err(bad(path, format!("header length {hlen} does not fit the file of {} bytes", b.len())));
        }
        if crc32fast::hash(&b[..hlen - 4]) != u32_at(b, hlen - 4) {
            return Err(bad(path, "the header's checksum does not match"));
        }
        let dlen = u32_at(b, 36) as usize;
        if 40 + dlen + 4 != hlen {
            return Err(bad(path, "the header's description length does not match its length"));
        }
        let header = LogHeader {
            device_size: u64_at(b, 16),
            offset_align: u32_at(b, 24),
            len_align: u32_at(b, 28),
            persistence: b[32],
            description: String::from_utf8_lossy(&b[40..40 + dlen]).into_owned(),
        };
        let mut records = Vec::new();
        let (mut at, mut closed, mut tail) = (hlen, false, None);
        while at < b.len() {
            if closed {
                tail = Some(format!("bytes after the END record at byte {at}"));
                break;
            }
            if b.len() - at < RECORD_OVERHEAD {
                tail = Some(format!("a record cut short at byte {at}"));
                break;
            }
            let k = b[at];
            let len = u32_at(b, at + 4) as usize;
            if b.len() - at - RECORD_OVERHEAD < len {
                tail = Some(format!("a record of {len} bytes cut short at byte {at}"));
                break;
            }
            let body = &b[at..at + 8 + len];
            if crc32fast::hash(body) != u32_at(b, at + 8 + len) {
                tail = Some(format!("a record failing its checksum at byte {at}"));
                break;
            }
            let p = &body[8..];
            let r = match decode(k, p) {
                Some(r) => r,
                None => {
                    tail = Some(format!("a malformed record (kind {k}, {len} bytes) at byte {at}"));
                    break;
                }
            };
            closed = matches!(r, Record::End { .. });
            records.push(r);
            at += len + RECORD_OVERHEAD;
        }
        Ok(ReadLog { header, records, closed, tail })
    }
}

fn decode(k: u8, p: &[u8]) -> Option<Record> {
    Some(match k {
        kind::BASE if p.len() >= 8 => Record::Base { offset: u64_at(p, 0), data: p[8..].to_vec() },
        kind::WRITE if p.len() >= 24 => {
            let (id, queue, n, dev_offset) = (u64_at(p, 0), u32_at(p, 8), u32_at(p, 12) as usize, u64_at(p, 16));
            let lens_end = 24usize.checked_add(n.checked_mul(4)?)?;
            if p.len() < lens_end {
                return None;
            }
            let segments: Vec<u32> = (0..n).map(|i| u32_at(p, 24 + 4 * i)).collect();
            let total: u64 = segments.iter().map(|&s| s as u64).sum();
            if (p.len() - lens_end) as u64 != total {
                return None;
            }
            Record::Write { id, queue, dev_offset, segments, data: p[lens_end..].to_vec() }
        }
        kind::DONE if p.len() == 16 => Record::Done { id: u64_at(p, 0), result: i64_at(p, 8) },
        kind::FLUSH if p.len() == 13 => Record::Flush { id: u64_at(p, 0), queue: u32_at(p, 8), mode: p[12] },
        kind::FLUSHED if p.len() == 16 => Record::Flushed { id: u64_at(p, 0), result: i64_at(p, 8) },
        kind::END if p.len() == 8 => Record::End { records: u64_at(p, 0) },
        _ => return None,
    })
}
