//! When the driver rings the queue doorbells, and how many times it did.
//!
//! A doorbell is one MMIO write to BAR0: on real hardware an uncached
//! posted write across PCIe, in a VM a trap into the device model. Ringing
//! once per batch instead of once per command is the submit-side
//! optimisation SPDK measured at 3.5x on one core. [`DoorbellMode`] chooses;
//! [`DoorbellCounts`] says what happened (see docs/backends/nvme.md).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// When a queue writes its doorbells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DoorbellMode {
    /// One submission queue tail write per [`pinio_core::Queue::submit`]
    /// that has commands to hand over, and one completion queue head write
    /// per reap that consumed entries (however many). The default.
    #[default]
    PerBatch,
    /// One submission queue tail write per command, at push, and one
    /// completion queue head write per completion entry consumed: what a
    /// driver without batching does. For comparisons only; slower.
    PerCommand,
}

/// Doorbell writes of a device's I/O queues since it was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DoorbellCounts {
    /// Submission queue tail doorbell writes.
    pub sq: u64,
    /// Completion queue head doorbell writes.
    pub cq: u64,
}

/// The counters behind [`DoorbellCounts`], shared by a device's queues.
#[derive(Debug, Default)]
pub(crate) struct DoorbellCounters {
    sq: AtomicU64,
    cq: AtomicU64,
}

impl DoorbellCounters {
    pub(crate) fn rang_sq(&self) {
        self.sq.fetch_add(1, Relaxed);
    }

    pub(crate) fn rang_cq(&self) {
        self.cq.fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> DoorbellCounts {
        DoorbellCounts { sq: self.sq.load(Relaxed), cq: self.cq.load(Relaxed) }
    }
}
