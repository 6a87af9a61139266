//! [`FaultDevice`]: a device whose queues fail chosen operations.

use super::queue::FaultQueue;
use super::rules::FaultPlan;
use super::state::FaultState;
use pinio_core::{Device, DeviceCore, Queue, Result};
use std::sync::Arc;

/// A device that forwards operations to another, except those its
/// [`FaultPlan`] picks: they fail with `EIO` or `ENOSPC` (without reaching
/// the device), move only half their bytes, or complete late or out of
/// order. Like [`crate::RecordDevice`] it is the inner device as far as
/// regions, capabilities and statistics go (it hands out the inner
/// [`DeviceCore`]); an injected failure is counted nowhere but in
/// [`FaultDevice::injected`].
///
/// Every injected outcome keeps the queue contract: an operation fails in
/// its [`pinio_core::Completion`], which hands every slice back; a failing
/// flush returns an [`pinio_core::Error::Io`] with the errno; nothing is
/// leaked or lost in the wrapper (dropping a queue drops what it holds
/// back, after the inner queue's drop waited for the device).
pub struct FaultDevice {
    inner: Arc<dyn Device>,
    state: Arc<FaultState>,
}

impl std::fmt::Debug for FaultDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultDevice")
            .field("inner", &self.inner.describe())
            .field("plan", &self.state.plan.to_string())
            .finish()
    }
}

impl FaultDevice {
    /// Wraps `inner` with `plan`.
    pub fn new(inner: Box<dyn Device>, plan: FaultPlan) -> FaultDevice {
        FaultDevice { inner: Arc::from(inner), state: Arc::new(FaultState::new(plan)) }
    }

    /// How many faults were injected so far.
    pub fn injected(&self) -> u64 {
        self.state.injected()
    }

    /// The plan.
    pub fn plan(&self) -> &FaultPlan {
        &self.state.plan
    }
}

impl Device for FaultDevice {
    fn core(&self) -> &DeviceCore {
        self.inner.core()
    }

    fn describe(&self) -> String {
        format!("fault:{}:{}", self.state.plan, self.inner.describe())
    }

    fn queue(&self, depth: usize) -> Result<Box<dyn Queue>> {
        let inner = self.inner.queue(depth)?;
        Ok(Box::new(FaultQueue::new(inner, self.inner.clone(), self.state.clone())))
    }
}
