//! The copy queue: operations run synchronously at submit.

use crate::device::Shared;
use crate::eventfd::EventFd;
use pinio_core::{Completion, Direction, DmaBuf, Error, FlushMode, Op, Queue, Rejected, Result};
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::{Arc, OnceLock};

/// A queue of a [`crate::CopyDevice`]. `submit` performs every pushed
/// operation with `pread`/`pwrite` through this queue's bounce buffer;
/// completions are ready as soon as it returns, and the event fd says so.
/// The event fd is made on the first call to [`Queue::event_fd`], so a
/// queue nobody polls pays no eventfd syscalls per operation.
pub struct CopyQueue {
    shared: Arc<Shared>,
    capacity: usize,
    pushed: VecDeque<Op>,
    done: VecDeque<Completion>,
    bounce: DmaBuf,
    event: OnceLock<Option<EventFd>>,
}

impl CopyQueue {
    pub(crate) fn new(shared: Arc<Shared>, capacity: usize) -> Result<CopyQueue> {
        let bounce = DmaBuf::new(shared.bounce_bytes)?;
        Ok(CopyQueue { shared, capacity, pushed: VecDeque::new(), done: VecDeque::new(), bounce, event: OnceLock::new() })
    }

    /// Runs one operation chunk by chunk through the bounce buffer.
    fn execute(&mut self, op: &mut Op) -> Result<usize> {
        let fd = self.shared.target.file.as_raw_fd();
        let direct = self.shared.target.direct;
        let chunk_max = self.bounce.len().min(self.shared.bounce_bytes);
        let mut done = 0usize;
        let total = op.slice.len();
        while done < total {
            let n = chunk_max.min(total - done);
            let off = op.dev_offset + done as u64;
            let got = match op.dir {
                Direction::Write => {
                    self.bounce[..n].copy_from_slice(&op.slice[done..done + n]);
                    // SAFETY: the bounce buffer holds at least n valid bytes.
                    let r = unsafe { libc::pwrite(fd, self.bounce.as_ptr().cast(), n, off as libc::off_t) };
                    if r < 0 {
                        return Err(Error::last_os(format!("pwrite of {n} bytes at {off:#x}")));
                    }
                    r as usize
                }
                Direction::Read => {
                    // SAFETY: the bounce buffer is valid for n bytes of writes
                    // and no reference to it is alive.
                    let r = unsafe { libc::pread(fd, self.bounce.as_mut_ptr().cast(), n, off as libc::off_t) };
                    if r < 0 {
                        return Err(Error::last_os(format!("pread of {n} bytes at {off:#x}")));
                    }
                    let r = r as usize;
                    op.slice[done..done + r].copy_from_slice(&self.bounce[..r]);
                    r
                }
            };
            // The bounce copy, plus the kernel's page-cache copy when buffered.
            self.shared.core.stats().copied(if direct { got } else { 2 * got } as u64);
            done += got;
            if got < n {
                break; // end of file
            }
        }
        Ok(done)
    }
}

impl Queue for CopyQueue {
    fn capacity(&self) -> usize {
        self.capacity
    }

    fn in_flight(&self) -> usize {
        self.pushed.len() + self.done.len()
    }

    fn push(&mut self, op: Op) -> std::result::Result<(), Rejected> {
        let op = self.shared.core.admit(op, self.in_flight(), self.capacity)?;
        self.pushed.push_back(op);
        Ok(())
    }

    fn submit(&mut self) -> Result<usize> {
        let n = self.pushed.len();
        while let Some(mut op) = self.pushed.pop_front() {
            let result = self.execute(&mut op);
            self.shared.core.record(op.dir, &result);
            self.done.push_back(Completion::of(op, result));
        }
        if n > 0
            && let Some(Some(e)) = self.event.get()
        {
            e.signal(n as u64);
        }
        Ok(n)
    }

    fn poll(&mut self, out: &mut Vec<Completion>) -> Result<usize> {
        let n = self.done.len();
        out.extend(self.done.drain(..));
        if let Some(Some(e)) = self.event.get() {
            e.drain();
        }
        Ok(n)
    }

    fn wait(&mut self, _min: usize, out: &mut Vec<Completion>) -> Result<usize> {
        self.submit()?;
        self.poll(out)
    }

    /// Runs what is pushed (the drain: a copy queue's operations are done
    /// when `submit` returns), then `fdatasync` ([`FlushMode::Data`]) or
    /// `fsync` ([`FlushMode::All`]) on the file.
    fn flush(&mut self, mode: FlushMode) -> Result<()> {
        self.submit()?;
        let fd = self.shared.target.file.as_raw_fd();
        let (r, what) = match mode {
            // SAFETY: fdatasync/fsync on an open descriptor; no memory is passed.
            FlushMode::Data => (unsafe { libc::fdatasync(fd) }, "fdatasync"),
            // SAFETY: as above.
            FlushMode::All => (unsafe { libc::fsync(fd) }, "fsync"),
        };
        if r < 0 {
            return Err(Error::last_os(format!("{what} {}", self.shared.target.path.display())));
        }
        Ok(())
    }

    fn event_fd(&self) -> Option<BorrowedFd<'_>> {
        let event = self.event.get_or_init(|| {
            let e = EventFd::new().ok()?;
            // Completions already waiting must make the new fd readable.
            if !self.done.is_empty() {
                e.signal(self.done.len() as u64);
            }
            Some(e)
        });
        event.as_ref().map(EventFd::fd)
    }
}
