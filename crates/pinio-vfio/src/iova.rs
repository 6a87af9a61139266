//! The IOVA allocator: where in the device's view of memory each region goes.
//!
//! The usable space is what the IOMMU reports (`VFIO_IOMMU_GET_INFO` IOVA
//! ranges, which exclude e.g. the x86 MSI window at 0xfee00000), cut to the
//! domain's DMA limit (default 28 bits, edu's mask) and to a low base that keeps IOVA 0 out
//! of use, in units of the IOMMU's smallest page. Allocation is first fit
//! with an alignment; freeing coalesces neighbours. IOVAs are deliberately
//! not the virtual addresses (DPDK's "IOVA as VA"): QEMU's VT-d emulation
//! handles 39-bit IOVAs at most, and edu only 28 bits.

use std::collections::BTreeMap;

/// Free IOVA space as disjoint `[start, end)` ranges keyed by start.
#[derive(Debug, Clone)]
pub struct IovaAllocator {
    free: BTreeMap<u64, u64>,
    page: u64,
    limit: u64,
    total: u64,
}

impl IovaAllocator {
    /// Space inside the inclusive `ranges`, at or above `base`, below
    /// `limit` (exclusive), trimmed to multiples of `page` (a power of two).
    pub fn new(ranges: &[(u64, u64)], base: u64, limit: u64, page: u64) -> IovaAllocator {
        let page = page.max(1);
        let mut free = BTreeMap::new();
        let mut total = 0;
        for &(first, last) in ranges {
            let start = first.max(base);
            let end = last.saturating_add(1).min(limit);
            let (Some(start), end) = (pinio_core::align_up(start, page), pinio_core::align_down(end, page)) else {
                continue;
            };
            if start < end {
                free.insert(start, end);
                total += end - start;
            }
        }
        let mut a = IovaAllocator { free, page, limit, total };
        a.coalesce_all();
        a
    }

    fn coalesce_all(&mut self) {
        let ranges: Vec<(u64, u64)> = self.free.iter().map(|(&s, &e)| (s, e)).collect();
        self.free.clear();
        for (s, e) in ranges {
            self.insert(s, e);
        }
    }

    /// The mapping granularity.
    pub fn page(&self) -> u64 {
        self.page
    }

    /// The exclusive upper bound of every IOVA handed out.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes of IOVA space in total (free or not).
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes free now.
    pub fn free_bytes(&self) -> u64 {
        self.free.iter().map(|(s, e)| e - s).sum()
    }

    /// The largest free range.
    pub fn largest_free(&self) -> u64 {
        self.free.iter().map(|(s, e)| e - s).max().unwrap_or(0)
    }

    /// Takes `len` bytes (rounded up to the page) at an address aligned to
    /// `align` (a power of two, at least the page); `None` when no free
    /// range fits.
    pub fn alloc(&mut self, len: u64, align: u64) -> Option<u64> {
        if len == 0 {
            return None;
        }
        let len = pinio_core::align_up(len, self.page)?;
        let align = align.max(self.page);
        let (start, end, at) = self.free.iter().find_map(|(&s, &e)| {
            let at = pinio_core::align_up(s, align)?;
            (at.checked_add(len)? <= e).then_some((s, e, at))
        })?;
        self.free.remove(&start);
        if start < at {
            self.free.insert(start, at);
        }
        if at + len < end {
            self.free.insert(at + len, end);
        }
        Some(at)
    }

    /// Returns `[iova, iova + len)` (len rounded up to the page), merging it
    /// with free neighbours. The range must have come from [`Self::alloc`].
    pub fn free(&mut self, iova: u64, len: u64) {
        let Some(len) = pinio_core::align_up(len, self.page) else { return };
        if len != 0 {
            self.insert(iova, iova + len);
        }
    }

    /// Keeps only the free space inside the inclusive `ranges` (the IOMMU
    /// reported narrower ranges after another device joined); allocations
    /// are untouched. The total shrinks by what was dropped.
    pub fn restrict(&mut self, ranges: &[(u64, u64)]) {
        let before = self.free_bytes();
        let old = std::mem::take(&mut self.free);
        for (s, e) in old {
            for &(first, last) in ranges {
                let start = s.max(first);
                let end = e.min(last.saturating_add(1));
                let (Some(start), end) =
                    (pinio_core::align_up(start, self.page), pinio_core::align_down(end, self.page))
                else {
                    continue;
                };
                if start < end {
                    self.insert(start, end);
                }
            }
        }
        self.total -= before - self.free_bytes();
    }

    fn insert(&mut self, mut start: u64, mut end: u64) {
        if let Some((&ps, &pe)) = self.free.range(..=start).next_back()
            && pe >= start
        {
            debug_assert!(pe == start, "IOVA [{start:#x}, {end:#x}) freed twice");
            self.free.remove(&ps);
            start = ps;
            end = end.max(pe);
        }
        if let Some((&ns, &ne)) = self.free.range(start..).next()
            && ns <= end
        {
            debug_assert!(ns == end, "IOVA [{start:#x}, {end:#x}) freed twice");
            self.free.remove(&ns);
            end = end.max(ne);
        }
        self.free.insert(start, end);
    }
}

/// The IOVA alignment that lets the IOMMU use its largest pages for a
/// buffer at virtual address `vaddr` of `len` bytes: the largest supported
/// page size (bitmap `page_sizes`, capped at 1 GiB) that divides `vaddr`
/// and is not larger than `len`. IOVA and physical pages line up only when
/// IOVA and virtual address agree modulo the page size.
pub fn iova_align(vaddr: u64, len: u64, page_sizes: u64) -> u64 {
    let sizes = if page_sizes == 0 { 4096 } else { page_sizes };
    let mut best = 1u64 << sizes.trailing_zeros();
    for bit in 0..=30 {
        let p = 1u64 << bit;
        if sizes & p != 0 && p <= len && vaddr.is_multiple_of(p) {
            best = best.max(p);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn respects_ranges_base_limit_and_holes() {
        // Two IOMMU ranges with a hole, cut by a 28-bit DMA mask.
        let a = IovaAllocator::new(&[(0, 0x3ff_ffff), (0x500_0000, u64::MAX)], 0x10_0000, 1 << 28, 4096);
        assert_eq!(a.total(), (0x400_0000 - 0x10_0000) + ((1 << 28) - 0x500_0000));
        let mut a = a;
        let x = a.alloc(0x3f0_0000, 4096).unwrap();
        assert_eq!(x, 0x10_0000, "first fit starts at the base");
        // The rest of the first range is gone: the next one lands past the hole.
        let y = a.alloc(4096, 4096).unwrap();
        assert_eq!(y, 0x500_0000);
        assert!(a.alloc(1 << 28, 4096).is_none(), "larger than the mask");
    }

    #[test]
    fn alignment_and_page_rounding() {
        let mut a = IovaAllocator::new(&[(0, u64::MAX)], 0x1000, 1 << 28, 4096);
        let small = a.alloc(1, 4096).unwrap();
        assert_eq!(small, 0x1000);
        let huge = a.alloc(4 * MIB, 2 * MIB).unwrap();
        assert_eq!(huge % (2 * MIB), 0);
        assert_eq!(a.free_bytes(), a.total() - 4096 - 4 * MIB);
        assert!(a.alloc(0, 4096).is_none());
    }

    #[test]
    fn freeing_coalesces_back_to_one_range() {
        let mut a = IovaAllocator::new(&[(0, (1 << 28) - 1)], 0x1000, 1 << 28, 4096);
        let total = a.total();
        let xs: Vec<u64> = (0..10).map(|i| a.alloc(4096 * (i + 1), 4096).unwrap()).collect();
        for (i, &x) in xs.iter().enumerate().rev().step_by(2) {
            a.free(x, 4096 * (i as u64 + 1));
        }
        for (i, &x) in xs.iter().enumerate().step_by(2) {
            a.free(x, 4096 * (i as u64 + 1));
        }
        assert_eq!((a.free_bytes(), a.largest_free(), a.free.len()), (total, total, 1));
    }

    #[test]
    fn best_alignment_for_huge_pages() {
        let bitmap = (1 << 12) | (1 << 21) | (1 << 30);
        assert_eq!(iova_align(0x7f00_0020_0000, 4 * MIB, bitmap), 2 * MIB);
        assert_eq!(iova_align(0x7f00_0020_1000, 4 * MIB, bitmap), 4096);
        assert_eq!(iova_align(0x7f00_0020_0000, MIB, bitmap), 4096, "smaller than a huge page");
        assert_eq!(iova_align(0x4000_0000, 1 << 31, bitmap), 1 << 30);
        assert_eq!(iova_align(0x1000, 4096, 0), 4096);
    }

    #[test]
    fn restricting_keeps_allocations_and_drops_free_space_outside() {
        let mut a = IovaAllocator::new(&[(0, u64::MAX)], 0x1000, 0x100_0000, 4096);
        let x = a.alloc(0x1000, 4096).unwrap();
        a.restrict(&[(0, 0x7f_ffff), (0x90_0000, 0x9f_ffff)]);
        assert_eq!(a.total(), 0x80_0000 - 0x1000 + 0x10_0000);
        assert_eq!(a.free_bytes(), a.total() - 0x1000);
        let y = a.alloc(0x10_0000, 4096).unwrap();
        assert!(y + 0x10_0000 <= 0x80_0000 || (y >= 0x90_0000 && y + 0x10_0000 <= 0xa0_0000), "{y:#x}");
        a.free(x, 0x1000);
        a.free(y, 0x10_0000);
        assert_eq!(a.free_bytes(), a.total());
    }

    proptest! {
        /// Live allocations never overlap, stay in bounds, and everything
        /// comes back after freeing.
        #[test]
        fn never_overlaps(ops in proptest::collection::vec((1u64..64, 0u32..3, any::<bool>()), 1..60)) {
            let mut a = IovaAllocator::new(&[(0, 0xff_ffff), (0x180_0000, u64::MAX)], 0x1000, 0x400_0000, 4096);
            let total = a.total();
            let mut live: Vec<(u64, u64)> = Vec::new();
            for (pages, align_shift, free_one) in ops {
                if free_one && !live.is_empty() {
                    let (s, l) = live.swap_remove(0);
                    a.free(s, l);
                    continue;
                }
                let len = pages * 4096;
                let align = 4096u64 << (align_shift * 5);
                if let Some(s) = a.alloc(len, align) {
                    prop_assert_eq!(s % align, 0);
                    prop_assert!(s >= 0x1000 && s + len <= 0x400_0000);
                    prop_assert!(s + len <= 0x100_0000 || s >= 0x180_0000, "in the hole: {:#x}", s);
                    for &(o, ol) in &live {
                        prop_assert!(s + len <= o || o + ol <= s, "overlap");
                    }
                    live.push((s, len));
                }
            }
            for (s, l) in live.drain(..) {
                a.free(s, l);
            }
            prop_assert_eq!(a.free_bytes(), total);
        }
    }
}
