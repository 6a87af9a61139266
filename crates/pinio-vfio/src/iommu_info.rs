//! What the IOMMU allows: page sizes, usable IOVA ranges and how many DMA
//! mappings are left, from `VFIO_IOMMU_GET_INFO` and its capability chain
//! (`struct vfio_iommu_type1_info` in include/uapi/linux/vfio.h).

use crate::VfioError;
use std::os::fd::RawFd;
use vfio_bindings::bindings::vfio::{
    VFIO_BASE, VFIO_IOMMU_INFO_CAPS, VFIO_IOMMU_INFO_PGSIZES, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
    VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, VFIO_TYPE, vfio_iommu_type1_info,
};

/// `VFIO_IOMMU_GET_INFO = _IO(VFIO_TYPE, VFIO_BASE + 12)`. Raw because
/// vfio-ioctls 0.10 has no wrapper for it.
const VFIO_IOMMU_GET_INFO: libc::c_ulong = ((VFIO_TYPE as libc::c_ulong) << 8) | (VFIO_BASE as libc::c_ulong + 12);

/// The IOMMU's limits for one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IommuInfo {
    /// Bitmap of supported IOMMU page sizes (bit n set: 2^n bytes).
    pub page_sizes: u64,
    /// Usable IOVA ranges, `(first, last)` inclusive, ascending.
    pub iova_ranges: Vec<(u64, u64)>,
    /// DMA mappings still available in this container, if the kernel says.
    pub dma_avail: Option<u32>,
}

impl IommuInfo {
    /// The smallest IOMMU page size (the mapping granularity).
    pub fn min_page(&self) -> u64 {
        if self.page_sizes == 0 { 4096 } else { 1 << self.page_sizes.trailing_zeros() }
    }
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(off..off + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(off..off + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

/// Reads a `vfio_iommu_type1_info` followed by its capability chain.
pub(crate) fn parse(b: &[u8]) -> Result<IommuInfo, VfioError> {
    let bad = |reason: String| VfioError::IommuInfo { reason };
    let flags = u32_at(b, 4).ok_or_else(|| bad(format!("{} bytes, shorter than the 24-byte header", b.len())))?;
    let page_sizes = if flags & VFIO_IOMMU_INFO_PGSIZES != 0 { u64_at(b, 8).unwrap_or(0) } else { 0 };
    let mut info = IommuInfo { page_sizes, iova_ranges: Vec::new(), dma_avail: None };
    let mut off = if flags & VFIO_IOMMU_INFO_CAPS != 0 { u32_at(b, 16).unwrap_or(0) as usize } else { 0 };
    let mut seen = 0;
    while off != 0 {
        seen += 1;
        if seen > 64 {
            return Err(bad("capability chain longer than 64 entries (a loop?)".into()));
        }
        let (id, next) = match (u16_at(b, off), u32_at(b, off + 4)) {
            (Some(id), Some(next)) => (id, next as usize),
            _ => return Err(bad(format!("capability at offset {off} is outside the {}-byte buffer", b.len()))),
        };
        match id as u32 {
            VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE => {
                let n = u32_at(b, off + 8).ok_or_else(|| bad("truncated IOVA range capability".into()))? as usize;
                for i in 0..n {
                    let at = off + 16 + 16 * i;
                    match (u64_at(b, at), u64_at(b, at + 8)) {
                        (Some(s), Some(e)) if s <= e => info.iova_ranges.push((s, e)),
                        (Some(s), Some(e)) => {
                            return Err(bad(format!("IOVA range {i} runs backwards ({s:#x} > {e:#x})")));
                        }
                        _ => return Err(bad(format!("IOVA range {i} of {n} is outside the buffer"))),
                    }
                }
            }
            VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL => {
                info.dma_avail =
                    Some(u32_at(b, off + 8).ok_or_else(|| bad("truncated DMA-available capability".into()))?);
            }
            _ => {} // Migration and future capabilities: not needed here.
        }
        if next != 0 && next <= off {
            return Err(bad(format!("capability at {off} points back to {next}")));
        }
        off = next;
    }
    if info.iova_ranges.is_empty() {
        // Kernels before 5.4 report no ranges: every IOVA is usable.
        info.iova_ranges.push((0, u64::MAX));
    }
    info.iova_ranges.sort_unstable();
    Ok(info)
}

/// Asks the container's IOMMU driver for its limits. The container must have
/// a group attached and an IOMMU type set.
pub(crate) fn query(container: RawFd) -> Result<IommuInfo, VfioError> {
    let header = std::mem::size_of::<vfio_iommu_type1_info>();
    let mut argsz = header;
    for _ in 0..4 {
        // u64 words keep the buffer aligned for the header struct.
        let mut buf = vec![0u64; argsz.div_ceil(8)];
        let bytes = buf.len() * 8;
        let hdr = vfio_iommu_type1_info { argsz: bytes as u32, ..Default::default() };
        // SAFETY: the buffer is at least `header` bytes long and 8-aligned,
        // enough for the plain-old-data header struct.
        unsafe { buf.as_mut_ptr().cast::<vfio_iommu_type1_info>().write(hdr) };
        // SAFETY: VFIO_IOMMU_GET_INFO writes at most `argsz` bytes into the
        // buffer we own, which is that long; the return value is checked.
        let r = unsafe { libc::ioctl(container, VFIO_IOMMU_GET_INFO as _, buf.as_mut_ptr()) };
        if r < 0 {
            return Err(VfioError::os("VFIO_IOMMU_GET_INFO on the container", std::io::Error::last_os_error()));
        }
        // SAFETY: `buf` holds `bytes` initialised bytes; u8 has no alignment needs.
        let b = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), bytes) };
        let needed = u32_at(b, 0).unwrap_or(0) as usize;
        if needed <= bytes {
            return parse(b);
        }
        argsz = needed;
    }
    Err(VfioError::IommuInfo { reason: "the required size kept growing".into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds what the kernel writes for intel-iommu in QEMU (see
    /// ../../shared/notes/vfio-guest.md): 4K/2M/1G, two ranges, 65535 left.
    fn intel_like(avail: u32) -> Vec<u8> {
        let mut b = vec![0u8; 24];
        let cap1 = 24usize;
        let cap2 = cap1 + 16 + 2 * 16;
        b[0..4].copy_from_slice(&((cap2 + 12) as u32).to_ne_bytes());
        b[4..8].copy_from_slice(&(VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS).to_ne_bytes());
        b[8..16].copy_from_slice(&(0x4000_1000u64 | (1 << 21)).to_ne_bytes());
        b[16..20].copy_from_slice(&(cap1 as u32).to_ne_bytes());
        // IOVA range capability: header, nr_iovas, reserved, ranges.
        b.extend_from_slice(&(VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE as u16).to_ne_bytes());
        b.extend_from_slice(&1u16.to_ne_bytes());
        b.extend_from_slice(&(cap2 as u32).to_ne_bytes());
        b.extend_from_slice(&2u32.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        for (s, e) in [(0xfef0_0000u64, (1u64 << 48) - 1), (0, 0xfedf_ffff)] {
            b.extend_from_slice(&s.to_ne_bytes());
            b.extend_from_slice(&e.to_ne_bytes());
        }
        b.extend_from_slice(&(VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL as u16).to_ne_bytes());
        b.extend_from_slice(&1u16.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(&avail.to_ne_bytes());
        b
    }

    #[test]
    fn ioctl_number_matches_the_uapi_header() {
        // _IO(';', 100 + 12) from include/uapi/linux/vfio.h.
        assert_eq!(VFIO_IOMMU_GET_INFO, 0x3b70);
        assert_eq!(std::mem::size_of::<vfio_iommu_type1_info>(), 24);
    }

    #[test]
    fn reads_page_sizes_ranges_and_mappings_left() {
        let info = parse(&intel_like(65535)).unwrap();
        assert_eq!(info.min_page(), 4096);
        assert_eq!(info.page_sizes & (1 << 21), 1 << 21);
        assert_eq!(info.iova_ranges, vec![(0, 0xfedf_ffff), (0xfef0_0000, (1 << 48) - 1)]);
        assert_eq!(info.dma_avail, Some(65535));
    }

    #[test]
    fn no_capabilities_means_everything_is_usable() {
        let mut b = vec![0u8; 24];
        b[4..8].copy_from_slice(&VFIO_IOMMU_INFO_PGSIZES.to_ne_bytes());
        b[8..16].copy_from_slice(&0x1000u64.to_ne_bytes());
        let info = parse(&b).unwrap();
        assert_eq!((info.iova_ranges.as_slice(), info.dma_avail), (&[(0, u64::MAX)][..], None));
    }

    #[test]
    fn malformed_chains_are_errors_not_panics() {
        let good = intel_like(3);
        for cut in [0, 3, 30, 50, good.len() - 2] {
            if let Err(e) = parse(&good[..cut]) {
                assert!(matches!(e, VfioError::IommuInfo { .. }), "{e}");
            }
        }
        assert!(parse(&good[..30]).is_err());
        let mut looped = good.clone();
        let cap2 = 24 + 16 + 32;
        looped[cap2 + 4..cap2 + 8].copy_from_slice(&24u32.to_ne_bytes());
        assert!(parse(&looped).unwrap_err().to_string().contains("points back"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_garbage(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = parse(&bytes);
        }
    }
}
