//! [`NvmeUringOptions`]: how a namespace is opened for passthrough.

use pinio_uring::UringDomainOptions;

/// Options of [`crate::NvmeUringDevice::open`] and
/// [`crate::NvmeUringDevice::open_in`].
///
/// `fixed_buffers` is domain-wide (a [`UringDomainOptions`] field): `open`
/// makes a fresh uring domain with it, `open_in` uses the domain's.
///
/// The default: fixed buffers (`IORING_URING_CMD_FIXED`), interrupt-driven
/// completions, 128 ring entries, writable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NvmeUringOptions {
    /// Domain-wide: [`UringDomainOptions::fixed_buffers`]. `false` passes
    /// plain user addresses, which the kernel pins and maps for every
    /// command (for comparisons).
    pub fixed_buffers: bool,
    /// Polled completions (`IORING_SETUP_IOPOLL`): waiting spins in the
    /// kernel on the NVMe completion queue instead of sleeping until an
    /// interrupt. Commands go to the driver's poll queues, which exist only
    /// when the nvme driver was loaded with `nvme.poll_queues=N` (N > 0);
    /// without them the kernel still completes the commands, by interrupt.
    pub iopoll: bool,
    /// Submission-queue entries of each queue's ring (raised to the queue's
    /// depth when smaller; rounded up to a power of two).
    pub ring_entries: u32,
    /// Accept writes (`false`: writes are refused at push with
    /// [`pinio_core::Error::ReadOnly`] and the device node is opened
    /// read-only).
    pub writable: bool,
}

impl NvmeUringOptions {
    /// The domain-wide part, for a fresh domain.
    pub fn domain_options(&self) -> UringDomainOptions {
        UringDomainOptions { fixed_buffers: self.fixed_buffers, ..UringDomainOptions::default() }
    }
}

impl Default for NvmeUringOptions {
    fn default() -> Self {
        NvmeUringOptions { fixed_buffers: true, iopoll: false, ring_entries: 128, writable: true }
    }
}
