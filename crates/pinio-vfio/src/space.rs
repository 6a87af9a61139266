//! The bookkeeping of one VFIO domain's IOVA address space: where each
//! mapping goes and how many mappings the IOMMU allows. No system calls:
//! [`crate::VfioRegistrar`] issues them around these steps.

use crate::VfioError;
use crate::iommu_info::IommuInfo;
use crate::iova::{IovaAllocator, iova_align};

/// The lowest IOVA handed out: keeps IOVA 0 (a classic "null DMA") unmapped.
pub(crate) const IOVA_BASE: u64 = 0x10_0000;

/// One domain's IOVA space, made when the first device's group joins the
/// container (only then does the IOMMU exist to report its limits).
#[derive(Debug)]
pub(crate) struct Space {
    iova: IovaAllocator,
    /// The IOMMU as `VFIO_IOMMU_GET_INFO` reported it at the latest join.
    info: IommuInfo,
    /// The most mappings the container allows (its `dma_avail` when the
    /// first group joined and nothing was mapped).
    mapping_limit: Option<u64>,
    mappings: u64,
    next_id: u64,
}

impl Space {
    /// The space of a container whose IOMMU reported `info` before anything
    /// was mapped, cut to IOVAs below `limit`.
    pub(crate) fn new(info: IommuInfo, limit: u64) -> Space {
        let iova = IovaAllocator::new(&info.iova_ranges, IOVA_BASE, limit, info.min_page());
        let mapping_limit = info.dma_avail.map(u64::from);
        Space { iova, info, mapping_limit, mappings: 0, next_id: 1 }
    }

    /// Another group joined: the IOMMU may now allow fewer IOVA ranges (the
    /// kernel refused the join if a live mapping conflicts with them) or
    /// larger minimum pages.
    pub(crate) fn rejoin(&mut self, info: IommuInfo) {
        self.iova.restrict(&info.iova_ranges);
        self.info = info;
    }

    /// The IOMMU's limits as last reported.
    pub(crate) fn info(&self) -> &IommuInfo {
        &self.info
    }

    /// The smallest IOMMU page: buffers must be aligned to it.
    pub(crate) fn page(&self) -> u64 {
        self.info.min_page().max(self.iova.page())
    }

    /// Bytes of IOVA space in total.
    pub(crate) fn total(&self) -> u64 {
        self.iova.total()
    }

    /// Bytes of IOVA space free now.
    pub(crate) fn free_bytes(&self) -> u64 {
        self.iova.free_bytes()
    }

    /// Live mappings (regions and driver memory).
    pub(crate) fn mappings(&self) -> u64 {
        self.mappings
    }

    /// The mapping budget, if the kernel reports one.
    pub(crate) fn mapping_limit(&self) -> Option<u64> {
        self.mapping_limit
    }

    /// Takes an IOVA and one mapping of the budget for `len` bytes at
    /// virtual address `vaddr` (both page-aligned: checked again here);
    /// returns the IOVA and a mapping number.
    pub(crate) fn reserve(&mut self, vaddr: u64, len: u64) -> Result<(u64, u64), pinio_core::Error> {
        let page = self.page();
        if !pinio_core::is_aligned(vaddr, page) {
            return Err(pinio_core::Error::Misaligned { what: "buffer address", value: vaddr, required: page });
        }
        if len == 0 || !pinio_core::is_aligned(len, page) {
            return Err(pinio_core::Error::Misaligned { what: "buffer length", value: len, required: page });
        }
        if let Some(limit) = self.mapping_limit
            && self.mappings >= limit
        {
            return Err(VfioError::MappingLimit { limit }.into());
        }
        let align = iova_align(vaddr, len, self.info.page_sizes).max(page);
        let Some(iova) = self.iova.alloc(len, align) else {
            let e = VfioError::IovaExhausted {
                len,
                align,
                limit: self.iova.limit(),
                largest_free: self.iova.largest_free(),
            };
            return Err(e.into());
        };
        self.mappings += 1;
        self.next_id += 1;
        Ok((iova, self.next_id - 1))
    }

    /// Gives back what [`Space::reserve`] took, after the mapping was
    /// removed or never made.
    pub(crate) fn release(&mut self, iova: u64, len: u64) {
        self.iova.free(iova, len);
        self.mappings -= 1;
    }

    /// `VFIO_IOMMU_MAP_DMA` failed with ENOSPC: the kernel's budget is
    /// smaller than counted (raw mappings made beside pinio). The error to report.
    pub(crate) fn limit_reached(&self) -> VfioError {
        VfioError::MappingLimit { limit: self.mappings.max(self.mapping_limit.unwrap_or(0)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(avail: Option<u32>) -> IommuInfo {
        IommuInfo {
            page_sizes: 0x4020_1000,
            iova_ranges: vec![(0, 0xfedf_ffff), (0xfef0_0000, (1 << 48) - 1)],
            dma_avail: avail,
        }
    }

    #[test]
    fn reserves_below_the_limit_and_counts_the_budget() {
        let mut s = Space::new(info(Some(2)), 1 << 28);
        assert_eq!(s.total(), (1 << 28) - IOVA_BASE);
        let (a, ida) = s.reserve(0x7000_0000_0000, 4096).unwrap();
        let (b, idb) = s.reserve(0x7000_0020_0000, 4 << 20).unwrap();
        assert_eq!((a, ida, idb), (IOVA_BASE, 1, 2));
        assert_eq!(b % (2 << 20), 0, "huge-page aligned like its virtual address");
        let e = s.reserve(0x7000_1000_0000, 4096).unwrap_err();
        assert!(matches!(VfioError::find(&e), Some(VfioError::MappingLimit { limit: 2 })), "{e}");
        s.release(a, 4096);
        assert_eq!(s.mappings(), 1);
        let (c, _) = s.reserve(0x7000_1000_0000, 4096).unwrap();
        assert_eq!(c, a, "first fit reuses the freed IOVA");
    }

    #[test]
    fn refuses_misaligned_and_too_large_buffers() {
        let mut s = Space::new(info(None), 1 << 28);
        let e = s.reserve(0x1010, 4096).unwrap_err();
        assert!(matches!(e, pinio_core::Error::Misaligned { what: "buffer address", required: 4096, .. }), "{e}");
        let e = s.reserve(0x1000, 6000).unwrap_err();
        assert!(matches!(e, pinio_core::Error::Misaligned { what: "buffer length", .. }), "{e}");
        let e = s.reserve(0x1000, 1 << 29).unwrap_err();
        assert!(matches!(VfioError::find(&e), Some(VfioError::IovaExhausted { limit: 0x1000_0000, .. })), "{e}");
        assert_eq!((s.mappings(), s.free_bytes()), (0, s.total()), "a refusal takes nothing");
    }

    #[test]
    fn a_narrower_join_shrinks_only_the_free_space() {
        let mut s = Space::new(info(None), 1 << 28);
        let (a, _) = s.reserve(0x1000_0000, 4096).unwrap();
        let mut narrow = info(None);
        narrow.iova_ranges = vec![(0, 0x7ff_ffff)];
        s.rejoin(narrow);
        assert_eq!(s.total(), 0x800_0000 - IOVA_BASE);
        assert_eq!(s.free_bytes(), 0x800_0000 - IOVA_BASE - 4096);
        let e = s.reserve(0x2000_0000, 0x800_0000).unwrap_err();
        assert!(matches!(VfioError::find(&e), Some(VfioError::IovaExhausted { .. })));
        s.release(a, 4096);
        assert_eq!(s.free_bytes(), s.total());
    }
}
