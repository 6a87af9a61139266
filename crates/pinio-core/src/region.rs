//! Registered memory: a [`DmaBuf`] a device may access, and its lease table.

use crate::{DeviceId, DmaBuf, Error, Result, Slice};
use std::fmt;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard};

/// How a backend identifies one registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RegionKey {
    /// The backend's handle: an io_uring buffer index, a kernel-module region
    /// id, a VFIO mapping number.
    pub id: u64,
    /// The address of the region's first byte as the device sees it: an IOVA
    /// for VFIO, the user virtual address for io_uring and the kernel module.
    pub device_addr: u64,
}

/// The backend hook that releases a registration.
pub trait Unregister: Send + Sync {
    /// Releases registration `key` of `buf` (unpin, IOMMU unmap, io_uring
    /// slot update). Called exactly once per region, after its last slice and
    /// handle are gone, so no operation on it can be in flight.
    fn unregister(&self, key: RegionKey, buf: &DmaBuf) -> Result<()>;
}

pub(crate) struct RegionInner {
    buf: Option<DmaBuf>,
    ptr: NonNull<u8>,
    len: usize,
    device: DeviceId,
    key: RegionKey,
    hook: Arc<dyn Unregister>,
    /// Live slices as `(offset, len)`. Invariant: pairwise disjoint.
    leases: Mutex<Vec<(usize, usize)>>,
}

// SAFETY: the raw pointer refers to `buf`'s memory, which RegionInner owns;
// access to bytes goes through slices, which are disjoint by the lease table.
unsafe impl Send for RegionInner {}
// SAFETY: as above; shared state (the lease table) is behind a Mutex.
unsafe impl Sync for RegionInner {}

impl RegionInner {
    fn leases(&self) -> MutexGuard<'_, Vec<(usize, usize)>> {
        // A panic while holding the lock cannot leave the vector invalid.
        self.leases.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    pub(crate) fn device(&self) -> DeviceId {
        self.device
    }

    pub(crate) fn key(&self) -> RegionKey {
        self.key
    }

    pub(crate) fn release_lease(&self, offset: usize, len: usize) {
        let mut l = self.leases();
        if let Some(i) = l.iter().position(|&e| e == (offset, len)) {
            l.swap_remove(i);
        }
    }

    pub(crate) fn replace_lease(&self, old: (usize, usize), new: &[(usize, usize)]) {
        let mut l = self.leases();
        if let Some(i) = l.iter().position(|&e| e == old) {
            l.swap_remove(i);
        }
        l.extend_from_slice(new);
    }
}

impl Drop for RegionInner {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            // Errors cannot be returned from Drop; backends count them in
            // their statistics (`unregister_failures`).
            let _ = self.hook.unregister(self.key, &buf);
        }
    }
}

/// A buffer registered (pinned) with one device.
///
/// A `Region` is a cheap, clonable handle. The registration lasts until the
/// last handle *and* the last [`Slice`] of it are dropped: slices in flight
/// are owned by a queue, so a region can never be unregistered or freed while
/// the device may still touch it. [`Region::unregister`] releases it
/// explicitly and returns the buffer, or refuses while slices are alive.
///
/// The bytes are reached through slices ([`Region::slice`]), which own
/// disjoint ranges, so each can be used as `&mut [u8]` safely.
#[derive(Clone)]
pub struct Region {
    inner: Arc<RegionInner>,
}

impl Region {
    /// Wraps a registration a backend has made.
    ///
    /// # Safety
    ///
    /// `key` must describe a live registration of exactly `buf` with the
    /// device `device`, and `hook.unregister(key, &buf)` must release it.
    /// Nothing but slices of the returned region may touch `buf`'s memory
    /// from now on.
    pub unsafe fn new(device: DeviceId, key: RegionKey, buf: DmaBuf, hook: Arc<dyn Unregister>) -> Region {
        let (ptr, len) = (buf.raw(), buf.len());
        let inner = RegionInner { buf: Some(buf), ptr, len, device, key, hook, leases: Mutex::new(Vec::new()) };
        Region { inner: Arc::new(inner) }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.inner.len
    }

    /// Always false: regions are never empty.
    pub fn is_empty(&self) -> bool {
        self.inner.len == 0
    }

    /// The device this region is registered with.
    pub fn device_id(&self) -> DeviceId {
        self.inner.device
    }

    /// The backend's key for this registration.
    pub fn key(&self) -> RegionKey {
        self.inner.key
    }

    /// Address of the first byte in this process.
    pub fn as_ptr(&self) -> *const u8 {
        self.inner.ptr.as_ptr()
    }

    /// Slices alive right now (in the application or in flight).
    pub fn live_slices(&self) -> usize {
        self.inner.leases().len()
    }

    /// Takes `len` bytes at `offset` as a slice that owns them until dropped.
    /// Fails if the range is empty, leaves the region, or overlaps a live
    /// slice.
    pub fn slice(&self, offset: usize, len: usize) -> Result<Slice> {
        if len == 0 {
            return Err(Error::ZeroLength { what: "slice" });
        }
        match offset.checked_add(len) {
            Some(end) if end <= self.inner.len => {}
            _ => {
                return Err(Error::OutOfBounds {
                    what: "region",
                    offset: offset as u64,
                    len: len as u64,
                    limit: self.inner.len as u64,
                });
            }
        }
        let mut leases = self.inner.leases();
        if leases.iter().any(|&(o, l)| offset < o + l && o < offset + len) {
            return Err(Error::SliceOverlap { offset, len });
        }
        leases.push((offset, len));
        drop(leases);
        // SAFETY: the range is inside the region and now leased exclusively.
        Ok(unsafe { Slice::new(self.inner.clone(), offset, len) })
    }

    /// The whole region as one slice.
    pub fn slice_all(&self) -> Result<Slice> {
        self.slice(0, self.inner.len)
    }

    /// Releases the registration now and returns the buffer with its bytes.
    ///
    /// Refused with [`Unregister::Busy`](UnregisterError::Busy) while other
    /// handles or slices of the region are alive, because an operation may
    /// still be in flight on them.
    pub fn unregister(self) -> std::result::Result<DmaBuf, UnregisterError> {
        match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                let buf = inner.buf.take().expect("buf present until unregistered");
                match inner.hook.unregister(inner.key, &buf) {
                    Ok(()) => Ok(buf),
                    Err(error) => Err(UnregisterError::Failed { error, buf }),
                }
            }
            Err(inner) => {
                let outstanding = Arc::strong_count(&inner) - 1;
                Err(UnregisterError::Busy { region: Region { inner }, outstanding })
            }
        }
    }
}

/// Why [`Region::unregister`] did not release a region.
#[derive(thiserror::Error)]
pub enum UnregisterError {
    /// Other handles or slices are alive; the region is handed back.
    #[error("region still has {outstanding} other handle(s) or live slice(s), some possibly in flight; wait for their completions and drop them first")]
    Busy {
        /// The region, still registered.
        region: Region,
        /// How many other handles and slices keep it alive.
        outstanding: usize,
    },
    /// The backend failed to release it; the buffer is handed back.
    #[error("unregistering failed: {error}")]
    Failed {
        /// The backend's error.
        #[source]
        error: Error,
        /// The buffer.
        buf: DmaBuf,
    },
}

impl fmt::Debug for UnregisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<UnregisterError> for Error {
    fn from(e: UnregisterError) -> Error {
        match e {
            UnregisterError::Busy { outstanding, .. } => Error::RegionBusy { outstanding },
            UnregisterError::Failed { error, .. } => error,
        }
    }
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Region")
            .field("device", &self.inner.device)
            .field("key", &self.inner.key)
            .field("addr", &self.inner.ptr)
            .field("len", &self.inner.len)
            .finish()
    }
}
