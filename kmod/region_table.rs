// SPDX-License-Identifier: GPL-2.0

//! The region table of a session: region id -> region, over the session's runs in id order.
//!
//! Region ids are handed out in increasing order and never reused, and a run's regions have
//! consecutive ids, so the runs sorted by their first id are simply the runs in the order they
//! were registered: the table is an array of them, appended to, searched by bisection (a
//! lookup of region `id` finds the last run whose first id is at most `id`). Registering a run
//! of thousands of regions appends one slot, not one entry per region; a region leaving the
//! table clears its flag in the slot, and a run whose last region left frees its slot (the
//! array is compacted once half of it is free, so that costs O(1) amortised).
//!
//! What the session tracks of each region (registered or not, descriptors in flight) lives
//! here, as plain data under the session's state lock; the [`Run`] holds only what the DMA
//! engine reads (pages, bounds, access), fixed at registration.

use crate::{
    one_or_many::OneOrMany,
    region::{RegionRef, Run},
};
use kernel::{prelude::*, sync::Arc};

/// What the session tracks of one region.
struct RegionState {
    registered: bool,
    in_flight: usize,
}

/// One run of the table, or a free slot that once held one.
///
/// # Invariants
///
/// `regions` has one entry per region of `run`; `live` is the number of them registered, and
/// `run` is `None` iff `live == 0`.
struct Slot {
    first_id: u32,
    run: Option<Arc<Run>>,
    regions: OneOrMany<RegionState>,
    live: usize,
}

impl Slot {
    /// Region `id`'s index in this slot's run, if it is one of its registered regions.
    fn index_of(&self, id: u32) -> Option<usize> {
        let index = id.checked_sub(self.first_id)? as usize;
        self.regions
            .get(index)
            .is_some_and(|r| r.registered)
            .then_some(index)
    }
}

/// The regions of one session.
///
/// # Invariants
///
/// - `slots` is sorted by `first_id`, strictly increasing; region `i` of a slot's run has id
///   `first_id + i`, below the next slot's `first_id`.
/// - A region is in the table iff it is registered in its slot; `regions` is the number of
///   such regions, `free` the number of slots without a run.
pub(crate) struct RegionTable {
    slots: KVVec<Slot>,
    regions: usize,
    free: usize,
}

impl RegionTable {
    /// An empty table.
    pub(crate) fn new() -> Self {
        Self {
            slots: KVVec::new(),
            regions: 0,
            free: 0,
        }
    }

    /// Number of regions in the table.
    pub(crate) fn len(&self) -> usize {
        self.regions
    }

    /// Appends `runs` (none in the table), giving their regions the consecutive ids from
    /// `first` on, in order: `first` must be above every id in the table (`EINVAL`) and the ids
    /// must not run out (the caller checks). `ENOMEM`; on error nothing is appended.
    pub(crate) fn append(&mut self, first: u32, runs: &[Arc<Run>]) -> Result {
        if self.slots.last().is_some_and(|s| s.first_id >= first) {
            return Err(EINVAL);
        }
        // Allocate everything before the first append: all or nothing.
        let mut slots = KVVec::with_capacity(runs.len(), GFP_KERNEL)?;
        let mut id = first;
        for run in runs {
            let regions = OneOrMany::from_fn(run.count(), |_| {
                Ok(RegionState {
                    registered: true,
                    in_flight: 0,
                })
            })?;
            let slot = Slot {
                first_id: id,
                run: Some(run.clone()),
                regions,
                live: run.count(),
            };
            // Cannot fail: the capacity is `runs.len()`.
            slots.push_within_capacity(slot).map_err(|_| ENOMEM)?;
            // No wrap: the caller checked that the ids do not run out.
            id = id.wrapping_add(run.count() as u32);
        }
        self.slots.reserve(slots.len(), GFP_KERNEL)?;
        for slot in slots.drain_all() {
            self.regions += slot.live;
            // Cannot fail: room was reserved above.
            self.slots.push_within_capacity(slot).map_err(|_| ENOMEM)?;
        }
        // INVARIANT: the runs were appended in id order after every slot, their regions
        // registered and counted.
        Ok(())
    }

    /// The slot of the run that region `id` would belong to; `hint` is tried first (callers
    /// walking ids in order pass the slot of the previous one).
    fn slot_of(&self, id: u32, hint: usize) -> Option<usize> {
        let contains = |slot: usize| {
            self.slots.get(slot).is_some_and(|s| s.first_id <= id)
                && self
                    .slots
                    .get(slot + 1)
                    .is_none_or(|next| id < next.first_id)
        };
        if contains(hint) {
            return Some(hint);
        }
        self.slots
            .partition_point(|s| s.first_id <= id)
            .checked_sub(1)
    }

    /// Region `id`: its slot (also a hint for the next lookup) and its index in the slot's run.
    pub(crate) fn find(&self, id: u32, hint: usize) -> Option<(usize, usize)> {
        let slot = self.slot_of(id, hint)?;
        Some((slot, self.slots[slot].index_of(id)?))
    }

    /// The run of region `id` and the region's index in it (a new reference to the run).
    pub(crate) fn region(&self, id: u32) -> Option<RegionRef> {
        let (slot, index) = self.find(id, 0)?;
        Run::region(self.slots[slot].run.clone()?, index)
    }

    /// The run in slot `slot`, if it still has one.
    pub(crate) fn run_at(&self, slot: usize) -> Option<&Arc<Run>> {
        self.slots.get(slot)?.run.as_ref()
    }

    /// Counts one more descriptor in flight on region `id` (the caller found it in the table
    /// under the same lock).
    pub(crate) fn start_job(&mut self, id: u32) {
        if let Some(r) = self.state_mut(id) {
            r.in_flight += 1;
        }
    }

    /// Counts one descriptor less in flight on region `id` (which cannot have left the table
    /// while it had one).
    pub(crate) fn end_job(&mut self, id: u32) {
        if let Some(r) = self.state_mut(id) {
            r.in_flight = r.in_flight.saturating_sub(1);
        }
    }

    fn state_mut(&mut self, id: u32) -> Option<&mut RegionState> {
        let (slot, index) = self.find(id, 0)?;
        self.slots.get_mut(slot)?.regions.get_mut(index)
    }

    /// The stretch of regions that starts with region `first`: its slot (also a hint for the
    /// next lookup), its index in the slot's run, and how many of `first` and the ids of `more`
    /// that follow name the regions after it in its run, in order, registered and with no DMA in
    /// flight. `ENOENT` if `first` is not in the table, `EBUSY` if it has DMA in flight.
    pub(crate) fn stretch(
        &self,
        first: u32,
        more: impl Iterator<Item = u32>,
        hint: usize,
    ) -> Result<(usize, usize, usize)> {
        let (slot, index) = self.find(first, hint).ok_or(ENOENT)?;
        let regions = &self.slots[slot].regions[index..];
        if regions[0].in_flight > 0 {
            return Err(EBUSY);
        }
        let mut len = 1;
        for id in more {
            let follows = id == first.wrapping_add(len as u32)
                && regions
                    .get(len)
                    .is_some_and(|r| r.registered && r.in_flight == 0);
            if !follows {
                break;
            }
            len += 1;
        }
        Ok((slot, index, len))
    }

    /// Takes the regions `range` of the run in slot `slot` (registered regions, found with
    /// [`RegionTable::stretch`]) out of the table. Returns the table's reference to the run if
    /// those were its last regions (the slot is then free).
    pub(crate) fn remove_range(
        &mut self,
        slot: usize,
        range: core::ops::Range<usize>,
    ) -> Option<Arc<Run>> {
        let s = self.slots.get_mut(slot)?;
        let mut removed = 0;
        for r in s.regions.get_mut(range)? {
            if r.registered {
                r.registered = false;
                removed += 1;
            }
        }
        s.live -= removed;
        // INVARIANT: the regions are no longer registered and no longer counted; the run leaves
        // its slot with its last region.
        self.regions -= removed;
        if s.live == 0 && s.run.is_some() {
            self.free += 1;
            s.run.take()
        } else {
            None
        }
    }

    /// Drops the free slots once they are at least half of the table, so that searching stays
    /// O(log n) in the live runs and the memory O(live runs). Slot numbers change: hints taken
    /// before are no longer good (they are only hints).
    pub(crate) fn compact(&mut self) {
        if self.free > 0 && self.free * 2 >= self.slots.len() {
            self.slots.retain(|s| s.run.is_some());
            // INVARIANT: only free slots were dropped; the order is kept.
            self.free = 0;
        }
    }
}
