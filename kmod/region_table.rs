// SPDX-License-Identifier: GPL-2.0

//! The region table of a session: region id -> region, over the session's runs in id order.
//!
//! Region ids are handed out in increasing order and never reused, and a run's regions have
//! consecutive ids, so the runs sorted by their first id are simply the runs in the order they
//! were registered: the table is an array of them, appended to, searched by bisection (a
//! lookup of region `id` finds the last run whose first id is at most `id`). Registering a run
//! of thousands of regions appends one slot, not one entry per region; a region leaving the
//! table clears its flag in the run, and a run whose last region left frees its slot (the array
//! is compacted once half of it is free, so that costs O(1) amortised).

use crate::region::Run;
use kernel::{prelude::*, sync::Arc};

/// One run of the table, or a free slot that once held one.
struct Slot {
    first_id: u32,
    run: Option<Arc<Run>>,
}

/// The regions of one session.
///
/// # Invariants
///
/// - `slots` is sorted by `first_id`, strictly increasing; a slot's run (if any) has that first
///   id, and its regions' ids lie before the next slot's `first_id`.
/// - A region is in the table iff its run is in a slot and the run counts it as registered;
///   `regions` is the number of such regions, `free` the number of slots without a run.
/// - A run is in its slot while at least one of its regions is registered.
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

    /// Appends `runs` (none in the table, every region registered), giving their regions the
    /// consecutive ids from `first` on, in order. `first` must be above every id in the table;
    /// `ENOMEM`, and then nothing is appended.
    pub(crate) fn append(&mut self, first: u32, runs: &[Arc<Run>]) -> Result {
        if self.slots.last().is_some_and(|s| s.first_id >= first) {
            return Err(EINVAL);
        }
        self.slots.reserve(runs.len(), GFP_KERNEL)?;
        let mut id = first;
        for run in runs {
            run.set_first_id(id);
            // Cannot fail: room was reserved above.
            let slot = Slot {
                first_id: id,
                run: Some(run.clone()),
            };
            self.slots.push_within_capacity(slot).map_err(|_| ENOMEM)?;
            self.regions += run.count();
            // The caller checked that the ids do not run out (the last one may be `u32::MAX`).
            id = id.wrapping_add(run.count() as u32);
        }
        // INVARIANT: the runs were appended in id order after every slot, with their regions
        // registered (the caller's contract) and counted.
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

    /// Region `id`: its index in its run and the run's slot (a hint for the next lookup).
    pub(crate) fn find(&self, id: u32, hint: usize) -> Option<(usize, usize)> {
        let slot = self.slot_of(id, hint)?;
        let run = self.slots[slot].run.as_ref()?;
        let index = run.index_of(id)?;
        run.is_registered(index).then_some((index, slot))
    }

    /// Region `id`: its run, its index in the run, and its slot (a hint for the next lookup).
    pub(crate) fn get(&self, id: u32, hint: usize) -> Option<(&Arc<Run>, usize, usize)> {
        let (index, slot) = self.find(id, hint)?;
        Some((self.run_at(slot)?, index, slot))
    }

    /// The run in slot `slot`, if it still has one.
    pub(crate) fn run_at(&self, slot: usize) -> Option<&Arc<Run>> {
        self.slots.get(slot)?.run.as_ref()
    }

    /// Takes region `index` of the run in slot `slot` (a registered region, found with
    /// [`RegionTable::find`]) out of the table. Returns the table's reference to the run if that
    /// was its last region (the slot is then free).
    pub(crate) fn remove_at(&mut self, slot: usize, index: usize) -> Option<Arc<Run>> {
        let run_slot = &mut self.slots.get_mut(slot)?.run;
        let run = run_slot.as_ref()?;
        if !run.is_registered(index) {
            return None;
        }
        let last = run.unregister(index);
        // INVARIANT: the region is no longer registered in its run; the count follows, and the
        // run leaves its slot with its last region.
        self.regions -= 1;
        if last {
            self.free += 1;
            run_slot.take()
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
