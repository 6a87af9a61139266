// SPDX-License-Identifier: GPL-2.0

//! A registered region: a user buffer pinned long-term and charged to its owner.

use crate::{
    abi,
    accounting::LockedVmCharge,
    pinned::{PinDuration, PinMode, PinnedPages},
};
use kernel::{page::PAGE_SIZE, prelude::*};

/// A user buffer `[addr, addr + len)` of the registering process, pinned for DMA.
///
/// # Invariants
///
/// - `pages` covers every page the buffer touches; byte `i` of the buffer is byte
///   `first_offset + i` of the pinned run.
/// - `len > 0`, `first_offset < PAGE_SIZE`.
/// - `access` is a non-empty subset of [`abi::ACCESS_ALL`]; `pages` is writable iff it contains
///   [`abi::ACCESS_DEVICE_WRITE`].
/// - `_charge` accounts exactly `pages.len()` pages; it is dropped after `pages` (field order),
///   so the locked-memory charge outlives the pins.
pub(crate) struct Region {
    pages: PinnedPages,
    first_offset: usize,
    len: usize,
    access: u32,
    _charge: LockedVmCharge,
}

impl Region {
    /// Number of pages a buffer of `len` bytes at `addr` touches. `EINVAL` for a zero length,
    /// `EOVERFLOW` when `addr + len` wraps.
    pub(crate) fn pages_spanned(addr: u64, len: u64) -> Result<usize> {
        if len == 0 {
            return Err(EINVAL);
        }
        let addr = usize::try_from(addr).map_err(|_| EOVERFLOW)?;
        let len = usize::try_from(len).map_err(|_| EOVERFLOW)?;
        let end = addr.checked_add(len).ok_or(EOVERFLOW)?;
        let first = addr / PAGE_SIZE;
        let last = (end - 1) / PAGE_SIZE;
        Ok(last - first + 1)
    }

    /// Checks an access mask: `EINVAL` if it is empty or has unknown bits.
    pub(crate) fn check_access(access: u32) -> Result {
        if access == 0 || access & !abi::ACCESS_ALL != 0 {
            return Err(EINVAL);
        }
        Ok(())
    }

    /// Charges and pins the buffer `[addr, addr + len)` of the current process.
    ///
    /// The caller validated `access` and obtained `nr_pages` from [`Region::pages_spanned`].
    /// Errors: `ENOMEM` over `RLIMIT_MEMLOCK`; `EFAULT` for an unmapped range or a read-only
    /// mapping registered with [`abi::ACCESS_DEVICE_WRITE`]; nothing stays pinned or charged.
    pub(crate) fn register(addr: u64, len: u64, access: u32, nr_pages: usize) -> Result<Self> {
        // `pages_spanned` succeeded, so both fit in `usize` and `addr + len` does not wrap.
        let addr = addr as usize;
        let len = len as usize;
        let charge = LockedVmCharge::charge_current(nr_pages)?;
        let mode = if access & abi::ACCESS_DEVICE_WRITE != 0 {
            PinMode::Writable
        } else {
            PinMode::ReadOnly
        };
        let start = addr - addr % PAGE_SIZE;
        // On error `charge` is dropped here and the charge returned.
        let pages = PinnedPages::pin(start, nr_pages, mode, PinDuration::LongTerm)?;
        // INVARIANT: `pages` covers `nr_pages` pages from the page holding `addr`, which is every
        // page of the buffer; `len > 0` per `pages_spanned`.
        Ok(Self {
            pages,
            first_offset: addr % PAGE_SIZE,
            len,
            access,
            _charge: charge,
        })
    }

    /// Length of the buffer in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Pinned pages.
    pub(crate) fn nr_pages(&self) -> usize {
        self.pages.len()
    }

    /// Whether descriptors of direction `dir` may use this region: `EACCES` if not.
    pub(crate) fn check_dir(&self, dir: u32) -> Result {
        let needed = match dir {
            abi::DIR_TO_DEVICE => abi::ACCESS_DEVICE_READ,
            abi::DIR_FROM_DEVICE => abi::ACCESS_DEVICE_WRITE,
            _ => return Err(EINVAL),
        };
        if self.access & needed == 0 {
            return Err(EACCES);
        }
        Ok(())
    }

    /// Copies buffer bytes `[offset, offset + dst.len())` into `dst` (the device reading memory).
    pub(crate) fn read(&self, offset: usize, dst: &mut [u8]) -> Result {
        self.check(offset, dst.len())?;
        self.pages.read_at(self.first_offset + offset, dst)
    }

    /// Copies `src` into buffer bytes `[offset, offset + src.len())` (the device writing memory);
    /// the pages are dirtied when unpinned.
    pub(crate) fn write(&self, offset: usize, src: &[u8]) -> Result {
        self.check(offset, src.len())?;
        self.pages.write_at(self.first_offset + offset, src)
    }

    fn check(&self, offset: usize, len: usize) -> Result {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(ERANGE),
        }
    }
}
