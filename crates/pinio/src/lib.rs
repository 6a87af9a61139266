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
//! | `vfio:0000:00:01.0` | VFIO userspace driver for QEMU's `edu` device | IOMMU mapping |
//! | `nvme:0000:01:00.0` | VFIO userspace NVMe driver (namespace 1) | IOMMU mapping |
//! | `nvme-uring:/dev/ng0n1` | NVMe passthrough: NVMe commands as io_uring `URING_CMD` with fixed buffers | registered buffers (the uring domain's table) |
//!
//! Registrations belong to a [`Domain`] (an io_uring buffer table, a kernel
//! session, a VFIO container); [`open`] makes a new one per device and
//! [`open_in`] opens more devices in an existing one, so that one region
//! serves every file or PCI device of an application.
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
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backends;
mod builder;
mod model;
mod target;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;
mod wrappers;

pub use backends::*;
pub use builder::{Builder, OnRegistrationRefused, available_backends};
pub use model::*;
/// Crash consistency and fault injection: the `record:<log>:` and
/// `fault:<rules>:` wrappers of selection strings, and the crash-state
/// generator behind `pinio crash-test` (docs/reliability.md).
#[doc(inline)]
pub use pinio_crash as crash;
pub use target::{BackendKind, Target};
pub use wrappers::Wrapper;

/// Opens a device from a selection string such as `uring:/var/tmp/data`,
/// with each backend's default options, in a new domain of its own. See
/// [`Builder`] for options.
pub fn open(spec: &str) -> Result<Box<dyn Device>> {
    Builder::parse(spec)?.open()
}

/// Opens another device in `domain` (for example `dev.domain()` of a device
/// opened before): the regions registered there are accepted by both, with
/// no second registration and no CPU copy between them.
///
/// ```no_run
/// use pinio::{Device, Queue};
/// let data = pinio::open("uring:/var/tmp/data")?;
/// let mirror = pinio::open_in(data.domain(), "uring:/var/tmp/mirror")?;
/// let region = data.alloc(1 << 20)?;           // registered once, for both
/// let (mut a, mut b) = (data.queue(8)?, mirror.queue(8)?);
/// let (_, s) = a.read_at(region.slice(0, 4096)?, 0)?;
/// let (_, _s) = b.write_at(s, 0)?;             // the same bytes, no memcpy
/// # Ok::<(), pinio::Error>(())
/// ```
pub fn open_in(domain: &Domain, spec: &str) -> Result<Box<dyn Device>> {
    Builder::parse(spec)?.open_in(domain)
}

/// The README's examples, compiled as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeExamples;
