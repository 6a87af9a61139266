//! A slice of a region: the unit handed to a device.

use crate::region::RegionInner;
use crate::{DomainId, RegionKey};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

/// `(region, offset, len)`: bytes of a registered region, owned exclusively.
///
/// No two live slices of one region overlap ([`crate::Region::slice`]
/// enforces it), so a slice reads and writes its bytes as `&mut [u8]`.
/// Handing a slice to a queue moves it there; the completion moves it back.
/// A slice keeps its region registered and its memory alive, so dropping
/// every [`crate::Region`] handle while slices are in flight is safe.
pub struct Slice {
    region: Arc<RegionInner>,
    offset: usize,
    len: usize,
}

impl Slice {
    /// # Safety
    ///
    /// `offset..offset+len` must be inside the region and leased to this
    /// slice alone in the region's lease table.
    pub(crate) unsafe fn new(region: Arc<RegionInner>, offset: usize, len: usize) -> Slice {
        Slice { region, offset, len }
    }

    /// Offset of the first byte within the region.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: slices are never empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The domain the region is registered in.
    #[inline]
    pub fn domain_id(&self) -> DomainId {
        self.region.domain()
    }

    /// The region's registration key.
    #[inline]
    pub fn key(&self) -> RegionKey {
        self.region.key()
    }

    /// The address of the first byte as the device sees it
    /// (`key().device_addr + offset()`).
    pub fn device_addr(&self) -> u64 {
        self.region.key().device_addr + self.offset as u64
    }

    /// Address of the first byte in this process, for backends to hand to
    /// the kernel or device.
    pub fn as_ptr(&self) -> *const u8 {
        // SAFETY: offset < region length (invariant), so the result stays
        // inside the region's allocation.
        unsafe { self.region.ptr().as_ptr().add(self.offset) }
    }

    /// Mutable address of the first byte, for backends that let the device
    /// write it.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        // SAFETY: as in `as_ptr`.
        unsafe { self.region.ptr().as_ptr().add(self.offset) }
    }

    /// Splits into `[0, mid)` and `[mid, len)`, each owning its bytes.
    /// Returns the slice unchanged when `mid` is 0 or not below `len`.
    pub fn split_at(self, mid: usize) -> Result<(Slice, Slice), Slice> {
        if mid == 0 || mid >= self.len {
            return Err(self);
        }
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so moving its Arc out is a move.
        let region = unsafe { std::ptr::read(&this.region) };
        let (o, l) = (this.offset, this.len);
        region.replace_lease((o, l), &[(o, mid), (o + mid, l - mid)]);
        // SAFETY: the two halves partition the old lease, now recorded as two.
        unsafe { Ok((Slice::new(region.clone(), o, mid), Slice::new(region, o + mid, l - mid))) }
    }
}

impl Slice {
    /// Joins two adjacent slices of the same region (`self` directly before
    /// `next`) back into one; hands both back unchanged otherwise.
    pub fn merge(self, next: Slice) -> Result<Slice, (Slice, Slice)> {
        if !Arc::ptr_eq(&self.region, &next.region) || self.offset + self.len != next.offset {
            return Err((self, next));
        }
        let (a, b) = (std::mem::ManuallyDrop::new(self), std::mem::ManuallyDrop::new(next));
        // SAFETY: neither `a` nor `b` is dropped, so their Arcs are moved out
        // exactly once; one of the two references is released right away.
        let (region, other) = unsafe { (std::ptr::read(&a.region), std::ptr::read(&b.region)) };
        drop(other);
        region.replace_lease((a.offset, a.len), &[]);
        region.replace_lease((b.offset, b.len), &[(a.offset, a.len + b.len)]);
        // SAFETY: the merged range is exactly the union of the two leases it replaces.
        Ok(unsafe { Slice::new(region, a.offset, a.len + b.len) })
    }
}

impl Deref for Slice {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the range is inside the live region and leased to us alone.
        unsafe { std::slice::from_raw_parts(self.as_ptr(), self.len) }
    }
}

impl DerefMut for Slice {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`; `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.as_mut_ptr(), self.len) }
    }
}

impl Drop for Slice {
    fn drop(&mut self) {
        self.region.release_lease(self.offset, self.len);
    }
}

impl fmt::Debug for Slice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slice")
            .field("domain", &self.domain_id())
            .field("offset", &self.offset)
            .field("len", &self.len)
            .finish()
    }
}
