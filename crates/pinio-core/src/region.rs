//! Registered memory: a [`DmaBuf`] the devices of a domain may access, and
//! its lease table.

use crate::domain::DomainInner;
use crate::{DmaBuf, DomainId, Error, RegionKey, Result, Slice};
use std::collections::BTreeMap;
use std::fmt;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard};

/// Live slices of one region, keyed by offset.
///
/// # Invariants
///
/// The ranges `[offset, offset + len)` are pairwise disjoint and non-empty.
#[derive(Default)]
pub(crate) struct Leases(BTreeMap<usize, usize>);

impl Leases {
    /// Records `[offset, offset + len)` unless it overlaps a live lease.
    /// O(log n) in the number of live slices.
    fn take(&mut self, offset: usize, len: usize) -> bool {
        let end = offset + len;
        // Disjoint ranges sorted by start: only the last one starting before
        // `end` can reach into `[offset, end)`.
        if let Some((&o, &l)) = self.0.range(..end).next_back()
            && o + l > offset
        {
            return false;
        }
        self.0.insert(offset, len);
        true
    }

    fn release(&mut self, offset: usize, len: usize) {
        if self.0.get(&offset) == Some(&len) {
            self.0.remove(&offset);
        }
    }
}

pub(crate) struct RegionInner {
    buf: Option<DmaBuf>,
    ptr: NonNull<u8>,
    len: usize,
    key: RegionKey,
    /// `domain`'s id, kept here so that the check of every push reads it
    /// without following the domain's pointer.
    domain_id: DomainId,
    domain: Arc<DomainInner>,
    leases: Mutex<Leases>,
}

// SAFETY: the raw pointer refers to `buf`'s memory, which RegionInner owns;
// access to bytes goes through slices, which are disjoint by the lease table.
unsafe impl Send for RegionInner {}
// SAFETY: as above; shared state (the lease table) is behind a Mutex.
unsafe impl Sync for RegionInner {}

impl RegionInner {
    fn leases(&self) -> MutexGuard<'_, Leases> {
        // Every update is one map operation; a panic cannot leave it torn.
        self.leases.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    #[inline]
    pub(crate) fn domain(&self) -> DomainId {
        self.domain_id
    }

    pub(crate) fn key(&self) -> RegionKey {
        self.key
    }

    pub(crate) fn release_lease(&self, offset: usize, len: usize) {
        self.leases().release(offset, len);
    }

    /// Replaces lease `old` by the leases `new`, which cover exactly the
    /// same bytes (a split or a merge).
    pub(crate) fn replace_lease(&self, old: (usize, usize), new: &[(usize, usize)]) {
        let mut l = self.leases();
        l.release(old.0, old.1);
        for &(o, n) in new {
            l.0.insert(o, n);
        }
    }
}

impl Drop for RegionInner {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            // Errors cannot be returned from Drop; the domain counts them in
            // its statistics (`unregister_failures`).
            let _ = self.domain.release(self.key, &buf);
        }
    }
}

/// A buffer registered (pinned, IOMMU-mapped, in an io_uring buffer table)
/// in one [`crate::Domain`], usable by every device of that domain.
///
/// A `Region` is a cheap, clonable handle. The registration lasts until the
/// last handle *and* the last [`Slice`] of it are dropped: slices in flight
/// are owned by a queue, so a region can never be unregistered or freed while
/// any device may still touch it. [`Region::unregister`] releases it
/// explicitly and returns the buffer, or refuses while slices are alive.
///
/// The bytes are reached through slices ([`Region::slice`]), which own
/// disjoint ranges, so each can be used as `&mut [u8]` safely.
#[derive(Clone)]
pub struct Region {
    inner: Arc<RegionInner>,
}

impl Region {
    /// Wraps a registration a domain has made.
    ///
    /// # Safety
    ///
    /// `key` must describe a live registration of exactly `buf` in `domain`
    /// (or a piece of one that outlives it), which `domain.release` releases.
    /// Nothing but slices of the returned region may touch `buf`'s memory
    /// from now on.
    pub(crate) unsafe fn new(domain: Arc<DomainInner>, key: RegionKey, buf: DmaBuf) -> Region {
        let (ptr, len) = (buf.raw(), buf.len());
        let inner = RegionInner {
            buf: Some(buf),
            ptr,
            len,
            key,
            domain_id: domain.id(),
            domain,
            leases: Mutex::new(Leases::default()),
        };
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

    /// The domain this region is registered in.
    pub fn domain_id(&self) -> DomainId {
        self.inner.domain()
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
        self.inner.leases().0.len()
    }

    /// Takes `len` bytes at `offset` as a slice that owns them until dropped.
    /// Fails if the range is empty, leaves the region, or overlaps a live
    /// slice. Costs O(log n) in the number of live slices of the region.
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
        if !self.inner.leases().take(offset, len) {
            return Err(Error::SliceOverlap { offset, len });
        }
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
                match inner.domain.release(inner.key, &buf) {
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
    #[error(
        "region still has {outstanding} other handle(s) or live slice(s), some possibly in flight; wait for their completions and drop them first"
    )]
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
            .field("domain", &self.inner.domain())
            .field("key", &self.inner.key)
            .field("addr", &self.inner.ptr)
            .field("len", &self.inner.len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::Leases;

    #[test]
    fn leases_refuse_every_overlap_and_accept_neighbours() {
        let mut l = Leases::default();
        assert!(l.take(100, 50));
        for (o, n) in [(100, 50), (99, 2), (149, 1), (120, 5), (0, 1000), (149, 10)] {
            assert!(!l.take(o, n), "[{o}, +{n}) overlaps [100, +50)");
        }
        assert!(l.take(150, 10) && l.take(90, 10) && l.take(0, 90));
        l.release(100, 50);
        assert!(l.take(120, 5));
        l.release(120, 4); // not a live lease: nothing happens
        assert!(!l.take(121, 1));
    }
}
