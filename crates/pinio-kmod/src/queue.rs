//! The kmod queue: descriptors submitted to the module's DMA engine, completions reaped from
//! its completion queue.

use crate::KmodError;
use crate::abi::{self, CompletionRecord, Desc};
use crate::channel::Window;
use crate::error::backend;
use crate::router::{self, Router};
use crate::shared::Shared;
use crate::sys::PinioFd;
use crate::wakeup::{CompletionFd, Mailbox};
use pinio_core::{Completion, Direction, Error, FlushMode, Op, Queue, Registration, Rejected, Result, Tally};
use std::collections::{HashMap, VecDeque};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

/// A queue of a [`crate::KmodDevice`] (one channel), owned by one thread.
///
/// `submit` hands the pushed operations to the module in batches (`PINIO_IOC_SUBMIT`, all or
/// nothing per batch), device offsets moved to the channel's window; the module's worker copies
/// between the pinned pages and device memory; `poll`/`wait` collect completion records
/// (`PINIO_IOC_REAP`). The queues of every channel of a session share the module's completion
/// queue and sort its records by queue id. When the session's `queue_depth` descriptors are
/// outstanding, `submit` reaps (filing records for their queues) until the batch fits. Dropping
/// the queue waits for its operations in flight.
pub struct KmodQueue {
    shared: Arc<Shared>,
    id: u32,
    capacity: usize,
    pushed: VecDeque<Op>,
    in_flight: HashMap<u32, Op>,
    /// Completions ready for the caller (including operations whose submission failed).
    done: VecDeque<Completion>,
    next_local: u32,
    records: Vec<CompletionRecord>,
    /// Raised when another queue files records for this one.
    mailbox: Arc<Mailbox>,
    /// What [`Queue::event_fd`] returns: readable when the module or the mailbox is.
    completion_fd: CompletionFd,
}

impl KmodQueue {
    pub(crate) fn new(shared: Arc<Shared>, capacity: usize) -> Result<KmodQueue> {
        let mailbox = Arc::new(Mailbox::new()?);
        let completion_fd = CompletionFd::new(shared.session.fd.as_fd(), &mailbox)?;
        let id = shared.session.router.add_queue(mailbox.clone());
        Ok(KmodQueue {
            shared,
            id,
            mailbox,
            completion_fd,
            capacity,
            pushed: VecDeque::new(),
            in_flight: HashMap::new(),
            done: VecDeque::new(),
            next_local: 0,
            records: Vec::new(),
        })
    }

    fn router(&self) -> &Router {
        &self.shared.session.router
    }

    fn fd(&self) -> &PinioFd {
        &self.shared.session.fd
    }

    /// Turns collected records into completions.
    fn complete_records(&mut self) {
        let mut tally = Tally::default();
        for r in std::mem::take(&mut self.records) {
            let local = r.tag as u32;
            let Some(op) = self.in_flight.remove(&local) else {
                continue;
            };
            let result = if r.status == 0 {
                Ok(r.bytes as usize)
            } else {
                Err(Error::io(
                    format!("pinio DMA {} of {} bytes at device offset {:#x}", op.dir, op.slice.len(), op.dev_offset),
                    std::io::Error::from_raw_os_error(-r.status),
                ))
            };
            tally.add(op.dir, &result);
            self.done.push_back(Completion::of(op, result));
        }
        tally.fold_into(self.shared.core.stats());
    }

    fn collect(&mut self, min: usize) -> Result<()> {
        // Lowered before the mailbox is looked at: records filed after the look raise it again.
        self.mailbox.clear();
        let mut records = std::mem::take(&mut self.records);
        let r = self.router().collect(self.fd(), self.id, min, &mut records);
        self.records = records;
        self.complete_records();
        r.map_err(reap_error)
    }

    fn drain(&mut self, out: &mut Vec<Completion>) -> usize {
        let n = self.done.len();
        out.extend(self.done.drain(..));
        n
    }
}

/// A local id not used by an operation in flight. Ids wrap after 2^32 operations; at most
/// `capacity` are in flight, so a free one is always found.
fn next_local(next: &mut u32, in_flight: &HashMap<u32, Op>) -> u32 {
    let mut local = *next;
    while in_flight.contains_key(&local) {
        local = local.wrapping_add(1);
    }
    *next = local.wrapping_add(1);
    local
}

/// The module's region id of the slice's region: its own registration in the session.
fn region_id(op: &Op) -> Option<u32> {
    match op.slice.key().registration {
        Registration::Own(id) => u32::try_from(id).ok(),
        Registration::Piece(_) | Registration::None => None,
    }
}

/// The module's descriptor for `op`, tagged with its queue and local id, its device offset
/// moved into the channel's `window`.
fn descriptor(queue: u32, local: u32, window: Window, op: &Op) -> Desc {
    Desc {
        tag: router::tag(queue, local),
        region_offset: op.slice.offset() as u64,
        dev_offset: window.translate(op.dev_offset),
        len: op.slice.len() as u64,
        // `push` admitted only operations with a region id; 0 is never one (ENOENT).
        region_id: region_id(op).unwrap_or(0),
        dir: match op.dir {
            Direction::Write => abi::DIR_TO_DEVICE,
            Direction::Read => abi::DIR_FROM_DEVICE,
        },
    }
}

fn reap_error(e: KmodError) -> Error {
    match e {
        KmodError::Errno { source, .. } if source.raw_os_error() == Some(libc::EINTR) => {
            Error::io("waiting for pinio completions", source)
        }
        e => backend(e),
    }
}

impl Queue for KmodQueue {
    fn capacity(&self) -> usize {
        self.capacity
    }

    fn in_flight(&self) -> usize {
        self.pushed.len() + self.in_flight.len() + self.done.len()
    }

    fn push(&mut self, op: Op) -> std::result::Result<(), Rejected> {
        let op = self.shared.core.admit(op, self.in_flight(), self.capacity)?;
        if region_id(&op).is_none() {
            // Every region of a kmod domain has its own registration; a key without one
            // cannot come from this domain's registrar.
            let error = Error::Unsupported {
                what: format!("a region without its own registration ({:?}) on kmod", op.slice.key().registration),
                hint: "register regions through the device's domain".into(),
            };
            return Err(Rejected { error, op });
        }
        self.pushed.push_back(op);
        Ok(())
    }

    fn submit(&mut self) -> Result<usize> {
        let max_batch = self.shared.session.info.max_batch.max(1) as usize;
        let window = self.shared.window;
        let mut submitted = 0;
        while !self.pushed.is_empty() {
            let n = self.pushed.len().min(max_batch);
            let mut locals = Vec::with_capacity(n);
            let mut descs = Vec::with_capacity(n);
            for op in self.pushed.iter().take(n) {
                let local = next_local(&mut self.next_local, &self.in_flight);
                locals.push(local);
                descs.push(descriptor(self.id, local, window, op));
            }
            match self.fd().submit(&descs) {
                Ok(_) => {
                    for local in locals {
                        let op = self.pushed.pop_front().expect("pushed op");
                        self.in_flight.insert(local, op);
                    }
                    submitted += n;
                }
                Err(e) if e.errno() == Some(libc::EAGAIN) => {
                    // The module's completion queue is full of records not reaped yet (ours or
                    // another queue's): file them into mailboxes and retry.
                    self.router().make_room(self.fd()).map_err(reap_error)?;
                    self.collect(0)?;
                }
                Err(e) => {
                    // Nothing of the batch was queued: complete its operations with the error so
                    // the caller gets every slice back.
                    let errno = e.errno().unwrap_or(libc::EIO);
                    for _ in 0..n {
                        let op = self.pushed.pop_front().expect("pushed op");
                        let result = Err(Error::io("PINIO_IOC_SUBMIT", std::io::Error::from_raw_os_error(errno)));
                        self.shared.core.record(op.dir, &result);
                        self.done.push_back(Completion::of(op, result));
                    }
                    return Err(backend(e));
                }
            }
        }
        Ok(submitted)
    }

    fn poll(&mut self, out: &mut Vec<Completion>) -> Result<usize> {
        if !self.in_flight.is_empty() {
            self.collect(0)?;
        }
        Ok(self.drain(out))
    }

    fn wait(&mut self, min: usize, out: &mut Vec<Completion>) -> Result<usize> {
        self.submit()?;
        let target = min.min(self.in_flight.len() + self.done.len());
        while self.done.len() < target {
            let need = target - self.done.len();
            self.collect(need)?;
        }
        Ok(self.drain(out))
    }

    /// A drain only: submits what is pushed and waits until every operation of this queue has
    /// completed, keeping the completions for the next `poll`/`wait`. The echo device's memory
    /// lives in the module and does not outlive it ([`pinio_core::Persistence::None`]): there
    /// is nothing to make durable, so both modes are the same. Interrupted waits are retried.
    fn flush(&mut self, _mode: FlushMode) -> Result<()> {
        self.submit()?;
        while !self.in_flight.is_empty() {
            let need = self.in_flight.len();
            match self.collect(need) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn event_fd(&self) -> Option<BorrowedFd<'_>> {
        // Readable while the module holds completion records for this open file (of any queue:
        // `poll` then files them) or another queue filed records for this one (`wakeup.rs`).
        Some(self.completion_fd.as_fd())
    }
}

impl Drop for KmodQueue {
    fn drop(&mut self) {
        // Operations pushed but never submitted are simply dropped with their slices.
        self.pushed.clear();
        // Wait for what the DMA engine may still be writing: its slices must outlive it.
        while !self.in_flight.is_empty() {
            let need = self.in_flight.len();
            match self.collect(need) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                // The module failed to report; the pages stay pinned by their region until it is
                // unregistered or the device is closed, so dropping the slices is still safe.
                Err(_) => break,
            }
        }
        self.done.clear();
        self.router().remove_queue(self.id);
    }
}
