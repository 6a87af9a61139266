//! Appending records to a crash log, from any thread.

use super::{LogHeader, RECORD_OVERHEAD, kind};
use pinio_core::{Error, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The log of one recorded device, shared by its queues. Records are
/// appended under one lock, in the order the events happened, through a
/// 1 MiB buffer that goes to the file at every flush's completion and when
/// the writer is dropped (then an `END` record closes the log).
///
/// The first failure to write the log is kept: every later append reports
/// it (the recorder then refuses operations rather than run unrecorded).
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    out: BufWriter<File>,
    records: u64,
    bytes: u64,
    failed: Option<(Option<i32>, String)>,
}

impl LogWriter {
    /// Creates (or truncates) the log at `path` and writes its header.
    pub fn create(path: &Path, header: &LogHeader) -> Result<LogWriter> {
        let file =
            File::create(path).map_err(|e| Error::io(format!("creating the crash log {}", path.display()), e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let h = header.encode();
        out.write_all(&h).map_err(|e| Error::io(format!("writing the crash log {}", path.display()), e))?;
        let state = State { out, records: 0, bytes: h.len() as u64, failed: None };
        Ok(LogWriter { path: path.to_path_buf(), state: Mutex::new(state) })
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records and bytes appended so far (the header counts as bytes).
    pub fn written(&self) -> (u64, u64) {
        let s = self.lock();
        (s.records, s.bytes)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves at worst a torn last
        // record, which readers drop: carry on.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one record whose payload is `parts`, in order.
    pub(crate) fn append(&self, kind: u8, parts: &[&[u8]]) -> Result<()> {
        let mut s = self.lock();
        self.append_locked(&mut s, kind, parts)
    }

    fn append_locked(&self, s: &mut State, kind: u8, parts: &[&[u8]]) -> Result<()> {
        if let Some((errno, msg)) = &s.failed {
            return Err(self.failure(*errno, msg));
        }
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let Ok(len32) = u32::try_from(len) else {
            return Err(Error::Unsupported {
                what: format!("a crash-log record of {len} bytes"),
                hint: "records hold at most 4 GiB".into(),
            });
        };
        let mut head = [0u8; 8];
        head[0] = kind;
        head[4..8].copy_from_slice(&len32.to_le_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&head);
        for p in parts {
            crc.update(p);
        }
        let sum = crc.finalize().to_le_bytes();
        let r = (|| {
            s.out.write_all(&head)?;
            for p in parts {
                s.out.write_all(p)?;
            }
            s.out.write_all(&sum)
        })();
        match r {
            Ok(()) => {
                s.records += 1;
                s.bytes += (len + RECORD_OVERHEAD) as u64;
                Ok(())
            }
            Err(e) => Err(self.fail(s, e)),
        }
    }

    fn fail(&self, s: &mut State, e: std::io::Error) -> Error {
        let msg = e.to_string();
        s.failed = Some((e.raw_os_error(), msg));
        Error::io(format!("writing the crash log {} (recording stopped)", self.path.display()), e)
    }

    fn failure(&self, errno: Option<i32>, msg: &str) -> Error {
        let source = match errno {
            Some(n) => std::io::Error::from_raw_os_error(n),
            None => std::io::Error::other(msg.to_string()),
        };
        Error::io(format!("the crash log {} failed earlier ({msg}); recording stopped", self.path.display()), source)
    }

    /// Hands the buffered records to the file (not `fsync`: the log must
    /// survive the recorded process, not the machine).
    pub fn sync(&self) -> Result<()> {
        let mut s = self.lock();
        if let Some((errno, msg)) = &s.failed {
            return Err(self.failure(*errno, msg));
        }
        match s.out.flush() {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(&mut s, e)),
        }
    }

    /// Appends a `WRITE` record: `segments` are the bytes of each segment.
    pub(crate) fn write(&self, id: u64, queue: u32, dev_offset: u64, segments: &[&[u8]]) -> Result<()> {
        let mut fixed = Vec::with_capacity(24 + 4 * segments.len());
        fixed.extend_from_slice(&id.to_le_bytes());
        fixed.extend_from_slice(&queue.to_le_bytes());
        fixed.extend_from_slice(&(segments.len() as u32).to_le_bytes());
        fixed.extend_from_slice(&dev_offset.to_le_bytes());
        for s in segments {
            fixed.extend_from_slice(&(s.len() as u32).to_le_bytes());
        }
        let mut parts: Vec<&[u8]> = Vec::with_capacity(1 + segments.len());
        parts.push(&fixed);
        parts.extend_from_slice(segments);
        self.append(kind::WRITE, &parts)
    }

    /// Appends `DONE` records of a batch of completions under one lock.
    pub(crate) fn done_many(&self, done: &[(u64, i64)]) -> Result<()> {
        if done.is_empty() {
            return Ok(());
        }
        let mut s = self.lock();
        for (id, result) in done {
            let mut p = [0u8; 16];
            p[..8].copy_from_slice(&id.to_le_bytes());
            p[8..].copy_from_slice(&result.to_le_bytes());
            self.append_locked(&mut s, kind::DONE, &[&p])?;
        }
        Ok(())
    }

    /// Appends a `FLUSH` record.
    pub(crate) fn flush_start(&self, id: u64, queue: u32, mode: u8) -> Result<()> {
        let mut p = [0u8; 13];
        p[..8].copy_from_slice(&id.to_le_bytes());
        p[8..12].copy_from_slice(&queue.to_le_bytes());
        p[12] = mode;
        self.append(kind::FLUSH, &[&p])
    }

    /// Appends a `FLUSHED` record and hands the buffer to the file.
    pub(crate) fn flushed(&self, id: u64, result: i64) -> Result<()> {
        let mut p = [0u8; 16];
        p[..8].copy_from_slice(&id.to_le_bytes());
        p[8..].copy_from_slice(&result.to_le_bytes());
        self.append(kind::FLUSHED, &[&p])?;
        self.sync()
    }

    /// Appends a `BASE` record.
    pub(crate) fn base(&self, offset: u64, data: &[u8]) -> Result<()> {
        self.append(kind::BASE, &[&offset.to_le_bytes(), data])
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        let mut s = self.lock();
        if s.failed.is_none() {
            let records = s.records.to_le_bytes();
            let _ = self.append_locked(&mut s, kind::END, &[&records]);
            let _ = s.out.flush();
        }
    }
}
