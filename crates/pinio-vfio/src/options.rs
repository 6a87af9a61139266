//! How to open a device.

/// How completions of a VFIO device are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompletionMode {
    /// The device raises an MSI, which VFIO delivers to an eventfd
    /// ([`pinio_core::Queue::event_fd`]); waiting sleeps in `poll(2)`.
    #[default]
    Interrupt,
    /// Waiting spins on the device's status register; no interrupt is set up.
    Poll,
}

impl From<CompletionMode> for pinio_core::CompletionMode {
    fn from(m: CompletionMode) -> pinio_core::CompletionMode {
        match m {
            CompletionMode::Interrupt => pinio_core::CompletionMode::Interrupt,
            CompletionMode::Poll => pinio_core::CompletionMode::Poll,
        }
    }
}

/// Options of [`crate::EduDevice::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VfioOptions {
    /// Unbind the device from another kernel driver to take it. Off by
    /// default: a device bound to a driver is in use, and taking it away
    /// (a disk, a network card) is refused with
    /// [`crate::VfioError::BoundToOtherDriver`].
    pub take_from_driver: bool,
    /// Interrupt (MSI) or polled completions.
    pub completion: CompletionMode,
}
