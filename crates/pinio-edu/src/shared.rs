//! What an edu device and its queues share.

use crate::engine::{DMA_TIMEOUT, Engine, Fault};
use pinio_core::{DeviceCore, Error};
use pinio_vfio::{CompletionMode, DeviceClaim, VfioError};

/// One opened edu: its part of the core, its DMA engine, and the device.
///
/// Field order is drop order: the engine (idle by then: every queue has
/// waited for its transfers) goes first, then the claim quiesces the device
/// (MSI off, bus mastering off), then the core lets go of the domain.
pub(crate) struct EduShared {
    pub(crate) engine: Engine,
    pub(crate) claim: DeviceClaim,
    pub(crate) mode: CompletionMode,
    pub(crate) core: DeviceCore,
}

impl EduShared {
    /// The error of a transfer the engine could not run.
    pub(crate) fn fault_error(&self, f: Fault) -> Error {
        let bdf = self.claim.bdf().to_string();
        match f {
            Fault::Timeout => VfioError::DmaTimeout { bdf, ms: DMA_TIMEOUT.as_millis() as u64 }.into(),
            Fault::Stopped => VfioError::DeviceStopped { bdf }.into(),
        }
    }
}
