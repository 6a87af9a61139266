//! [`Transfer`]: the submission queue entry of one read or write, kept as
//! plain values so that it can be built where it is stored.

use io_uring::{opcode, squeue, types};
use pinio_core::{Direction, Op};

use crate::device::UNREGISTERED;

/// What the SQE of an [`Op`] says: `READ_FIXED`/`WRITE_FIXED` from buffer
/// slot `slot`, or `READ`/`WRITE` for a region outside the registered-buffer
/// table, on fixed file 0.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Transfer {
    dir: Direction,
    addr: *mut u8,
    len: u32,
    dev_offset: u64,
    /// `None` for an unregistered region.
    slot: Option<u16>,
}

impl Transfer {
    /// The transfer `op` asks for (its slice's address, length and buffer
    /// slot). The caller has checked it (`Capabilities::check`), so the
    /// length fits in `u32` (`max_transfer` is below 2 GiB).
    #[inline]
    pub(crate) fn of(op: &mut Op) -> Transfer {
        let id = op.slice.key().id;
        Transfer {
            dir: op.dir,
            addr: op.slice.as_mut_ptr(),
            len: op.slice.len() as u32,
            dev_offset: op.dev_offset,
            slot: if id == UNREGISTERED { None } else { Some(id as u16) },
        }
    }

    /// Whether the region is outside the registered-buffer table.
    #[inline]
    pub(crate) fn unregistered(&self) -> bool {
        self.slot.is_none()
    }

    /// The SQE, tagged with `user_data`.
    #[inline]
    pub(crate) fn sqe(&self, user_data: u64) -> squeue::Entry {
        let fd = types::Fixed(0);
        let (addr, len, off) = (self.addr, self.len, self.dev_offset);
        let entry = match (self.dir, self.slot) {
            (Direction::Read, Some(slot)) => opcode::ReadFixed::new(fd, addr, len, slot).offset(off).build(),
            (Direction::Write, Some(slot)) => opcode::WriteFixed::new(fd, addr, len, slot).offset(off).build(),
            (Direction::Read, None) => opcode::Read::new(fd, addr, len).offset(off).build(),
            (Direction::Write, None) => opcode::Write::new(fd, addr, len).offset(off).build(),
        };
        entry.user_data(user_data)
    }
}
