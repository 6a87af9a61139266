//! The Identify Controller and Identify Namespace data structures (NVMe
//! Base Specification 1.4, figures 247 and 249): the fields this driver
//! uses.

use crate::error::NvmeError;

/// What Identify Controller says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerInfo {
    /// PCI vendor id.
    pub vid: u16,
    /// Serial number, trimmed.
    pub serial: String,
    /// Model number, trimmed.
    pub model: String,
    /// Firmware revision, trimmed.
    pub firmware: String,
    /// Maximum Data Transfer Size as a power of two in units of the minimum
    /// memory page size; 0 means no limit.
    pub mdts: u8,
    /// Number of namespaces.
    pub namespaces: u32,
    /// VWC bit 0 (byte 525): the controller has a volatile write cache, so
    /// completed writes are durable only after a Flush.
    pub volatile_write_cache: bool,
}

impl ControllerInfo {
    /// Parses the 4096-byte structure.
    pub fn parse(b: &[u8]) -> Result<ControllerInfo, NvmeError> {
        if b.len() < 4096 {
            return Err(NvmeError::Identify {
                what: "controller",
                reason: format!("{} bytes, expected 4096", b.len()),
            });
        }
        Ok(ControllerInfo {
            vid: u16::from_le_bytes([b[0], b[1]]),
            serial: text(&b[4..24]),
            model: text(&b[24..64]),
            firmware: text(&b[64..72]),
            mdts: b[77],
            namespaces: u32::from_le_bytes(b[516..520].try_into().expect("4 bytes")),
            volatile_write_cache: b[525] & 1 != 0,
        })
    }

    /// The largest transfer in bytes, given the minimum memory page size;
    /// `None` when the controller sets no limit.
    ///
    /// ```
    /// let mut raw = vec![0u8; 4096];
    /// raw[77] = 7;
    /// let c = pinio_nvme::ControllerInfo::parse(&raw)?;
    /// assert_eq!(c.max_transfer(4096), Some(512 * 1024));
    /// # Ok::<(), pinio_nvme::NvmeError>(())
    /// ```
    pub fn max_transfer(&self, min_page: u64) -> Option<u64> {
        let bits = min_page.trailing_zeros() + self.mdts as u32;
        (self.mdts != 0).then(|| if bits >= 64 { u64::MAX } else { 1 << bits })
    }
}

/// What Identify Namespace says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamespaceInfo {
    /// Namespace size in logical blocks.
    pub blocks: u64,
    /// Logical block size in bytes of the format in use.
    pub block_size: u32,
    /// Metadata bytes per block of the format in use (this driver needs 0).
    pub metadata: u16,
}

impl NamespaceInfo {
    /// Parses the 4096-byte structure.
    pub fn parse(b: &[u8]) -> Result<NamespaceInfo, NvmeError> {
        let bad = |reason: String| NvmeError::Identify { what: "namespace", reason };
        if b.len() < 4096 {
            return Err(bad(format!("{} bytes, expected 4096", b.len())));
        }
        let blocks = u64::from_le_bytes(b[0..8].try_into().expect("8 bytes"));
        let nlbaf = b[25] as usize + 1;
        let flbas = b[26];
        // FLBAS bits 3:0 select the format; bits 6:5 extend it beyond 16
        // formats (NVMe 2.0), which 1.4 controllers leave 0.
        let index = (flbas & 0xf) as usize | ((flbas >> 5 & 3) as usize) << 4;
        if index >= nlbaf || index >= 64 {
            return Err(bad(format!("format index {index} is not among the {nlbaf} formats listed")));
        }
        let f = u32::from_le_bytes(b[128 + 4 * index..132 + 4 * index].try_into().expect("4 bytes"));
        let lbads = f >> 16 & 0xff;
        if !(9..=16).contains(&lbads) {
            return Err(bad(format!("logical block size 2^{lbads} is outside 512 B..64 KiB")));
        }
        if blocks == 0 {
            return Err(bad("the namespace has 0 blocks (inactive or not attached)".into()));
        }
        Ok(NamespaceInfo { blocks, block_size: 1 << lbads, metadata: f as u16 })
    }

    /// Size in bytes.
    pub fn bytes(&self) -> u64 {
        self.blocks.saturating_mul(self.block_size as u64)
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim_matches(|c: char| c == ' ' || c == '\0').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn namespace(blocks: u64, formats: &[(u16, u8)], flbas: u8) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        b[0..8].copy_from_slice(&blocks.to_le_bytes());
        b[25] = formats.len() as u8 - 1;
        b[26] = flbas;
        for (i, &(ms, lbads)) in formats.iter().enumerate() {
            let f = ms as u32 | (lbads as u32) << 16;
            b[128 + 4 * i..132 + 4 * i].copy_from_slice(&f.to_le_bytes());
        }
        b
    }

    #[test]
    fn namespace_uses_the_selected_format() {
        let b = namespace(524288, &[(0, 9), (8, 9), (0, 12)], 2);
        let ns = NamespaceInfo::parse(&b).unwrap();
        assert_eq!(ns, NamespaceInfo { blocks: 524288, block_size: 4096, metadata: 0 });
        assert_eq!(ns.bytes(), 2 << 30);
        let ns = NamespaceInfo::parse(&namespace(8, &[(0, 9), (8, 9)], 1)).unwrap();
        assert_eq!((ns.block_size, ns.metadata), (512, 8));
    }

    #[test]
    fn namespace_rejects_nonsense() {
        for (b, why) in [
            (namespace(8, &[(0, 9)], 1), "format index 1"),
            (namespace(8, &[(0, 8)], 0), "2^8"),
            (namespace(8, &[(0, 17)], 0), "2^17"),
            (namespace(0, &[(0, 9)], 0), "0 blocks"),
            (vec![0; 100], "100 bytes"),
        ] {
            let e = NamespaceInfo::parse(&b).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn controller_fields() {
        let mut b = vec![0u8; 4096];
        b[0..2].copy_from_slice(&0x1b36u16.to_le_bytes());
        b[4..24].copy_from_slice(b"pinio0001           ");
        b[24..64].copy_from_slice(&[b'Q'; 40]);
        b[64..72].copy_from_slice(b"10.0.2  ");
        b[77] = 7;
        b[516..520].copy_from_slice(&256u32.to_le_bytes());
        let c = ControllerInfo::parse(&b).unwrap();
        assert_eq!(
            (c.vid, c.serial.as_str(), c.firmware.as_str(), c.mdts, c.namespaces),
            (0x1b36, "pinio0001", "10.0.2", 7, 256)
        );
        assert_eq!(c.model.len(), 40);
        assert_eq!(c.max_transfer(4096), Some(512 << 10));
        b[77] = 0;
        assert_eq!(ControllerInfo::parse(&b).unwrap().max_transfer(4096), None);
        b[77] = 255;
        assert_eq!(ControllerInfo::parse(&b).unwrap().max_transfer(4096), Some(u64::MAX));
        assert!(ControllerInfo::parse(&b[..10]).is_err());
    }
}
