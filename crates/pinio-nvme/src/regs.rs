//! Controller registers (NVMe Base Specification 1.4, section 3.1): offsets,
//! the fields of CAP, CC, CSTS and AQA, and doorbell addresses.

/// Controller Capabilities (64 bits).
pub const CAP: usize = 0x00;
/// Version.
pub const VS: usize = 0x08;
/// Controller Configuration.
pub const CC: usize = 0x14;
/// Controller Status.
pub const CSTS: usize = 0x1c;
/// Admin Queue Attributes.
pub const AQA: usize = 0x24;
/// Admin Submission Queue base address (64 bits).
pub const ASQ: usize = 0x28;
/// Admin Completion Queue base address (64 bits).
pub const ACQ: usize = 0x30;
/// First doorbell register.
pub const DOORBELL_BASE: usize = 0x1000;

/// The decoded CAP register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    /// Maximum Queue Entries Supported, as the number of entries (MQES + 1).
    pub max_queue_entries: u32,
    /// Contiguous Queues Required.
    pub contiguous_required: bool,
    /// Worst-case time to become ready after CC.EN changes, in milliseconds
    /// (CAP.TO is in 500 ms units).
    pub timeout_ms: u64,
    /// Doorbell stride: doorbells are `4 << dstrd` bytes apart.
    pub dstrd: u32,
    /// Whether the NVM command set is supported (CSS bit 0).
    pub nvm_command_set: bool,
    /// Smallest memory page size, in bytes (`1 << (12 + MPSMIN)`).
    pub min_page: u64,
    /// Largest memory page size, in bytes.
    pub max_page: u64,
}

impl Cap {
    /// Decodes the raw register.
    ///
    /// ```
    /// // QEMU's emulated NVMe controller (1b36:0010).
    /// let cap = pinio_nvme::regs::Cap::decode(0x0040_0820_0f01_07ff);
    /// assert_eq!(cap.max_queue_entries, 2048);
    /// assert_eq!(cap.timeout_ms, 7500);
    /// assert_eq!((cap.dstrd, cap.min_page, cap.max_page), (0, 4096, 65536));
    /// assert!(cap.contiguous_required && cap.nvm_command_set);
    /// ```
    pub fn decode(raw: u64) -> Cap {
        Cap {
            max_queue_entries: (raw & 0xffff) as u32 + 1,
            contiguous_required: raw >> 16 & 1 == 1,
            timeout_ms: (raw >> 24 & 0xff) * 500,
            dstrd: (raw >> 32 & 0xf) as u32,
            nvm_command_set: raw >> 37 & 1 == 1,
            min_page: 1 << (12 + (raw >> 48 & 0xf)),
            max_page: 1 << (12 + (raw >> 52 & 0xf)),
        }
    }
}

/// CC.EN: enable.
pub const CC_EN: u32 = 1;
/// CC.SHN = 01b: normal shutdown notification.
pub const CC_SHN_NORMAL: u32 = 1 << 14;
/// CC.SHN mask.
pub const CC_SHN_MASK: u32 = 3 << 14;

/// The CC value that enables the controller with the NVM command set,
/// memory pages of `page` bytes, round-robin arbitration and 64-byte
/// submission / 16-byte completion entries.
///
/// ```
/// assert_eq!(pinio_nvme::regs::cc_enable(4096), 0x0046_0001);
/// ```
pub fn cc_enable(page: u64) -> u32 {
    let mps = page.trailing_zeros().saturating_sub(12);
    let iosqes = 6; // 2^6 = 64-byte submission queue entries
    let iocqes = 4; // 2^4 = 16-byte completion queue entries
    CC_EN | (mps << 7) | (iosqes << 16) | (iocqes << 20)
}

/// CSTS.RDY: ready.
pub const CSTS_RDY: u32 = 1;
/// CSTS.CFS: controller fatal status.
pub const CSTS_CFS: u32 = 1 << 1;
/// CSTS.SHST mask.
pub const CSTS_SHST_MASK: u32 = 3 << 2;
/// CSTS.SHST = 10b: shutdown processing complete.
pub const CSTS_SHST_COMPLETE: u32 = 2 << 2;

/// AQA for admin queues of `sq_entries` and `cq_entries` entries (both
/// fields are zero-based).
///
/// ```
/// assert_eq!(pinio_nvme::regs::aqa(32, 32), 0x001f_001f);
/// ```
pub fn aqa(sq_entries: u32, cq_entries: u32) -> u32 {
    ((cq_entries - 1) & 0xfff) << 16 | ((sq_entries - 1) & 0xfff)
}

/// Offset of the submission queue `qid`'s tail doorbell.
///
/// ```
/// use pinio_nvme::regs::{sq_tail_doorbell, cq_head_doorbell};
/// assert_eq!((sq_tail_doorbell(0, 0), cq_head_doorbell(0, 0)), (0x1000, 0x1004));
/// assert_eq!((sq_tail_doorbell(3, 0), cq_head_doorbell(3, 0)), (0x1018, 0x101c));
/// assert_eq!(cq_head_doorbell(1, 2), 0x1000 + 3 * 16);
/// ```
pub fn sq_tail_doorbell(qid: u16, dstrd: u32) -> usize {
    DOORBELL_BASE + (2 * qid as usize) * (4 << dstrd)
}

/// Offset of the completion queue `qid`'s head doorbell.
pub fn cq_head_doorbell(qid: u16, dstrd: u32) -> usize {
    DOORBELL_BASE + (2 * qid as usize + 1) * (4 << dstrd)
}

/// The version register as `(major, minor, tertiary)`.
///
/// ```
/// assert_eq!(pinio_nvme::regs::version(0x0001_0400), (1, 4, 0));
/// ```
pub fn version(vs: u32) -> (u16, u8, u8) {
    ((vs >> 16) as u16, (vs >> 8) as u8, vs as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_fields_at_their_bit_positions() {
        // One field at a time, the rest zero.
        assert_eq!(Cap::decode(0).max_queue_entries, 1);
        assert_eq!(Cap::decode(0).min_page, 4096);
        assert!(Cap::decode(1 << 16).contiguous_required);
        assert_eq!(Cap::decode(0xff << 24).timeout_ms, 255 * 500);
        assert_eq!(Cap::decode(0xf << 32).dstrd, 15);
        assert!(Cap::decode(1 << 37).nvm_command_set);
        assert!(!Cap::decode(1 << 38).nvm_command_set);
        assert_eq!(Cap::decode(2 << 48).min_page, 16384);
        assert_eq!(Cap::decode(1 << 52).max_page, 8192);
    }

    #[test]
    fn cc_encodes_page_size_and_entry_sizes() {
        let cc = cc_enable(4096);
        assert_eq!(cc & CC_EN, 1);
        assert_eq!(cc >> 7 & 0xf, 0);
        assert_eq!(cc >> 16 & 0xf, 6);
        assert_eq!(cc >> 20 & 0xf, 4);
        assert_eq!(cc >> 4 & 0x7, 0, "NVM command set");
        assert_eq!(cc_enable(65536) >> 7 & 0xf, 4);
        assert_eq!(cc & CC_SHN_MASK, 0);
    }

    #[test]
    fn doorbells_follow_the_stride() {
        for dstrd in 0..4 {
            let stride = 4usize << dstrd;
            for qid in [0u16, 1, 7, 64] {
                assert_eq!(sq_tail_doorbell(qid, dstrd), 0x1000 + 2 * qid as usize * stride);
                assert_eq!(cq_head_doorbell(qid, dstrd), sq_tail_doorbell(qid, dstrd) + stride);
            }
        }
    }

    #[test]
    fn aqa_is_zero_based() {
        assert_eq!(aqa(2, 2), 0x0001_0001);
        assert_eq!(aqa(4096, 2), 0x0001_0fff);
    }
}
