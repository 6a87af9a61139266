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
    sync::{
        aref::ARef,
        atomic::{Atomic, Relaxed},
        Arc,
    },
};

/// What a run knows of each of its regions; the region's pages are the piece of the same index
/// of the run's [`PinnedPages`].
struct RegionInfo {
    first_offset: usize,
    len: usize,
    access: u32,
    in_flight: Atomic<usize>,
    registered: Atomic<bool>,
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
/// - `in_flight` counts the descriptors of the region in flight, `registered` says whether the
///   region is still in its session's table, and `live` counts the registered regions; all three
///   change only under the owning session's state lock. A region that left the table never
///   returns to it.
/// - `first_id` is the id of region 0 once the run is in its session's table (region `i` has id
///   `first_id + i`); it is set before and never changed after that.
pub(crate) struct Run {
    first_id: Atomic<u32>,
    live: Atomic<usize>,
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

    /// Whether the checked entry `next` can join the run that ends with the checked entry `prev`:
    /// its first page is the page after `prev`'s last, and both are pinned the same way.
    pub(crate) fn continues(prev: &abi::RegisterArgs, next: &abi::RegisterArgs) -> bool {
        let (Ok((_, prev_last)), Ok((next_first, _))) = (
            Self::page_span(prev.addr, prev.len),
            Self::page_span(next.addr, next.len),
        ) else {
            return false;
        };
        Some(next_first) == prev_last.checked_add(1)
            && Self::pin_mode(prev.access) == Self::pin_mode(next.access)
    }

    /// Pins the buffers of `entries` in the current process, keeping `charge` (which must be a
    /// charge of the pages they span to the current process's mm) for as long as they are
    /// pinned.
    ///
    /// The caller checked every entry ([`Run::check_access`], [`Run::pages_spanned`]) and that
    /// each continues the one before ([`Run::continues`]); `EINVAL` for no entry or one that
    /// does not. Errors: `EFAULT` for an unmapped range or a read-only mapping registered with
    /// [`abi::ACCESS_DEVICE_WRITE`]; nothing stays pinned, and `charge` is returned on drop.
    pub(crate) fn register(entries: &[abi::RegisterArgs], charge: LockedVmCharge) -> Result<Self> {
        let first = entries.first().ok_or(EINVAL)?;
        if entries.windows(2).any(|w| !Self::continues(&w[0], &w[1])) {
            return Err(EINVAL);
        }
        let piece_pages = OneOrMany::from_fn(entries.len(), |i| {
            Self::pages_spanned(entries[i].addr, entries[i].len)
        })?;
        // `pages_spanned` succeeded, so the address fits in `usize`.
        let start = first.addr as usize - first.addr as usize % PAGE_SIZE;
        let mode = Self::pin_mode(first.access);
        // On error `charge` is dropped here and the charge returned.
        let pages = PinnedPages::pin_pieces(start, &piece_pages, mode, PinDuration::LongTerm)?;
        let regions = OneOrMany::from_fn(entries.len(), |i| {
            let e = &entries[i];
            Ok(RegionInfo {
                first_offset: e.addr as usize % PAGE_SIZE,
                len: e.len as usize,
                access: e.access,
                in_flight: Atomic::new(0),
                registered: Atomic::new(true),
            })
        })?;
        let (mm, _) = charge.into_parts();
        // INVARIANT: piece `i` covers the pages of entry `i` (the entries are adjacent and in
        // order), whose bytes start `first_offset` into its first page; the entries share the
        // pin mode of the first; the charge of all pinned pages moved into the run.
        Ok(Self {
            first_id: Atomic::new(0),
            live: Atomic::new(entries.len()),
            regions,
            pages,
            mm,
        })
    }

    /// Number of regions in the run.
    pub(crate) fn count(&self) -> usize {
        self.regions.len()
    }

    /// Records the id of region 0, before the run is stored in its session's table.
    pub(crate) fn set_first_id(&self, id: u32) {
        self.first_id.store(id, Relaxed);
    }

    /// The index in this run of the region of id `id`, if it is one of its regions.
    pub(crate) fn index_of(&self, id: u32) -> Option<usize> {
        let index = id.checked_sub(self.first_id.load(Relaxed))? as usize;
        (index < self.count()).then_some(index)
    }

    /// The region of id `id` of this run, if it is one of its regions.
    pub(crate) fn region(run: Arc<Run>, id: u32) -> Option<RegionRef> {
        let index = run.index_of(id)?;
        // INVARIANT: `index_of` checked `index < count()`.
        Some(RegionRef { run, index })
    }

    /// Whether region `index` is still registered (in its session's table).
    pub(crate) fn is_registered(&self, index: usize) -> bool {
        self.regions
            .get(index)
            .is_some_and(|r| r.registered.load(Relaxed))
    }

    /// Marks region `index` as out of its session's table; returns whether it was the run's
    /// last registered region. Called under the session's state lock, for a registered region.
    pub(crate) fn unregister(&self, index: usize) -> bool {
        let Some(r) = self.regions.get(index) else {
            return false;
        };
        // Plain read-modify-writes: every writer holds the session's state lock.
        if !r.registered.load(Relaxed) {
            return false;
        }
        r.registered.store(false, Relaxed);
        let live = self.live.load(Relaxed).saturating_sub(1);
        self.live.store(live, Relaxed);
        live == 0
    }

    /// Descriptors in flight on region `index` (0 for no such region).
    pub(crate) fn in_flight(&self, index: usize) -> usize {
        self.regions
            .get(index)
            .map_or(0, |r| r.in_flight.load(Relaxed))
    }

    /// Pinned pages of region `index` (0 for no such region).
    pub(crate) fn nr_pages(&self, index: usize) -> usize {
        self.pages.piece_len(index)
    }

    /// Unpins the regions `range` of the run (one call for all their pages when they are
    /// adjacent and none was written) and returns their locked-memory charge, which the caller
    /// drops (uncharges) when it likes: the pins are gone already.
    ///
    /// # Safety
    ///
    /// The regions `range` must have left the session's table, which is what gives the right to
    /// release them, with no descriptor in flight: no other thread releases, reads or writes them
    /// now or later.
    pub(crate) unsafe fn release(&self, range: core::ops::Range<usize>) -> LockedVmCharge {
        // SAFETY: Per the contract nothing else releases or uses these regions' pieces.
        let pages = unsafe { self.pages.release(range) };
        // SAFETY: By the type invariants the pages of unreleased pieces are charged to `mm` and
        // owned by this run; `release` counted exactly those it released now.
        unsafe { LockedVmCharge::from_parts(self.mm.clone(), pages) }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no other thread holds the run, and nothing uses it after the drop.
        let charge = unsafe { self.release(0..self.count()) };
        // Uncharged after the pages were unpinned above.
        drop(charge);
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

    /// Counts one more descriptor in flight. Called under the session's state lock.
    pub(crate) fn start_job(&self) {
        let n = &self.info().in_flight;
        // A plain read-modify-write: every writer holds the session's state lock.
        n.store(n.load(Relaxed) + 1, Relaxed);
    }

    /// Counts one descriptor less in flight. Called under the session's state lock.
    pub(crate) fn end_job(&self) {
        let n = &self.info().in_flight;
        // See `start_job`; never below zero: each `end_job` follows its `start_job`.
        n.store(n.load(Relaxed).saturating_sub(1), Relaxed);
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
