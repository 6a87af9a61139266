//! pinio's userspace NVMe driver: IO between registered application memory
//! and an NVMe namespace, through VFIO and the IOMMU, without the kernel's
//! block layer (the idea of SPDK's NVMe driver, behind pinio's API).
//!
//! # How it works
//!
//! [`NvmeDevice::open`] binds the controller to vfio-pci, opens it in a
//! VFIO domain (the [`pinio_vfio`] platform: one container, one IOMMU
//! address space, shared by every PCI device opened in it), resets it, puts
//! the admin queue pair in IOMMU-mapped memory, enables it, reads Identify
//! Controller and Identify Namespace 1, and asks for I/O queue pairs (Set
//! Features, Number of Queues). Each pinio [`pinio_core::Queue`] is then
//! one I/O submission/completion queue pair. [`NvmeDevice::open_in`] opens
//! the controller in an existing domain, e.g. next to an edu device: a
//! region registered once is reached by both at one IOVA.
//!
//! An [`pinio_core::Op`] becomes one NVMe Read or Write: the slice's IOVA
//! range is described with PRP entries ([`prp`]); the device offset and
//! length become the starting LBA and block count. Completions are found
//! by the completion queue's phase bit, either by polling or after an MSI-X
//! interrupt delivered to an eventfd. A failed command completes with an
//! [`NvmeError::Command`] naming the NVMe status ("LBA Out of Range").
//!
//! ```no_run
//! use pinio_core::Device;
//! use pinio_nvme::{NvmeDevice, NvmeOptions};
//! let nvme = NvmeDevice::open(&"0000:01:00.0".parse()?, NvmeOptions { take_from_driver: true, ..Default::default() })?;
//! let region = nvme.alloc(1 << 20)?;
//! let mut q = nvme.queue(32)?;
//! let mut s = region.slice(0, 4096)?;
//! s.fill(0xab);
//! let (_, s) = q.write_at(s, 8192)?; // LBA 16 with 512-byte blocks
//! let (_, s) = q.read_at(s, 8192)?;
//! assert!(s.iter().all(|&b| b == 0xab));
//! # Ok::<(), pinio_core::Error>(())
//! ```
//!
//! # Platform support
//!
//! Linux with VFIO type1 and an IOMMU, x86_64. On pinio's machines: the
//! QEMU guest of `cargo xtask vm`, whose emulated controller (1b36:0010)
//! sits at 0000:01:00.0, behind a PCIe root port
//! at 00:02.0 (so that it can be hot-unplugged); `pinio_vfio::Sysfs::first_with("class",
//! "0x010802")` finds it. See docs/backends/nvme.md.
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod cmd;
mod controller;
mod device;
mod dma;
mod doorbell;
mod error;
mod identify;
mod options;
pub mod prp;
pub mod prp_chain;
mod queue;
pub mod regs;
mod removal;
pub mod ring;
mod shared;
mod status;

pub use device::{DMA_BITS, NvmeDevice, release_to_kernel};
pub use doorbell::{DoorbellCounts, DoorbellMode};
pub use error::NvmeError;
pub use identify::{ControllerInfo, NamespaceInfo};
pub use options::{CompletionMode, NvmeOptions};
pub use queue::NvmeQueue;
pub use status::Status;
