//! QEMU `edu` registers and DMA command encoding (QEMU hw/misc/edu.c,
//! docs/specs/edu.rst).

use pinio_core::{Direction, Error};

/// PCI vendor id of edu (QEMU).
pub const VENDOR: u16 = 0x1234;
/// PCI device id of edu.
pub const DEVICE: u16 = 0x11e8;

/// Identification register: `0xRRrr00ed` (major, minor version).
pub const REG_ID: usize = 0x00;
/// What the identification register reads on every edu so far.
pub const ID_VALUE: u32 = 0x0100_00ed;
/// Liveness check: reads back the bitwise NOT of what was written.
pub const REG_LIVENESS: usize = 0x04;
/// Interrupt status (read).
pub const REG_IRQ_STATUS: usize = 0x24;
/// Interrupt acknowledge (write the bits to clear).
pub const REG_IRQ_ACK: usize = 0x64;
/// DMA source address (64-bit).
pub const REG_DMA_SRC: usize = 0x80;
/// DMA destination address (64-bit).
pub const REG_DMA_DST: usize = 0x88;
/// DMA transfer count in bytes (64-bit).
pub const REG_DMA_COUNT: usize = 0x90;
/// DMA command (64-bit): bit 0 start (reads 1 while running), bit 1
/// direction (1 = edu to RAM), bit 2 raise interrupt 0x100 when done.
pub const REG_DMA_CMD: usize = 0x98;

/// Command bit: start; stays set while the transfer runs.
pub const CMD_RUN: u64 = 0x1;
/// Command bit: direction edu buffer to RAM.
pub const CMD_TO_RAM: u64 = 0x2;
/// Command bit: raise [`IRQ_DMA`] when done.
pub const CMD_IRQ: u64 = 0x4;
/// Interrupt status bit of a finished DMA.
pub const IRQ_DMA: u32 = 0x100;

/// Where edu's on-board buffer sits in its own DMA address space.
pub const BUF_BASE: u64 = 0x40000;
/// Size of the on-board buffer: edu's whole device address space.
pub const BUF_LEN: u64 = 4096;
/// edu's DMA mask: it drops IOVA bits above 28 (256 MiB).
pub const DMA_BITS: u32 = 28;

/// The four register values of one DMA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmaProgram {
    /// Source address (IOVA or buffer address).
    pub src: u64,
    /// Destination address.
    pub dst: u64,
    /// Bytes to move.
    pub count: u64,
    /// Command register value, including [`CMD_RUN`].
    pub cmd: u64,
}

impl DmaProgram {
    /// Encodes a transfer of `len` bytes between IOVA `iova` and byte
    /// `dev_offset` of the on-board buffer. Refuses a buffer range outside
    /// the 4 KiB (edu would copy past its own array) and an IOVA range edu's
    /// 28-bit mask would truncate.
    pub fn new(dir: Direction, iova: u64, dev_offset: u64, len: u64, irq: bool) -> Result<DmaProgram, Error> {
        if len == 0 {
            return Err(Error::ZeroLength { what: "edu DMA" });
        }
        match dev_offset.checked_add(len) {
            Some(end) if end <= BUF_LEN => {}
            _ => return Err(Error::OutOfBounds { what: "edu buffer", offset: dev_offset, len, limit: BUF_LEN }),
        }
        match iova.checked_add(len) {
            Some(end) if end <= 1 << DMA_BITS => {}
            _ => {
                return Err(Error::OutOfBounds {
                    what: "edu DMA mask (28-bit IOVA)",
                    offset: iova,
                    len,
                    limit: 1 << DMA_BITS,
                });
            }
        }
        let dev = BUF_BASE + dev_offset;
        let irq = if irq { CMD_IRQ } else { 0 };
        Ok(match dir {
            Direction::Write => DmaProgram { src: iova, dst: dev, count: len, cmd: CMD_RUN | irq },
            Direction::Read => DmaProgram { src: dev, dst: iova, count: len, cmd: CMD_RUN | CMD_TO_RAM | irq },
        })
    }
}

/// Whether a liveness read-back matches the value written.
pub fn alive(written: u32, read: u32) -> bool {
    read == !written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_reads_ram_into_the_buffer() {
        let p = DmaProgram::new(Direction::Write, 0x10_0000, 0x10, 100, true).unwrap();
        assert_eq!(p, DmaProgram { src: 0x10_0000, dst: 0x40010, count: 100, cmd: 0x5 });
    }

    #[test]
    fn read_copies_the_buffer_to_ram() {
        let p = DmaProgram::new(Direction::Read, 0x20_0000, 0, 4096, false).unwrap();
        assert_eq!(p, DmaProgram { src: 0x40000, dst: 0x20_0000, count: 4096, cmd: 0x3 });
    }

    #[test]
    fn refuses_what_edu_would_get_wrong() {
        assert!(matches!(
            DmaProgram::new(Direction::Read, 0x1000, 4095, 2, true),
            Err(Error::OutOfBounds { what: "edu buffer", .. })
        ));
        assert!(matches!(DmaProgram::new(Direction::Read, 0x1000, u64::MAX, 2, true), Err(Error::OutOfBounds { .. })));
        assert!(matches!(
            DmaProgram::new(Direction::Write, (1 << 28) - 10, 0, 11, true),
            Err(Error::OutOfBounds { limit: 0x1000_0000, .. })
        ));
        assert!(matches!(DmaProgram::new(Direction::Write, 0, 0, 0, true), Err(Error::ZeroLength { .. })));
        assert!(DmaProgram::new(Direction::Write, (1 << 28) - 10, 0, 10, true).is_ok());
    }

    #[test]
    fn liveness_is_bitwise_not() {
        assert!(alive(0x1234_5678, 0xedcb_a987));
        assert!(!alive(0x1234_5678, 0x1234_5678));
        assert_eq!(ID_VALUE & 0xff, 0xed);
    }
}
