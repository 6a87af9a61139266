// SPDX-License-Identifier: GPL-2.0

//! Pages of the calling process pinned with `FOLL_PIN`, released exactly once.
//!
//! C headers: [`include/linux/mm.h`](srctree/include/linux/mm.h) (`pin_user_pages_fast`,
//! `unpin_user_pages_dirty_lock`), [`include/linux/highmem.h`](srctree/include/linux/highmem.h)
//! (`kmap_local_page`), Documentation/core-api/pin_user_pages.rst.
//!
//! The Rust kernel crate of 7.3 has no abstraction for `pin_user_pages*()`, so this file is the
//! only place that calls them; everything else uses [`PinnedPages`].

use crate::one_or_many::OneOrMany;
use kernel::{
    bindings,
    page::{PAGE_SHIFT, PAGE_SIZE},
    prelude::*,
    sync::atomic::{Atomic, Relaxed},
};

/// Most pages asked of `pin_user_pages_fast` in one call (its count is a C `int`).
const MAX_PAGES_PER_CALL: usize = 1 << 16;

/// How the pages are pinned.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum PinMode {
    /// `FOLL_WRITE`: the kernel will write the pages; fails on read-only mappings.
    Writable,
    /// No `FOLL_WRITE`: the kernel only reads the pages.
    ReadOnly,
}

/// How long the pages stay pinned.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum PinDuration {
    /// `FOLL_LONGTERM`: a registration that lives until userspace drops it (the RDMA case);
    /// the kernel migrates pages out of movable zones / CMA first and refuses DAX.
    LongTerm,
    /// A pin held for the duration of one system call.
    Transient,
}

/// Runs of at most this many pages keep their page pointers inside [`PinnedPages`]: a
/// registration of a few pages then costs no allocation of its own besides its region object.
const INLINE_PAGES: usize = 4;

/// The page pointers of a pinned run: inline for short runs, else one allocation.
///
/// # Invariants
///
/// For `Inline`, `len <= INLINE_PAGES` and the first `len` entries are initialised.
enum PageArray {
    Inline {
        pages: [*mut bindings::page; INLINE_PAGES],
        len: usize,
    },
    Heap(KVVec<*mut bindings::page>),
}

impl PageArray {
    /// An empty array with room for `n` pointers.
    fn with_capacity(n: usize) -> Result<Self> {
        if n <= INLINE_PAGES {
            // INVARIANT: no entry is initialised yet.
            return Ok(Self::Inline {
                pages: [core::ptr::null_mut(); INLINE_PAGES],
                len: 0,
            });
        }
        // Allocated, not initialised: `pin_user_pages_fast` fills it (a fill loop is
        // per-4-KiB-page work the kernel's own pinning does not do, docs/kmod.md).
        Ok(Self::Heap(KVVec::with_capacity(n, GFP_KERNEL)?))
    }

    fn len(&self) -> usize {
        match self {
            Self::Inline { len, .. } => *len,
            Self::Heap(v) => v.len(),
        }
    }

    fn as_slice(&self) -> &[*mut bindings::page] {
        match self {
            Self::Inline { pages, len } => &pages[..*len],
            Self::Heap(v) => v,
        }
    }

    fn as_mut_ptr(&mut self) -> *mut *mut bindings::page {
        match self {
            Self::Inline { pages, .. } => pages.as_mut_ptr(),
            Self::Heap(v) => v.as_mut_ptr(),
        }
    }

    /// Records that `n` more entries were written after the first `len()`.
    ///
    /// # Safety
    ///
    /// The `n` entries after the first `len()` must have been initialised, within the capacity
    /// the array was created with.
    unsafe fn inc_len(&mut self, n: usize) {
        match self {
            // INVARIANT: per the contract the entries are initialised and within the array.
            Self::Inline { len, .. } => *len += n,
            // SAFETY: Per the contract the entries are initialised and within the capacity.
            Self::Heap(v) => unsafe { v.inc_len(n) },
        }
    }
}

/// One piece of a pinned run: the pages `[start, start + len)` of its page array, released on
/// their own.
///
/// # Invariants
///
/// `released` changes from `false` to `true` at most once, when the pins of the piece's pages
/// are released; until then each of them holds its pin. `dirty` is `true` once a byte was
/// written through [`PinnedPages::write_at`]; the pages are then dirtied when unpinned.
struct Piece {
    start: usize,
    len: usize,
    released: Atomic<bool>,
    dirty: Atomic<bool>,
}

/// A run of consecutive user pages of the current process, pinned with `FOLL_PIN` by one call
/// and released in pieces.
///
/// A run is cut into pieces (the regions of one vectored registration whose pages are
/// adjacent): all are pinned together, each is released on its own ([`PinnedPages::release`]),
/// and whatever is still pinned is released on drop. Consecutive pieces released together are
/// unpinned by one call, as the kernel's own `gup_test` unpins a whole buffer.
///
/// # Invariants
///
/// - The pieces tile `pages` in order: piece 0 starts at page 0, each next piece where the
///   previous ends, the last ends at `pages.len()`; no piece is empty.
/// - Every entry of `pages` in a piece not yet released holds one `FOLL_PIN` reference taken by
///   `pin_user_pages_fast` and not yet released.
/// - `writable` is `true` iff the pages were pinned with `FOLL_WRITE`.
pub(crate) struct PinnedPages {
    pages: PageArray,
    pieces: OneOrMany<Piece>,
    writable: bool,
}

// SAFETY: The page pointers are plain references to pinned `struct page`s that stay valid until
// released; nothing in them is tied to the pinning thread. Unpinning from another thread (a
// workqueue or the closing thread) is what every long-term pinning driver does.
unsafe impl Send for PinnedPages {}
// SAFETY: `&self` methods only map pages with `kmap_local_page` (thread-local mappings) and copy
// bytes, and the flags of the pieces are atomic; releasing is `unsafe` and its contract rules
// out a concurrent release or use of the same piece.
unsafe impl Sync for PinnedPages {}

impl PinnedPages {
    /// Pins the `nr_pages` pages starting at the page-aligned user address `start` of the current
    /// process, as one piece.
    ///
    /// All or nothing: if any page cannot be pinned, the pages already pinned are released and the
    /// error of `pin_user_pages_fast` is returned (`EFAULT` for an unmapped address, or for a
    /// read-only mapping with [`PinMode::Writable`]; `ENOMEM`; ...).
    pub(crate) fn pin(
        start: usize,
        nr_pages: usize,
        mode: PinMode,
        duration: PinDuration,
    ) -> Result<Self> {
        Self::pin_pieces(start, &[nr_pages], mode, duration)
    }

    /// Pins the pages starting at the page-aligned user address `start` of the current process
    /// that `piece_pages` pieces of the given page counts cover, one after the other, with as few
    /// `pin_user_pages_fast` calls as the count allows (one up to 65,536 pages).
    ///
    /// `EINVAL` for no piece or an empty one; otherwise as [`PinnedPages::pin`].
    pub(crate) fn pin_pieces(
        start: usize,
        piece_pages: &[usize],
        mode: PinMode,
        duration: PinDuration,
    ) -> Result<Self> {
        if start % PAGE_SIZE != 0 {
            return Err(EINVAL);
        }
        let mut nr_pages = 0usize;
        // `EINVAL` when `piece_pages` is empty or has an empty piece.
        let pieces = OneOrMany::from_fn(piece_pages.len(), |i| {
            let len = piece_pages[i];
            if len == 0 {
                return Err(EINVAL);
            }
            let piece = Piece {
                start: nr_pages,
                len,
                released: Atomic::new(false),
                dirty: Atomic::new(false),
            };
            nr_pages = nr_pages.checked_add(len).ok_or(EOVERFLOW)?;
            Ok(piece)
        })?;
        let span = nr_pages.checked_mul(PAGE_SIZE).ok_or(EOVERFLOW)?;
        start.checked_add(span).ok_or(EOVERFLOW)?;

        let mut flags = 0u32;
        if mode == PinMode::Writable {
            flags |= bindings::FOLL_WRITE;
        }
        if duration == PinDuration::LongTerm {
            flags |= bindings::FOLL_LONGTERM;
        }

        // `pin_user_pages_fast` fills the array itself, so it is allocated (or inline), not
        // initialised; its length counts the entries written so far.
        let mut pages = PageArray::with_capacity(nr_pages)?;
        while pages.len() < nr_pages {
            let done = pages.len();
            let chunk = core::cmp::min(nr_pages - done, MAX_PAGES_PER_CALL);
            // `pin_user_pages_fast` checks the range against user addresses (`access_ok`), so
            // no kernel address can be pinned; the flags are a valid FOLL_WRITE/LONGTERM subset.
            // SAFETY: The array has room for `nr_pages` pointers, so the `chunk` entries after
            // the first `done` are memory for page pointers (written, never read, by the call);
            // `start + done * PAGE_SIZE` does not overflow (checked above).
            let ret = unsafe {
                bindings::pin_user_pages_fast(
                    start + (done << PAGE_SHIFT),
                    chunk as c_int,
                    flags,
                    pages.as_mut_ptr().add(done),
                )
            };
            if ret <= 0 {
                // SAFETY: Exactly the first `done` entries hold pins taken above.
                unsafe { unpin(pages.as_mut_ptr(), done, false) };
                return Err(if ret < 0 {
                    Error::from_errno(ret)
                } else {
                    EFAULT
                });
            }
            // SAFETY: `pin_user_pages_fast` never returns more than it was asked for, so
            // `ret <= chunk` fits the capacity, and it wrote those `ret` entries, each a pinned
            // page.
            unsafe { pages.inc_len(ret as usize) };
        }

        // INVARIANT: all `nr_pages` entries were pinned by the loop above, and the pieces (none
        // empty) tile them in order.
        Ok(Self {
            pages,
            pieces,
            writable: mode == PinMode::Writable,
        })
    }

    /// Releases the pins of the pieces `range` (unpinning, and dirtying the pages of pieces
    /// that were written), with one `unpin_user_pages_dirty_lock` call per stretch of adjacent
    /// pieces of the same dirtiness. Returns the number of pages released.
    ///
    /// # Safety
    ///
    /// None of these pieces may be released already or by another thread concurrently, and no
    /// [`PinnedPages::read_at`] or [`PinnedPages::write_at`] of them may run concurrently or
    /// later (their pages may be freed once unpinned).
    pub(crate) unsafe fn release(&self, range: core::ops::Range<usize>) -> usize {
        let pieces = self.pieces[range].iter().map(|p| {
            // INVARIANT: the piece's pins are released just below, and never used again, per
            // the contract.
            p.released.store(true, Relaxed);
            (p.start, p.len, p.dirty.load(Relaxed))
        });
        // SAFETY: Per the contract each piece is not released yet, so its pages hold their pins,
        // released here once.
        unsafe { unpin_stretches(self.pages.as_slice(), pieces) }
    }

    /// Releases the pins of every piece not released yet, as [`PinnedPages::release`] does.
    /// Returns the number of pages released.
    pub(crate) fn release_rest(&mut self) -> usize {
        let pieces = self.pieces.iter_mut().filter_map(|p| {
            // `&mut self`: plain accesses, nobody else sees the flags.
            if core::mem::replace(p.released.get_mut(), true) {
                return None;
            }
            // INVARIANT: the piece's pins are released just below.
            Some((p.start, p.len, *p.dirty.get_mut()))
        });
        // SAFETY: Each piece yielded was not released, so its pages hold their pins, released
        // here once; `&mut self` rules out any concurrent use.
        unsafe { unpin_stretches(self.pages.as_slice(), pieces) }
    }

    /// Number of pages of the pieces `range` (which must be pieces of the run).
    pub(crate) fn pieces_len(&self, range: core::ops::Range<usize>) -> usize {
        // The pieces tile the array in order.
        match (
            self.pieces.get(range.start),
            self.pieces.get(range.end.wrapping_sub(1)),
        ) {
            (Some(first), Some(last)) if range.start < range.end => {
                last.start + last.len - first.start
            }
            _ => 0,
        }
    }

    /// Runs `f` on the kernel mapping of bytes `[offset, offset + len)` of page `index` of the
    /// array, which must lie inside the page.
    ///
    /// The caller checked that the page lies in a piece not released.
    fn with_mapped<R>(
        &self,
        index: usize,
        offset: usize,
        len: usize,
        f: impl FnOnce(*mut u8) -> R,
    ) -> Result<R> {
        let page = *self.pages.as_slice().get(index).ok_or(EINVAL)?;
        if offset.checked_add(len).is_none_or(|end| end > PAGE_SIZE) {
            return Err(EINVAL);
        }
        // SAFETY: The page is in a piece not released (checked by the caller, and the release
        // contract keeps it so while we copy), so by the type invariants it is pinned, hence a
        // valid `struct page` that stays allocated. `kmap_local_page` maps it for this thread.
        let base = unsafe { bindings::kmap_local_page(page) }.cast::<u8>();
        // SAFETY: `offset < PAGE_SIZE` (checked above), so the result stays inside the mapping.
        let ret = f(unsafe { base.add(offset) });
        // SAFETY: `base` was returned by `kmap_local_page` above in this thread, and mappings
        // are released in reverse order (this is the only mapping made in between).
        unsafe { bindings::kunmap_local(base.cast()) };
        Ok(ret)
    }

    /// Copies `dst.len()` bytes that start `pos` bytes after the start of the first page of
    /// piece `piece` into `dst`. The range may span pages; it must lie inside the piece, which
    /// must not be released (`EINVAL`).
    pub(crate) fn read_at(&self, piece: usize, pos: usize, dst: &mut [u8]) -> Result {
        let first = self.check_range(piece, pos, dst.len())?.start;
        let mut copied = 0;
        while copied < dst.len() {
            let at = pos + copied;
            let offset = at % PAGE_SIZE;
            let n = core::cmp::min(PAGE_SIZE - offset, dst.len() - copied);
            let out = &mut dst[copied..copied + n];
            self.with_mapped(first + at / PAGE_SIZE, offset, n, |src| {
                // The page is user memory: userspace may write it concurrently, which gives
                // torn data but no unsoundness for plain bytes, as with `copy_from_user`.
                // SAFETY: `src` is valid for reading `n` bytes of the mapped page (`with_mapped`
                // checked the bounds) and `out` is a distinct kernel buffer of `n` bytes.
                unsafe { core::ptr::copy_nonoverlapping(src, out.as_mut_ptr(), n) }
            })?;
            copied += n;
        }
        Ok(())
    }

    /// Copies `src` into the pinned pages of piece `piece`, starting `pos` bytes after the start
    /// of its first page, and records that the piece's pages must be dirtied when unpinned.
    /// `EPERM` if the pages were not pinned writable; `EINVAL` if the range does not lie inside
    /// the piece or the piece was released.
    pub(crate) fn write_at(&self, piece: usize, pos: usize, src: &[u8]) -> Result {
        if !self.writable {
            return Err(EPERM);
        }
        let p = self.check_range(piece, pos, src.len())?;
        let first = p.start;
        let mut copied = 0;
        while copied < src.len() {
            let at = pos + copied;
            let offset = at % PAGE_SIZE;
            let n = core::cmp::min(PAGE_SIZE - offset, src.len() - copied);
            let input = &src[copied..copied + n];
            self.with_mapped(first + at / PAGE_SIZE, offset, n, |dst| {
                // Concurrent userspace access to the page sees torn bytes at worst, as with
                // `copy_to_user`.
                // SAFETY: `dst` is valid for writing `n` bytes of the mapped page, pinned with
                // `FOLL_WRITE` (checked above); `input` is a distinct kernel buffer of `n` bytes.
                unsafe { core::ptr::copy_nonoverlapping(input.as_ptr(), dst, n) }
            })?;
            copied += n;
        }
        // INVARIANT: bytes were written, the piece's pages are dirtied on unpin.
        p.dirty.store(true, Relaxed);
        Ok(())
    }

    /// The piece `piece` if it is not released and `[pos, pos + len)` lies inside it: `EINVAL`
    /// otherwise.
    fn check_range(&self, piece: usize, pos: usize, len: usize) -> Result<&Piece> {
        let p = self.pieces.get(piece).ok_or(EINVAL)?;
        let end = pos.checked_add(len).ok_or(EOVERFLOW)?;
        if end > p.len * PAGE_SIZE || p.released.load(Relaxed) {
            return Err(EINVAL);
        }
        Ok(p)
    }
}

impl Drop for PinnedPages {
    fn drop(&mut self) {
        self.release_rest();
    }
}

/// Unpins the pages of `pieces` (first page index, number of pages, whether to dirty them) in
/// `pages`, with one call per stretch of adjacent pieces of the same dirtiness; returns the
/// number of pages unpinned.
///
/// # Safety
///
/// Each piece must lie in `pages` and each of its entries hold one `FOLL_PIN` reference that is
/// released by this call and never again.
unsafe fn unpin_stretches(
    pages: &[*mut bindings::page],
    pieces: impl Iterator<Item = (usize, usize, bool)>,
) -> usize {
    let base = pages.as_ptr().cast_mut();
    let mut released = 0;
    // The stretch `[from, to)` of pages to unpin in one call, and whether to dirty them.
    let mut stretch: Option<(usize, usize, bool)> = None;
    for (start, len, dirty) in pieces {
        released += len;
        match stretch.as_mut() {
            Some((_, to, d)) if *to == start && *d == dirty => *to += len,
            _ => {
                if let Some((from, to, d)) = stretch.replace((start, start + len, dirty)) {
                    // SAFETY: Per the contract pages `[from, to)` hold pins released here once;
                    // `base + from` lies inside `pages`.
                    unsafe { unpin(base.add(from), to - from, d) };
                }
            }
        }
    }
    if let Some((from, to, d)) = stretch {
        // SAFETY: As above.
        unsafe { unpin(base.add(from), to - from, d) };
    }
    released
}

/// Releases the `n` pins at `pages`, dirtying the pages if `dirty`.
///
/// # Safety
///
/// The `n` entries at `pages` must each hold one `FOLL_PIN` reference that is released by this
/// call and never again.
unsafe fn unpin(pages: *mut *mut bindings::page, n: usize, dirty: bool) {
    if n == 0 {
        return;
    }
    // SAFETY: Per the function's contract the `n` entries are pinned pages whose pins are handed
    // over to `unpin_user_pages_dirty_lock`, which only reads the array and may sleep (we are in
    // process context: an ioctl, a release, or a workqueue).
    unsafe { bindings::unpin_user_pages_dirty_lock(pages, n as c_ulong, dirty) };
}
