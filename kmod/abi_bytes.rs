// SPDX-License-Identifier: GPL-2.0

//! Marks the ABI structures as plain bytes so `uaccess` can copy them.

use crate::abi;
use kernel::transmute::{AsBytes, FromBytes};

macro_rules! plain_bytes {
    ($($t:ty),* $(,)?) => {$(
        // SAFETY: `$t` is `#[repr(C)]`, made only of integers, and has no padding (its layout is
        // pinned by crates/pinio-kmod/tests/abi_layout.rs), so every bit pattern is valid and
        // every byte is initialised.
        unsafe impl FromBytes for $t {}
        // SAFETY: See above: no padding, no interior mutability.
        unsafe impl AsBytes for $t {}
    )*};
}

plain_bytes!(
    abi::Info,
    abi::RegisterArgs,
    abi::UnregisterArgs,
    abi::VecArgs,
    abi::Desc,
    abi::SubmitArgs,
    abi::CompletionRecord,
    abi::ReapArgs,
);
