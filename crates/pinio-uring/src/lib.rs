//! pinio's io_uring backend: registered (fixed) buffers, a registered target
//! file, `READ_FIXED` / `WRITE_FIXED` with `O_DIRECT`, and `SEND_ZC` from
//! registered buffers over TCP ([`net`]).
//!
//! - [`UringDevice::open`] opens a file or block device; the direct-IO
//!   alignment comes from `statx(STATX_DIOALIGN)` (files) or the logical
//!   block size (block devices) and is reported in
//!   [`pinio_core::Capabilities`].
//! - Regions are registered once in a device-wide table of fixed buffers
//!   (sparse registration, one slot per region, or one pre-registered arena
//!   carved into regions) that every queue's ring receives.
//! - When `RLIMIT_MEMLOCK` refuses a registration, [`RegistrationPolicy`]
//!   decides: a clear [`pinio_core::Error::MemlockLimit`], or unregistered
//!   operations with a warning and a statistic.
//!
//! ```no_run
//! use pinio_core::{Device, Queue};
//! use pinio_uring::{UringDevice, UringOptions};
//! let dev = UringDevice::open("/var/tmp/data", UringOptions::default())?;
//! let region = dev.alloc(1 << 20)?;
//! let mut q = dev.queue(32)?;
//! let mut s = region.slice(0, 4096)?;
//! s.fill(7);
//! let (_, s) = q.write_at(s, 0)?;
//! let (n, s) = q.read_at(s, 0)?;
//! assert_eq!((n, s[0]), (4096, 7));
//! # Ok::<(), pinio_core::Error>(())
//! ```
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod arena;
mod device;
mod error;
mod inflight;
mod limits;
pub mod memlock;
pub mod net;
mod options;
mod queue;
mod registry;
mod ring;
mod sys;
mod transfer;

pub use device::{UNREGISTERED, UringDevice};
pub use error::UringError;
pub use options::{RegistrationPolicy, UringOptions};
pub use queue::UringQueue;
pub use registry::SLOTS;
