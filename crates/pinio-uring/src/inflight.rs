//! The table of operations a ring is working on: it owns each operation's
//! slice from push until its completion is reaped.
//!
//! Each entry keeps the SQE of its operation (what a re-arm pushes again,
//! patched) and is found by the CQE's `user_data`, its *key* (the SQE's
//! own `user_data`): the entry index
//! (low 32 bits) with a sequence number (high 32 bits, odd, so never 0;
//! starting at a random value per table, and moved on by 2 each time the
//! entry is re-armed). A live entry stores its key, a free one [`FREE`],
//! whose low half (`u32::MAX`) is the index of no entry: finding an entry is
//! one bounds test and one comparison of the whole key. A CQE whose
//! `user_data` does not name a live entry with the same sequence number is a
//! *stray* (a tagged-registration notification, a `MSG_RING` from another
//! ring, a leftover of some other user of the ring) and is ignored, so it
//! does not hand a slice back while the kernel may still use it. Strays
//! below 2^32 (such as registration tags) or with an index beyond the
//! capacity are always recognised; any other value would have to guess a
//! live sequence number.

use crate::transfer::Sqe;
use pinio_core::{Direction, Op, Slice, SliceTail};

/// One operation, kept as its fields: taking the slice out of an
/// `Option<Slice>` and copying three scalars compiles to fewer moves than
/// taking a whole `Option<Op>`.
pub(crate) struct Entry {
    /// Its operation's SQE (direction, device offset, the slice's address,
    /// length and registration: what a re-arm moves again), whose
    /// `user_data` is the entry's key while it holds an operation
    /// (`seq << 32 | index`, `seq` odd), [`FREE`] while it is free.
    sqe: Sqe,
    /// `Some` exactly while the entry holds an operation.
    slice: Option<Slice>,
    tag: u64,
    /// While the entry is free: the next free entry, or [`NONE`].
    next_free: u32,
    dir: Direction,
    /// Whether the region is outside the registered-buffer table (its SQE
    /// a plain `READ`/`WRITE`).
    unregistered: bool,
}

/// The key of a free entry: its low half is `u32::MAX`, the index of no
/// entry (the capacity is below it), so no `user_data` that passes the
/// bounds test equals it.
const FREE: u64 = u64::MAX;

/// What a re-arm adds to a key: 2 to its sequence number (which stays odd;
/// the carry out of the top bit is dropped), nothing to its index.
const NEXT_SEQ: u64 = 2 << 32;

impl Entry {
    /// The live entry of `entries` that `user_data` names, or `None` for a
    /// stray.
    #[inline]
    pub(crate) fn find(entries: &mut [Entry], user_data: u64) -> Option<&mut Entry> {
        // A live entry's key has a non-zero sequence number and its own
        // index; a free entry's ([`FREE`]) has an index beyond the table.
        entries.get_mut(user_data as u32 as usize).filter(|e| e.sqe.user_data() == user_data)
    }

    /// Its key: the `user_data` of its operation, or [`FREE`].
    #[inline]
    pub(crate) fn key(&self) -> u64 {
        self.sqe.user_data()
    }

    /// The slice of this live entry.
    #[inline]
    pub(crate) fn slice(&self) -> &Slice {
        self.slice.as_ref().expect("a live entry holds its slice")
    }

    /// The slice of this live entry, mutably (its operation has completed
    /// and is not re-armed: nothing else touches its bytes).
    #[inline]
    pub(crate) fn slice_mut(&mut self) -> &mut Slice {
        self.slice.as_mut().expect("a live entry holds its slice")
    }

    /// Direction, device offset and tag.
    #[inline]
    pub(crate) fn fields(&self) -> (Direction, u64, u64) {
        (self.dir, self.sqe.dev_offset(), self.tag)
    }

    /// Whether its region is outside the registered-buffer table.
    #[inline]
    pub(crate) fn unregistered(&self) -> bool {
        self.unregistered
    }

    /// Its SQE, tagged with its key.
    #[inline]
    pub(crate) fn sqe(&self) -> &Sqe {
        &self.sqe
    }

    /// Re-arms this live entry at `dev_offset` with `tag` and a new
    /// sequence number; returns its new `user_data` (the old one now names
    /// no live entry).
    #[inline]
    pub(crate) fn rearm(&mut self, dev_offset: u64, tag: u64) -> u64 {
        debug_assert!(self.sqe.user_data() != FREE, "re-armed a free entry");
        let key = self.sqe.user_data().wrapping_add(NEXT_SEQ);
        self.sqe.set_user_data(key);
        self.sqe.set_dev_offset(dev_offset);
        self.tag = tag;
        key
    }
}

/// The free-list half of an [`InFlight`]: which entries are free, how many
/// are live, the sequence numbers of inserts.
pub(crate) struct FreeList {
    free: u32,
    live: usize,
    seq: u32,
}

impl FreeList {
    /// Takes live entry `e` of this table out as its operation.
    #[inline]
    pub(crate) fn take(&mut self, e: &mut Entry) -> Op {
        debug_assert!(e.sqe.user_data() != FREE, "took a free entry");
        let slice = e.slice.take().expect("a live entry holds its slice");
        // A live key's low half is the entry's index.
        e.next_free = self.free;
        self.free = e.sqe.user_data() as u32;
        e.sqe.set_user_data(FREE);
        self.live -= 1;
        Op { dir: e.dir, slice, dev_offset: e.sqe.dev_offset(), tag: e.tag, rest: SliceTail::new() }
    }
}

/// Lets go of the empty `rest` of an ordinary operation: an empty tail is a
/// null pointer that owns nothing, so forgetting it is dropping it, without
/// the drop glue's call.
#[inline]
fn let_go_empty(rest: SliceTail) {
    debug_assert!(rest.is_empty(), "only ordinary operations enter the table");
    if rest.is_empty() {
        std::mem::forget(rest);
    } else {
        drop_cold(rest);
    }
}

#[cold]
#[inline(never)]
fn drop_cold(rest: SliceTail) {
    drop(rest);
}

/// The end of the free list.
const NONE: u32 = u32::MAX;

/// A per-process random value (std's hash keys are seeded from the OS).
pub(crate) fn random_u32() -> u32 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0u8) as u32
}

/// Operations in flight, keyed by `user_data`.
///
/// # Invariants
///
/// An entry's key is [`FREE`] exactly when its `slice` is `None`; a live
/// entry's key is its index with an odd sequence number above. The free
/// entries form a list starting at `list.free` and linked through
/// `next_free`; `list.live` counts the others. `list.seq` is odd.
pub(crate) struct InFlight {
    entries: Box<[Entry]>,
    list: FreeList,
}

impl InFlight {
    /// A table for up to `capacity` operations (at most `u32::MAX - 1`).
    pub(crate) fn with_capacity(capacity: usize) -> InFlight {
        let capacity = capacity.min(NONE as usize - 1) as u32;
        let entries = (0..capacity)
            .map(|i| Entry {
                sqe: Sqe::template(FREE),
                next_free: if i + 1 < capacity { i + 1 } else { NONE },
                slice: None,
                dir: Direction::Read,
                unregistered: false,
                tag: 0,
            })
            .collect();
        let list = FreeList { free: if capacity > 0 { 0 } else { NONE }, live: 0, seq: random_u32() | 1 };
        InFlight { entries, list }
    }

    /// Operations held.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.list.live
    }

    /// The entries and the free list apart: for a pass that works on
    /// entries in place and may take some out.
    #[inline]
    pub(crate) fn split(&mut self) -> (&mut [Entry], &mut FreeList) {
        (&mut self.entries, &mut self.list)
    }

    /// Stores `op` and its SQE; returns its entry (whose key is the SQE's
    /// `user_data`), or hands `op` back when full.
    #[inline]
    pub(crate) fn insert(&mut self, op: Op) -> Result<&Entry, Op> {
        let idx = self.list.free;
        let Some(e) = self.entries.get_mut(idx as usize) else { return Err(op) };
        self.list.seq = self.list.seq.wrapping_add(2);
        self.list.free = e.next_free;
        let key = ((self.list.seq as u64) << 32) | idx as u64;
        self.list.live += 1;
        // A free entry holds no slice (invariant). Were it to hold one
        // anyway, forgetting it keeps its memory alive, the safe side for
        // memory the kernel might use; no drop glue runs here either way.
        e.unregistered = e.sqe.fill(&op, key);
        e.dir = op.dir;
        let Op { slice, tag, rest, .. } = op;
        let previous = e.slice.replace(slice);
        debug_assert!(previous.is_none(), "free in-flight entry {idx} held a slice");
        std::mem::forget(previous);
        e.tag = tag;
        let_go_empty(rest);
        Ok(e)
    }

    /// Takes the operation `user_data` names, or `None` for a stray.
    #[inline]
    pub(crate) fn remove(&mut self, user_data: u64) -> Option<Op> {
        let e = Entry::find(&mut self.entries, user_data)?;
        Some(self.list.take(e))
    }

    /// Forgets every operation without dropping its slice: for a ring that
    /// can no longer be waited on, the memory must stay alive and
    /// registered because the kernel may still write it.
    pub(crate) fn leak_all(&mut self) {
        let n = self.entries.len() as u32;
        for (i, e) in self.entries.iter_mut().enumerate() {
            if let Some(slice) = e.slice.take() {
                std::mem::forget(slice);
            }
            e.sqe.set_user_data(FREE);
            e.next_free = if i as u32 + 1 < n { i as u32 + 1 } else { NONE };
        }
        self.list.free = if n > 0 { 0 } else { NONE };
        self.list.live = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{UringDevice, UringOptions};
    use pinio_core::{Device, Region};

    /// A buffered, unregistered device on a small file and a region of it.
    fn region(name: &str) -> (UringDevice, Region, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!("pinio-uring-inflight-{name}-{}", std::process::id()));
        std::fs::write(&path, vec![0u8; 4096]).unwrap();
        let opts = UringOptions { direct: false, fixed_buffers: false, ..UringOptions::default() };
        let dev = UringDevice::open(&path, opts).unwrap();
        let region = dev.alloc(4096).unwrap();
        (dev, region, path)
    }

    fn op(region: &Region, i: usize, tag: u64) -> Op {
        Op::read(region.slice(i * 64, 64).unwrap(), 0, tag)
    }

    #[test]
    fn holds_up_to_capacity_and_reuses_freed_entries() {
        let (_dev, r, path) = region("capacity");
        let mut t = InFlight::with_capacity(3);
        let mut keys: Vec<u64> = (0..3).map(|i| t.insert(op(&r, i, i as u64)).unwrap().key()).collect();
        assert_eq!(t.len(), 3);
        let full = t.insert(op(&r, 3, 3)).err().expect("full");
        assert_eq!(full.tag, 3, "the refused operation comes back");
        let taken = t.remove(keys[1]).expect("live");
        assert_eq!((taken.tag, t.len()), (1, 2));
        assert!(t.remove(keys[1]).is_none(), "a key is good once");
        drop(taken);
        let again = t.insert(op(&r, 1, 9)).unwrap().key();
        assert_eq!(again as u32, keys[1] as u32, "the freed entry is reused");
        assert_ne!(again, keys[1], "with a new sequence number");
        keys[1] = again;
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(t.remove(*k).unwrap().tag, if i == 1 { 9 } else { i as u64 });
        }
        assert_eq!(t.len(), 0);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn strays_take_nothing() {
        let (_dev, r, path) = region("strays");
        let mut t = InFlight::with_capacity(2);
        let key = t.insert(op(&r, 0, 0)).unwrap().key();
        let idx = key & 0xffff_ffff;
        for stray in [idx, key ^ (1 << 32), key + 1, 5, u64::MAX] {
            assert!(t.remove(stray).is_none(), "{stray:#x} named no live entry");
        }
        assert_eq!(t.len(), 1);
        assert!(t.remove(key).is_some());
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn rearm_gives_a_new_key_and_retires_the_old() {
        let (_dev, r, path) = region("rearm");
        let mut t = InFlight::with_capacity(2);
        let key = t.insert(op(&r, 0, 5)).unwrap().key();
        let (entries, list) = t.split();
        let e = Entry::find(entries, key).expect("live");
        let again = e.rearm(4096, 6);
        assert_ne!(again, key);
        assert_eq!(again as u32, key as u32, "the same entry");
        assert!(Entry::find(entries, key).is_none(), "the old key names nothing now");
        let e = Entry::find(entries, again).expect("the new key names it");
        assert_eq!((e.key(), e.fields().1, e.fields().2), (again, 4096, 6));
        let taken = list.take(e);
        assert_eq!((taken.tag, taken.dev_offset, t.len()), (6, 4096, 0));
        assert!(t.remove(again).is_none() && t.remove(key).is_none());
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn leak_all_empties_and_frees_every_entry() {
        let (_dev, r, path) = region("leak");
        let mut t = InFlight::with_capacity(2);
        let key = t.insert(op(&r, 0, 0)).unwrap().key();
        t.leak_all();
        assert_eq!(t.len(), 0);
        assert!(t.remove(key).is_none());
        // Both entries are free again (the leaked slice keeps its range, so
        // new operations use other ranges).
        assert!(t.insert(op(&r, 1, 1)).is_ok() && t.insert(op(&r, 2, 2)).is_ok());
        assert!(t.insert(op(&r, 3, 3)).is_err());
        std::fs::remove_file(path).unwrap();
    }
}
