//! Userspace side of the pinio kernel module (`/dev/pinio`).
//!
//! [`abi`] is the ioctl ABI shared verbatim with the kernel module (`kmod/`).

#![deny(missing_docs)]

pub mod abi;
