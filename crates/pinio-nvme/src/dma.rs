//! The driver's own DMA memory: queue rings, PRP list pages, Identify
//! buffers. Mapped into the domain's container with the same IOVA
//! allocator and mapping budget as application regions
//! ([`VfioRegistrar::map_driver_memory`]), but not a region: it is accessed
//! only with volatile reads and writes, because the controller reads and
//! writes it concurrently.

use crate::cmd::{CQE_BYTES, Cqe, SQE_BYTES, Sqe};
use pinio_core::{DmaBuf, Domain, Result};
use pinio_vfio::VfioRegistrar;
use std::ptr::NonNull;

/// Zeroed, page-aligned memory mapped into the IOMMU.
///
/// # Invariants
///
/// `ptr` is the start of `buf`'s `len` bytes, mapped at IOVA `iova` in the
/// container of `domain` for as long as this value lives. No Rust reference to the bytes ever
/// exists: every access is a volatile read or write through `ptr`, since the
/// controller may write them at any time. On drop the IOMMU mapping is
/// removed before the memory is freed; if removing it fails, the memory is
/// leaked rather than freed while the device may still reach it.
pub(crate) struct DmaMem {
    buf: Option<DmaBuf>,
    ptr: NonNull<u8>,
    len: usize,
    iova: u64,
    domain: Domain,
}

// SAFETY: the memory is owned by this value; all access is volatile through
// `ptr`, and the driver serialises writers (each ring has one owner).
unsafe impl Send for DmaMem {}
// SAFETY: as above.
unsafe impl Sync for DmaMem {}

impl DmaMem {
    /// Maps `len` bytes (rounded up to whole pages) of zeroed memory for
    /// the devices of `domain`, a VFIO domain.
    pub(crate) fn new(domain: &Domain, len: usize) -> Result<DmaMem> {
        let registrar = VfioRegistrar::of(domain, "nvme")?;
        let mut buf = DmaBuf::builder(len).populate(true).build()?;
        let ptr = NonNull::new(buf.as_mut_ptr()).ok_or(pinio_core::Error::ZeroLength { what: "DMA memory" })?;
        // map_driver_memory's contract: no reference to the bytes is
        // live (the builder's are gone; only `ptr` is kept), and from here on
        // they are reached only through `ptr` with volatile accesses (this
        // type's invariant) until the unmap in `drop`, which leaks the buffer
        // if the unmap fails.
        // SAFETY: no reference to the bytes is live and they are reached only volatilely until the unmap (map_driver_memory's contract, argued above).
        let iova = unsafe { registrar.map_driver_memory(&mut buf) }?;
        let len = buf.len();
        Ok(DmaMem { buf: Some(buf), ptr, len, iova, domain: domain.clone() })
    }

    /// The IOVA of the first byte.
    pub(crate) fn iova(&self) -> u64 {
        self.iova
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn at<T>(&self, off: usize) -> *mut T {
        // Offsets come from ring indices the driver bounds itself.
        assert!(
            off.is_multiple_of(std::mem::align_of::<T>()) && off + std::mem::size_of::<T>() <= self.len,
            "DMA memory access at {off:#x} outside {:#x} bytes",
            self.len
        );
        // SAFETY: inside the allocation (checked above).
        unsafe { self.ptr.as_ptr().add(off).cast() }
    }

    /// Reads the dword at `off`.
    pub(crate) fn read32(&self, off: usize) -> u32 {
        // SAFETY: `at` checked bounds and alignment; the memory is live
        // (invariant) and only accessed volatilely.
        u32::from_le(unsafe { self.at::<u32>(off).read_volatile() })
    }

    /// Writes the dword at `off`.
    pub(crate) fn write32(&self, off: usize, v: u32) {
        // SAFETY: as in `read32`.
        unsafe { self.at::<u32>(off).write_volatile(v.to_le()) }
    }

    /// Writes the quadword at `off`.
    pub(crate) fn write64(&self, off: usize, v: u64) {
        // SAFETY: as in `read32`.
        unsafe { self.at::<u64>(off).write_volatile(v.to_le()) }
    }

    /// Writes submission queue entry `slot`.
    pub(crate) fn write_sqe(&self, slot: u16, sqe: &Sqe) {
        let base = slot as usize * SQE_BYTES;
        for (i, d) in sqe.0.iter().enumerate() {
            self.write32(base + 4 * i, *d);
        }
    }

    /// Reads completion queue entry `slot`. Dword 3 (with the phase tag)
    /// is read first, and the rest only after an acquire fence, so a new
    /// phase tag is never paired with stale contents.
    pub(crate) fn read_cqe(&self, slot: u16) -> Cqe {
        let base = slot as usize * CQE_BYTES;
        let d3 = self.read32(base + 12);
        std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
        Cqe::decode([self.read32(base), self.read32(base + 4), self.read32(base + 8), d3])
    }

    /// The phase tag of completion queue entry `slot`.
    pub(crate) fn cqe_phase(&self, slot: u16) -> bool {
        self.read32(slot as usize * CQE_BYTES + 12) >> 16 & 1 == 1
    }

    /// Copies `len` bytes at `off` out (for Identify data, read after the
    /// command completed).
    pub(crate) fn copy_out(&self, off: usize, len: usize) -> Vec<u8> {
        (0..len).step_by(4).flat_map(|i| self.read32(off + i).to_le_bytes()).take(len).collect()
    }

    /// Zeroes every byte (a ring reused after a controller reset).
    pub(crate) fn zero(&self) {
        for off in (0..self.len).step_by(8) {
            self.write64(off, 0);
        }
    }
}

impl Drop for DmaMem {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            let unmapped = VfioRegistrar::of(&self.domain, "nvme").and_then(|r| r.unmap_driver_memory(self.iova, &buf));
            if unmapped.is_err() {
                // Still mapped: the device could reach it, so never free it.
                std::mem::forget(buf);
            }
        }
    }
}
