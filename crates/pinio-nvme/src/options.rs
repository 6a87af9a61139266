//! How to open a controller.

use crate::doorbell::DoorbellMode;
pub use pinio_vfio::CompletionMode;

/// Options of [`crate::NvmeDevice::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NvmeOptions {
    /// Unbind the controller from the kernel's `nvme` driver to take it.
    /// Off by default: a disk bound to a driver may hold mounted file
    /// systems, and taking it away is refused with
    /// [`pinio_vfio::VfioError::BoundToOtherDriver`].
    pub take_from_driver: bool,
    /// MSI-X interrupts delivered to an eventfd per queue, or polling of
    /// the completion queue's phase bit.
    pub completion: CompletionMode,
    /// How many I/O queue pairs to ask the controller for (Set Features,
    /// Number of Queues); each pinio [`pinio_core::Queue`] takes one while
    /// it lives. The controller may grant fewer.
    pub io_queues: u16,
    /// How long an admin command (queue creation, Identify) may take, in
    /// milliseconds. Software-emulated controllers on a loaded host are
    /// slow; the default is generous.
    pub admin_timeout_ms: u64,
    /// When queues write their doorbells: once per batch (the default) or
    /// once per command, the unbatched driver, for comparisons.
    pub doorbells: DoorbellMode,
}

impl Default for NvmeOptions {
    fn default() -> Self {
        NvmeOptions {
            take_from_driver: false,
            completion: CompletionMode::Interrupt,
            io_queues: 16,
            admin_timeout_ms: 10_000,
            doorbells: DoorbellMode::PerBatch,
        }
    }
}
