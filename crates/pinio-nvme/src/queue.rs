//! A pinio [`Queue`] on one NVMe I/O submission/completion queue pair.

use crate::cmd::{CQE_BYTES, Cqe, SQE_BYTES, Sqe, nvm_op};
use crate::dma::DmaMem;
use crate::error::NvmeError;
use crate::prp_chain::CommandPrps;
use crate::ring::{CqRing, SqRing};
use crate::shared::{NSID, Shared};
use crate::{CompletionMode, DoorbellMode, regs};
use pinio_core::{Completion, Direction, Error, FlushMode, Op, Queue, Rejected, Result};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

mod reset;

/// How long a wait may see no completion at all before the controller is
/// declared hung.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// The deepest queue a controller with capabilities `cap` allows: a queue
/// pair of `depth + 1` entries (a submission queue holds one command less
/// than its entries) within CAP.MQES and the 16-bit queue size.
pub(crate) fn max_depth(cap: regs::Cap) -> usize {
    cap.max_queue_entries.min(u16::MAX as u32).max(2) as usize - 1
}

/// What occupies a command slot.
enum Slot {
    Free,
    Io(Op),
    Flush,
}

/// A queue of an [`crate::NvmeDevice`]: one NVMe I/O queue pair, created
/// when the queue is made and deleted when it is dropped.
///
/// Command identifiers are slot numbers `0..capacity`; each slot owns one
/// PRP list page, so building a command never allocates. Dropping the
/// queue submits what was pushed, waits for every command in flight, then
/// deletes the queue pair.
pub struct NvmeQueue {
    shared: Arc<Shared>,
    qid: u16,
    sq_ring: SqRing,
    cq_ring: CqRing,
    sq_db: usize,
    cq_db: usize,
    slots: Vec<Slot>,
    free: Vec<u16>,
    in_flight: usize,
    unsubmitted: usize,
    /// Completions collected while waiting for a flush.
    ready: Vec<Completion>,
    /// Results of finished flushes by slot.
    flushed: Vec<(u16, Option<crate::Status>)>,
    /// Completion entries were consumed and the CQ head doorbell not yet
    /// written ([`NvmeQueue::ack_cq`]).
    cq_unacked: bool,
    /// The device's reset count when the queue pair was made: a reset since
    /// deleted it (`reset.rs`).
    resets_seen: u64,
    /// Commands were handed back after a reset; the queue takes no more.
    dead: bool,
    // Memory last: dropped after the queue pair is deleted (in Drop).
    sq: Option<DmaMem>,
    cq: Option<DmaMem>,
    lists: Option<DmaMem>,
}

impl NvmeQueue {
    /// A queue pair of `depth` commands, `depth` checked by
    /// [`pinio_core::DeviceCore::queue_depth`] (at most [`max_depth`]).
    pub(crate) fn new(shared: Arc<Shared>, depth: usize) -> Result<NvmeQueue> {
        let capacity = depth.min(max_depth(shared.ctrl.cap()));
        let entries = (capacity + 1) as u16;
        let page = shared.ctrl.page() as usize;
        let qid = shared.take_qid()?;
        // From here on, failures give the qid back.
        let made = (|| -> Result<(DmaMem, DmaMem, DmaMem)> {
            let m = shared.core.domain();
            let c = crate::controller::core_to_nvme;
            Ok((
                DmaMem::new(m, entries as usize * SQE_BYTES).map_err(c)?,
                DmaMem::new(m, entries as usize * CQE_BYTES).map_err(c)?,
                DmaMem::new(m, capacity * page).map_err(c)?,
            ))
        })();
        let (sq, cq, lists) = match made {
            Ok(v) => v,
            Err(e) => {
                shared.return_qid(qid);
                return Err(e);
            }
        };
        let irq = shared.mode == CompletionMode::Interrupt;
        let busy = shared.lifecycle();
        let resets_seen = shared.resets.load(Ordering::Acquire);
        let ctrl = &shared.ctrl;
        let r = ctrl
            .admin_cmd(Sqe::create_cq(0, qid, entries, cq.iova(), irq, if irq { qid } else { 0 }), || {
                format!("Create I/O Completion Queue {qid} ({entries} entries)")
            })
            .and_then(|_| {
                ctrl.admin_cmd(Sqe::create_sq(0, qid, entries, sq.iova(), qid), || {
                    format!("Create I/O Submission Queue {qid} ({entries} entries)")
                })
                .inspect_err(|_| {
                    let _ = ctrl.admin_cmd(Sqe::delete_cq(0, qid), String::new);
                })
            });
        if let Err(e) = r {
            drop(busy);
            shared.return_qid(qid);
            return Err(e.into());
        }
        shared.live_queues.fetch_add(1, Ordering::AcqRel);
        drop(busy);
        let dstrd = ctrl.cap().dstrd;
        Ok(NvmeQueue {
            qid,
            sq_ring: SqRing::new(entries),
            cq_ring: CqRing::new(entries),
            sq_db: regs::sq_tail_doorbell(qid, dstrd),
            cq_db: regs::cq_head_doorbell(qid, dstrd),
            slots: (0..capacity).map(|_| Slot::Free).collect(),
            free: (0..capacity as u16).rev().collect(),
            in_flight: 0,
            unsubmitted: 0,
            ready: Vec::new(),
            flushed: Vec::new(),
            cq_unacked: false,
            resets_seen,
            dead: false,
            sq: Some(sq),
            cq: Some(cq),
            lists: Some(lists),
            shared,
        })
    }

    /// The NVMe queue pair id.
    pub fn qid(&self) -> u16 {
        self.qid
    }

    fn page(&self) -> u64 {
        self.shared.ctrl.page()
    }

    /// Builds the command of `op` into a free slot and the submission
    /// queue, after the checks (without the device bounds check when
    /// `in_bounds` is false).
    fn push_inner(&mut self, op: Op, in_bounds: bool) -> Result<(), Rejected> {
        if self.dead || self.was_reset() {
            return Err(Rejected { error: self.reset_error(), op });
        }
        let core = &self.shared.core;
        let op = if in_bounds {
            core.admit(op, Queue::in_flight(self), self.slots.len())?
        } else {
            if Queue::in_flight(self) >= self.slots.len() {
                return Err(Rejected { error: Error::QueueFull { capacity: self.slots.len() }, op });
            }
            let mut caps = core.capabilities().clone();
            caps.device_size = u64::MAX;
            if let Err(error) = caps.check(core.domain_id(), &op) {
                return Err(Rejected { error, op });
            }
            op
        };
        if self.in_flight >= self.slots.len() || self.sq_ring.is_full() {
            return Err(Rejected { error: Error::QueueFull { capacity: self.slots.len() }, op });
        }
        // One PRP list, for one slice or several (prp_chain).
        let prps = match CommandPrps::of(&op, self.page()) {
            Ok(p) => p,
            Err(error) => return Err(Rejected { error, op }),
        };
        let Some(slot) = self.free.pop() else {
            // Never while in_flight < capacity; refused rather than trusted.
            return Err(Rejected { error: Error::QueueFull { capacity: self.slots.len() }, op });
        };
        let list_off = slot as usize * self.page() as usize;
        let lists = self.lists.as_ref().expect("lists live until drop");
        prps.for_each_list_entry(self.page(), |i, entry| lists.write64(list_off + 8 * i, entry));
        let bs = self.shared.ns.block_size as u64;
        let opcode = match op.dir {
            Direction::Read => nvm_op::READ,
            Direction::Write => nvm_op::WRITE,
        };
        let blocks = (op.len() as u64 / bs) as u32;
        let list_iova = self.lists.as_ref().expect("lists live until drop").iova() + list_off as u64;
        let sqe = Sqe::rw(opcode, slot, NSID, op.dev_offset / bs, blocks, prps.prp1(), prps.prp2_field(list_iova));
        self.write_command(&sqe);
        self.slots[slot as usize] = Slot::Io(op);
        Ok(())
    }

    fn write_command(&mut self, sqe: &Sqe) {
        let pos = self.sq_ring.push().expect("checked not full");
        self.sq.as_ref().expect("rings live until drop").write_sqe(pos, sqe);
        self.in_flight += 1;
        self.unsubmitted += 1;
        if self.shared.doorbell_mode == DoorbellMode::PerCommand {
            self.ring_sq();
        }
    }

    /// Writes the submission queue tail doorbell: the controller may fetch
    /// every command up to the tail.
    fn ring_sq(&self) {
        self.shared.ctrl.doorbell(self.sq_db, self.sq_ring.tail());
        self.shared.doorbells.rang_sq();
    }

    /// Writes the completion queue head doorbell: the controller may reuse
    /// every entry before the head.
    fn ring_cq(&self) {
        self.shared.ctrl.doorbell(self.cq_db, self.cq_ring.head());
        self.shared.doorbells.rang_cq();
    }

    /// Pushes `op` without the bounds check of the device address space,
    /// so the controller itself judges the LBA (for tests of the
    /// controller's "LBA Out of Range" status).
    #[cfg(feature = "raw-io")]
    pub fn push_unchecked(&mut self, op: Op) -> Result<(), Rejected> {
        self.push_inner(op, false)
    }

    /// Reaps every new completion entry and acknowledges them with one CQ
    /// head doorbell write; returns how many.
    fn reap(&mut self, out: &mut Vec<Completion>) -> Result<usize> {
        let r = self.reap_unacked(out);
        self.ack_cq();
        r
    }

    /// Writes the CQ head doorbell if entries were consumed since the last
    /// write (per-batch mode; per-command mode wrote one per entry).
    fn ack_cq(&mut self) {
        // After a reset the queue pair no longer exists: no doorbell for it
        // (`abort_after_reset`).
        if self.cq_unacked && !self.dead {
            self.cq_unacked = false;
            self.ring_cq();
        }
    }

    /// Reaps every new completion entry without telling the controller
    /// (in per-batch mode): [`NvmeQueue::ack_cq`] does, once for all the
    /// reaps of a batch. Holding the head back never stalls the controller
    /// within one wait: nothing is submitted meanwhile, so the entries it
    /// may still post are those of commands in flight, at most the
    /// capacity, one less than the completion queue's entries.
    /// The next new entry of the completion ring, consumed (the head moves
    /// past it; the CQ head doorbell is the caller's); `None` when the
    /// controller has posted nothing new.
    fn take_cqe(&mut self) -> Option<Cqe> {
        let cq = self.cq.as_ref().expect("rings live until drop");
        let head = self.cq_ring.head();
        if !self.cq_ring.is_new(cq.cqe_phase(head)) {
            return None;
        }
        let cqe = cq.read_cqe(head);
        self.cq_ring.advance();
        Some(cqe)
    }

    fn reap_unacked(&mut self, out: &mut Vec<Completion>) -> Result<usize> {
        if !self.dead && self.was_reset() {
            return Ok(self.abort_after_reset(out));
        }
        let (mut n, mut consumed) = (0, 0);
        let mut bad_cid = None;
        while let Some(cqe) = self.take_cqe() {
            consumed += 1;
            if self.shared.doorbell_mode == DoorbellMode::PerCommand {
                self.ring_cq();
            }
            self.sq_ring.set_head(cqe.sq_head);
            match self.finish(&cqe) {
                Some(Some(c)) => {
                    out.push(c);
                    n += 1;
                }
                Some(None) => {}
                None => bad_cid = Some(cqe.cid),
            }
        }
        // One head write for everything consumed, later (already written per
        // entry in per-command mode).
        if consumed > 0 && self.shared.doorbell_mode == DoorbellMode::PerBatch {
            self.cq_unacked = true;
        }
        match bad_cid {
            Some(cid) => Err(Error::Unsupported {
                what: format!(
                    "a completion for command identifier {cid} of queue pair {}, which has no such command in flight",
                    self.qid
                ),
                hint: "the controller misbehaves; reopen the device".into(),
            }),
            None => Ok(n),
        }
    }

    /// Frees the slot of `cqe`: `Some(Some(c))` for an I/O, `Some(None)` for
    /// a flush, `None` for an unknown command identifier.
    fn finish(&mut self, cqe: &Cqe) -> Option<Option<Completion>> {
        let slot = self.slots.get_mut(cqe.cid as usize)?;
        let taken = std::mem::replace(slot, Slot::Free);
        let op = match taken {
            Slot::Free => return None,
            Slot::Flush => {
                self.flushed.push((cqe.cid, cqe.status));
                self.free.push(cqe.cid);
                self.in_flight -= 1;
                return Some(None);
            }
            Slot::Io(op) => op,
        };
        self.free.push(cqe.cid);
        self.in_flight -= 1;
        let len = op.len();
        let result = match cqe.status {
            None => Ok(len),
            Some(status) => {
                let bs = self.shared.ns.block_size as u64;
                let verb = if op.dir == Direction::Read { "read" } else { "write" };
                let command = format!(
                    "{verb} of {} block(s) at LBA {:#x} of namespace {NSID}",
                    len as u64 / bs,
                    op.dev_offset / bs
                );
                Err(NvmeError::Command { command, status }.into())
            }
        };
        self.shared.core.record(op.dir, &result);
        Some(Some(Completion::of(op, result)))
    }

    /// Blocks until the completion queue may have something new: sleeps
    /// on the MSI-X eventfd, or spins (yielding) when polling.
    fn wait_for_event(&self) -> Result<()> {
        // A removal request stops the controller; the next reap hands the
        // commands back (within one wait: 100 ms with interrupts).
        let _ = self.shared.removal_requested();
        match self.shared.mode {
            CompletionMode::Poll => {
                std::thread::yield_now();
                Ok(())
            }
            CompletionMode::Interrupt => {
                let fd = &self.shared.irqs[self.qid as usize];
                let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
                // SAFETY: one valid pollfd on our stack; the result is checked.
                let r = unsafe { libc::poll(&mut pfd, 1, 100) };
                if r < 0 {
                    let e = std::io::Error::last_os_error();
                    if e.raw_os_error() != Some(libc::EINTR) {
                        return Err(Error::io("poll on the MSI-X eventfd", e));
                    }
                }
                // Clear the counter; the queue is read right after.
                let _ = fd.read();
                Ok(())
            }
        }
    }

    /// Waits until no command of this queue is in flight: submits what is
    /// pushed, then reaps. I/O completions are kept for the next
    /// [`Queue::poll`] or [`Queue::wait`].
    fn drain(&mut self) -> Result<()> {
        self.submit()?;
        let mut last = Instant::now();
        while self.in_flight > 0 {
            let mut out = std::mem::take(&mut self.ready);
            let got = self.reap(&mut out);
            self.ready = out;
            if got? > 0 {
                last = Instant::now();
                continue;
            }
            self.check_hung(last)?;
            self.wait_for_event()?;
        }
        Ok(())
    }

    /// The drain, then a Flush of namespace `nsid`, waited for.
    ///
    /// NVMe does not order commands: a Flush covers the writes that
    /// completed before it was submitted, not those beside it in the
    /// queue. So every command in flight on this queue completes first.
    fn drain_and_flush(&mut self, nsid: u32) -> Result<()> {
        self.drain()?;
        if self.dead || self.was_reset() {
            return Err(self.reset_error());
        }
        // Nothing is in flight: any result kept is of an earlier flush that
        // gave up waiting (a timeout), not of the one issued now.
        self.flushed.clear();
        if self.sq_ring.is_full() {
            return Err(Error::QueueFull { capacity: self.slots.len() });
        }
        let Some(slot) = self.free.pop() else {
            return Err(Error::QueueFull { capacity: self.slots.len() });
        };
        self.write_command(&Sqe::flush(slot, nsid));
        self.slots[slot as usize] = Slot::Flush;
        self.submit()?;
        let mut last = Instant::now();
        loop {
            let mut out = std::mem::take(&mut self.ready);
            let got = self.reap(&mut out);
            self.ready = out;
            if got? > 0 {
                last = Instant::now();
            }
            if self.dead {
                return Err(self.reset_error());
            }
            if let Some(i) = self.flushed.iter().position(|&(s, _)| s == slot) {
                let (_, status) = self.flushed.swap_remove(i);
                return match status {
                    None => Ok(()),
                    Some(status) => {
                        Err(NvmeError::Command { command: format!("flush of namespace {nsid}"), status }.into())
                    }
                };
            }
            self.check_hung(last)?;
            self.wait_for_event()?;
        }
    }

    /// [`Queue::flush`] with a Flush of namespace `nsid`, whatever it is
    /// (0, a namespace that does not exist, the broadcast `0xffffffff`), so
    /// that the controller judges it: for tests of a failed flush.
    #[cfg(feature = "raw-io")]
    pub fn flush_namespace_unchecked(&mut self, nsid: u32) -> Result<()> {
        self.drain_and_flush(nsid)
    }

    fn check_hung(&self, last: Instant) -> Result<()> {
        if last.elapsed() > IO_TIMEOUT {
            let csts = self.shared.ctrl.read32(regs::CSTS);
            let e = NvmeError::Timeout {
                bdf: self.shared.ctrl.bdf().to_string(),
                what: "complete any I/O command",
                ms: IO_TIMEOUT.as_millis() as u64,
                csts,
            };
            return Err(e.into());
        }
        Ok(())
    }
}

impl NvmeQueue {
    /// [`Queue::wait`] up to the CQ head doorbell: collects `target`
    /// completions (kept ones first), looking at the queue until they are in.
    fn wait_unacked(&mut self, target: usize, out: &mut Vec<Completion>) -> Result<usize> {
        let mut got = self.ready.len();
        out.append(&mut self.ready);
        got += self.reap_unacked(out)?;
        let mut last = Instant::now();
        while got < target {
            self.wait_for_event()?;
            let n = self.reap_unacked(out)?;
            if n > 0 {
                last = Instant::now();
            }
            got += n;
            self.check_hung(last)?;
        }
        Ok(got)
    }
}

impl Queue for NvmeQueue {
    fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn in_flight(&self) -> usize {
        self.in_flight + self.ready.len()
    }

    fn push(&mut self, op: Op) -> Result<(), Rejected> {
        self.push_inner(op, true)
    }

    fn submit(&mut self) -> Result<usize> {
        if self.dead || self.was_reset() {
            // No queue pair to ring: the next poll hands the commands back.
            return Ok(0);
        }
        let n = self.unsubmitted;
        // One tail write for the whole batch (already written per command in
        // per-command mode).
        if n > 0 && self.shared.doorbell_mode == DoorbellMode::PerBatch {
            self.ring_sq();
        }
        self.unsubmitted = 0;
        Ok(n)
    }

    fn poll(&mut self, out: &mut Vec<Completion>) -> Result<usize> {
        let kept = self.ready.len();
        out.append(&mut self.ready);
        Ok(kept + self.reap(out)?)
    }

    /// One CQ head doorbell write for every entry the wait consumed,
    /// whatever the number of looks at the queue it took.
    fn wait(&mut self, min: usize, out: &mut Vec<Completion>) -> Result<usize> {
        self.submit()?;
        let target = min.min(self.in_flight());
        let r = self.wait_unacked(target, out);
        self.ack_cq();
        r
    }

    /// Waits for every command in flight on this queue (their completions
    /// are kept for the next `poll`/`wait`), then issues an NVMe Flush of
    /// namespace 1 and waits for it: the controller commits its volatile
    /// write cache, if it has one, to non-volatile media. [`FlushMode::All`]
    /// is [`FlushMode::Data`]: a namespace has no metadata apart from its
    /// blocks. A Flush that fails comes back as an [`NvmeError::Command`]
    /// naming its status.
    fn flush(&mut self, _mode: FlushMode) -> Result<()> {
        self.drain_and_flush(NSID)
    }

    fn event_fd(&self) -> Option<BorrowedFd<'_>> {
        match self.shared.mode {
            CompletionMode::Interrupt => {
                // SAFETY: the eventfd lives in `shared`, which outlives the borrow of `self`.
                Some(unsafe { BorrowedFd::borrow_raw(self.shared.irqs[self.qid as usize].as_raw_fd()) })
            }
            CompletionMode::Poll => None,
        }
    }
}

impl Drop for NvmeQueue {
    fn drop(&mut self) {
        let _ = self.submit();
        let mut sink = Vec::new();
        let mut last = Instant::now();
        let mut hung = false;
        while self.in_flight > 0 {
            match self.reap(&mut sink) {
                Ok(n) if n > 0 => last = Instant::now(),
                _ => {}
            }
            sink.clear();
            self.flushed.clear();
            if self.in_flight == 0 {
                break;
            }
            if self.check_hung(last).is_err() || self.wait_for_event().is_err() {
                hung = true;
                break;
            }
        }
        let ctrl = &self.shared.ctrl;
        // After a reset the queue pair no longer exists (and its commands
        // were handed back by the reap above): nothing to delete.
        let gone = self.dead || self.was_reset();
        let deleted = !hung
            && (gone
                || ctrl.admin_cmd(Sqe::delete_sq(0, self.qid), String::new).is_ok()
                    && ctrl.admin_cmd(Sqe::delete_cq(0, self.qid), String::new).is_ok());
        if deleted {
            self.shared.return_qid(self.qid);
        } else {
            // The controller may still use the rings and the slots' memory:
            // never free them (the queue pair id stays taken too).
            for s in self.slots.drain(..) {
                std::mem::forget(s);
            }
            std::mem::forget(self.sq.take());
            std::mem::forget(self.cq.take());
            std::mem::forget(self.lists.take());
        }
        self.shared.live_queues.fetch_sub(1, Ordering::AcqRel);
    }
}
