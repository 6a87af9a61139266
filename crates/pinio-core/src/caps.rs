//! What a device needs and how it works.

use crate::{DeviceId, Error, Op, Result, is_aligned};

/// How a device reports completions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompletionMode {
    /// The operation is done when `submit` returns (the copy backend).
    Synchronous,
    /// The device signals completion (an io_uring CQE, an MSI, a kernel
    /// worker's wake-up); waiting sleeps.
    Interrupt,
    /// Completions are found by polling device memory; waiting spins.
    Poll,
}

/// What a device requires of operations handed to it, and what it does.
///
/// Every backend fills one in at open time; [`Capabilities::check`] validates
/// an operation against it before anything reaches the device.
#[derive(Debug, Clone)]
pub struct Capabilities {
    /// The backend's name (`"copy"`, `"uring"`, `"kmod"`, `"vfio"`).
    pub backend: &'static str,
    /// Alignment of host memory addresses handed to the device (the address
    /// of each slice), in bytes.
    pub mem_align: u64,
    /// Alignment of buffers at registration (the address of each region).
    pub register_align: u64,
    /// Alignment of device offsets.
    pub offset_align: u64,
    /// Granularity of transfer lengths.
    pub len_align: u64,
    /// Largest transfer of one operation, in bytes.
    pub max_transfer: u64,
    /// Largest amount of memory that may be registered at once, if known.
    pub max_pinned_bytes: Option<u64>,
    /// Size of the device address space in bytes.
    pub device_size: u64,
    /// How completions are reported.
    pub completion: CompletionMode,
    /// Whether the CPU copies payload bytes on this path (false means
    /// zero-copy: the device moves the bytes itself).
    pub cpu_copies: bool,
    /// Whether registration pins memory (or maps it into an IOMMU).
    pub pins_memory: bool,
}

impl Capabilities {
    /// Checks `op` against these capabilities, for a queue of device `device`:
    /// the slice's device, zero length, alignment of address, offset and
    /// length, the transfer limit and the bounds of the device address space.
    pub fn check(&self, device: DeviceId, op: &Op) -> Result<()> {
        let slice = &op.slice;
        if slice.device_id() != device {
            return Err(Error::ForeignRegion { region_device: slice.device_id(), device });
        }
        let len = slice.len() as u64;
        if len == 0 {
            return Err(Error::ZeroLength { what: "transfer" });
        }
        let addr = slice.as_ptr() as u64;
        if !is_aligned(addr, self.mem_align) {
            return Err(Error::Misaligned { what: "buffer address", value: addr, required: self.mem_align });
        }
        if !is_aligned(op.dev_offset, self.offset_align) {
            return Err(Error::Misaligned { what: "device offset", value: op.dev_offset, required: self.offset_align });
        }
        if !is_aligned(len, self.len_align) {
            return Err(Error::Misaligned { what: "length", value: len, required: self.len_align });
        }
        if len > self.max_transfer {
            return Err(Error::TooLarge { len, max: self.max_transfer });
        }
        match op.dev_offset.checked_add(len) {
            Some(end) if end <= self.device_size => Ok(()),
            _ => Err(Error::OutOfBounds {
                what: "device address space",
                offset: op.dev_offset,
                len,
                limit: self.device_size,
            }),
        }
    }
}
