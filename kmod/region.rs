// SPDX-License-Identifier: GPL-2.0

//! A registered region: a user buffer pinned long-term and charged to its owner.

use crate::{
    abi,
    accounting::LockedVmCharge,
    pinned::{PinDuration, PinMode, PinnedPages},
};
use kernel::{
    page::PAGE_SIZE,
    prelude::*,
    sync::atomic::{Atomic, Relaxed},
};

/// A user buffer `[addr, addr + len)` of the registering process, pinned for DMA.
///
/// # Invariants
///
/// - `pages` covers every page the buffer touches; byte `i` of the buffer is byte
///   `first_offset + i` of the pinned run.
/// - `len > 0`, `first_offset < PAGE_SIZE`.
/// - `access` is a non-empty subset of [`abi::ACCESS_ALL`]; `pages` is writable iff it contains
///   [`abi::ACCESS_DEVICE_WRITE`].
/// - `charge` accounts exactly `pages.len()` pages, or none once [`Region::take_charge`] moved
///   them to a caller that returns them after dropping the region; it is dropped after `pages`
///   (field order), so the locked-memory charge outlives the pins.
/// - `in_flight` counts the descriptors of the region in flight; it is changed only under the
///   owning session's state lock.
pub(crate) struct Region {
    pages: PinnedPages,
    first_offset: usize,
    len: usize,
    access: u32,
    charge: LockedVmCharge,
    in_flight: Atomic<usize>,
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

    /// Pins the buffer `[addr, addr + len)` of the current process, keeping `charge` (which
    /// must be a charge of `nr_pages` pages to the current process's mm) for as long as it is
    /// pinned.
    ///
    /// The caller validated `access` and obtained `nr_pages` from [`Region::pages_spanned`].
    /// Errors: `EFAULT` for an unmapped range or a read-only mapping registered with
    /// [`abi::ACCESS_DEVICE_WRITE`]; nothing stays pinned, and `charge` is returned on drop.
    pub(crate) fn register(
        addr: u64,
        len: u64,
        access: u32,
        nr_pages: usize,
        charge: LockedVmCharge,
    ) -> Result<Self> {
        // `pages_spanned` succeeded, so both fit in `usize` and `addr + len` does not wrap.
        let addr = addr as usize;
        let len = len as usize;
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
            charge,
            in_flight: Atomic::new(0),
        })
    }

    /// Moves the region's locked-memory charge to the caller, who must return it (drop it) only
    /// after the region itself was dropped, so the charge still outlives the pins.
    pub(crate) fn take_charge(&mut self) -> LockedVmCharge {
        self.charge.take()
    }

    /// Descriptors of this region in flight.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Relaxed)
    }

    /// Counts one more descriptor in flight. Called under the session's state lock.
    pub(crate) fn start_job(&self) {
        // A plain read-modify-write: every writer holds the session's state lock.
        self.in_flight.store(self.in_flight.load(Relaxed) + 1, Relaxed);
    }

    /// Counts one descriptor less in flight. Called under the session's state lock.
    pub(crate) fn end_job(&self) {
        // See `start_job`; never below zero: each `end_job` follows its `start_job`.
        self.in_flight.store(self.in_flight.load(Relaxed).saturating_sub(1), Relaxed);
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
