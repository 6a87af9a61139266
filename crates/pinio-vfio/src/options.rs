//! Options shared by VFIO drivers and domains.

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

/// The DMA limit of a domain made with [`VfioDomainOptions::default`]: 28
/// bits (256 MiB), the smallest DMA mask of pinio's drivers (QEMU's edu),
/// so that every pinio driver can join a default domain.
pub const DEFAULT_DMA_BITS: u32 = 28;

/// Options of a VFIO domain ([`crate::VfioRegistrar::domain`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VfioDomainOptions {
    /// Every IOVA the domain hands out lies below `2^dma_bits`. A region is
    /// mapped once for every device of the domain, so its IOVA must suit the
    /// device with the smallest DMA mask: devices that reach fewer bits are
    /// refused at open ([`crate::VfioError::DmaMaskTooSmall`]). Default
    /// [`DEFAULT_DMA_BITS`]; 21..=64.
    pub dma_bits: u32,
}

impl Default for VfioDomainOptions {
    fn default() -> Self {
        VfioDomainOptions { dma_bits: DEFAULT_DMA_BITS }
    }
}
