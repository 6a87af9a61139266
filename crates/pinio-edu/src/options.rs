//! How to open an edu.

pub use pinio_vfio::CompletionMode;

/// Options of [`crate::EduDevice::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EduOptions {
    /// Unbind the device from another kernel driver to take it. Off by
    /// default: a device bound to a driver is in use, and taking it away
    /// (a disk, a network card) is refused with
    /// [`pinio_vfio::VfioError::BoundToOtherDriver`].
    pub take_from_driver: bool,
    /// Interrupt (MSI) or polled completions.
    pub completion: CompletionMode,
}
