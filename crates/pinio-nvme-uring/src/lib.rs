//! pinio's NVMe passthrough backend: NVMe commands through io_uring on a
//! namespace's generic character device (`/dev/ngXnY`), with the buffers
//! of pinio's uring domain as io_uring fixed buffers.
//!
//! Each [`pinio_core::Op`] becomes one NVMe Read or Write carried by an
//! `IORING_OP_URING_CMD` (`NVME_URING_CMD_IO`) in a 128-byte SQE; its
//! completion comes back in a 32-byte CQE whose result is 0, a negative
//! errno, or the NVMe status the controller returned (mapped to
//! [`NvmeUringError::Command`] with a decoded [`pinio_nvme::Status`]).
//! A registered region is passed by its buffer index
//! (`IORING_URING_CMD_FIXED`), from the **same** table the `uring:`
//! backend uses ([`pinio_uring::UringRegistrar`]): open a namespace with
//! [`NvmeUringDevice::open_in`] in the domain of a `uring:` file and one
//! registration serves both. [`pinio_core::Queue::flush`] is an NVMe
//! Flush. Identify Controller and Identify Namespace are sent through the
//! admin passthrough ioctl (`NVME_IOCTL_ADMIN_CMD`) on the controller node
//! (`/dev/nvmeX`). Polled completions (`IORING_SETUP_IOPOLL`) are an
//! option ([`NvmeUringOptions::iopoll`]).
//!
//! This path skips the block layer's bio handling and the file layer, but
//! keeps the kernel's NVMe driver, its queues, interrupts and IOMMU
//! mappings; compare it with `uring:` on the namespace's block device and
//! with the userspace driver `nvme:` (docs/benchmarks.md, "three paths to
//! one NVMe device").
//!
//! ```no_run
//! use pinio_core::{Device, Queue};
//! use pinio_nvme_uring::{NvmeUringDevice, NvmeUringOptions};
//! use pinio_uring::{UringDevice, UringOptions};
//! let ns = NvmeUringDevice::open("/dev/ng0n1", NvmeUringOptions::default())?;
//! let file = UringDevice::open_in(ns.domain(), "/var/tmp/copy", UringOptions::default())?;
//! let region = ns.alloc(1 << 20)?; // one registration, both devices
//! let (_, s) = ns.queue(4)?.read_at(region.slice_all()?, 0)?;
//! file.queue(4)?.write_at(s, 0)?;
//! # Ok::<(), pinio_core::Error>(())
//! ```
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod admin;
mod device;
mod error;
mod inflight;
mod options;
mod queue;
mod shared;
mod support;
mod sys;

pub use admin::Geometry;
pub use device::NvmeUringDevice;
pub use error::NvmeUringError;
pub use options::NvmeUringOptions;
pub use queue::NvmeUringQueue;
