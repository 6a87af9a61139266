//! DMA-able buffers: memory a device may read and write directly.

use crate::{Error, Result, align_up, page_size};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// The transparent huge page size on x86-64.
pub(crate) const HUGE_PAGE: usize = 2 << 20;

/// Whether a [`DmaBuf`] asks for transparent huge pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HugePages {
    /// Ordinary pages; the kernel may still use huge pages if THP is set to
    /// `always`.
    #[default]
    Default,
    /// 2 MiB-aligned memory with `madvise(MADV_HUGEPAGE)`: fewer pages to pin,
    /// fewer IOMMU entries. Best effort: the kernel may not have huge pages.
    Transparent,
    /// `madvise(MADV_NOHUGEPAGE)`: force 4 KiB pages (for measurements).
    Never,
}

/// Builder for a [`DmaBuf`] with options.
#[derive(Debug, Clone)]
pub struct DmaBufBuilder {
    len: usize,
    huge: HugePages,
    populate: bool,
}

impl DmaBufBuilder {
    /// Chooses the page backing.
    pub fn huge_pages(mut self, huge: HugePages) -> Self {
        self.huge = huge;
        self
    }

    /// Faults every page in now (by writing zeroes), so that registration and
    /// the first IO do not pay for page faults.
    pub fn populate(mut self, populate: bool) -> Self {
        self.populate = populate;
        self
    }

    /// Maps the memory.
    pub fn build(self) -> Result<DmaBuf> {
        DmaBuf::map(self.len, self.huge, self.populate)
    }
}

/// Release function of memory adopted with [`DmaBuf::from_raw_parts`].
type Release = Box<dyn FnOnce(NonNull<u8>, usize) + Send>;

enum Owner {
    /// Our own anonymous mapping: `(base, map_len)` to munmap.
    Mmap { base: NonNull<u8>, map_len: usize },
    /// A caller's vector, kept alive (and never touched) until drop.
    Vec(#[allow(dead_code)] Vec<u8>),
    /// A caller's memory with its own release function.
    Raw(Option<Release>),
}

/// Memory a device may access directly: the unit an application registers.
///
/// A `DmaBuf` is either page-aligned anonymous memory mapped by pinio
/// ([`DmaBuf::new`], [`DmaBuf::builder`]) or a caller's buffer adopted as it is
/// ([`DmaBuf::adopt`], [`DmaBuf::from_raw_parts`]). Its address never changes
/// while it lives, even when the `DmaBuf` value itself moves, which is what
/// lets a device keep using it after registration.
///
/// Whether a buffer is aligned enough for a device is checked when it is
/// registered ([`crate::Device::register`]), against that device's
/// [`crate::Capabilities::mem_align`].
pub struct DmaBuf {
    ptr: NonNull<u8>,
    len: usize,
    owner: Owner,
}

// SAFETY: a DmaBuf uniquely owns its memory (like Box<[u8]>); the release
// closure of `Owner::Raw` is required to be Send.
unsafe impl Send for DmaBuf {}
// SAFETY: shared references only give `&[u8]`, which is Sync.
unsafe impl Sync for DmaBuf {}

impl DmaBuf {
    /// Maps `len` bytes (rounded up to whole pages) of zeroed, page-aligned
    /// anonymous memory.
    pub fn new(len: usize) -> Result<Self> {
        Self::builder(len).build()
    }

    /// A builder for a buffer of `len` bytes with options.
    pub fn builder(len: usize) -> DmaBufBuilder {
        DmaBufBuilder { len, huge: HugePages::Default, populate: false }
    }

    fn map(len: usize, huge: HugePages, populate: bool) -> Result<Self> {
        if len == 0 {
            return Err(Error::ZeroLength { what: "DmaBuf" });
        }
        let page = page_size() as u64;
        let too_big =
            || Error::OutOfBounds { what: "DmaBuf length", offset: 0, len: len as u64, limit: isize::MAX as u64 };
        let len_pages =
            align_up(len as u64, page).filter(|&l| l <= isize::MAX as u64 / 2).ok_or_else(too_big)? as usize;
        let align = if huge == HugePages::Transparent { HUGE_PAGE } else { page as usize };
        let rounded = if huge == HugePages::Transparent {
            align_up(len_pages as u64, HUGE_PAGE as u64).ok_or_else(too_big)? as usize
        } else {
            len_pages
        };
        // Over-map by `align` so that an aligned start can be carved out.
        let map_len = rounded + if align > page as usize { align } else { 0 };
        // SAFETY: an anonymous private mapping at an address of the kernel's
        // choosing has no preconditions; the result is checked below.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return Err(Error::last_os(format!("mmap of {map_len} bytes for a DmaBuf")));
        }
        let start = raw as usize;
        let aligned = align_up(start as u64, align as u64).expect("mmap address + align fits") as usize;
        // Give back the unaligned head and the tail beyond `rounded`.
        let head = aligned - start;
        let tail = map_len - head - rounded;
        // SAFETY: [start, start+head) and [aligned+rounded, +tail) lie inside
        // the mapping just made and nothing refers to them.
        unsafe {
            if head > 0 {
                libc::munmap(raw, head);
            }
            if tail > 0 {
                libc::munmap((aligned + rounded) as *mut libc::c_void, tail);
            }
        }
        let base = NonNull::new(aligned as *mut u8).expect("mmap never returns null here");
        let buf = DmaBuf { ptr: base, len: rounded, owner: Owner::Mmap { base, map_len: rounded } };
        let advice = match huge {
            HugePages::Default => None,
            HugePages::Transparent => Some(libc::MADV_HUGEPAGE),
            HugePages::Never => Some(libc::MADV_NOHUGEPAGE),
        };
        if let Some(advice) = advice {
            // SAFETY: the range is our own live mapping. Failure (no THP
            // support) only loses the hint, so the result is ignored.
            unsafe { libc::madvise(aligned as *mut libc::c_void, rounded, advice) };
        }
        if populate {
            for off in (0..buf.len).step_by(page as usize) {
                // SAFETY: `off < len`, inside the mapping we own; a volatile
                // write makes sure the fault is taken.
                unsafe { buf.ptr.as_ptr().add(off).write_volatile(0) };
            }
        }
        Ok(buf)
    }

    /// Adopts a caller's vector as it is: its heap memory becomes the
    /// buffer (length `v.len()`), without copying. Registration checks its
    /// alignment against the device; page-aligned memory always passes.
    pub fn adopt(mut v: Vec<u8>) -> Result<Self> {
        if v.is_empty() {
            return Err(Error::ZeroLength { what: "adopted buffer" });
        }
        let ptr = NonNull::new(v.as_mut_ptr()).expect("non-empty Vec has a real pointer");
        let len = v.len();
        Ok(DmaBuf { ptr, len, owner: Owner::Vec(v) })
    }

    /// Adopts memory the caller allocated some other way (a huge-page pool,
    /// shared memory, an arena). `release` runs when the buffer is dropped.
    ///
    /// # Safety
    ///
    /// `ptr..ptr+len` must be valid for reads and writes, must not be
    /// accessed through any other path while the `DmaBuf` (and any region
    /// made from it) lives, and must stay valid until `release` is called.
    pub unsafe fn from_raw_parts(
        ptr: NonNull<u8>,
        len: usize,
        release: impl FnOnce(NonNull<u8>, usize) + Send + 'static,
    ) -> Result<Self> {
        if len == 0 {
            return Err(Error::ZeroLength { what: "adopted buffer" });
        }
        Ok(DmaBuf { ptr, len, owner: Owner::Raw(Some(Box::new(release))) })
    }

    /// The start address. Stable for the buffer's whole life.
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    /// The start address, for writing. Stable for the buffer's whole life.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub(crate) fn raw(&self) -> NonNull<u8> {
        self.ptr
    }

    /// Length in bytes (for [`DmaBuf::new`], rounded up to whole pages).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a `DmaBuf` is never empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of this buffer backed by transparent huge pages, from
    /// `/proc/self/smaps` (`None` when it cannot be read). Benchmarks record
    /// it with every figure, because pinning cost depends on it.
    pub fn huge_page_bytes(&self) -> Option<u64> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let (lo, hi) = (self.ptr.as_ptr() as u64, self.ptr.as_ptr() as u64 + self.len as u64);
        let mut total = 0u64;
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ')
                && let Some((a, b)) = range.split_once('-')
                && let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16))
            {
                inside = a < hi && b > lo;
                continue;
            }
            if inside && let Some(rest) = line.strip_prefix("AnonHugePages:") {
                let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
                total += kb * 1024;
            }
        }
        Some(total)
    }
}

impl Deref for DmaBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: ptr..ptr+len is valid and uniquely owned by self (type invariant).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for DmaBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for DmaBuf {
    fn drop(&mut self) {
        match &mut self.owner {
            Owner::Mmap { base, map_len } => {
                // SAFETY: the mapping was made by `map` and is unmapped once, here.
                unsafe { libc::munmap(base.as_ptr().cast(), *map_len) };
            }
            Owner::Vec(_) => {}
            Owner::Raw(release) => {
                if let Some(release) = release.take() {
                    release(self.ptr, self.len);
                }
            }
        }
    }
}

impl fmt::Debug for DmaBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.owner {
            Owner::Mmap { .. } => "mmap",
            Owner::Vec(_) => "adopted Vec",
            Owner::Raw(_) => "adopted raw",
        };
        f.debug_struct("DmaBuf").field("addr", &self.ptr).field("len", &self.len).field("kind", &kind).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_is_page_aligned_zeroed_and_rounded() {
        let b = DmaBuf::new(5000).unwrap();
        assert_eq!(b.as_ptr() as usize % page_size(), 0);
        assert_eq!(b.len(), 2 * page_size());
        assert!(b.iter().all(|&x| x == 0));
    }

    #[test]
    fn huge_buffers_are_2m_aligned() {
        let mut b = DmaBuf::builder(3 << 20).huge_pages(HugePages::Transparent).populate(true).build().unwrap();
        assert_eq!(b.as_ptr() as usize % HUGE_PAGE, 0);
        assert_eq!(b.len(), 4 << 20);
        b[123] = 7;
        assert_eq!(b[123], 7);
        assert!(b.huge_page_bytes().is_some());
    }

    #[test]
    fn zero_length_is_an_error() {
        assert!(matches!(DmaBuf::new(0), Err(Error::ZeroLength { .. })));
        assert!(matches!(DmaBuf::adopt(Vec::new()), Err(Error::ZeroLength { .. })));
    }

    #[test]
    fn adopted_vec_keeps_its_bytes() {
        let v = vec![9u8; 100];
        let p = v.as_ptr();
        let b = DmaBuf::adopt(v).unwrap();
        assert_eq!(b.as_ptr(), p);
        assert!(b.iter().all(|&x| x == 9));
    }

    #[test]
    fn raw_release_runs_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static RELEASED: AtomicUsize = AtomicUsize::new(0);
        let mut backing = vec![0u8; 64].into_boxed_slice();
        let ptr = NonNull::new(backing.as_mut_ptr()).unwrap();
        // SAFETY: `backing` outlives the DmaBuf and is not touched meanwhile.
        let b = unsafe {
            DmaBuf::from_raw_parts(ptr, 64, |_, _| {
                RELEASED.fetch_add(1, Ordering::SeqCst);
            })
        }
        .unwrap();
        drop(b);
        assert_eq!(RELEASED.load(Ordering::SeqCst), 1);
        drop(backing);
    }
}
