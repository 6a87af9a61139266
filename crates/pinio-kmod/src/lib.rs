//! Userspace side of the pinio kernel module (`/dev/pinio`).
//!
//! - [`abi`]: the ioctl ABI, shared verbatim with the kernel module (`kmod/`).
//! - [`sys`]: a thin client, one method per ioctl, errno kept ([`KmodError`]).
//!
//! The module pins registered buffers with `pin_user_pages_fast(FOLL_LONGTERM)`, and its DMA
//! engine (a kernel worker) copies between those pages and the device's on-board memory without
//! touching user virtual addresses. docs/kmod.md describes the protocol.

#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod abi;
mod error;
pub mod sys;

pub use error::{Call, KmodError};
