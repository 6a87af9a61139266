//! The operations a passthrough ring is working on: each owns its slice
//! from push until its completion is reaped, found again by the CQE's
//! `user_data` (index in the low 32 bits, a per-entry sequence number in the
//! high 32, so a stale or foreign `user_data` takes nothing).

use pinio_core::Op;

struct Entry {
    seq: u32,
    op: Option<Op>,
}

/// Operations in flight, keyed by `user_data`.
pub(crate) struct InFlight {
    entries: Vec<Entry>,
    free: Vec<u32>,
    seq: u32,
}

impl InFlight {
    /// A table for `capacity` operations.
    pub(crate) fn with_capacity(capacity: usize) -> InFlight {
        let capacity = capacity.min(u32::MAX as usize - 1);
        InFlight {
            entries: (0..capacity).map(|_| Entry { seq: 0, op: None }).collect(),
            free: (0..capacity as u32).rev().collect(),
            seq: 0,
        }
    }

    /// Operations held.
    pub(crate) fn len(&self) -> usize {
        self.entries.len() - self.free.len()
    }

    /// Stores `op`; returns its `user_data`, or hands it back when full.
    pub(crate) fn insert(&mut self, op: Op) -> Result<u64, Op> {
        let Some(idx) = self.free.pop() else { return Err(op) };
        self.seq = self.seq.wrapping_add(1).max(1);
        let e = &mut self.entries[idx as usize];
        e.seq = self.seq;
        e.op = Some(op);
        Ok((u64::from(self.seq) << 32) | u64::from(idx))
    }

    /// The operation `user_data` names, left in place.
    pub(crate) fn get_mut(&mut self, user_data: u64) -> Option<&mut Op> {
        let e = self.entries.get_mut(user_data as u32 as usize)?;
        if e.seq != (user_data >> 32) as u32 || e.seq == 0 {
            return None;
        }
        e.op.as_mut()
    }

    /// Takes the operation `user_data` names, or `None` for a stray.
    pub(crate) fn remove(&mut self, user_data: u64) -> Option<Op> {
        let idx = user_data as u32;
        let e = self.entries.get_mut(idx as usize)?;
        if e.seq != (user_data >> 32) as u32 || e.seq == 0 {
            return None;
        }
        let op = e.op.take()?;
        e.seq = 0;
        self.free.push(idx);
        Some(op)
    }

    /// Forgets every operation without dropping its slices (for a ring that
    /// can no longer be waited on: the kernel may still write them).
    pub(crate) fn leak_all(&mut self) {
        for e in &mut self.entries {
            if let Some(op) = e.op.take() {
                std::mem::forget(op);
            }
        }
        self.free = (0..self.entries.len() as u32).rev().collect();
    }
}
