//! The userspace driver of QEMU's `edu` device: a DMA engine between host
//! memory and a 4 KiB on-board buffer, behind the IOMMU.

mod device;
mod engine;
mod queue;
pub mod regs;

pub use device::EduDevice;
