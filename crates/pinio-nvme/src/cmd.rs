//! Submission and completion queue entries (NVMe Base Specification 1.4,
//! sections 4.2 and 4.6) and the commands this driver issues.

use crate::status::Status;

/// Admin opcodes (figure 139).
pub mod admin_op {
    /// Delete I/O Submission Queue.
    pub const DELETE_SQ: u8 = 0x00;
    /// Create I/O Submission Queue.
    pub const CREATE_SQ: u8 = 0x01;
    /// Delete I/O Completion Queue.
    pub const DELETE_CQ: u8 = 0x04;
    /// Create I/O Completion Queue.
    pub const CREATE_CQ: u8 = 0x05;
    /// Identify.
    pub const IDENTIFY: u8 = 0x06;
    /// Set Features.
    pub const SET_FEATURES: u8 = 0x09;
}

/// NVM command set opcodes (NVM Command Set, figure 346 of 1.4).
pub mod nvm_op {
    /// Flush.
    pub const FLUSH: u8 = 0x00;
    /// Write.
    pub const WRITE: u8 = 0x01;
    /// Read.
    pub const READ: u8 = 0x02;
}

/// Identify CNS values.
pub mod cns {
    /// Identify Namespace data structure for NSID.
    pub const NAMESPACE: u32 = 0x00;
    /// Identify Controller data structure.
    pub const CONTROLLER: u32 = 0x01;
}

/// Feature identifier: Number of Queues.
pub const FEATURE_NUMBER_OF_QUEUES: u32 = 0x07;

/// Size of a submission queue entry.
pub const SQE_BYTES: usize = 64;
/// Size of a completion queue entry.
pub const CQE_BYTES: usize = 16;

/// One 64-byte submission queue entry as sixteen little-endian dwords.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sqe(pub [u32; 16]);

impl Sqe {
    /// A command with `opcode`, command identifier `cid` and namespace
    /// `nsid`; PRPs (PSDT = 0) and no fused operation.
    pub fn new(opcode: u8, cid: u16, nsid: u32) -> Sqe {
        let mut d = [0u32; 16];
        d[0] = opcode as u32 | (cid as u32) << 16;
        d[1] = nsid;
        Sqe(d)
    }

    /// The command identifier.
    pub fn cid(&self) -> u16 {
        (self.0[0] >> 16) as u16
    }

    /// Sets the command identifier.
    pub fn set_cid(&mut self, cid: u16) {
        self.0[0] = (self.0[0] & 0xffff) | (cid as u32) << 16;
    }

    /// The opcode.
    pub fn opcode(&self) -> u8 {
        self.0[0] as u8
    }

    /// Sets PRP1 (dwords 6-7) and PRP2 (dwords 8-9).
    pub fn with_prps(mut self, prp1: u64, prp2: u64) -> Sqe {
        self.0[6] = prp1 as u32;
        self.0[7] = (prp1 >> 32) as u32;
        self.0[8] = prp2 as u32;
        self.0[9] = (prp2 >> 32) as u32;
        self
    }

    /// PRP1.
    pub fn prp1(&self) -> u64 {
        self.0[6] as u64 | (self.0[7] as u64) << 32
    }

    /// PRP2.
    pub fn prp2(&self) -> u64 {
        self.0[8] as u64 | (self.0[9] as u64) << 32
    }

    /// Identify with `cns` into the 4 KiB buffer at `prp1`.
    pub fn identify(cid: u16, cns: u32, nsid: u32, buf: u64) -> Sqe {
        let mut s = Sqe::new(admin_op::IDENTIFY, cid, nsid).with_prps(buf, 0);
        s.0[10] = cns;
        s
    }

    /// Set Features / Number of Queues: asks for `n` submission and `n`
    /// completion queues (the fields are zero-based).
    pub fn set_number_of_queues(cid: u16, n: u16) -> Sqe {
        let mut s = Sqe::new(admin_op::SET_FEATURES, cid, 0);
        s.0[10] = FEATURE_NUMBER_OF_QUEUES;
        let z = (n.max(1) - 1) as u32;
        s.0[11] = z << 16 | z;
        s
    }

    /// Create I/O Completion Queue `qid` of `entries` entries at `base`
    /// (physically contiguous), interrupts on MSI-X vector `vector` when
    /// `irq`.
    pub fn create_cq(cid: u16, qid: u16, entries: u16, base: u64, irq: bool, vector: u16) -> Sqe {
        let mut s = Sqe::new(admin_op::CREATE_CQ, cid, 0).with_prps(base, 0);
        s.0[10] = ((entries - 1) as u32) << 16 | qid as u32;
        s.0[11] = (vector as u32) << 16 | (irq as u32) << 1 | 1;
        s
    }

    /// Create I/O Submission Queue `qid` of `entries` entries at `base`,
    /// completing into completion queue `cqid`.
    pub fn create_sq(cid: u16, qid: u16, entries: u16, base: u64, cqid: u16) -> Sqe {
        let mut s = Sqe::new(admin_op::CREATE_SQ, cid, 0).with_prps(base, 0);
        s.0[10] = ((entries - 1) as u32) << 16 | qid as u32;
        s.0[11] = (cqid as u32) << 16 | 1;
        s
    }

    /// Delete I/O Submission Queue `qid`.
    pub fn delete_sq(cid: u16, qid: u16) -> Sqe {
        let mut s = Sqe::new(admin_op::DELETE_SQ, cid, 0);
        s.0[10] = qid as u32;
        s
    }

    /// Delete I/O Completion Queue `qid`.
    pub fn delete_cq(cid: u16, qid: u16) -> Sqe {
        let mut s = Sqe::new(admin_op::DELETE_CQ, cid, 0);
        s.0[10] = qid as u32;
        s
    }

    /// Read or Write (`opcode`) of `blocks` logical blocks (at least 1, at
    /// most 65536) from `slba` of namespace `nsid`.
    pub fn rw(opcode: u8, cid: u16, nsid: u32, slba: u64, blocks: u32, prp1: u64, prp2: u64) -> Sqe {
        debug_assert!((1..=65536).contains(&blocks));
        let mut s = Sqe::new(opcode, cid, nsid).with_prps(prp1, prp2);
        s.0[10] = slba as u32;
        s.0[11] = (slba >> 32) as u32;
        s.0[12] = blocks - 1;
        s
    }

    /// Flush namespace `nsid`.
    pub fn flush(cid: u16, nsid: u32) -> Sqe {
        Sqe::new(nvm_op::FLUSH, cid, nsid)
    }
}

/// One 16-byte completion queue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cqe {
    /// Dword 0: command specific result.
    pub result: u32,
    /// Submission queue head pointer (how far the controller has consumed).
    pub sq_head: u16,
    /// The submission queue the command came from.
    pub sq_id: u16,
    /// The command identifier.
    pub cid: u16,
    /// The phase tag.
    pub phase: bool,
    /// The status; `None` on success.
    pub status: Option<Status>,
}

impl Cqe {
    /// Decodes the four dwords of an entry.
    ///
    /// ```
    /// let e = pinio_nvme::cmd::Cqe::decode([7, 0, 3 << 16 | 5, 1 << 16 | 9]);
    /// assert_eq!((e.result, e.sq_id, e.sq_head, e.cid, e.phase), (7, 3, 5, 9, true));
    /// assert!(e.status.is_none());
    /// ```
    pub fn decode(d: [u32; 4]) -> Cqe {
        Cqe {
            result: d[0],
            sq_head: d[2] as u16,
            sq_id: (d[2] >> 16) as u16,
            cid: d[3] as u16,
            phase: d[3] >> 16 & 1 == 1,
            status: Status::from_dw3(d[3]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_write_fields() {
        let s = Sqe::rw(nvm_op::READ, 0x1234, 1, 0x1_0000_0002, 8, 0xaaaa_0004, 0xbbbb_0000);
        assert_eq!(s.0[0], 0x1234_0002);
        assert_eq!(s.0[1], 1);
        assert_eq!((s.prp1(), s.prp2()), (0xaaaa_0004, 0xbbbb_0000));
        assert_eq!((s.0[10], s.0[11]), (2, 1), "SLBA low, high");
        assert_eq!(s.0[12], 7, "NLB is zero-based");
        assert_eq!(s.0[13..], [0, 0, 0]);
        assert_eq!((s.cid(), s.opcode()), (0x1234, 2));
        let w = Sqe::rw(nvm_op::WRITE, 0, 1, 0, 65536, 0, 0);
        assert_eq!((w.0[0], w.0[12]), (1, 0xffff));
    }

    #[test]
    fn prps_are_split_into_dwords() {
        let s = Sqe::default().with_prps(0x1122_3344_5566_7788, 0x99aa_bbcc_ddee_ff00);
        assert_eq!(s.0[6..10], [0x5566_7788, 0x1122_3344, 0xddee_ff00, 0x99aa_bbcc]);
    }

    #[test]
    fn queue_creation_fields() {
        let cq = Sqe::create_cq(1, 3, 256, 0x40_0000, true, 3);
        assert_eq!(cq.opcode(), admin_op::CREATE_CQ);
        assert_eq!(cq.0[10], 255 << 16 | 3);
        assert_eq!(cq.0[11], 3 << 16 | 0b11, "IV 3, IEN, PC");
        assert_eq!(cq.prp1(), 0x40_0000);
        let cq = Sqe::create_cq(1, 3, 256, 0x40_0000, false, 0);
        assert_eq!(cq.0[11], 1, "polled: PC only");
        let sq = Sqe::create_sq(2, 3, 64, 0x50_0000, 3);
        assert_eq!(sq.opcode(), admin_op::CREATE_SQ);
        assert_eq!(sq.0[10], 63 << 16 | 3);
        assert_eq!(sq.0[11], 3 << 16 | 1, "CQID 3, priority 0, PC");
        assert_eq!(Sqe::delete_sq(0, 3).0[10], 3);
        assert_eq!(Sqe::delete_cq(0, 3).opcode(), admin_op::DELETE_CQ);
    }

    #[test]
    fn identify_and_features() {
        let i = Sqe::identify(5, cns::NAMESPACE, 1, 0x1000);
        assert_eq!((i.opcode(), i.cid(), i.0[1], i.0[10], i.prp1()), (6, 5, 1, 0, 0x1000));
        assert_eq!(Sqe::identify(5, cns::CONTROLLER, 0, 0x1000).0[10], 1);
        let f = Sqe::set_number_of_queues(0, 4);
        assert_eq!((f.opcode(), f.0[10], f.0[11]), (9, 7, 0x0003_0003));
        assert_eq!(Sqe::set_number_of_queues(0, 0).0[11], 0, "at least one");
        let mut s = Sqe::flush(9, 1);
        assert_eq!((s.opcode(), s.0[1]), (0, 1));
        s.set_cid(0xfffe);
        assert_eq!((s.cid(), s.opcode()), (0xfffe, 0));
    }

    #[test]
    fn completion_with_error() {
        let e = Cqe::decode([0, 0, 1 << 16 | 0x7ff, 0x80 << 17 | 1 << 31 | 42]);
        assert_eq!((e.sq_id, e.sq_head, e.cid, e.phase), (1, 0x7ff, 42, false));
        let st = e.status.unwrap();
        assert_eq!((st.name(), st.dnr), ("LBA Out of Range", true));
    }
}
