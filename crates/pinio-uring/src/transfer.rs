//! [`Transfer`]: the submission queue entry of one read or write, kept as
//! plain values so that it can be built where it is stored.

use io_uring::{opcode, squeue, types};
use pinio_core::{Direction, Op, Registration};

/// What the SQE of an [`Op`] says: `READ_FIXED`/`WRITE_FIXED` from the
/// buffer slot of the slice's region (its own, or its arena's), or
/// `READ`/`WRITE` for a region outside the registered-buffer table, on
/// fixed file 0.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Transfer {
    dir: Direction,
    /// The slice's address, kept as an integer: only handed to the kernel
    /// (so the transfer, kept in the in-flight table, is `Send`).
    addr: usize,
    len: u32,
    dev_offset: u64,
    /// Kept as the region's key says it (matched once, in [`Transfer::sqe`]).
    registration: Registration,
}

impl Transfer {
    /// The transfer `op` asks for (its slice's address, length and
    /// registration). The caller has admitted it (`DeviceCore::admit`), so
    /// the length fits in `u32` (`max_transfer` is below 2 GiB) and the
    /// region is of the device's domain, whose registrar hands out slots
    /// below `SLOTS`.
    #[inline]
    pub(crate) fn of(op: &Op) -> Transfer {
        Transfer {
            dir: op.dir,
            // The kernel writes through this pointer for a read: the slice
            // owns its bytes exclusively (its lease) and moves into the
            // in-flight table before the SQE is submitted, so nothing reads
            // or writes them meanwhile. `as_ptr` is the region's own
            // mapping pointer, valid for writes.
            addr: op.slice.as_ptr() as usize,
            len: op.slice.len() as u32,
            dev_offset: op.dev_offset,
            registration: op.slice.key().registration,
        }
    }

    /// A placeholder for a free in-flight entry (a one-byte read of
    /// address 0, never pushed).
    pub(crate) fn none() -> Transfer {
        Transfer { dir: Direction::Read, addr: 0, len: 1, dev_offset: 0, registration: Registration::None }
    }

    /// The device offset.
    #[inline]
    pub(crate) fn dev_offset(&self) -> u64 {
        self.dev_offset
    }

    /// The direction.
    #[inline]
    pub(crate) fn dir(&self) -> Direction {
        self.dir
    }

    /// The length in bytes.
    #[inline]
    pub(crate) fn len(&self) -> u64 {
        self.len as u64
    }

    /// The same transfer at `dev_offset`.
    #[inline]
    pub(crate) fn set_dev_offset(&mut self, dev_offset: u64) {
        self.dev_offset = dev_offset;
    }

    /// Whether the region is outside the registered-buffer table.
    #[inline]
    pub(crate) fn unregistered(&self) -> bool {
        matches!(self.registration, Registration::None)
    }

    /// The SQE, tagged with `user_data`.
    #[inline]
    pub(crate) fn sqe(&self, user_data: u64) -> squeue::Entry {
        let fd = types::Fixed(0);
        let (addr, len, off) = (self.addr as *mut u8, self.len, self.dev_offset);
        let entry = match (self.dir, self.registration) {
            (Direction::Read, Registration::Own(slot) | Registration::Piece(slot)) => {
                opcode::ReadFixed::new(fd, addr, len, slot as u16).offset(off).build()
            }
            (Direction::Write, Registration::Own(slot) | Registration::Piece(slot)) => {
                opcode::WriteFixed::new(fd, addr, len, slot as u16).offset(off).build()
            }
            (Direction::Read, Registration::None) => opcode::Read::new(fd, addr, len).offset(off).build(),
            (Direction::Write, Registration::None) => opcode::Write::new(fd, addr, len).offset(off).build(),
        };
        entry.user_data(user_data)
    }

    /// Pushes the SQE ([`Transfer::sqe`]) into `sq`; `false` if the ring is
    /// full. Each kind of transfer is built and pushed on its own path, so
    /// that its constant fields are stored straight into the ring slot.
    ///
    /// # Safety
    ///
    /// As [`io_uring::SubmissionQueue::push`]: the memory the transfer names
    /// and fixed file 0 stay valid (owned, registered) until the entry's
    /// completion is reaped.
    #[inline]
    pub(crate) unsafe fn push(&self, sq: &mut io_uring::SubmissionQueue<'_>, user_data: u64) -> bool {
        let fd = types::Fixed(0);
        let (addr, len, off) = (self.addr as *mut u8, self.len, self.dev_offset);
        // SAFETY: the caller's promise, for each arm.
        unsafe {
            match (self.dir, self.registration) {
                (Direction::Read, Registration::Own(slot) | Registration::Piece(slot)) => sq
                    .push(&opcode::ReadFixed::new(fd, addr, len, slot as u16).offset(off).build().user_data(user_data)),
                (Direction::Write, Registration::Own(slot) | Registration::Piece(slot)) => sq.push(
                    &opcode::WriteFixed::new(fd, addr, len, slot as u16).offset(off).build().user_data(user_data),
                ),
                (Direction::Read, Registration::None) => {
                    sq.push(&opcode::Read::new(fd, addr, len).offset(off).build().user_data(user_data))
                }
                (Direction::Write, Registration::None) => {
                    sq.push(&opcode::Write::new(fd, addr, len).offset(off).build().user_data(user_data))
                }
            }
        }
        .is_ok()
    }
}
