//! The table of operations a ring is working on: it owns each operation's
//! slice from push until its completion is reaped.
//!
//! Each entry is found by the CQE's `user_data`, which packs the entry index
//! (low 32 bits) with a sequence number (high 32 bits, never 0, starting at
//! a random value per table). A CQE whose `user_data` does not name a live
//! entry with the same sequence number is a *stray* (a tagged-registration
//! notification, a `MSG_RING` from another ring, a leftover of some other
//! user of the ring) and is ignored, so it does not hand a slice back while
//! the kernel may still use it. Strays below 2^32 (such as registration
//! tags) or with an index beyond the capacity are always recognised; any
//! other value would have to guess a live sequence number.

use pinio_core::Op;

struct Entry {
    seq: u32,
    op: Option<Op>,
}

/// A per-process random value (std's hash keys are seeded from the OS).
fn random_u32() -> u32 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0u8) as u32
}

/// Operations in flight, keyed by `user_data`.
pub(crate) struct InFlight {
    entries: Vec<Entry>,
    free: Vec<u32>,
    live: usize,
    seq: u32,
}

impl InFlight {
    /// A table for up to `capacity` operations.
    pub(crate) fn with_capacity(capacity: usize) -> InFlight {
        let entries = (0..capacity).map(|_| Entry { seq: 0, op: None }).collect();
        let free = (0..capacity as u32).rev().collect();
        InFlight { entries, free, live: 0, seq: random_u32() }
    }

    /// Operations held.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Stores `op`; returns its `user_data`, or hands `op` back when full.
    #[inline]
    pub(crate) fn insert(&mut self, op: Op) -> Result<u64, Op> {
        let Some(idx) = self.free.pop() else { return Err(op) };
        self.seq = self.seq.wrapping_add(1).max(1);
        let e = &mut self.entries[idx as usize];
        e.seq = self.seq;
        e.op = Some(op);
        self.live += 1;
        Ok(((self.seq as u64) << 32) | idx as u64)
    }

    /// Takes the operation `user_data` names, or `None` for a stray.
    #[inline]
    pub(crate) fn remove(&mut self, user_data: u64) -> Option<Op> {
        let (seq, idx) = ((user_data >> 32) as u32, user_data as u32);
        let e = self.entries.get_mut(idx as usize)?;
        if seq == 0 || e.seq != seq {
            return None;
        }
        let op = e.op.take()?;
        self.free.push(idx);
        self.live -= 1;
        Some(op)
    }

    /// Forgets every operation without dropping its slice: for a ring that
    /// can no longer be waited on, the memory must stay alive and
    /// registered because the kernel may still write it.
    pub(crate) fn leak_all(&mut self) {
        for e in &mut self.entries {
            if let Some(op) = e.op.take() {
                std::mem::forget(op);
            }
        }
        self.live = 0;
    }
}
