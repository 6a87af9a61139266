//! pinio's VFIO backend: a userspace driver for QEMU's `edu` DMA device,
//! with registered memory mapped into the IOMMU.
//!
//! # How DMA into user memory works under an IOMMU
//!
//! A device that does DMA emits bus addresses. Without an IOMMU those are
//! physical addresses, so a userspace driver would need to know (and pin)
//! the physical pages behind its buffers, and a buggy or malicious device
//! could write anywhere. With an IOMMU (Intel VT-d, AMD-Vi, QEMU's
//! `intel-iommu`) the device's addresses are *I/O virtual addresses*
//! (IOVAs), translated through page tables that the kernel owns.
//!
//! VFIO hands those page tables to userspace, safely:
//!
//! - a **container** (`/dev/vfio/vfio`) is one IOVA address space;
//! - a **group** (`/dev/vfio/N`) is the smallest set of devices the IOMMU
//!   can tell apart; it joins a container;
//! - the **device** file gives access to config space, BARs (mmapped
//!   registers) and interrupts (routed to eventfds);
//! - `VFIO_IOMMU_MAP_DMA` maps a range of this process's memory at an IOVA:
//!   the kernel pins the pages (they can no longer move or be swapped) and
//!   writes IOMMU page-table entries. The device can reach *only* mapped
//!   IOVAs; anything else faults in the IOMMU and never reaches memory.
//!
//! In pinio's model, [`pinio_core::Device::register`] is that map: a
//! region gets an IOVA from an allocator that respects the IOMMU's reported
//! ranges and page sizes and the device's DMA mask (edu's is 28 bits), in
//! one mapping however large. Dropping the last handle and slice of a
//! region unmaps it; because queues own the slices of operations in flight,
//! that can only happen when no DMA uses the region.
//!
//! # Example
//!
//! ```no_run
//! use pinio_core::{Device, Op};
//! use pinio_vfio::{EduDevice, VfioOptions};
//! let edu = EduDevice::open("vfio:0000:00:03.0", VfioOptions::default())?;
//! let region = edu.alloc(4096)?;
//! let mut q = edu.queue(4)?;
//! let mut s = region.slice(0, 5)?;
//! s.copy_from_slice(b"hello");
//! let (_, s) = q.write_at(s, 0)?; // edu's DMA engine reads the slice
//! let (_, s) = q.read_at(s, 0)?;  // and writes it back
//! assert_eq!(&s[..], b"hello");
//! # Ok::<(), pinio_core::Error>(())
//! ```
//!
//! # Platform support
//!
//! Linux with VFIO type1 and an IOMMU; x86_64 (as vfio-ioctls). On pinio's
//! machines that means the QEMU guest of `cargo xtask vm`; see
//! docs/backends/vfio.md.
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod bar;
mod edu;
mod error;
mod iommu_info;
mod iova;
mod mapper;
mod options;
mod pci;
mod vfio_pci;

pub use edu::EduDevice;
pub use edu::regs as edu_regs;
pub use error::VfioError;
pub use iommu_info::IommuInfo;
pub use iova::{IovaAllocator, iova_align};
pub use options::{CompletionMode, VfioOptions};
pub use pci::PciAddress;
// Building blocks for other VFIO drivers (pinio-nvme).
pub use bar::Bar;
pub use mapper::DmaMapper;
pub use pci::{Binding, Sysfs};
pub use vfio_pci::{PCI_COMMAND_MASTER, VfioPci};
