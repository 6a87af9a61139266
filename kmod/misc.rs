// SPDX-License-Identifier: GPL-2.0

//! A misc device registered with a `file_operations` table of our own.
//!
//! C header: [`include/linux/miscdevice.h`](srctree/include/linux/miscdevice.h).
//!
//! `kernel::miscdevice::MiscDevice` of 7.3 offers no `poll`, `read` or `write` (only the
//! `*_iter` forms), so `/dev/pinio` and `/dev/Sample` fill in their `file_operations` directly
//! (see `pinio_fops.rs` and `sample.rs`) and register through this type.

use kernel::{bindings, error::to_result, prelude::*, types::Opaque};

/// A registered `struct miscdevice`.
///
/// # Invariants
///
/// `inner` was registered with `misc_register` and is deregistered exactly once, in `drop`.
/// While registered, `misc_open` stores a pointer to `inner` (which is also a pointer to `Self`,
/// the struct being `repr(transparent)`) in `file->private_data` before calling `fops.open`.
#[repr(transparent)]
#[pin_data(PinnedDrop)]
pub(crate) struct MiscRegistration {
    #[pin]
    inner: Opaque<bindings::miscdevice>,
}

// SAFETY: The registration is only touched by `misc_register`/`misc_deregister`, which lock
// internally; it can be dropped on any thread.
unsafe impl Send for MiscRegistration {}
// SAFETY: `&MiscRegistration` exposes nothing mutable.
unsafe impl Sync for MiscRegistration {}

impl MiscRegistration {
    /// Registers `/dev/<name>` with dynamic minor, file mode `mode` and `fops`.
    pub(crate) fn register(
        name: &'static CStr,
        mode: u16,
        fops: &'static bindings::file_operations,
    ) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            inner <- Opaque::try_ffi_init(move |slot: *mut bindings::miscdevice| {
                let mut misc: bindings::miscdevice = pin_init::zeroed();
                misc.minor = bindings::MISC_DYNAMIC_MINOR as c_int;
                misc.name = name.as_char_ptr();
                misc.fops = fops;
                misc.mode = mode;
                // SAFETY: `slot` is valid for writing a `miscdevice` (`try_ffi_init` contract).
                unsafe { slot.write(misc) };
                // SAFETY: `slot` holds an initialised `miscdevice` that is pinned for as long as
                // it stays registered (until `drop`); `name` and `fops` are `'static`.
                to_result(unsafe { bindings::misc_register(slot) })
            }),
        })
    }
}

#[pinned_drop]
impl PinnedDrop for MiscRegistration {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariants `inner` is registered; this is the only deregistration.
        unsafe { bindings::misc_deregister(self.inner.get()) };
    }
}
