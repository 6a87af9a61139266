//! Registration: mapping a [`DmaBuf`] into the IOMMU at an allocated IOVA,
//! and the [`Unregister`] hook that takes it out again.

use crate::VfioError;
use crate::iova::{IovaAllocator, iova_align};
use crate::vfio_pci::VfioPci;
use pinio_core::{DeviceId, DmaBuf, Error, RegionKey, Stats, Unregister, is_aligned};
use std::sync::{Arc, Mutex, MutexGuard};

/// The lowest IOVA handed out: keeps IOVA 0 (a classic "null DMA") unmapped.
pub(crate) const IOVA_BASE: u64 = 0x10_0000;

struct MapState {
    iova: IovaAllocator,
    mappings: u64,
    next_id: u64,
}

/// Maps and unmaps regions of one container.
///
/// One `VFIO_IOMMU_MAP_DMA` per region, however large: type1 pins the pages
/// and counts one mapping, so a big region costs one entry of the
/// container's mapping budget, not one per page.
pub struct DmaMapper {
    pci: Arc<VfioPci>,
    stats: Arc<Stats>,
    device: DeviceId,
    mapping_limit: Option<u64>,
    /// The smallest IOMMU page (fixed for the container's life).
    page: u64,
    state: Mutex<MapState>,
}

impl DmaMapper {
    /// A mapper for devices reaching at most `dma_bits` address bits.
    pub fn new(pci: Arc<VfioPci>, stats: Arc<Stats>, device: DeviceId, dma_bits: u32) -> DmaMapper {
        let info = pci.iommu().clone();
        let limit = if dma_bits >= 64 { u64::MAX } else { 1u64 << dma_bits };
        let page = info.min_page();
        let iova = IovaAllocator::new(&info.iova_ranges, IOVA_BASE, limit, page);
        let mapping_limit = info.dma_avail.map(u64::from);
        DmaMapper { pci, stats, device, mapping_limit, page, state: Mutex::new(MapState { iova, mappings: 0, next_id: 1 }) }
    }

    fn state(&self) -> MutexGuard<'_, MapState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes of IOVA space the device can reach.
    pub fn iova_space(&self) -> u64 {
        self.state().iova.total()
    }

    /// The smallest IOMMU page: buffers must be aligned to it.
    pub fn page(&self) -> u64 {
        self.page
    }

    /// Maps `buf`: checks alignment, allocates an IOVA, counts the mapping
    /// against the container's budget, and issues `VFIO_IOMMU_MAP_DMA`.
    pub fn map(&self, buf: &mut DmaBuf) -> Result<RegionKey, Error> {
        let page = self.page;
        let (addr, len) = (buf.as_ptr() as u64, buf.len() as u64);
        if !is_aligned(addr, page) {
            return Err(Error::Misaligned { what: "buffer address", value: addr, required: page });
        }
        if !is_aligned(len, page) {
            // Mapping the rest of the last page would hand the device memory
            // that is not the buffer's.
            return Err(Error::Misaligned { what: "buffer length", value: len, required: page });
        }
        let align = iova_align(addr, len, self.pci.iommu().page_sizes);
        let (iova, id) = {
            let mut st = self.state();
            if let Some(limit) = self.mapping_limit
                && st.mappings >= limit
            {
                return Err(VfioError::MappingLimit { limit }.into());
            }
            let Some(iova) = st.iova.alloc(len, align) else {
                let e = VfioError::IovaExhausted { len, align, limit: st.iova.limit(), largest_free: st.iova.largest_free() };
                return Err(e.into());
            };
            st.mappings += 1;
            st.next_id += 1;
            (iova, st.next_id - 1)
        };
        // Its bytes are only reached through slices, which the device touches
        // only while a queue owns them (no Rust reference exists to bytes in flight).
        // SAFETY: `buf` is owned by the region about to be made, which keeps
        // it allocated until `unregister` below unmaps it.
        let r = unsafe { self.pci.map_dma(iova, len, buf.as_mut_ptr()) };
        if let Err(e) = r {
            let mut st = self.state();
            st.iova.free(iova, len);
            st.mappings -= 1;
            let source = match e {
                vfio_ioctls::VfioError::IommuDmaMap(sys) => std::io::Error::from_raw_os_error(sys.errno()),
                other => std::io::Error::other(other.to_string()),
            };
            if source.raw_os_error() == Some(libc::ENOSPC) {
                return Err(VfioError::MappingLimit { limit: st.mappings.max(self.mapping_limit.unwrap_or(0)) }.into());
            }
            return Err(VfioError::DmaMap { iova, len, source }.into());
        }
        self.stats.pinned(len);
        Ok(RegionKey { id, device_addr: iova })
    }

    /// The device whose regions this mapper maps.
    pub fn device(&self) -> DeviceId {
        self.device
    }
}

impl Unregister for DmaMapper {
    fn unregister(&self, key: RegionKey, buf: &DmaBuf) -> pinio_core::Result<()> {
        let len = buf.len() as u64;
        match self.pci.unmap_dma(key.device_addr, len) {
            Ok(()) => {
                let mut st = self.state();
                st.iova.free(key.device_addr, len);
                st.mappings -= 1;
                drop(st);
                self.stats.unpinned(len);
                Ok(())
            }
            Err(source) => {
                // The IOVA stays allocated: it is still mapped.
                self.stats.unregister_failed();
                Err(VfioError::DmaUnmap { iova: key.device_addr, len, source }.into())
            }
        }
    }
}
