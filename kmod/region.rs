// SPDX-License-Identifier: GPL-2.0

//! Registered regions: user buffers pinned long-term and charged to their owner, held in runs.
//!
//! A *run* is the regions of one REGISTER, or of a stretch of one REGISTER_VEC whose buffers lie
//! on adjacent pages with the same pin mode (a pool of buffers registered one region each). A run
//! is pinned by one `pin_user_pages_fast` call (per 65,536 pages), charged once, and is one
//! object with one page array; its regions have consecutive ids and each keeps its own length,
//! access and in-flight count, and is unpinned and uncharged on its own. The run is freed with
//! its last region. So a vectored registration of many small adjacent buffers costs about what
//! pinning their pages in one call costs, where one object and one pin call per region cost
//! several times that (docs/kmod.md, docs/benchmarks.md).

use crate::{
    abi,
    accounting::LockedVmCharge,
    one_or_many::OneOrMany,
    pinned::{PinDuration, PinMode, PinnedPages},
};
use kernel::{
    mm::Mm,
    page::PAGE_SIZE,
    prelude::*,
    sync::{aref::ARef, Arc},
};

/// What a run knows of each of its regions; the region's pages are the piece of the same index
/// of the run's [`PinnedPages`].
struct RegionInfo {
    first_offset: usize,
    len: usize,
    access: u32,
}

/// The regions of one registration call whose pages are adjacent, pinned together.
///
/// # Invariants
///
/// - `regions.len()` is the number of pieces of `pages`, and region `i`'s buffer is bytes
///   `[first_offset, first_offset + len)` of piece `i`, which covers every page the buffer
///   touches; `len > 0`, `first_offset < PAGE_SIZE`.
/// - Each `access` is a non-empty subset of [`abi::ACCESS_ALL`]; `pages` is writable iff every
///   `access` contains [`abi::ACCESS_DEVICE_WRITE`] (the run's regions share their pin mode).
/// - The pages of the pieces not yet released are charged to `mm` (`locked_vm`), a charge this
///   run owns and returns piece by piece ([`Run::release`]) or on drop, after unpinning.
pub(crate) struct Run {
    regions: OneOrMany<RegionInfo>,
    pages: PinnedPages,
    mm: ARef<Mm>,
}

impl Run {
    /// Number of pages a buffer of `len` bytes at `addr` touches. `EINVAL` for a zero length,
    /// `EOVERFLOW` when `addr + len` wraps.
    pub(crate) fn pages_spanned(addr: u64, len: u64) -> Result<usize> {
        let (first, last) = Self::page_span(addr, len)?;
        Ok(last - first + 1)
    }

    /// The first and last page number of a buffer of `len` bytes at `addr`; errors as
    /// [`Run::pages_spanned`].
    fn page_span(addr: u64, len: u64) -> Result<(usize, usize)> {
        if len == 0 {
            return Err(EINVAL);
        }
        let addr = usize::try_from(addr).map_err(|_| EOVERFLOW)?;
        let len = usize::try_from(len).map_err(|_| EOVERFLOW)?;
        let end = addr.checked_add(len).ok_or(EOVERFLOW)?;
        Ok((addr / PAGE_SIZE, (end - 1) / PAGE_SIZE))
    }

    /// Checks an access mask: `EINVAL` if it is empty or has unknown bits.
    pub(crate) fn check_access(access: u32) -> Result {
        if access == 0 || access & !abi::ACCESS_ALL != 0 {
            return Err(EINVAL);
        }
        Ok(())
    }

    fn pin_mode(access: u32) -> PinMode {
        if access & abi::ACCESS_DEVICE_WRITE != 0 {
            PinMode::Writable
        } else {
            PinMode::ReadOnly
        }
    }

    /// The longest prefix of the checked `entries` that can be one run: how many entries, and
    /// how many pages they span. Each entry's first page must be the page after the previous
    /// entry's last, and all must be pinned the same way. At least one entry for a non-empty
    /// slice.
    fn stretch(entries: &[abi::RegisterArgs]) -> Result<(usize, usize)> {
        let Some(first) = entries.first() else {
            return Ok((0, 0));
        };
        let mode = Self::pin_mode(first.access);
        let (mut count, mut pages, mut next_page) = (0, 0, None);
        for e in entries {
            let (first_page, last_page) = Self::page_span(e.addr, e.len)?;
            if next_page.is_some_and(|p| p != first_page) || Self::pin_mode(e.access) != mode {
                break;
            }
            // No overflow: `last_page` is an address divided by the page size.
            next_page = Some(last_page + 1);
            pages += last_page - first_page + 1;
            count += 1;
        }
        Ok((count, pages))
    }

    /// Pins the buffers of the longest prefix of the checked `entries` that can be one run
    /// ([`Run::stretch`]) in the current process, with their share of `charge` (a charge to the
    /// current process's mm of at least the pages they span), kept for as long as they are
    /// pinned. Returns the run and how many entries it took (at least one).
    ///
    /// The caller checked every entry ([`Run::check_access`], [`Run::pages_spanned`]); `EINVAL`
    /// for no entry. Errors: `EFAULT` for an unmapped range or a read-only mapping registered
    /// with [`abi::ACCESS_DEVICE_WRITE`]; nothing stays pinned, and the share goes back on drop.
    pub(crate) fn register(
        entries: &[abi::RegisterArgs],
        charge: &mut LockedVmCharge,
    ) -> Result<(Self, usize)> {
        let (count, pages) = Self::stretch(entries)?;
        let entries = &entries[..count];
        let first = entries.first().ok_or(EINVAL)?;
        let mode = Self::pin_mode(first.access);
        let piece_pages = OneOrMany::from_fn(count, |i| {
            Self::pages_spanned(entries[i].addr, entries[i].len)
        })?;
        let charge = charge.split(pages)?;
        // `page_span` succeeded, so the address fits in `usize`.
        let start = first.addr as usize - first.addr as usize % PAGE_SIZE;
        // On error `charge` is dropped here and the charge returned.
        let pages = PinnedPages::pin_pieces(start, &piece_pages, mode, PinDuration::LongTerm)?;
        let regions = OneOrMany::from_fn(entries.len(), |i| {
            let e = &entries[i];
            Ok(RegionInfo {
                first_offset: e.addr as usize % PAGE_SIZE,
                len: e.len as usize,
                access: e.access,
            })
        })?;
        let (mm, _) = charge.into_parts();
        // INVARIANT: piece `i` covers the pages of entry `i` (`stretch` found the entries
        // adjacent and in order), whose bytes start `first_offset` into its first page; the
        // entries share the pin mode of the first; the charge of all pinned pages moved into the
        // run.
        Ok((Self { regions, pages, mm }, count))
    }

    /// Number of regions in the run.
    pub(crate) fn count(&self) -> usize {
        self.regions.len()
    }

    /// Region `index` of the run, if it has one.
    pub(crate) fn region(run: Arc<Run>, index: usize) -> Option<RegionRef> {
        // INVARIANT: checked just below.
        (index < run.count()).then_some(RegionRef { run, index })
    }

    /// Pinned pages of the regions `range` (which must be regions of the run).
    pub(crate) fn pages_of(&self, range: core::ops::Range<usize>) -> usize {
        self.pages.pieces_len(range)
    }

    /// Unpins the regions `range` of the run (one call for all their pages when they are
    /// adjacent and none was written) and returns their locked-memory charge, which the caller
    /// drops (uncharges) when it likes: the pins are gone already.
    ///
    /// # Safety
    ///
    /// The regions `range` must have just left the session's table (a region leaves it once,
    /// and whoever took it out releases it, once), with no descriptor in flight: no other thread
    /// releases, reads or writes them now or later.
    pub(crate) unsafe fn release(&self, range: core::ops::Range<usize>) -> LockedVmCharge {
        // SAFETY: Per the contract the regions just left the table, which a region does once, so
        // their pieces are not released yet, and nothing else releases or uses them.
        let pages = unsafe { self.pages.release(range) };
        // SAFETY: By the type invariants the pages of unreleased pieces are charged to `mm` and
        // owned by this run; `release` counted exactly those it released now.
        unsafe { LockedVmCharge::from_parts(self.mm.clone(), pages) }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let pages = self.pages.release_rest();
        // SAFETY: By the type invariants the pages of unreleased pieces are charged to `mm` and
        // owned by this run; `release_rest` counted exactly those. Uncharged after they were
        // unpinned just above.
        drop(unsafe { LockedVmCharge::from_parts(self.mm.clone(), pages) });
    }
}

/// One region of a [`Run`], with a reference keeping the run alive.
///
/// # Invariants
///
/// `index < run.count()`.
pub(crate) struct RegionRef {
    run: Arc<Run>,
    index: usize,
}

impl RegionRef {
    fn info(&self) -> &RegionInfo {
        &self.run.regions[self.index]
    }

    /// Length of the buffer in bytes.
    pub(crate) fn len(&self) -> usize {
        self.info().len
    }

    /// Whether descriptors of direction `dir` may use this region: `EACCES` if not.
    pub(crate) fn check_dir(&self, dir: u32) -> Result {
        let needed = match dir {
            abi::DIR_TO_DEVICE => abi::ACCESS_DEVICE_READ,
            abi::DIR_FROM_DEVICE => abi::ACCESS_DEVICE_WRITE,
            _ => return Err(EINVAL),
        };
        if self.info().access & needed == 0 {
            return Err(EACCES);
        }
        Ok(())
    }

    /// Copies buffer bytes `[offset, offset + dst.len())` into `dst` (the device reading memory).
    pub(crate) fn read(&self, offset: usize, dst: &mut [u8]) -> Result {
        let at = self.check(offset, dst.len())?;
        self.run.pages.read_at(self.index, at, dst)
    }

    /// Copies `src` into buffer bytes `[offset, offset + src.len())` (the device writing memory);
    /// the pages are dirtied when unpinned.
    pub(crate) fn write(&self, offset: usize, src: &[u8]) -> Result {
        let at = self.check(offset, src.len())?;
        self.run.pages.write_at(self.index, at, src)
    }

    /// `ERANGE` unless `[offset, offset + len)` lies in the buffer; else the position of
    /// `offset` in the region's pages.
    fn check(&self, offset: usize, len: usize) -> Result<usize> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len() => Ok(self.info().first_offset + offset),
            _ => Err(ERANGE),
        }
    }
}
