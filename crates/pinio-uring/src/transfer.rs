//! [`Sqe`]: the submission queue entry of one read or write, written into
//! its in-flight entry when the operation enters the table and kept there,
//! so that a re-arm only patches its offset and `user_data` and copies it
//! into the ring.

use io_uring::{opcode, squeue};
use pinio_core::{Direction, Op, Registration};

/// The SQE of an operation, in the kernel's layout (`struct io_uring_sqe`
/// of `include/uapi/linux/io_uring.h`, 64 bytes, every field an integer):
/// `READ_FIXED`/`WRITE_FIXED` from the buffer slot of the slice's region
/// (its own, or its arena's), or `READ`/`WRITE` for a region outside the
/// registered-buffer table, on fixed file 0. Its `user_data` is the
/// in-flight entry's key, its `off` the operation's device offset.
///
/// The fields no operation changes (flags, file, priority, the unused
/// ones) are set once by [`Sqe::template`] and never written again: filling
/// in an operation ([`Sqe::fill`]) writes only its own fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, align(8))]
pub(crate) struct Sqe {
    opcode: u8,
    flags: u8,
    ioprio: u16,
    fd: i32,
    off: u64,
    /// The slice's address, kept as an integer: only handed to the kernel
    /// (so the SQE, kept in the in-flight table, is `Send`).
    addr: u64,
    len: u32,
    rw_flags: u32,
    user_data: u64,
    buf_index: u16,
    personality: u16,
    file_index: u32,
    addr3: u64,
    pad: u64,
}

// The kernel's SQE is 64 bytes, as is `io_uring`'s `squeue::Entry`; the cast
// in `Sqe::entry` rests on these two assertions.
const _: () = assert!(size_of::<Sqe>() == 64 && size_of::<squeue::Entry>() == 64);
const _: () = assert!(align_of::<Sqe>() >= align_of::<squeue::Entry>());

impl Sqe {
    /// Makes this the SQE of `op` (its slice's address, length and
    /// registration, its direction and device offset), tagged `user_data`.
    /// The caller has admitted it (`DeviceCore::admit`), so the length fits
    /// in `u32` (`max_transfer` is below 2 GiB) and the region is of the
    /// device's domain, whose registrar hands out slots below `SLOTS`.
    /// Returns whether the region is outside the registered-buffer table
    /// (a plain `READ`/`WRITE`).
    #[inline]
    pub(crate) fn fill(&mut self, op: &Op, user_data: u64) -> bool {
        // The kernel writes through this address for a read: the slice owns
        // its bytes exclusively (its lease) and moves into the in-flight
        // table before the SQE is submitted, so nothing reads or writes them
        // meanwhile. `as_ptr` is the region's own mapping pointer, valid for
        // writes.
        let addr = op.slice.as_ptr() as usize as u64;
        let registration = op.slice.key().registration;
        let (opcode, buf_index) = match (op.dir, registration) {
            (Direction::Read, Registration::Own(slot) | Registration::Piece(slot)) => {
                (opcode::ReadFixed::CODE, slot as u16)
            }
            (Direction::Write, Registration::Own(slot) | Registration::Piece(slot)) => {
                (opcode::WriteFixed::CODE, slot as u16)
            }
            (Direction::Read, Registration::None) => (opcode::Read::CODE, 0),
            (Direction::Write, Registration::None) => (opcode::Write::CODE, 0),
        };
        self.opcode = opcode;
        self.off = op.dev_offset;
        self.addr = addr;
        self.len = op.slice.len() as u32;
        self.user_data = user_data;
        self.buf_index = buf_index;
        matches!(registration, Registration::None)
    }

    /// The SQE of a free in-flight entry, tagged `user_data`: what every
    /// SQE of this crate's reads and writes says (fixed file 0, no flags
    /// beyond it, default priority, no personality), with a placeholder
    /// one-byte read of address 0, never pushed before [`Sqe::fill`].
    pub(crate) fn template(user_data: u64) -> Sqe {
        Sqe {
            opcode: opcode::Read::CODE,
            // Fixed file 0.
            flags: squeue::Flags::FIXED_FILE.bits(),
            ioprio: 0,
            fd: 0,
            off: 0,
            addr: 0,
            len: 1,
            rw_flags: 0,
            user_data,
            buf_index: 0,
            personality: 0,
            file_index: 0,
            addr3: 0,
            pad: 0,
        }
    }

    /// Its `user_data`.
    #[inline]
    pub(crate) fn user_data(&self) -> u64 {
        self.user_data
    }

    /// The same SQE tagged `user_data`.
    #[inline]
    pub(crate) fn set_user_data(&mut self, user_data: u64) {
        self.user_data = user_data;
    }

    /// The device offset.
    #[inline]
    pub(crate) fn dev_offset(&self) -> u64 {
        self.off
    }

    /// The same transfer at `dev_offset`.
    #[inline]
    pub(crate) fn set_dev_offset(&mut self, dev_offset: u64) {
        self.off = dev_offset;
    }

    /// The length in bytes.
    #[inline]
    pub(crate) fn len(&self) -> u64 {
        self.len as u64
    }

    /// The same bytes as `io_uring`'s entry, for
    /// [`io_uring::SubmissionQueue::push`] (which copies them into the ring).
    #[inline]
    pub(crate) fn entry(&self) -> &squeue::Entry {
        // Why the cast holds: `squeue::Entry` is `#[repr(C)]` around the
        // crate's `io_uring_sqe`, the kernel's `struct io_uring_sqe` (the
        // crate copies entries verbatim into the kernel's SQE array), whose
        // fields are integers and unions of integers. `Sqe` is that same
        // layout (`#[repr(C)]`, the ABI's fields in order, no padding), as
        // large and at least as aligned (the assertions above); the test
        // `sqe_matches_the_builders` compares it byte by byte with the
        // builders' entries.
        let ptr = (self as *const Sqe).cast::<squeue::Entry>();
        // SAFETY: `ptr` is `self`, 64 initialised bytes laid out as `squeue::Entry` (above);
        // the reference borrows `self`, so the bytes stay alive and unchanged.
        unsafe { &*ptr }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{UringDevice, UringOptions};
    use io_uring::types;
    use pinio_core::{Device, Region};

    /// The 64 bytes of `entry`.
    fn bytes(entry: &squeue::Entry) -> [u8; 64] {
        // SAFETY: `squeue::Entry` is 64 bytes of integers (see `Sqe::entry`),
        // the builders start from all-zero bytes, so every byte is
        // initialised; `read_unaligned` asks nothing of the alignment.
        unsafe { std::ptr::read_unaligned((entry as *const squeue::Entry).cast::<[u8; 64]>()) }
    }

    fn device(name: &str, fixed_buffers: bool) -> (UringDevice, Region, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!("pinio-uring-sqe-{name}-{}", std::process::id()));
        std::fs::write(&path, vec![0u8; 1 << 16]).unwrap();
        let opts = UringOptions { direct: false, fixed_buffers, ..UringOptions::default() };
        let dev = UringDevice::open(&path, opts).unwrap();
        let region = dev.alloc(1 << 16).unwrap();
        (dev, region, path)
    }

    #[test]
    fn sqe_matches_the_builders() {
        let fd = types::Fixed(0);
        // One SQE filled again and again, as an in-flight entry's is.
        let mut ours = Sqe::template(0);
        for fixed in [true, false] {
            let (_dev, r, path) = device(if fixed { "fixed" } else { "plain" }, fixed);
            for dir in [Direction::Read, Direction::Write] {
                let slice = r.slice(4096, 8192).unwrap();
                let (addr, len) = (slice.as_ptr().cast_mut(), slice.len() as u32);
                let registration = slice.key().registration;
                assert_eq!(fixed, !matches!(registration, Registration::None), "{registration:?}");
                let op = Op { dir, slice, dev_offset: 12288, tag: 7, rest: pinio_core::SliceTail::new() };
                let unregistered = ours.fill(&op, 0x1234_5678_9abc_def1);
                let theirs = match (dir, registration) {
                    (Direction::Read, Registration::Own(s) | Registration::Piece(s)) => {
                        opcode::ReadFixed::new(fd, addr, len, s as u16).offset(12288).build()
                    }
                    (Direction::Write, Registration::Own(s) | Registration::Piece(s)) => {
                        opcode::WriteFixed::new(fd, addr, len, s as u16).offset(12288).build()
                    }
                    (Direction::Read, Registration::None) => opcode::Read::new(fd, addr, len).offset(12288).build(),
                    (Direction::Write, Registration::None) => opcode::Write::new(fd, addr, len).offset(12288).build(),
                };
                let theirs = theirs.user_data(0x1234_5678_9abc_def1);
                assert_eq!(bytes(ours.entry()), bytes(&theirs), "{dir:?}, fixed buffers {fixed}");
                assert_eq!(unregistered, matches!(registration, Registration::None));
                assert_eq!((ours.dev_offset(), ours.len(), ours.user_data()), (12288, 8192, 0x1234_5678_9abc_def1));
                let mut moved = ours;
                moved.set_dev_offset(4096);
                moved.set_user_data(3);
                let again = theirs.clone().user_data(3);
                assert_eq!(bytes(moved.entry())[8..16], 4096u64.to_ne_bytes());
                assert_eq!(bytes(moved.entry())[16..], bytes(&again)[16..], "only the offset moved");
            }
            std::fs::remove_file(path).unwrap();
        }
    }
}
