//! pinio's VFIO platform: PCI devices driven from userspace, behind an
//! IOMMU, in registration domains that are VFIO containers.
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
//!   writes IOMMU page-table entries. The devices of the container reach
//!   *only* mapped IOVAs; anything else faults in the IOMMU.
//!
//! # The container is the domain
//!
//! A pinio [`Domain`](pinio_core::Domain) made by [`VfioRegistrar::domain`]
//! is one container. Every device a driver opens in it
//! ([`VfioRegistrar::attach`]) has its group join that container, so a
//! region is mapped once, at one IOVA, for all of them: an NVMe controller
//! reads a block into a region and edu DMAs the same bytes on, with one
//! `VFIO_IOMMU_MAP_DMA` and no CPU copy. IOVAs come from one allocator for
//! the domain, below the domain's DMA limit ([`VfioDomainOptions::dma_bits`],
//! default 28 bits, the smallest mask of pinio's drivers); a device that
//! reaches fewer bits is refused at open ([`VfioError::DmaMaskTooSmall`]).
//!
//! The drivers live in their own crates: `pinio-edu` (QEMU's edu DMA
//! device, the `vfio:` backend) and `pinio-nvme`. This crate is what they
//! share: [`PciAddress`], [`Sysfs`] (identify, bind to vfio-pci), the
//! registrar (container, IOMMU limits, IOVA allocation, DMA mapping),
//! [`VfioPci`] (config space, BAR0, interrupts) and [`Bar`].
//!
//! # Platform support
//!
//! Linux with VFIO type1 and an IOMMU; x86_64 (as vfio-ioctls). On pinio's
//! machines that means the QEMU guest of `cargo xtask vm`; see
//! docs/backends/vfio.md.
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod address;
mod bar;
mod claim;
mod error;
mod iommu_info;
mod iova;
mod options;
mod pci;
mod registrar;
mod space;
mod sysfs_dir;
mod vfio_pci;

pub use address::PciAddress;
pub use bar::Bar;
pub use claim::DeviceClaim;
pub use error::VfioError;
pub use iommu_info::IommuInfo;
pub use iova::{IovaAllocator, iova_align};
pub use options::{CompletionMode, DEFAULT_DMA_BITS, VfioDomainOptions};
pub use pci::{Binding, Sysfs};
pub use registrar::{VfioRegistrar, VfioStats};
pub use vfio_pci::{PCI_COMMAND_MASTER, VfioPci};
