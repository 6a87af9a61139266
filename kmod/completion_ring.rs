// SPDX-License-Identifier: GPL-2.0

//! The completion queue of one open file: a fixed ring of completion records.

use crate::abi::CompletionRecord;
use kernel::prelude::*;

/// A FIFO of at most `capacity` completion records, allocated once at open.
///
/// # Invariants
///
/// `len <= slots.len()`, `head < slots.len()`; the records are `slots[head..head + len]` modulo
/// `slots.len()`, oldest first.
pub(crate) struct CompletionRing {
    slots: KVVec<CompletionRecord>,
    head: usize,
    len: usize,
}

impl CompletionRing {
    /// An empty ring of `capacity > 0` records.
    pub(crate) fn new(capacity: usize) -> Result<Self> {
        if capacity == 0 {
            return Err(EINVAL);
        }
        let slots = KVVec::from_elem(CompletionRecord::default(), capacity, GFP_KERNEL)?;
        // INVARIANT: empty ring.
        Ok(Self {
            slots,
            head: 0,
            len: 0,
        })
    }

    /// Number of records waiting.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Appends a record; `ENOSPC` if the ring is full (the submit path reserves a slot per
    /// descriptor, so this does not happen).
    pub(crate) fn push(&mut self, record: CompletionRecord) -> Result {
        if self.len == self.slots.len() {
            return Err(ENOSPC);
        }
        let at = (self.head + self.len) % self.slots.len();
        self.slots[at] = record;
        // INVARIANT: `len` stays within capacity (checked above).
        self.len += 1;
        Ok(())
    }

    /// The oldest record, if any.
    pub(crate) fn front(&self) -> Option<&CompletionRecord> {
        if self.len == 0 {
            None
        } else {
            Some(&self.slots[self.head])
        }
    }

    /// Drops the oldest record.
    pub(crate) fn pop(&mut self) {
        if self.len > 0 {
            // INVARIANT: `head` wraps within the slots.
            self.head = (self.head + 1) % self.slots.len();
            self.len -= 1;
        }
    }
}
