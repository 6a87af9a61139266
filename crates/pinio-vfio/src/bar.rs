//! A PCI BAR mapped into this process: device registers read and written
//! with volatile accesses.

use crate::VfioError;
use std::os::fd::RawFd;
use std::ptr::NonNull;

/// A memory BAR mmapped from the VFIO device file.
///
/// # Invariants
///
/// `ptr` is the start of a live `MAP_SHARED` mapping of `len` bytes of a
/// device's MMIO registers, owned by this value and unmapped on drop. It
/// must be dropped before the VFIO device file is closed: a live mapping
/// keeps the device open, and releasing the group then fails with EBUSY.
pub struct Bar {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is device registers, accessed only with volatile
// reads and writes of whole registers; the device serialises accesses.
unsafe impl Send for Bar {}
// SAFETY: as above.
unsafe impl Sync for Bar {}

impl Bar {
    /// Maps `len` bytes at `offset` of the VFIO device file `fd` (the BAR's
    /// region offset from `VFIO_DEVICE_GET_REGION_INFO`).
    pub fn map(fd: RawFd, offset: u64, len: usize) -> Result<Bar, VfioError> {
        // SAFETY: a fresh shared mapping chosen by the kernel: it aliases no
        // Rust object; the result is checked.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                offset as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(VfioError::os(
                format!("mmap of BAR ({len:#x} bytes at region offset {offset:#x})"),
                std::io::Error::last_os_error(),
            ));
        }
        let ptr = NonNull::new(p.cast::<u8>())
            .ok_or_else(|| VfioError::os("mmap of BAR", std::io::Error::other("null mapping")))?;
        Ok(Bar { ptr, len })
    }

    fn at<T>(&self, off: usize) -> *mut T {
        let size = std::mem::size_of::<T>();
        // Offsets are driver constants; a bad one is a bug in this crate.
        assert!(
            off.is_multiple_of(size) && off + size <= self.len,
            "register {off:#x} outside the {:#x}-byte BAR",
            self.len
        );
        // SAFETY: inside the mapping (checked just above).
        unsafe { self.ptr.as_ptr().add(off).cast::<T>() }
    }

    /// The mapped length in bytes: register offsets must stay below it.
    pub fn size(&self) -> usize {
        self.len
    }

    /// Reads the 32-bit register at `off`.
    ///
    /// # Panics
    ///
    /// If `off` is not aligned to the register size or the register does
    /// not lie inside the BAR: register offsets are driver constants, so
    /// that is a bug in the driver, as an out-of-range slice index is. The
    /// same holds for the other accessors.
    pub fn read32(&self, off: usize) -> u32 {
        // SAFETY: `at` checked bounds and alignment; the mapping is live.
        unsafe { self.at::<u32>(off).read_volatile() }
    }

    /// Writes the 32-bit register at `off`.
    pub fn write32(&self, off: usize, v: u32) {
        // SAFETY: as in `read32`.
        unsafe { self.at::<u32>(off).write_volatile(v) }
    }

    /// Reads the 64-bit register at `off` with one 8-byte access.
    pub fn read64(&self, off: usize) -> u64 {
        // SAFETY: as in `read32`.
        unsafe { self.at::<u64>(off).read_volatile() }
    }

    /// Writes the 64-bit register at `off` with one 8-byte access.
    pub fn write64(&self, off: usize, v: u64) {
        // SAFETY: as in `read32`.
        unsafe { self.at::<u64>(off).write_volatile(v) }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        // SAFETY: we own the mapping (invariant); nothing uses it after drop.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
