//! A queue of edu transfers: pushed operations are validated, submitted to
//! the shared engine in order, and come back as completions in order.

use crate::CompletionMode;
use crate::engine::Fault;
use crate::regs::DmaProgram;
use crate::shared::EduShared;
use pinio_core::{Completion, FlushMode, Op, Queue, Rejected, Result};
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::Arc;

/// One thread's queue on an edu device.
///
/// # Invariants
///
/// Every operation handed to the engine sits in `inflight` under its ticket
/// until the engine reports it finished (or it was cancelled before it
/// started), so its slice, and with it the region's IOMMU mapping, outlives
/// the transfer.
pub(crate) struct EduQueue {
    shared: Arc<EduShared>,
    capacity: usize,
    pushed: Vec<Op>,
    inflight: BTreeMap<u64, Op>,
    /// Completions waiting for `poll`: operations that failed before
    /// reaching the device, and those a flush waited for.
    ready: Vec<Completion>,
}

impl EduQueue {
    pub(crate) fn new(shared: Arc<EduShared>, capacity: usize) -> EduQueue {
        EduQueue { shared, capacity, pushed: Vec::new(), inflight: BTreeMap::new(), ready: Vec::new() }
    }

    fn complete(&self, op: Op, outcome: std::result::Result<usize, Fault>) -> Completion {
        let result = outcome.map_err(|f| self.shared.fault_error(f));
        self.shared.core.record(op.dir, &result);
        Completion::of(op, result)
    }
}

impl Queue for EduQueue {
    fn capacity(&self) -> usize {
        self.capacity
    }

    fn in_flight(&self) -> usize {
        self.pushed.len() + self.inflight.len() + self.ready.len()
    }

    fn push(&mut self, op: Op) -> Result<(), Rejected> {
        let op = self.shared.core.admit(op, self.in_flight(), self.capacity)?;
        self.pushed.push(op);
        Ok(())
    }

    fn submit(&mut self) -> Result<usize> {
        let irq = self.shared.mode == CompletionMode::Interrupt;
        let n = self.pushed.len();
        for op in std::mem::take(&mut self.pushed) {
            let len = op.slice.len();
            // Checked at push against the same limits, and regions' IOVAs lie
            // below the DMA mask; a failure here still comes back as a
            // completion, never loses the slice.
            let prog = DmaProgram::new(op.dir, op.slice.device_addr(), op.dev_offset, len as u64, irq);
            match prog.map(|p| self.shared.engine.enqueue(p, len)) {
                Ok(Ok(t)) => {
                    self.inflight.insert(t, op);
                }
                Ok(Err(f)) => {
                    let result = Err(self.shared.fault_error(f));
                    self.shared.core.record(op.dir, &result);
                    self.ready.push(Completion::of(op, result));
                }
                Err(e) => {
                    let result = Err(e);
                    self.shared.core.record(op.dir, &result);
                    self.ready.push(Completion::of(op, result));
                }
            }
        }
        Ok(n)
    }

    fn poll(&mut self, out: &mut Vec<Completion>) -> Result<usize> {
        self.shared.engine.advance();
        let mut n = self.ready.len();
        out.append(&mut self.ready);
        // Tickets ascend in submission order, and the engine finishes in
        // that order, so completions come out in order.
        while let Some(entry) = self.inflight.first_entry() {
            let Some(outcome) = self.shared.engine.take(*entry.key()) else { break };
            let op = entry.remove();
            out.push(self.complete(op, outcome));
            n += 1;
        }
        Ok(n)
    }

    fn wait(&mut self, min: usize, out: &mut Vec<Completion>) -> Result<usize> {
        self.submit()?;
        let target = min.min(self.inflight.len() + self.ready.len());
        let mut n = self.poll(out)?;
        while n < target {
            self.shared.engine.wait_progress();
            n += self.poll(out)?;
        }
        Ok(n)
    }

    /// A drain only: submits what is pushed and waits until the engine has
    /// finished every transfer of this queue, keeping the completions for
    /// the next `poll`/`wait`. edu's buffer does not outlive the device
    /// ([`pinio_core::Persistence::None`]): there is nothing to make
    /// durable, so both modes are the same. A stuck engine times out and
    /// fails its transfers, so this returns.
    fn flush(&mut self, _mode: FlushMode) -> Result<()> {
        self.submit()?;
        let mut done = std::mem::take(&mut self.ready);
        let r = loop {
            if let Err(e) = self.poll(&mut done) {
                break Err(e);
            }
            if self.inflight.is_empty() {
                break Ok(());
            }
            self.shared.engine.wait_progress();
        };
        done.append(&mut self.ready);
        self.ready = done;
        r
    }

    fn event_fd(&self) -> Option<BorrowedFd<'_>> {
        // SAFETY: the eventfd lives in the engine, which `self.shared` keeps
        // alive for at least the borrow of `self`.
        self.shared.engine.irq().map(|fd| unsafe { BorrowedFd::borrow_raw(fd.as_raw_fd()) })
    }
}

impl Drop for EduQueue {
    fn drop(&mut self) {
        // Pushed operations never reached the device: their slices go back.
        self.pushed.clear();
        let tickets: Vec<u64> = self.inflight.keys().copied().collect();
        for t in tickets {
            if self.shared.engine.cancel(t) {
                self.inflight.remove(&t);
            }
        }
        // What is running (or queued behind another queue's transfer) must
        // finish before its slice may be freed. A stuck engine times out,
        // which switches bus mastering off, so this loop ends.
        while !self.inflight.is_empty() {
            let done: Vec<u64> =
                self.inflight.keys().copied().filter(|&t| self.shared.engine.take(t).is_some()).collect();
            for t in &done {
                self.inflight.remove(t);
            }
            if !self.inflight.is_empty() {
                self.shared.engine.wait_progress();
            }
        }
    }
}
