//! Anonymous memory mappings owned by tests, and the address-space changes the fuzzer and the
//! scenarios make under registered buffers.

use crate::FuzzError;

/// An anonymous private mapping, unmapped on drop.
///
/// # Invariants
///
/// `[ptr, ptr + len)` is a mapping made by [`Mapping::new`] (possibly re-protected or replaced
/// in place by the methods below) that nothing else unmaps.
#[derive(Debug)]
pub struct Mapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: The mapping is plain memory owned by this value; moving the owner between threads is
// fine. Byte access goes through `&mut self`.
unsafe impl Send for Mapping {}

/// The page size of the running kernel.
pub fn page_size() -> usize {
    pinio_core::page_size()
}

impl Mapping {
    /// Maps `len` bytes (rounded up to pages) with protection `prot`, aligned to `align` bytes
    /// (a power of two; use 2 MiB to let transparent huge pages back it).
    pub fn new(len: usize, prot: i32, align: usize) -> Result<Mapping, FuzzError> {
        let page = page_size();
        let len = len.div_ceil(page) * page;
        let align = align.max(page);
        let over = len + align - page;
        // SAFETY: A fresh anonymous private mapping at an address the kernel chooses; the result
        // is checked.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), over, prot, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0) };
        if p == libc::MAP_FAILED {
            return Err(FuzzError::setup(format!("mmap of {over} bytes"), "out of memory in the guest?"));
        }
        let start = p as usize;
        let aligned = start.div_ceil(align) * align;
        // SAFETY: Both trims lie inside the mapping just made and nobody else knows about it.
        unsafe {
            if aligned > start {
                libc::munmap(p, aligned - start);
            }
            let tail = start + over - (aligned + len);
            if tail > 0 {
                libc::munmap((aligned + len) as *mut libc::c_void, tail);
            }
        }
        // INVARIANT: `[aligned, aligned + len)` is what is left of the fresh mapping.
        Ok(Mapping { ptr: aligned as *mut u8, len })
    }

    /// `len` bytes of readable and writable memory, page-aligned.
    pub fn rw(len: usize) -> Result<Mapping, FuzzError> {
        Mapping::new(len, libc::PROT_READ | libc::PROT_WRITE, 0)
    }

    /// Start address.
    pub fn addr(&self) -> u64 {
        self.ptr as u64
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: mappings are never empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes. Only valid while the whole mapping is readable and writable.
    ///
    /// # Safety
    ///
    /// Every page of the mapping must be mapped readable and writable now (no [`Mapping::protect`]
    /// to less, no part replaced by an inaccessible mapping).
    pub unsafe fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: The mapping is `len` bytes, owned by `self` (borrowed mutably), and readable and
        // writable per the caller's promise.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    /// Byte range check shared by the methods below.
    fn span(&self, offset: usize, len: usize) -> Result<*mut libc::c_void, FuzzError> {
        let page = page_size();
        if !offset.is_multiple_of(page)
            || !len.is_multiple_of(page)
            || len == 0
            || offset.checked_add(len).is_none_or(|e| e > self.len)
        {
            return Err(FuzzError::Check(format!(
                "mapping range {offset:#x}+{len:#x} is not page-aligned inside {:#x} bytes",
                self.len
            )));
        }
        // SAFETY: `offset < len` of the mapping (checked above).
        Ok(unsafe { self.ptr.add(offset) }.cast())
    }

    /// `mprotect` of a page-aligned part.
    pub fn protect(&mut self, offset: usize, len: usize, prot: i32) -> Result<(), FuzzError> {
        let p = self.span(offset, len)?;
        // SAFETY: The range lies inside this mapping, which we own; changing its protection cannot
        // affect memory outside it.
        if unsafe { libc::mprotect(p, len, prot) } != 0 {
            return Err(FuzzError::setup(format!("mprotect {p:?}+{len:#x}"), "kernel refused mprotect"));
        }
        Ok(())
    }

    /// Replaces a page-aligned part with fresh anonymous memory (`MAP_FIXED`): the old pages
    /// leave the address space (pinned ones stay pinned, owned by their registration) and new
    /// zeroed pages take their place.
    pub fn replace(&mut self, offset: usize, len: usize, prot: i32) -> Result<(), FuzzError> {
        let p = self.span(offset, len)?;
        // SAFETY: `MAP_FIXED` over a range inside our own mapping: it atomically unmaps what was
        // there (ours) and maps fresh memory; no other object lives in that range.
        let r = unsafe { libc::mmap(p, len, prot, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED, -1, 0) };
        if r != p {
            return Err(FuzzError::setup(format!("mmap MAP_FIXED {p:?}+{len:#x}"), "kernel refused MAP_FIXED"));
        }
        Ok(())
    }

    /// `madvise` of a page-aligned part (`MADV_DONTNEED`, `MADV_HUGEPAGE`, ...).
    pub fn advise(&mut self, offset: usize, len: usize, advice: i32) -> Result<(), FuzzError> {
        let p = self.span(offset, len)?;
        // SAFETY: The range lies inside our own mapping; advice only affects it.
        if unsafe { libc::madvise(p, len, advice) } != 0 {
            return Err(FuzzError::setup(format!("madvise({advice}) {p:?}+{len:#x}"), "kernel refused madvise"));
        }
        Ok(())
    }

    /// Unmaps a page-aligned part for good; the range stays owned (by address) by this value, so
    /// [`Mapping::remap_fixed_noreplace`] can map it again.
    pub fn unmap_part(&mut self, offset: usize, len: usize) -> Result<(), FuzzError> {
        let p = self.span(offset, len)?;
        // SAFETY: The range lies inside our own mapping.
        if unsafe { libc::munmap(p, len) } != 0 {
            return Err(FuzzError::setup(format!("munmap {p:?}+{len:#x}"), "kernel refused munmap"));
        }
        Ok(())
    }

    /// Maps fresh memory exactly at a part unmapped by [`Mapping::unmap_part`]
    /// (`MAP_FIXED_NOREPLACE`: fails instead of clobbering something another allocation put
    /// there meanwhile).
    pub fn remap_fixed_noreplace(&mut self, offset: usize, len: usize, prot: i32) -> Result<(), FuzzError> {
        let p = self.span(offset, len)?;
        // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping.
        let r = unsafe {
            libc::mmap(p, len, prot, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE, -1, 0)
        };
        if r != p {
            if r != libc::MAP_FAILED {
                // SAFETY: An old kernel ignored the flag and mapped elsewhere: undo that mapping.
                unsafe { libc::munmap(r, len) };
            }
            return Err(FuzzError::setup(
                format!("mmap MAP_FIXED_NOREPLACE {p:?}+{len:#x}"),
                "the range was taken meanwhile",
            ));
        }
        Ok(())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `[ptr, ptr + len)` is ours (type invariant); unmapping parts already unmapped is
        // harmless.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}
