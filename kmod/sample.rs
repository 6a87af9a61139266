// SPDX-License-Identifier: GPL-2.0

//! `/dev/Sample`: the classic get_user_pages demonstration, made correct.
//!
//! `write(fd, buf, n)` pins the page(s) under `buf` writable (`FOLL_PIN | FOLL_WRITE`, not
//! long-term: the pin lasts for the call), maps them with `kmap_local_page`, logs the
//! NUL-terminated string found at `buf` (bounded to the end of its page), writes the reply
//! `"Mohan\0"` at `buf` in place, dirties and unpins the pages, and returns `n`.
//!
//! Errors: `EINVAL` when `n` is smaller than the reply (6 bytes: the caller's buffer could not
//! hold it); `EFAULT` for an unmapped or read-only buffer (the writable pin is refused).

use crate::pinned::{PinDuration, PinMode, PinnedPages};
use kernel::{bindings, page::PAGE_SIZE, prelude::*, str::BStr};

/// The reply written in place, with its NUL terminator.
const REPLY: &[u8] = b"Mohan\0";

/// The `file_operations` of `/dev/Sample`.
pub(crate) const SAMPLE_FOPS: bindings::file_operations = bindings::file_operations {
    owner: kernel::module::this_module::<crate::PinioModule>().as_ptr(),
    write: Some(write),
    ..pin_init::zeroed()
};

/// # Safety
///
/// Called by the VFS for an open `/dev/Sample` file; `buf` is a user pointer of `count` bytes.
unsafe extern "C" fn write(
    _file: *mut bindings::file,
    buf: *const c_char,
    count: usize,
    _pos: *mut bindings::loff_t,
) -> isize {
    match exchange(buf as usize, count) {
        Ok(()) => count as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// Reads the greeting at user address `addr` through a pinned page and answers in place.
fn exchange(addr: usize, count: usize) -> Result {
    if count < REPLY.len() {
        return Err(EINVAL);
    }
    let end = addr.checked_add(REPLY.len()).ok_or(EFAULT)?;
    let start = addr - addr % PAGE_SIZE;
    let nr_pages = (end - 1) / PAGE_SIZE - addr / PAGE_SIZE + 1;
    let pages = PinnedPages::pin(start, nr_pages, PinMode::Writable, PinDuration::Transient)?;

    let offset = addr % PAGE_SIZE;
    let mut greeting = KVec::from_elem(0u8, PAGE_SIZE - offset, GFP_KERNEL)?;
    pages.read_at(0, offset, &mut greeting)?;
    let len = greeting.iter().position(|&b| b == 0).unwrap_or(greeting.len());
    pr_info!("Sample: data is {}\n", BStr::from_bytes(&greeting[..len]));

    pages.write_at(0, offset, REPLY)?;
    // `pages` is dropped here: dirtied (written above) and unpinned.
    Ok(())
}
