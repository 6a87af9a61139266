//! pinio's io_uring backend: registered (fixed) buffers, a registered target
//! file, `READ_FIXED` / `WRITE_FIXED` with `O_DIRECT`, and `SEND_ZC` from
//! registered buffers over TCP ([`net`]).
//!
//! - A uring [`Domain`](pinio_core::Domain) ([`UringRegistrar::domain`])
//!   holds **one table of io_uring fixed buffers** (sparse registration, one
//!   slot per region) and optionally one pre-registered arena carved into
//!   regions. A region is registered there once: its memory is pinned and
//!   charged to `RLIMIT_MEMLOCK` once.
//! - [`UringDevice::open_in`] opens a file or block device in a domain;
//!   [`UringDevice::open`] opens one in a fresh domain. The ring of every
//!   queue of every file of the domain (and of every [`net::ZcSender`])
//!   *subscribes* to the table: it receives a clone of it
//!   (`IORING_REGISTER_CLONE_BUFFERS`, Linux 6.13+) that is refreshed
//!   whenever a slot changes, so every region of the domain is accepted by
//!   every one of those queues — read a block from one file and write the
//!   same registered bytes to another. Older kernels (or
//!   `PINIO_URING_NO_CLONE=1`) register each region in every ring instead
//!   ([`pinio_core::RegistrationSharing::PerQueue`]).
//! - The direct-IO alignment comes from `statx(STATX_DIOALIGN)` (files) or
//!   the logical block size (block devices) and is reported in
//!   [`pinio_core::Capabilities`].
//! - When `RLIMIT_MEMLOCK` refuses a registration, [`RegistrationPolicy`]
//!   decides: a clear [`pinio_core::Error::MemlockLimit`], or unregistered
//!   operations ([`pinio_core::Registration::None`]) with a warning and a
//!   statistic.
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
//!
//! Two files in one domain, with an arena:
//!
//! ```no_run
//! use pinio_core::{Device, Queue};
//! use pinio_uring::{UringDevice, UringDomainOptions, UringOptions, UringRegistrar};
//! let domain = UringRegistrar::domain(UringDomainOptions { arena_bytes: 4 << 20, ..Default::default() })?;
//! let src = UringDevice::open_in(&domain, "/var/tmp/a", UringOptions::default())?;
//! let dst = UringDevice::open_in(&domain, "/var/tmp/b", UringOptions::default())?;
//! let region = domain.alloc(1 << 20)?; // a piece of the arena: no new registration
//! let (_, s) = src.queue(4)?.read_at(region.slice_all()?, 0)?;
//! dst.queue(4)?.write_at(s, 0)?;
//! # Ok::<(), pinio_core::Error>(())
//! ```
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod arena;
mod device;
mod domain;
mod error;
mod inflight;
pub mod memlock;
pub mod net;
mod options;
mod queue;
mod registry;
mod ring;
mod shared;
mod sys;
mod transfer;

pub use device::UringDevice;
pub use domain::{TableSubscription, UringRegistrar};
pub use error::UringError;
pub use options::{RegistrationPolicy, UringDomainOptions, UringOptions};
/// The file lifecycle (`set_len`, `grow`, `allocate`, `refresh_size`) of this backend's devices.
pub use pinio_file::FileDevice;
pub use queue::{Reaped, UringQueue};
pub use registry::{SLOTS, TableRing};
