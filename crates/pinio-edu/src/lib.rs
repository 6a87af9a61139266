//! pinio's userspace driver for QEMU's `edu` device: a DMA engine between
//! host memory and a 4 KiB on-board buffer, behind the IOMMU. It is the
//! `vfio:` backend of pinio's selection strings.
//!
//! The device is opened in a VFIO domain (`pinio_vfio::VfioRegistrar`: one
//! container, one IOMMU address space): [`EduDevice::open`] makes a new
//! one, [`EduDevice::open_in`] joins an existing one, e.g. an NVMe
//! controller's, so that both devices reach a region at the same IOVA with
//! one IOMMU mapping. Registering a region maps it once
//! (`VFIO_IOMMU_MAP_DMA`) at an IOVA below the domain's DMA limit, which must
//! not exceed edu's 28-bit mask. Dropping the last handle and slice of a
//! region unmaps it; because queues own the slices of operations in flight,
//! that can only happen when no DMA uses the region.
//!
//! # Example
//!
//! ```no_run
//! use pinio_core::Device;
//! use pinio_edu::{EduDevice, EduOptions};
//! let edu = EduDevice::open(&"0000:00:01.0".parse()?, EduOptions::default())?;
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
//! Linux with VFIO type1 and an IOMMU; x86_64. On pinio's machines that
//! means the QEMU guest of `cargo xtask vm`; see docs/backends/vfio.md.
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod device;
mod engine;
mod options;
mod queue;
pub mod regs;
mod shared;

pub use device::{EduDevice, MAX_QUEUE_DEPTH};
pub use options::{CompletionMode, EduOptions};
