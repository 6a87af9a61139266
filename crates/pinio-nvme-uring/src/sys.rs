//! The kernel's NVMe passthrough ABI (`include/uapi/linux/nvme_ioctl.h`):
//! the command layouts, the ioctl numbers and the `uring_cmd` operations.

/// `struct nvme_passthru_cmd` (72 bytes), the argument of
/// `NVME_IOCTL_ADMIN_CMD` / `NVME_IOCTL_IO_CMD`; the kernel writes the
/// completion's dword 0 into `result`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PassthruCmd {
    pub(crate) opcode: u8,
    pub(crate) flags: u8,
    pub(crate) rsvd1: u16,
    pub(crate) nsid: u32,
    pub(crate) cdw2: u32,
    pub(crate) cdw3: u32,
    pub(crate) metadata: u64,
    pub(crate) addr: u64,
    pub(crate) metadata_len: u32,
    pub(crate) data_len: u32,
    pub(crate) cdw10: u32,
    pub(crate) cdw11: u32,
    pub(crate) cdw12: u32,
    pub(crate) cdw13: u32,
    pub(crate) cdw14: u32,
    pub(crate) cdw15: u32,
    pub(crate) timeout_ms: u32,
    pub(crate) result: u32,
}

/// `struct nvme_uring_cmd` (72 bytes): the command area of a 128-byte SQE
/// of `NVME_URING_CMD_IO`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct UringCmd {
    pub(crate) opcode: u8,
    pub(crate) flags: u8,
    pub(crate) rsvd1: u16,
    pub(crate) nsid: u32,
    pub(crate) cdw2: u32,
    pub(crate) cdw3: u32,
    pub(crate) metadata: u64,
    pub(crate) addr: u64,
    pub(crate) metadata_len: u32,
    pub(crate) data_len: u32,
    pub(crate) cdw10: u32,
    pub(crate) cdw11: u32,
    pub(crate) cdw12: u32,
    pub(crate) cdw13: u32,
    pub(crate) cdw14: u32,
    pub(crate) cdw15: u32,
    pub(crate) timeout_ms: u32,
    pub(crate) rsvd2: u32,
}

const _: () = assert!(std::mem::size_of::<PassthruCmd>() == 72);
const _: () = assert!(std::mem::size_of::<UringCmd>() == 72);

impl UringCmd {
    /// The 80-byte command area of the SQE (the structure, zero-padded).
    pub(crate) fn bytes(&self) -> [u8; 80] {
        let mut out = [0u8; 80];
        let fields: [(usize, &[u8]); 17] = [
            (0, &[self.opcode, self.flags]),
            (2, &self.rsvd1.to_ne_bytes()),
            (4, &self.nsid.to_ne_bytes()),
            (8, &self.cdw2.to_ne_bytes()),
            (12, &self.cdw3.to_ne_bytes()),
            (16, &self.metadata.to_ne_bytes()),
            (24, &self.addr.to_ne_bytes()),
            (32, &self.metadata_len.to_ne_bytes()),
            (36, &self.data_len.to_ne_bytes()),
            (40, &self.cdw10.to_ne_bytes()),
            (44, &self.cdw11.to_ne_bytes()),
            (48, &self.cdw12.to_ne_bytes()),
            (52, &self.cdw13.to_ne_bytes()),
            (56, &self.cdw14.to_ne_bytes()),
            (60, &self.cdw15.to_ne_bytes()),
            (64, &self.timeout_ms.to_ne_bytes()),
            (68, &self.rsvd2.to_ne_bytes()),
        ];
        for (at, b) in fields {
            out[at..at + b.len()].copy_from_slice(b);
        }
        out
    }
}

/// `_IOC(dir, 'N', nr, size)` as asm-generic/ioctl.h composes it.
const fn ioc(dir: u32, nr: u32, size: u32) -> u32 {
    (dir << 30) | (size << 16) | ((b'N' as u32) << 8) | nr
}
const READ_WRITE: u32 = 3;

/// `NVME_IOCTL_ID`: the namespace id of a namespace device.
pub(crate) const NVME_IOCTL_ID: u32 = ioc(0, 0x40, 0);
/// `NVME_IOCTL_ADMIN_CMD`: one admin command, synchronously.
pub(crate) const NVME_IOCTL_ADMIN_CMD: u32 = ioc(READ_WRITE, 0x41, 72);
/// `NVME_IOCTL_RESET`: reset the controller (controller device only).
pub(crate) const NVME_IOCTL_RESET: u32 = ioc(0, 0x44, 0);
/// `NVME_URING_CMD_IO`: an I/O command as an io_uring `URING_CMD`.
pub(crate) const NVME_URING_CMD_IO: u32 = ioc(READ_WRITE, 0x80, 72);

/// NVM command set opcodes.
pub(crate) const OP_FLUSH: u8 = 0x00;
pub(crate) const OP_WRITE: u8 = 0x01;
pub(crate) const OP_READ: u8 = 0x02;
/// Admin opcode Identify.
pub(crate) const OP_IDENTIFY: u8 = 0x06;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_are_the_kernels() {
        // From the kernel headers (_IOWR('N', 0x41, struct nvme_admin_cmd) etc.).
        assert_eq!(NVME_IOCTL_ID, 0x4e40);
        assert_eq!(NVME_IOCTL_ADMIN_CMD, 0xc048_4e41);
        assert_eq!(NVME_IOCTL_RESET, 0x4e44);
        assert_eq!(NVME_URING_CMD_IO, 0xc048_4e80);
    }

    #[test]
    fn command_bytes_follow_the_struct_layout() {
        let c = UringCmd {
            opcode: OP_READ,
            nsid: 1,
            addr: 0x1122_3344_5566_7788,
            data_len: 4096,
            cdw10: 7,
            cdw12: 7,
            ..Default::default()
        };
        let b = c.bytes();
        assert_eq!(b[0], OP_READ);
        assert_eq!(u32::from_ne_bytes(b[4..8].try_into().unwrap()), 1);
        assert_eq!(u64::from_ne_bytes(b[24..32].try_into().unwrap()), 0x1122_3344_5566_7788);
        assert_eq!(u32::from_ne_bytes(b[36..40].try_into().unwrap()), 4096);
        assert_eq!(u32::from_ne_bytes(b[40..44].try_into().unwrap()), 7);
        assert_eq!(u32::from_ne_bytes(b[48..52].try_into().unwrap()), 7);
        assert!(b[72..].iter().all(|&x| x == 0));
        // The same as the struct's own bytes.
        // SAFETY: UringCmd is repr(C), 72 bytes, all fields plain integers without padding.
        let raw: [u8; 72] = unsafe { std::mem::transmute(c) };
        assert_eq!(&b[..72], &raw[..]);
    }
}
