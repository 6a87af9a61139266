//! What an NVMe device and its queues share.

use crate::CompletionMode;
use crate::controller::Controller;
use crate::doorbell::{DoorbellCounters, DoorbellMode};
use crate::error::NvmeError;
use crate::identify::{ControllerInfo, NamespaceInfo};
use pinio_core::DeviceCore;
use pinio_vfio::DeviceClaim;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Mutex, MutexGuard};
use vmm_sys_util::eventfd::EventFd;

/// The namespace this driver uses.
pub(crate) const NSID: u32 = 1;

/// One opened controller.
///
/// Field order is drop order: the controller shuts down while its admin
/// queues are still mapped (they are unmapped as it goes); then the claim
/// quiesces the device (MSI-X off, bus mastering off); the core, holding
/// the domain, goes last.
pub(crate) struct Shared {
    pub(crate) ctrl: Controller,
    pub(crate) claim: DeviceClaim,
    /// MSI-X eventfds by vector (vector `q` serves queue pair `q`).
    pub(crate) irqs: Vec<EventFd>,
    pub(crate) mode: CompletionMode,
    pub(crate) doorbell_mode: DoorbellMode,
    /// Doorbell writes of every I/O queue of this controller.
    pub(crate) doorbells: DoorbellCounters,
    pub(crate) ns: NamespaceInfo,
    pub(crate) info: ControllerInfo,
    /// Queue pair ids not in use.
    pub(crate) free_qids: Mutex<Vec<u16>>,
    pub(crate) granted: u16,
    pub(crate) live_queues: AtomicUsize,
    /// Controller resets since open ([`crate::NvmeDevice::reset_controller`]):
    /// a queue made under an older value has lost its queue pair.
    pub(crate) resets: AtomicU64,
    /// Signalled by vfio-pci when the kernel wants the device back
    /// (`removal.rs`); None if this kernel cannot say.
    pub(crate) removal: Option<EventFd>,
    /// The removal request was seen and the controller stopped.
    pub(crate) removed: AtomicBool,
    /// Held while a queue pair is created and while the controller is
    /// reset, so that a reset never races a queue being made.
    pub(crate) lifecycle: Mutex<()>,
    pub(crate) core: DeviceCore,
}

impl Shared {
    fn free_qids(&self) -> MutexGuard<'_, Vec<u16>> {
        self.free_qids.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn take_qid(&self) -> Result<u16, NvmeError> {
        self.free_qids().pop().ok_or(NvmeError::NoQueuePair { granted: self.granted })
    }

    pub(crate) fn return_qid(&self, qid: u16) {
        self.free_qids().push(qid);
    }

    pub(crate) fn lifecycle(&self) -> MutexGuard<'_, ()> {
        self.lifecycle.lock().unwrap_or_else(|p| p.into_inner())
    }
}
