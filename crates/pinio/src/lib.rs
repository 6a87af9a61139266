//! pinio: zero-copy, DMA-style IO behind one API.
//!
//! An application registers (pins) its own buffers once, then hands slices
//! of them to a device that reads and writes them directly. The same code
//! runs on every backend, so it (or a benchmark) can switch between them
//! without changes and compare them side by side with plain copy-based IO:
//!
//! | selection string | backend | pins with |
//! | --- | --- | --- |
//! | `copy:/path` | pread/pwrite through a bounce buffer | nothing (the baseline) |
//! | `uring:/path` | io_uring READ_FIXED/WRITE_FIXED with O_DIRECT | registered buffers |
//! | `kmod:/dev/pinio` | pinio's kernel module and its echo DMA engine | `pin_user_pages` (FOLL_LONGTERM) |
//! | `vfio:0000:00:03.0` | VFIO userspace driver for QEMU's `edu` device | IOMMU mapping |
//! | `nvme:0000:00:02.0` | VFIO userspace NVMe driver (namespace 1) | IOMMU mapping |
//!
//! ```no_run
//! use pinio::{Device, Queue};
//! let dev = pinio::open("copy:/var/tmp/data")?;
//! let region = dev.alloc(4096)?;                  // register once
//! let mut q = dev.queue(32)?;                      // one queue per thread
//! let mut slice = region.slice(0, 4096)?;
//! slice.fill(7);
//! let (_, slice) = q.write_at(slice, 0)?;          // memory -> device
//! let (_, slice) = q.read_at(slice, 0)?;           // device -> memory
//! assert!(slice.iter().all(|&b| b == 7));
//! println!("{}", dev.stats());
//! # Ok::<(), pinio::Error>(())
//! ```
//!
//! Which backends this build has is up to its cargo features; [`open`]
//! explains what to enable or load when a backend is missing.
#![deny(missing_docs)]

mod builder;

pub use builder::{Builder, OnRegistrationRefused, available_backends};
pub use pinio_core::*;

/// The copy backend.
pub use pinio_copy as copy;
/// The io_uring backend.
#[cfg(feature = "uring")]
pub use pinio_uring as uring;
/// The kernel-module backend.
#[cfg(feature = "kmod")]
pub use pinio_kmod as kmod;
/// The VFIO backend.
#[cfg(feature = "vfio")]
pub use pinio_vfio as vfio;
/// The userspace NVMe backend.
#[cfg(feature = "nvme")]
pub use pinio_nvme as nvme;

/// Opens a device from a selection string such as `uring:/var/tmp/data`,
/// with each backend's default options. See [`Builder`] for options.
pub fn open(spec: &str) -> Result<Box<dyn Device>> {
    Builder::parse(spec)?.open()
}
