//! [`VfioRegistrar`]: one VFIO container (one IOMMU address space) as a
//! pinio domain.
//!
//! Every PCI device opened in the domain has its IOMMU group join the
//! container, so one `VFIO_IOMMU_MAP_DMA` per region serves every device:
//! an NVMe controller reads into a region and edu DMAs the same bytes, with
//! one mapping and no CPU copy.

use crate::claim::DeviceClaim;
use crate::iommu_info::{self, IommuInfo};
use crate::pci::Sysfs;
use crate::space::{IOVA_BASE, Space};
use crate::{PciAddress, VfioDomainOptions, VfioError, VfioPci};
use pinio_core::{DmaBuf, Domain, RegionKey, Registrar, Registration};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use vfio_ioctls::VfioContainer;

/// What a VFIO domain has done, for tests and statistics: the registration
/// counters of [`Domain::stats`] count regions; these count the system calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VfioStats {
    /// PCI devices opened in the domain (their groups are in the container).
    pub devices: usize,
    /// `VFIO_IOMMU_MAP_DMA` calls made (regions and driver memory).
    pub map_dma_calls: u64,
    /// `VFIO_IOMMU_UNMAP_DMA` calls made.
    pub unmap_dma_calls: u64,
    /// Mappings alive now.
    pub mappings: u64,
    /// The most mappings the container allows, if the kernel says.
    pub mapping_limit: Option<u64>,
    /// Bytes of IOVA space below the domain's DMA limit (0 before the
    /// first device).
    pub iova_space: u64,
    /// Bytes of it free now.
    pub iova_free: u64,
}

/// The registrar of a VFIO domain: one VFIO container, its IOMMU's limits,
/// the IOVA allocator and the mapping budget.
///
/// A region is mapped once, with `VFIO_IOMMU_MAP_DMA`, at an IOVA below the
/// domain's DMA limit ([`VfioDomainOptions::dma_bits`]); its key is
/// [`Registration::Own`] with the mapping's number, and its device address
/// is the IOVA. Every device of the domain reaches it there.
///
/// The container gets an IOMMU address space only when the first device's
/// group joins it ([`VfioRegistrar::attach`]): registering in a domain with
/// no device yet is refused ([`VfioError::NoDevice`]). A device opened in
/// the domain stays in it until the domain is gone (its last device, region
/// and handle): when the last group leaves a container the kernel drops
/// every mapping, and regions may outlive their devices.
pub struct VfioRegistrar {
    /// Devices opened in the domain. Dropped (device files closed, groups
    /// out of the container) before the container; by then no region is
    /// left, since every region keeps the domain alive.
    members: Mutex<Vec<Arc<VfioPci>>>,
    container: Arc<VfioContainer>,
    dma_bits: u32,
    /// `None` until the first device joins.
    space: Mutex<Option<Space>>,
    map_calls: AtomicU64,
    unmap_calls: AtomicU64,
}

impl VfioRegistrar {
    /// A new domain: a new VFIO container (`/dev/vfio/vfio`), empty until a
    /// device is opened in it.
    pub fn domain(opts: VfioDomainOptions) -> pinio_core::Result<Domain> {
        if !(21..=64).contains(&opts.dma_bits) {
            return Err(VfioError::DmaBits { bits: opts.dma_bits }.into());
        }
        let container =
            VfioContainer::new(None).map_err(|e| VfioError::vfio("opening the VFIO container /dev/vfio/vfio", e))?;
        Ok(Domain::new(VfioRegistrar {
            members: Mutex::new(Vec::new()),
            container: Arc::new(container),
            dma_bits: opts.dma_bits,
            space: Mutex::new(None),
            map_calls: AtomicU64::new(0),
            unmap_calls: AtomicU64::new(0),
        }))
    }

    /// The VFIO registrar of `domain`, or [`pinio_core::Error::WrongDomain`]
    /// naming `device_backend` when it is another backend's domain.
    pub fn of<'d>(domain: &'d Domain, device_backend: &'static str) -> pinio_core::Result<&'d VfioRegistrar> {
        domain.require::<VfioRegistrar>(device_backend)
    }

    fn space(&self) -> MutexGuard<'_, Option<Space>> {
        self.space.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn members(&self) -> MutexGuard<'_, Vec<Arc<VfioPci>>> {
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The domain's DMA limit in bits: every IOVA is below `2^dma_bits`.
    pub fn dma_bits(&self) -> u32 {
        self.dma_bits
    }

    /// The exclusive upper bound of the IOVAs this domain hands out.
    pub fn iova_limit(&self) -> u64 {
        if self.dma_bits >= 64 { u64::MAX } else { 1 << self.dma_bits }
    }

    /// Refuses a device that reaches fewer IOVA bits than the domain hands
    /// out ([`VfioError::DmaMaskTooSmall`]). Drivers call it before binding
    /// the device; [`VfioRegistrar::attach`] checks again.
    pub fn check_dma_mask(&self, bdf: &PciAddress, device_bits: u32) -> Result<(), VfioError> {
        if device_bits < self.dma_bits {
            return Err(VfioError::DmaMaskTooSmall { bdf: bdf.to_string(), device_bits, domain_bits: self.dma_bits });
        }
        Ok(())
    }

    /// Opens `bdf` (bound to vfio-pci already: [`Sysfs::claim`]) in this
    /// domain for a driver whose device reaches `device_bits` of IOVA: its
    /// group joins the container, the IOMMU's limits are read again, and the
    /// device is the driver's until the returned claim is dropped.
    ///
    /// A device this domain opened before and no driver holds now is handed
    /// out again; one a driver holds is [`VfioError::DeviceInUse`].
    pub fn attach(&self, bdf: &PciAddress, sysfs: &Sysfs, device_bits: u32) -> Result<DeviceClaim, VfioError> {
        self.check_dma_mask(bdf, device_bits)?;
        let mut members = self.members();
        if let Some(pci) = members.iter().find(|p| p.bdf() == bdf) {
            if !pci.try_claim() {
                return Err(VfioError::DeviceInUse { bdf: bdf.to_string() });
            }
            return Ok(DeviceClaim::new(pci.clone()));
        }
        let pci = VfioPci::open(bdf, sysfs, self.container.clone())?;
        // The group is in the container now, with the IOMMU set up.
        let info = iommu_info::query(self.container.as_raw_fd())?;
        {
            let mut space = self.space();
            match space.as_mut() {
                Some(s) => s.rejoin(info),
                None => *space = Some(Space::new(info, self.iova_limit())),
            }
        }
        let pci = Arc::new(pci);
        let claimed = pci.try_claim();
        debug_assert!(claimed, "a device just opened is free");
        members.push(pci.clone());
        Ok(DeviceClaim::new(pci))
    }

    /// The IOMMU's limits as reported when the latest device joined; `None`
    /// before the first.
    pub fn iommu_info(&self) -> Option<IommuInfo> {
        self.space().as_ref().map(|s| s.info().clone())
    }

    /// Asks the IOMMU driver now (`VFIO_IOMMU_GET_INFO`): how many mappings
    /// the container has left, for instance. Needs a device in the domain.
    pub fn query_iommu(&self) -> Result<IommuInfo, VfioError> {
        if self.space().is_none() {
            return Err(VfioError::NoDevice);
        }
        iommu_info::query(self.container.as_raw_fd())
    }

    /// The devices opened in the domain, in the order they joined.
    pub fn devices(&self) -> Vec<PciAddress> {
        self.members().iter().map(|p| *p.bdf()).collect()
    }

    /// Counters of the domain's VFIO system calls and IOVA space.
    pub fn vfio_stats(&self) -> VfioStats {
        let devices = self.members().len();
        let space = self.space();
        let s = space.as_ref();
        VfioStats {
            devices,
            map_dma_calls: self.map_calls.load(Ordering::Relaxed),
            unmap_dma_calls: self.unmap_calls.load(Ordering::Relaxed),
            mappings: s.map_or(0, Space::mappings),
            mapping_limit: s.and_then(Space::mapping_limit),
            iova_space: s.map_or(0, Space::total),
            iova_free: s.map_or(0, Space::free_bytes),
        }
    }

    /// The container's file descriptor, for benchmarks that compare with
    /// raw `VFIO_IOMMU_MAP_DMA` calls on the same container. Mappings made
    /// through it are invisible to the domain's IOVA allocator: use IOVAs at
    /// or above [`VfioRegistrar::iova_limit`], or ones the allocator holds
    /// free while nothing else registers, and unmap them before anything
    /// else maps there.
    pub fn container_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the container's file stays open as long as `self`, which
        // outlives the returned borrow.
        unsafe { BorrowedFd::borrow_raw(self.container.as_raw_fd()) }
    }

    /// Maps the driver's own memory (queue rings, descriptor lists) for the
    /// domain's devices; returns its IOVA. It counts against the mapping
    /// budget and the IOVA space but is not a region.
    ///
    /// # Safety
    ///
    /// `vfio_dma_map`'s contract for `buf`'s bytes, until
    /// [`VfioRegistrar::unmap_driver_memory`] of them succeeds: no Rust
    /// reference to them is live now or later; they are read and written
    /// only with volatile accesses through raw pointers (or handed to
    /// system calls), because a device may access them at any time. If
    /// unmapping fails, `buf` must never be freed.
    pub unsafe fn map_driver_memory(&self, buf: &mut DmaBuf) -> pinio_core::Result<u64> {
        // SAFETY: forwarded to our caller: the memory is only ever accessed
        // volatilely (our `# Safety`), which is vfio_dma_map's contract.
        unsafe { self.map(buf) }.map(|(iova, _)| iova)
    }

    /// Unmaps memory [`VfioRegistrar::map_driver_memory`] mapped at `iova`.
    pub fn unmap_driver_memory(&self, iova: u64, buf: &DmaBuf) -> pinio_core::Result<()> {
        self.unmap(iova, buf.len() as u64)
    }

    /// Takes an IOVA and a mapping for `buf` and issues `VFIO_IOMMU_MAP_DMA`
    /// (readable and writable by the devices); returns the IOVA and the
    /// mapping's number. On failure nothing stays taken.
    ///
    /// # Safety
    ///
    /// Exactly `vfio_dma_map`'s contract (vfio-ioctls 0.10) for `buf`'s
    /// bytes, until [`VfioRegistrar::unmap`] of the returned IOVA and
    /// `buf.len()` succeeds or the buffer's virtual range is unmapped: no
    /// Rust reference to the bytes may be live at this call, and afterwards
    /// no Rust reference may alias bytes a device of the domain may access,
    /// since a device accesses them without synchronisation with this
    /// process.
    unsafe fn map(&self, buf: &mut DmaBuf) -> pinio_core::Result<(u64, u64)> {
        let (vaddr, len) = (buf.as_mut_ptr(), buf.len() as u64);
        let (iova, id) = {
            let mut space = self.space();
            let s = space.as_mut().ok_or(VfioError::NoDevice)?;
            s.reserve(vaddr as u64, len)?
        };
        self.map_calls.fetch_add(1, Ordering::Relaxed);
        // vfio_dma_map's contract is this function's `# Safety`,
        // forwarded to its two callers: `Registrar::register` for regions,
        // which meets it by the DMA ownership rule (pinio_core::domain: a
        // device touches only slices a queue owns, a reference exists only
        // to slices the application owns, the two never overlap, and the
        // memory lives until the unmap after the region's last slice), as
        // argued there; and `map_driver_memory`, whose callers access the
        // memory only volatilely. `vaddr..vaddr + len` is exactly `buf`'s
        // memory, and `iova..iova + len` was free in this container.
        // SAFETY: vfio_dma_map's contract holds for `buf`'s memory at a free IOVA, as argued above.
        let r = unsafe { self.container.vfio_dma_map(iova, len as usize, vaddr) };
        if let Err(e) = r {
            let mut space = self.space();
            let s = space.as_mut().expect("the space exists once made");
            s.release(iova, len);
            let source = match e {
                vfio_ioctls::VfioError::IommuDmaMap(sys) => std::io::Error::from_raw_os_error(sys.errno()),
                other => std::io::Error::other(other.to_string()),
            };
            if source.raw_os_error() == Some(libc::ENOSPC) {
                return Err(s.limit_reached().into());
            }
            return Err(VfioError::DmaMap { iova, len, source }.into());
        }
        Ok((iova, id))
    }

    /// `VFIO_IOMMU_UNMAP_DMA` of a mapping [`VfioRegistrar::map`] made; the
    /// IOVA returns to the allocator. On failure it stays taken (it may
    /// still be mapped).
    fn unmap(&self, iova: u64, len: u64) -> pinio_core::Result<()> {
        self.unmap_calls.fetch_add(1, Ordering::Relaxed);
        match self.container.vfio_dma_unmap(iova, len as usize) {
            Ok(()) => {
                if let Some(s) = self.space().as_mut() {
                    s.release(iova, len);
                }
                Ok(())
            }
            Err(source) => Err(VfioError::DmaUnmap { iova, len, source }.into()),
        }
    }
}

// SAFETY: `register` returns an Own key only after VFIO_IOMMU_MAP_DMA of
// exactly `buf` at `key.device_addr` succeeded; `unregister` unmaps exactly
// that (iova, len), after which no device of the container reaches it; the
// devices of the domain are programmed by pinio's drivers only with slices a
// queue owns (the DMA ownership rule, pinio_core::domain, rule 1).
unsafe impl Registrar for VfioRegistrar {
    fn backend(&self) -> &'static str {
        "vfio"
    }

    fn register_align(&self) -> u64 {
        self.space().as_ref().map_or(pinio_core::page_size() as u64, Space::page)
    }

    fn max_registered_bytes(&self) -> Option<u64> {
        self.space().as_ref().map(Space::total)
    }

    fn register(&self, buf: &mut DmaBuf) -> pinio_core::Result<RegionKey> {
        // vfio_dma_map's contract (vfio-ioctls 0.10) asks that, until
        // the unmap, no Rust reference to the bytes be live at this call or
        // alias bytes a device may access, because it assumes a device that
        // may read or write them at any time. Here:
        // - at this call no reference to the bytes exists: `buf` is owned by
        //   the registration in progress (pinio-core calls us before any
        //   Region or Slice of it exists) and only its raw pointer is taken;
        // - afterwards a device of this domain touches the bytes only while
        //   a queue owns the slice covering them, and a `&mut [u8]` to them
        //   exists only while the application owns that slice; live slices
        //   never overlap, so a reference and a DMA never meet on a byte
        //   (the DMA ownership rule, pinio_core::domain, rules 1 to 3): the
        //   data race the contract forbids cannot happen, which is the
        //   guarantee pinio gives in place of "no reference ever";
        // - the bytes stay allocated until `unregister` below succeeds,
        //   which pinio-core calls only after the region's last handle and
        //   slice are gone, with no operation in flight on any device of the
        //   domain (rule 4). Should the unmap fail, the IOVA stays taken and
        //   the kernel keeps the pages pinned, so freeing the buffer (which
        //   ends the contract by munmap) hands no page the device reaches to
        //   anyone else.
        // SAFETY: `map`'s contract holds for a region's buffer, as argued above.
        let (iova, id) = unsafe { self.map(buf) }?;
        Ok(RegionKey { registration: Registration::Own(id), device_addr: iova })
    }

    fn unregister(&self, key: RegionKey, buf: &DmaBuf) -> pinio_core::Result<()> {
        self.unmap(key.device_addr, buf.len() as u64)
    }

    fn describe(&self) -> String {
        let devices: Vec<String> = self.devices().iter().map(PciAddress::to_string).collect();
        let st = self.vfio_stats();
        format!(
            "VFIO container, {} device(s) [{}], IOVAs {:#x}..{:#x}, {} mapping(s)",
            devices.len(),
            devices.join(", "),
            IOVA_BASE,
            self.iova_limit(),
            st.mappings
        )
    }
}
