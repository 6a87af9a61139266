//! One pre-registered buffer carved into regions: a first-fit free list.
//!
//! Registering one large buffer once is cheaper than registering many small
//! ones (the kernel maps and accounts every buffer), and it needs a single
//! table slot. Pieces are handed out as [`DmaBuf`]s whose release puts the
//! range back on the free list, so a region made from a piece behaves like
//! any other region.

use pinio_core::{DmaBuf, Result};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard};

/// The arena's memory and free list.
pub(crate) struct Arena {
    /// The whole arena; never read or written through this handle.
    buf: DmaBuf,
    /// Its start address (kept as an integer so the type stays `Send`/`Sync`
    /// without an `unsafe impl`).
    base: usize,
    /// The registered-buffer slot, or `None` when registration was refused
    /// and the fallback policy applies.
    pub(crate) slot: Option<u16>,
    /// Granularity and alignment of pieces.
    align: usize,
    /// Free ranges `(offset, len)`, sorted by offset, never adjacent
    /// (coalesced on release).
    free: Mutex<Vec<(usize, usize)>>,
}

impl Arena {
    /// An arena over `buf`, handing out pieces aligned to `align` (a power of two).
    pub(crate) fn new(mut buf: DmaBuf, slot: Option<u16>, align: usize) -> Arena {
        let base = buf.as_mut_ptr() as usize;
        let usable = buf.len() - buf.len() % align;
        Arena { buf, base, slot, align, free: Mutex::new(vec![(0, usable)]) }
    }

    fn free_list(&self) -> MutexGuard<'_, Vec<(usize, usize)>> {
        // Updates are complete vector operations; a panic cannot leave it torn.
        self.free.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Start address of the arena.
    #[cfg(test)]
    pub(crate) fn base(&self) -> *const u8 {
        self.buf.as_ptr()
    }

    /// Total bytes.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// Bytes free right now.
    pub(crate) fn free_bytes(&self) -> usize {
        self.free_list().iter().map(|&(_, l)| l).sum()
    }

    /// Takes a piece of at least `len` bytes, or `None` when no free run is
    /// long enough.
    pub(crate) fn take(self: &Arc<Self>, len: usize) -> Option<Result<DmaBuf>> {
        let want = len.checked_next_multiple_of(self.align)?.max(self.align);
        let off = {
            let mut free = self.free_list();
            let i = free.iter().position(|&(_, l)| l >= want)?;
            let (off, l) = free[i];
            if l == want {
                free.remove(i);
            } else {
                free[i] = (off + want, l - want);
            }
            off
        };
        let arena = Arc::clone(self);
        let ptr = NonNull::new((self.base + off) as *mut u8).expect("arena addresses are not null");
        // SAFETY: [off, off+want) was just removed from the free list, so no
        // other piece covers it; the arena's memory lives as long as the
        // `Arc` the release closure holds, and only the piece touches it.
        let piece = unsafe { DmaBuf::from_raw_parts(ptr, want, move |_, _| arena.give_back(off, want)) };
        Some(piece)
    }

    fn give_back(&self, off: usize, len: usize) {
        let mut free = self.free_list();
        let i = free.partition_point(|&(o, _)| o < off);
        free.insert(i, (off, len));
        if i + 1 < free.len() && free[i].0 + free[i].1 == free[i + 1].0 {
            free[i].1 += free[i + 1].1;
            free.remove(i + 1);
        }
        if i > 0 && free[i - 1].0 + free[i - 1].1 == free[i].0 {
            free[i - 1].1 += free[i].1;
            free.remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    #[test]
    fn pieces_are_disjoint_aligned_and_coalesce_back() {
        let arena = Arc::new(Arena::new(DmaBuf::new(1 << 20).unwrap(), None, 4096));
        let mut rng = StdRng::seed_from_u64(7);
        let mut live: Vec<DmaBuf> = Vec::new();
        for round in 0..2000 {
            if rng.random_bool(0.6) {
                let len = rng.random_range(1..100_000);
                if let Some(p) = arena.take(len) {
                    let p = p.unwrap();
                    assert!(p.len() >= len && (p.as_ptr() as usize).is_multiple_of(4096), "round {round}");
                    let (a, b) = (p.as_ptr() as usize, p.as_ptr() as usize + p.len());
                    assert!(a >= arena.base() as usize && b <= arena.base() as usize + arena.len());
                    for q in &live {
                        let (c, d) = (q.as_ptr() as usize, q.as_ptr() as usize + q.len());
                        assert!(b <= c || d <= a, "overlap in round {round}");
                    }
                    live.push(p);
                }
            } else if !live.is_empty() {
                live.swap_remove(rng.random_range(0..live.len()));
            }
        }
        live.clear();
        assert_eq!(arena.free_bytes(), 1 << 20);
        assert_eq!(arena.free_list().len(), 1, "free list coalesces to one run");
        assert!(arena.take((1 << 20) + 1).is_none());
        assert!(arena.take(1 << 20).is_some());
    }
}
