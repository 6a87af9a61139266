//! A queue whose queue pair a controller reset deleted
//! ([`crate::NvmeDevice::reset_controller`]): its commands are handed back.

use super::{NvmeQueue, Slot};
use crate::error::NvmeError;
use pinio_core::{Completion, Error};
use std::sync::atomic::Ordering;

impl NvmeQueue {
    /// Whether the controller was reset since this queue's pair was made.
    pub(super) fn was_reset(&self) -> bool {
        self.shared.resets.load(Ordering::Acquire) != self.resets_seen
    }

    /// The error of every command and push after a reset.
    pub(super) fn reset_error(&self) -> Error {
        if self.shared.removed.load(Ordering::Acquire) {
            return self.shared.removed_error().into();
        }
        NvmeError::Reset { bdf: self.shared.ctrl.bdf().to_string(), reset: self.shared.resets.load(Ordering::Acquire) }
            .into()
    }

    /// Once, after a reset: the completions the controller posted before it
    /// stopped keep their results; every other command comes back with
    /// [`NvmeError::Reset`]. No doorbell is written: the queue pair no
    /// longer exists.
    ///
    /// Safe to hand the slices back: the reset counter moves only after
    /// the controller reported CSTS.RDY = 0, and a disabled controller
    /// has deleted this queue pair, so it writes neither the rings nor the
    /// commands' memory any more.
    pub(super) fn abort_after_reset(&mut self, out: &mut Vec<Completion>) -> usize {
        self.dead = true;
        let mut n = 0;
        while let Some(cqe) = self.take_cqe() {
            if let Some(Some(c)) = self.finish(&cqe) {
                out.push(c);
                n += 1;
            }
        }
        for cid in 0..self.slots.len() {
            match std::mem::replace(&mut self.slots[cid], Slot::Free) {
                Slot::Free => continue,
                Slot::Flush => {}
                Slot::Io(op) => {
                    let result = Err(self.reset_error());
                    self.shared.core.record(op.dir, &result);
                    out.push(Completion::of(op, result));
                    n += 1;
                }
            }
            self.free.push(cid as u16);
            self.in_flight -= 1;
        }
        self.unsubmitted = 0;
        n
    }
}
