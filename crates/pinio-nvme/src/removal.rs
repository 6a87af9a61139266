//! The kernel asking for the controller back: vfio-pci's device request,
//! signalled when the device is being removed (hot-unplug, `remove` in
//! sysfs) or unbound. The driver stops the controller and hands every
//! command back with [`NvmeError::Removed`]; the removal completes once
//! the application has dropped the device and its domain.

use crate::error::NvmeError;
use crate::shared::Shared;
use std::sync::atomic::Ordering;

impl Shared {
    /// Whether the kernel has asked for the controller back. The first
    /// caller to see the request stops the controller (CC.EN = 0, then
    /// CSTS.RDY = 0: no more DMA) and moves the reset counter, so that
    /// every queue hands its commands back (see `queue/reset.rs`).
    pub(crate) fn removal_requested(&self) -> bool {
        if self.removed.load(Ordering::Acquire) {
            return true;
        }
        let Some(fd) = &self.removal else {
            return false;
        };
        if fd.read().is_err() {
            return false;
        }
        self.stop_for_removal();
        true
    }

    fn stop_for_removal(&self) {
        let _busy = self.lifecycle();
        if self.removed.swap(true, Ordering::AcqRel) {
            return;
        }
        // The device is still there (the kernel waits for us), so the
        // disable works; should it not, the queues' own timeouts apply and
        // their memory is kept (never handed back while DMA may run).
        if self.ctrl.disable().is_ok() {
            self.resets.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The error of commands and calls after the removal request.
    pub(crate) fn removed_error(&self) -> NvmeError {
        NvmeError::Removed { bdf: self.ctrl.bdf().to_string() }
    }
}
