//! Registration domains: the scope that owns registrations, shared by every
//! device opened in it.
//!
//! # The DMA ownership rule
//!
//! This is the rule every backend's mapping code relies on, stated once here
//! and cited at each site that pins memory or maps it into an IOMMU:
//!
//! 1. A device touches only the bytes of slices that a queue owns: a
//!    backend programs a device (an SQE, a DMA descriptor, a PRP entry) only
//!    from an [`Op`](crate::Op) it holds, and gives the slice back only after
//!    the device is done with those bytes (the completion).
//! 2. A `&mut [u8]` (or `&[u8]`) to registered or IOMMU-mapped memory exists
//!    only while the application owns the slice ([`Slice`](crate::Slice)
//!    derefs to its bytes; a slice in a queue cannot be reached).
//! 3. Live slices of one region never overlap (the region's lease table), so
//!    (1) and (2) never meet on the same byte.
//! 4. A registration is released ([`Registrar::unregister`]) only when the
//!    last handle and the last slice of its region are gone, so no operation
//!    can be in flight on it, on any device of the domain; only then is the
//!    memory freed.
//!
//! A registration therefore makes memory *reachable* by the devices of a
//! domain for as long as it lasts (that is what pinning and IOMMU mapping
//! do), but the devices *use* a byte only while rule 1 holds. That is a
//! stronger statement than "the memory stays allocated while mapped" (which
//! is all `VFIO_IOMMU_MAP_DMA` itself needs): it is what lets Rust code
//! hold `&mut [u8]` to mapped memory without a data race.

use crate::{DmaBuf, Error, Region, RegisterError, Result, Stats, StatsSnapshot, is_aligned};
use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Identifies one domain for the life of the process. Regions and slices
/// remember theirs, so that a slice of one domain's region is refused by the
/// devices of another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainId(u64);

impl DomainId {
    fn next() -> DomainId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        DomainId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl fmt::Display for DomainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "domain #{}", self.0)
    }
}

/// How a backend holds one registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Registration {
    /// A registration of its own (an io_uring buffer slot, a kernel-module
    /// region id, a VFIO mapping number), released when its region goes.
    Own(u64),
    /// A piece of a larger registration that outlives the region (an arena
    /// registered once): `id` is that registration's handle; releasing the
    /// region releases nothing.
    Piece(u64),
    /// Not registered: the backend moves this region's bytes without a
    /// registration (the copy backend, or io_uring when the memory limit
    /// refused and the fallback policy applies).
    None,
}

/// How a backend identifies one registration, and where the device sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RegionKey {
    /// The backend's handle.
    pub registration: Registration,
    /// The address of the region's first byte as the devices see it: an
    /// IOVA for VFIO, the user virtual address for io_uring and the kernel
    /// module.
    pub device_addr: u64,
}

impl RegionKey {
    /// The backend's handle of the registration this region uses (its own
    /// or the arena's), or `None` for an unregistered region.
    #[inline]
    pub fn handle(&self) -> Option<u64> {
        match self.registration {
            Registration::Own(id) | Registration::Piece(id) => Some(id),
            Registration::None => None,
        }
    }

    /// Whether the region is registered (on its own or as a piece).
    #[inline]
    pub fn is_registered(&self) -> bool {
        self.registration != Registration::None
    }
}

/// A backend's registration mechanism for one domain: pinning, IOMMU
/// mapping, an io_uring buffer table.
///
/// pinio-core runs the sequence around it once for every backend (checks,
/// statistics, the region and its lease table, release when the last handle
/// and slice are gone); a backend writes only the two calls that are its own.
///
/// # Safety
///
/// Implementors promise, for the [DMA ownership rule](self#the-dma-ownership-rule):
///
/// - [`Registrar::register`] returns `Ok(key)` with [`Registration::Own`]
///   only after making exactly `buf`'s memory reachable by the domain's
///   devices, and `key.device_addr` is where they reach its first byte;
/// - [`Registrar::unregister`] of that key releases exactly that
///   registration; after it returns `Ok` no device of the domain can reach
///   the memory, which pinio then frees;
/// - devices of the domain touch registered memory only for operations on
///   slices a queue owns.
pub unsafe trait Registrar: Any + Send + Sync {
    /// The backend's name (`"uring"`, `"kmod"`, `"vfio"`, `"copy"`).
    fn backend(&self) -> &'static str;

    /// Alignment of buffer addresses and lengths at registration (the IOMMU
    /// page for VFIO; 1 where anything goes).
    fn register_align(&self) -> u64 {
        1
    }

    /// Largest amount of memory that may be registered at once, if known.
    fn max_registered_bytes(&self) -> Option<u64> {
        None
    }

    /// Registers `buf`. pinio-core has checked that it is not empty and is
    /// aligned to [`Registrar::register_align`].
    fn register(&self, buf: &mut DmaBuf) -> Result<RegionKey>;

    /// Releases a registration [`Registrar::register`] made
    /// ([`Registration::Own`] keys only). Called exactly once per such
    /// region, after its last slice and handle are gone.
    fn unregister(&self, key: RegionKey, buf: &DmaBuf) -> Result<()>;

    /// Bytes the registrar registered on its own when it was made (an arena
    /// registered once for the domain's life): counted as one pin of the
    /// domain from its creation to its end.
    fn preregistered_bytes(&self) -> u64 {
        0
    }

    /// Hands out `len` bytes of a pre-registered arena, if the domain has
    /// one with room (keys with [`Registration::Piece`]); `None` lets
    /// pinio-core map a fresh buffer and register it.
    fn alloc_piece(&self, len: usize) -> Option<Result<(DmaBuf, RegionKey)>> {
        let _ = len;
        None
    }

    /// A one-line description of the domain (`io_uring buffer table, 3 rings`).
    fn describe(&self) -> String;
}

pub(crate) struct DomainInner {
    id: DomainId,
    stats: Stats,
    registrar: Box<dyn Registrar>,
}

impl DomainInner {
    /// Releases `key` of `buf`: the last step of a region's life.
    pub(crate) fn release(&self, key: RegionKey, buf: &DmaBuf) -> Result<()> {
        if !matches!(key.registration, Registration::Own(_)) {
            return Ok(());
        }
        match self.registrar.unregister(key, buf) {
            Ok(()) => {
                self.stats.unpinned(buf.len() as u64);
                Ok(())
            }
            Err(e) => {
                self.stats.unregister_failed();
                Err(e)
            }
        }
    }

    pub(crate) fn id(&self) -> DomainId {
        self.id
    }
}

/// A registration scope: the regions registered in it are accepted by every
/// device opened in it.
///
/// This is libfabric's domain, verbs' protection domain, SPDK's global
/// memory map, one io_uring buffer table shared by many rings, one VFIO
/// container (IOMMU address space) holding several PCI devices. A storage
/// engine registers one pool of buffers and reads a block from one file into
/// it and writes the same bytes to another, with no CPU copy.
///
/// A `Domain` is a cheap clonable handle; every device opened in it and
/// every region registered in it keeps it alive.
///
/// ```
/// # // The copy backend lives in another crate; a trivial registrar shows the sequence.
/// use pinio_core::{Domain, DmaBuf, Registrar, RegionKey, Registration, Result};
/// struct Nothing;
/// // SAFETY: registers nothing, so no device can reach any memory through it.
/// unsafe impl Registrar for Nothing {
///     fn backend(&self) -> &'static str { "none" }
///     fn register(&self, buf: &mut DmaBuf) -> Result<RegionKey> {
///         Ok(RegionKey { registration: Registration::None, device_addr: buf.as_ptr() as u64 })
///     }
///     fn unregister(&self, _: RegionKey, _: &DmaBuf) -> Result<()> { Ok(()) }
///     fn describe(&self) -> String { "nothing".into() }
/// }
/// let domain = Domain::new(Nothing);
/// let region = domain.alloc(4096)?;
/// assert_eq!(region.domain_id(), domain.id());
/// # Ok::<(), pinio_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Domain {
    inner: Arc<DomainInner>,
}

impl Domain {
    /// A domain registering through `registrar`.
    pub fn new(registrar: impl Registrar) -> Domain {
        let inner = DomainInner { id: DomainId::next(), stats: Stats::default(), registrar: Box::new(registrar) };
        let pre = inner.registrar.preregistered_bytes();
        if pre > 0 {
            inner.stats.pinned(pre);
        }
        Domain { inner: Arc::new(inner) }
    }

    /// This domain's id.
    pub fn id(&self) -> DomainId {
        self.inner.id
    }

    /// The backend whose registrations this domain holds.
    pub fn backend(&self) -> &'static str {
        self.inner.registrar.backend()
    }

    /// The backend's registrar, when it is a `R`: how a backend finds its own
    /// state (a buffer table, a VFIO container, a kernel session) when a
    /// device is opened in the domain.
    pub fn registrar<R: Registrar>(&self) -> Option<&R> {
        let any: &dyn Any = &*self.inner.registrar;
        any.downcast_ref::<R>()
    }

    /// Like [`Domain::registrar`], but a domain of another backend is a
    /// typed error naming both backends.
    pub fn require<R: Registrar>(&self, backend: &'static str) -> Result<&R> {
        self.registrar::<R>()
            .ok_or_else(|| Error::WrongDomain { device_backend: backend, domain_backend: self.backend() })
    }

    /// Registration counters: pins, unpins, bytes registered now, failed
    /// releases. Every device of the domain reports them in its
    /// [`crate::Device::stats`].
    pub fn stats(&self) -> StatsSnapshot {
        self.inner.stats.snapshot()
    }

    /// Largest amount of memory that may be registered at once, if known.
    pub fn max_registered_bytes(&self) -> Option<u64> {
        self.inner.registrar.max_registered_bytes()
    }

    /// A one-line description.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.inner.id, self.inner.registrar.describe())
    }

    /// Registers (pins, maps) `buf` for every device of the domain. On
    /// failure the buffer comes back inside the error, unchanged.
    pub fn register(&self, mut buf: DmaBuf) -> Result<Region, RegisterError> {
        let (addr, len) = (buf.as_ptr() as u64, buf.len() as u64);
        if len == 0 {
            return Err(RegisterError::new(Error::ZeroLength { what: "registration" }, buf));
        }
        let required = self.inner.registrar.register_align();
        if !is_aligned(addr, required) {
            return Err(RegisterError::new(Error::Misaligned { what: "buffer address", value: addr, required }, buf));
        }
        if !is_aligned(len, required) {
            // Registering the rest of the last page would let devices reach
            // memory that is not the buffer's.
            return Err(RegisterError::new(Error::Misaligned { what: "buffer length", value: len, required }, buf));
        }
        let key = match self.inner.registrar.register(&mut buf) {
            Ok(key) => key,
            Err(e) => return Err(RegisterError::new(e, buf)),
        };
        if matches!(key.registration, Registration::Own(_)) {
            self.inner.stats.pinned(len);
        }
        // SAFETY: `key` is the registration of exactly `buf` just made
        // (Registrar's contract), released by `DomainInner::release`.
        Ok(unsafe { Region::new(Arc::clone(&self.inner), key, buf) })
    }

    /// Allocates and registers a region of at least `len` bytes: a piece of
    /// the domain's pre-registered arena when it has one with room,
    /// otherwise fresh page-aligned memory rounded up to the registration
    /// alignment.
    ///
    /// Fresh memory whose size is a whole number of 2 MiB huge pages is
    /// 2 MiB-aligned and asks for transparent huge pages
    /// ([`HugePages::Transparent`](crate::HugePages::Transparent); best
    /// effort, at no cost in memory): a device then sees one physically
    /// contiguous segment per 2 MiB instead of 512 pages (a 1 MiB O_DIRECT
    /// write through io_uring fixed buffers is one block request instead of
    /// two on a disk taking 254 segments per request; docs/benchmarks.md),
    /// and pinning and IOMMU mapping work per huge page. Other sizes get
    /// ordinary pages; build a [`DmaBuf`] and [`Domain::register`] it to
    /// choose.
    pub fn alloc(&self, len: usize) -> Result<Region> {
        if len == 0 {
            return Err(Error::ZeroLength { what: "region" });
        }
        if let Some(piece) = self.inner.registrar.alloc_piece(len) {
            let (buf, key) = piece?;
            // SAFETY: the piece lies inside a registration that outlives it
            // (Registration::Piece), made by this domain's registrar.
            return Ok(unsafe { Region::new(Arc::clone(&self.inner), key, buf) });
        }
        let align = self.inner.registrar.register_align().max(1);
        let rounded =
            crate::align_up(len as u64, align).ok_or(Error::TooLarge { len: len as u64, max: u64::MAX - align })?;
        let huge = if rounded >= crate::buf::HUGE_PAGE as u64 && rounded % crate::buf::HUGE_PAGE as u64 == 0 {
            crate::HugePages::Transparent
        } else {
            crate::HugePages::Default
        };
        Ok(self.register(DmaBuf::builder(rounded as usize).huge_pages(huge).build()?)?)
    }
}

impl fmt::Debug for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}
