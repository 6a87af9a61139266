//! Userspace side of the pinio kernel module (`/dev/pinio`).
//!
//! - [`KmodDevice`] / [`KmodQueue`]: the `kmod:/dev/pinio` backend of `pinio-core`.
//!   Its domain ([`KmodRegistrar`]) is one kernel session (one open file of `/dev/pinio`): the
//!   regions it pins serve every device of the domain, and those devices are *channels*,
//!   disjoint windows of the echo device's memory ([`Channel`]: `/dev/pinio` is the whole
//!   memory, `/dev/pinio@4M+4M` a range, `/dev/pinio#1/2` the second half).
//! - [`abi`]: the ioctl ABI, shared verbatim with the kernel module (`kmod/`); [`abi_c`] renders
//!   its C header and the ABI tables of docs/kmod.md from it.
//! - [`sys`]: a thin client, one method per ioctl, errno kept ([`KmodError`]).
//!
//! The module pins registered buffers with `pin_user_pages_fast(FOLL_LONGTERM)`, and its DMA
//! engine (a kernel worker) copies between those pages and the device's on-board memory without
//! touching user virtual addresses. docs/kmod.md describes the protocol.
//!
//! ```no_run
//! use pinio_core::{Device, Queue};
//! let dev = pinio_kmod::KmodDevice::open("/dev/pinio")?;
//! let region = dev.alloc(1 << 20)?;
//! let mut q = dev.queue(32)?;
//! let mut s = region.slice(0, 4096)?;
//! s.fill(7);
//! let (_, s) = q.write_at(s, 0)?; // the module's DMA engine reads the pinned page
//! let (n, s) = q.read_at(s, 0)?; // and writes it back
//! assert_eq!((n, s[0]), (4096, 7));
//! # Ok::<(), pinio_core::Error>(())
//! ```

#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod abi;
pub mod abi_c;
mod channel;
mod device;
mod error;
mod queue;
mod router;
mod session;
mod shared;
pub mod sys;
mod wakeup;

pub use channel::{Channel, Span, Window};
pub use device::{KmodDevice, probe};
pub use error::{Call, KmodError};
pub use queue::KmodQueue;
pub use session::KmodRegistrar;
