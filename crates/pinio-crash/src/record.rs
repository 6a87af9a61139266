//! The recording wrapper: `record:<log>:<selection>`.

use crate::log::{LogHeader, LogWriter, RESULT_OTHER, RESULT_REJECTED, result_code};
use crate::tags::TagTable;
use pinio_core::{
    Completion, Device, DeviceCore, Direction, Error, FlushMode, FlushProgress, Op, Persistence, Queue, Rejected,
    Result,
};
use std::os::fd::BorrowedFd;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// A device that forwards every operation to another and logs, in a crash
/// log ([`crate::log`]), the device's contents when recording began, every
/// write's bytes and device offset when it is pushed, every write's
/// completion when the application receives it, and every flush's call and
/// return, in the order they happened.
///
/// It is the inner device as far as the application can tell: the same id,
/// domain, capabilities and statistics (it hands out the inner device's
/// [`DeviceCore`]), so regions registered through it are the inner
/// device's. Reads are forwarded without being logged.
///
/// Cost: one copy of every written byte into the log's buffer (and its
/// CRC-32) under a lock, on the thread that pushes; see docs/reliability.md
/// for the measured overhead.
pub struct RecordDevice {
    inner: Box<dyn Device>,
    shared: Arc<Shared>,
    base_bytes: u64,
}

struct Shared {
    log: LogWriter,
    /// Ids of writes and flushes, one sequence per device.
    next_id: AtomicU64,
    next_queue: AtomicU32,
}

impl std::fmt::Debug for RecordDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordDevice")
            .field("inner", &self.inner.describe())
            .field("log", &self.shared.log.path())
            .finish()
    }
}

impl RecordDevice {
    /// Starts recording `inner` into a new log at `log` (created, or
    /// truncated): writes the header, then reads the whole device and logs
    /// its non-zero 4 KiB blocks (the base snapshot, one read pass; a file
    /// just created or truncated reads as holes, which costs little).
    pub fn new(inner: Box<dyn Device>, log: &Path) -> Result<RecordDevice> {
        let caps = inner.capabilities();
        let header = LogHeader {
            device_size: inner.size(),
            offset_align: caps.offset_align.min(u32::MAX as u64) as u32,
            len_align: caps.len_align.min(u32::MAX as u64) as u32,
            persistence: match caps.persistence {
                Persistence::None => 0,
                Persistence::WriteThrough => 1,
                Persistence::WriteBack => 2,
            },
            description: inner.describe(),
        };
        let writer = LogWriter::create(log, &header)?;
        let base_bytes = crate::snapshot::snapshot(&*inner, &writer)?;
        writer.sync()?;
        let shared = Arc::new(Shared { log: writer, next_id: AtomicU64::new(1), next_queue: AtomicU32::new(0) });
        Ok(RecordDevice { inner, shared, base_bytes })
    }

    /// The log's path.
    pub fn log_path(&self) -> &Path {
        self.shared.log.path()
    }

    /// Bytes of the base snapshot logged (the non-zero blocks).
    pub fn base_bytes(&self) -> u64 {
        self.base_bytes
    }

    /// Records and bytes logged so far.
    pub fn logged(&self) -> (u64, u64) {
        self.shared.log.written()
    }

    /// The recorded device.
    pub fn inner(&self) -> &dyn Device {
        &*self.inner
    }
}

impl Device for RecordDevice {
    fn core(&self) -> &DeviceCore {
        self.inner.core()
    }

    fn describe(&self) -> String {
        format!("record:{}:{}", self.shared.log.path().display(), self.inner.describe())
    }

    fn queue(&self, depth: usize) -> Result<Box<dyn Queue>> {
        let inner = self.inner.queue(depth)?;
        let id = self.shared.next_queue.fetch_add(1, Ordering::Relaxed);
        Ok(Box::new(RecordQueue {
            inner,
            shared: self.shared.clone(),
            id,
            ops: TagTable::new(),
            done: Vec::new(),
            started: None,
        }))
    }
}

/// What a recording queue knows of an operation in flight.
struct Pending {
    /// The application's tag.
    tag: u64,
    /// The write's id; 0 for a read.
    id: u64,
}

/// A queue of a [`RecordDevice`].
struct RecordQueue {
    inner: Box<dyn Queue>,
    shared: Arc<Shared>,
    id: u32,
    ops: TagTable<Pending>,
    done: Vec<(u64, i64)>,
    /// The id of a flush started with `start_flush` and not yet seen done.
    started: Option<u64>,
}

/// The result code of a flush's outcome.
fn flush_code(r: &Result<impl Sized>) -> i64 {
    match r {
        Ok(_) => 0,
        Err(e) => error_code(e),
    }
}

fn error_code(e: &Error) -> i64 {
    e.raw_os_error().map_or(RESULT_OTHER, |errno| -(errno as i64))
}

impl RecordQueue {
    /// Gives the completions from `start` on their tags back and logs the
    /// writes among them.
    fn finish(&mut self, out: &mut [Completion]) {
        self.done.clear();
        for c in out.iter_mut() {
            if let Some(p) = self.ops.remove(c.tag) {
                c.tag = p.tag;
                if p.id != 0 {
                    self.done.push((p.id, result_code(&c.result)));
                }
            }
        }
        // A failed log keeps its error and refuses the next push or flush;
        // the completions themselves go to the application regardless.
        let _ = self.shared.log.done_many(&self.done);
    }
}

impl Queue for RecordQueue {
    fn capacity(&self) -> usize {
        self.inner.capacity()
    }

    fn in_flight(&self) -> usize {
        self.inner.in_flight()
    }

    fn push(&mut self, mut op: Op) -> Result<(), Rejected> {
        let id = if op.dir == Direction::Write {
            let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
            let segs: Vec<&[u8]> = op.segments().map(|s| &s[..]).collect();
            if let Err(error) = self.shared.log.write(id, self.id, op.dev_offset, &segs) {
                return Err(Rejected { error, op });
            }
            id
        } else {
            0
        };
        op.tag = self.ops.insert(Pending { tag: op.tag, id });
        match self.inner.push(op) {
            Ok(()) => Ok(()),
            Err(mut r) => {
                if let Some(p) = self.ops.remove(r.op.tag) {
                    r.op.tag = p.tag;
                }
                if id != 0 {
                    let _ = self.shared.log.done_many(&[(id, RESULT_REJECTED)]);
                }
                Err(r)
            }
        }
    }

    fn submit(&mut self) -> Result<usize> {
        self.inner.submit()
    }

    fn poll(&mut self, out: &mut Vec<Completion>) -> Result<usize> {
        let start = out.len();
        let r = self.inner.poll(out);
        self.finish(&mut out[start..]);
        r
    }

    fn wait(&mut self, min: usize, out: &mut Vec<Completion>) -> Result<usize> {
        let start = out.len();
        let r = self.inner.wait(min, out);
        self.finish(&mut out[start..]);
        r
    }

    fn flush(&mut self, mode: FlushMode) -> Result<()> {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        self.shared.log.flush_start(id, self.id, if mode == FlushMode::All { 1 } else { 0 })?;
        let r = self.inner.flush(mode);
        let logged = self.shared.log.flushed(id, flush_code(&r));
        r?;
        logged
    }

    fn start_flush(&mut self, mode: FlushMode) -> Result<FlushProgress> {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        self.shared.log.flush_start(id, self.id, if mode == FlushMode::All { 1 } else { 0 })?;
        let r = self.inner.start_flush(mode);
        match &r {
            Ok(FlushProgress::Running) => self.started = Some(id),
            Ok(FlushProgress::Done) | Err(_) => self.shared.log.flushed(id, flush_code(&r))?,
        }
        r
    }

    fn poll_flush(&mut self) -> Result<FlushProgress> {
        let r = self.inner.poll_flush();
        if let Some(id) = self.started
            && !matches!(r, Ok(FlushProgress::Running))
        {
            self.started = None;
            self.shared.log.flushed(id, flush_code(&r))?;
        }
        r
    }

    fn event_fd(&self) -> Option<BorrowedFd<'_>> {
        self.inner.event_fd()
    }
}
