//! Vectored operations of a [`UringQueue`]: several slices, one contiguous
//! range of the file.
//!
//! # How each is submitted
//!
//! - One `IORING_OP_READV_FIXED`/`WRITEV_FIXED` SQE (Linux 6.15+, found by
//!   probing the kernel once per process) when every slice lies in one
//!   registered buffer: slices of one region, or pieces of the domain's
//!   arena (the kernel resolves every iovec against the one buffer that
//!   `buf_index` names).
//! - One `IORING_OP_READV`/`WRITEV` SQE when no slice is registered (a
//!   domain without fixed buffers, or regions the fallback registration
//!   policy let through): the kernel pins the pages for the operation, as
//!   it does for a plain `READ`.
//! - Otherwise, and always under [`VectoredIo::Emulated`] (a kernel without
//!   the fixed vectored opcodes, or [`crate::UringOptions::vectored_fixed`]
//!   off): one `READ_FIXED`/`WRITE_FIXED` (or `READ`/`WRITE`) SQE per slice,
//!   at consecutive file offsets, not linked, so they run in parallel. The
//!   operation completes once, when the last of them does: its result is the
//!   sum of their byte counts (a read at the end of a file moves a prefix of
//!   the range, and the slices after the end get 0), or the first failure.
//!
//! # Ownership
//!
//! The operation (every slice) and its iovec array live in this table from
//! push until the completion of its last SQE is reaped, so neither is freed
//! while the kernel may read the iovecs or move the slices' bytes (the DMA
//! ownership rule, `pinio_core::domain`).
//!
//! # user_data
//!
//! Keys of this table have bit 31 set in their low 32 bits and a non-zero
//! high half: never a live entry of the one-slice table (whose low half is
//! an index below the queue's capacity, at most 32768) and never the flush's
//! `user_data` (whose high half is 0). A CQE is offered to this table only
//! after the one-slice table did not claim it.

use super::UringQueue;
use io_uring::{IoUring, Probe, opcode, squeue, types};
use pinio_core::{Completion, Direction, Error, Op, Registration, Rejected, Result, VectoredIo};
use std::collections::HashMap;
use std::io;
use std::sync::OnceLock;

/// Whether this kernel has `IORING_OP_READV_FIXED` and
/// `IORING_OP_WRITEV_FIXED` (probed once per process on a small ring).
pub(crate) fn kernel_has_fixed_vectors() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        let Ok(ring) = IoUring::new(2) else { return false };
        let mut probe = Probe::new();
        if ring.submitter().register_probe(&mut probe).is_err() {
            return false;
        }
        probe.is_supported(opcode::ReadvFixed::CODE) && probe.is_supported(opcode::WritevFixed::CODE)
    })
}

/// How a device's queues run vectored operations, for its capabilities:
/// native when each one can be one SQE (fixed vectored opcodes, or no fixed
/// buffers at all, where plain `READV`/`WRITEV` serve), emulated (one SQE
/// per slice) otherwise or when `use_fixed_vectors` is off.
pub(crate) fn mode(fixed_buffers: bool, use_fixed_vectors: bool) -> VectoredIo {
    if use_fixed_vectors && (!fixed_buffers || kernel_has_fixed_vectors()) {
        VectoredIo::Native
    } else {
        VectoredIo::Emulated
    }
}

/// The iovecs of one native vectored SQE.
struct IoVecs {
    _owned: Box<[libc::iovec]>,
}

// SAFETY: the pointers name the bytes of the slices of the same table
// entry, which that entry owns; they are only handed to the kernel, never
// dereferenced here, so moving them to another thread with the entry is as
// safe as moving the slices.
unsafe impl Send for IoVecs {}

/// One vectored operation in flight.
struct Entry {
    op: Op,
    /// Read by the kernel (native SQEs); empty when split.
    _iovecs: IoVecs,
    /// CQEs still to come.
    remaining: usize,
    /// Bytes the CQEs so far moved.
    bytes: usize,
    /// The first failure.
    error: Option<Error>,
    /// The opcode(s), for error messages.
    how: &'static str,
}

/// The vectored operations of one queue, keyed by `user_data`.
pub(super) struct Vectored {
    mode: VectoredIo,
    entries: HashMap<u64, Entry>,
    next: u32,
}

impl Vectored {
    pub(super) fn new(mode: VectoredIo) -> Vectored {
        Vectored { mode, entries: HashMap::new(), next: crate::inflight::random_u32() }
    }

    /// Operations in flight.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// A key no live entry has (see the module docs for why it never names
    /// anything else either).
    fn key(&mut self) -> u64 {
        loop {
            self.next = self.next.wrapping_add(1).max(1);
            let key = (u64::from(self.next) << 32) | 0x8000_0000;
            if !self.entries.contains_key(&key) {
                return key;
            }
        }
    }

    /// Takes one CQE: `None` when `user_data` names no vectored operation,
    /// `Some(None)` when its operation waits for more CQEs, `Some(Some(c))`
    /// when this was its last.
    #[cold]
    pub(super) fn complete(&mut self, user_data: u64, res: i32) -> Option<Option<Completion>> {
        let e = self.entries.get_mut(&user_data)?;
        e.remaining -= 1;
        if res < 0 {
            if e.error.is_none() {
                let what = format!(
                    "{} of {} slices ({} bytes) at device offset {:#x}",
                    e.how,
                    e.op.segment_count(),
                    e.op.len(),
                    e.op.dev_offset
                );
                e.error = Some(Error::io(what, io::Error::from_raw_os_error(-res)));
            }
        } else {
            e.bytes += res as usize;
        }
        if e.remaining > 0 {
            return Some(None);
        }
        let e = self.entries.remove(&user_data).expect("found above");
        let result = match e.error {
            Some(error) => Err(error),
            None => Ok(e.bytes),
        };
        Some(Some(Completion::of(e.op, result)))
    }

    /// Forgets every operation without dropping its slices or iovecs (for
    /// a ring that can no longer be waited on).
    pub(super) fn leak_all(&mut self) {
        for (_, e) in self.entries.drain() {
            std::mem::forget(e);
        }
    }
}

/// How one operation is submitted.
enum Plan {
    /// One `READV_FIXED`/`WRITEV_FIXED` SQE from buffer slot `.0`.
    Fixed(u16),
    /// One `READV`/`WRITEV` SQE (no slice registered).
    Plain,
    /// One SQE per slice.
    Split,
}

fn plan(op: &Op, mode: VectoredIo) -> Plan {
    if mode != VectoredIo::Native {
        return Plan::Split;
    }
    let slot = |r: Registration| match r {
        Registration::Own(s) | Registration::Piece(s) => Some(s),
        Registration::None => None,
    };
    let first = slot(op.slice.key().registration);
    if op.rest.iter().any(|s| slot(s.key().registration) != first) {
        return Plan::Split;
    }
    match first {
        Some(s) => Plan::Fixed(s as u16),
        None => Plan::Plain,
    }
}

impl UringQueue {
    /// `push` of an admitted vectored operation.
    pub(super) fn push_vectored(&mut self, mut op: Op) -> Result<(), Rejected> {
        let fd = types::Fixed(0);
        let off = op.dev_offset;
        let (sqes, iovecs, how): (Vec<squeue::Entry>, Box<[libc::iovec]>, &'static str) =
            match plan(&op, self.vectored.mode) {
                p @ (Plan::Fixed(_) | Plan::Plain) => {
                    let iovecs: Box<[libc::iovec]> = op
                        .segments_mut()
                        .map(|s| libc::iovec { iov_base: s.as_mut_ptr().cast(), iov_len: s.len() })
                        .collect();
                    let (ptr, n) = (iovecs.as_ptr(), iovecs.len() as u32);
                    let (sqe, how) = match (op.dir, p) {
                        (Direction::Read, Plan::Fixed(slot)) => {
                            (opcode::ReadvFixed::new(fd, ptr, n, slot).offset(off).build(), "READV_FIXED")
                        }
                        (Direction::Write, Plan::Fixed(slot)) => {
                            (opcode::WritevFixed::new(fd, ptr, n, slot).offset(off).build(), "WRITEV_FIXED")
                        }
                        (Direction::Read, _) => (opcode::Readv::new(fd, ptr, n).offset(off).build(), "READV"),
                        (Direction::Write, _) => (opcode::Writev::new(fd, ptr, n).offset(off).build(), "WRITEV"),
                    };
                    (vec![sqe], iovecs, how)
                }
                Plan::Split => {
                    let dir = op.dir;
                    let mut at = off;
                    let sqes = op
                        .segments_mut()
                        .map(|s| {
                            let (addr, len) = (s.as_mut_ptr(), s.len() as u32);
                            let sqe = match (dir, s.key().registration) {
                                (Direction::Read, Registration::Own(slot) | Registration::Piece(slot)) => {
                                    opcode::ReadFixed::new(fd, addr, len, slot as u16).offset(at).build()
                                }
                                (Direction::Write, Registration::Own(slot) | Registration::Piece(slot)) => {
                                    opcode::WriteFixed::new(fd, addr, len, slot as u16).offset(at).build()
                                }
                                (Direction::Read, Registration::None) => {
                                    opcode::Read::new(fd, addr, len).offset(at).build()
                                }
                                (Direction::Write, Registration::None) => {
                                    opcode::Write::new(fd, addr, len).offset(at).build()
                                }
                            };
                            at += u64::from(len);
                            sqe
                        })
                        .collect();
                    let how = if dir == Direction::Read {
                        "one READ_FIXED/READ per slice"
                    } else {
                        "one WRITE_FIXED/WRITE per slice"
                    };
                    (sqes, Box::default(), how)
                }
            };
        // Unregistered slices although fixed buffers are on: regions the
        // fallback policy let through (counted once per operation, as the
        // one-slice path counts each of its operations).
        if self.fixed_buffers && op.segments().any(|s| matches!(s.key().registration, Registration::None)) {
            self.shared.core.stats().unregistered_fallback();
        }
        let key = self.vectored.key();
        let total = sqes.len();
        // In the table before the kernel can see any SQE of it.
        let entry = Entry { op, _iovecs: IoVecs { _owned: iovecs }, remaining: total, bytes: 0, error: None, how };
        self.vectored.entries.insert(key, entry);
        for (i, sqe) in sqes.into_iter().enumerate() {
            let sqe = sqe.user_data(key);
            loop {
                if let Err(error) = self.sq_room() {
                    if i == 0 {
                        let e = self.vectored.entries.remove(&key).expect("inserted above");
                        return Err(Rejected { error, op: e.op });
                    }
                    // Some SQEs are with the kernel: the operation
                    // completes when they do, failed with this error.
                    let e = self.vectored.entries.get_mut(&key).expect("inserted above");
                    e.remaining = i;
                    e.error = Some(error);
                    return Ok(());
                }
                // The entry names fixed file 0 (registered for the ring's
                // whole life) and, for a vectored opcode, iovecs.
                // SAFETY: the table owns the slices (and iovecs) until the
                // last completion is reaped; only this queue pushes here.
                if unsafe { self.ring.submission_shared().push(&sqe) }.is_ok() {
                    break;
                }
            }
            self.unsubmitted += 1;
        }
        Ok(())
    }

    /// Waits (entering the kernel, reaping into the stash) until the
    /// submission queue has room for one entry.
    fn sq_room(&mut self) -> Result<()> {
        loop {
            // SAFETY: only this queue uses this ring's submission queue, and
            // this handle only reads its head and tail.
            if !unsafe { self.ring.submission_shared() }.is_full() {
                return Ok(());
            }
            if !self.enter(0)? {
                let mut stash = std::mem::take(&mut self.stash);
                self.reap(&mut stash);
                self.stash = stash;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{UringDevice, UringOptions};
    use pinio_core::Device;

    fn device(name: &str, opts: UringOptions) -> (UringDevice, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!("pinio-uring-vectored-{name}-{}", std::process::id()));
        std::fs::write(&path, vec![0u8; 1 << 16]).unwrap();
        let opts = UringOptions { direct: false, ..opts };
        (UringDevice::open(&path, opts).unwrap(), path)
    }

    /// The path each operation takes: one fixed vectored SQE for slices of
    /// one buffer slot (arena pieces, or one region), one SQE per slice
    /// across slots or when forced, plain READV without fixed buffers.
    #[test]
    fn plans_follow_the_registrations() {
        let (dev, path) = device("arena", UringOptions { arena_bytes: 1 << 20, ..UringOptions::default() });
        let (a, b) = (dev.alloc(8192).unwrap(), dev.alloc(8192).unwrap());
        let op =
            Op::readv(vec![a.slice(0, 4096).unwrap(), b.slice(0, 4096).unwrap(), a.slice(4096, 4096).unwrap()], 0, 0)
                .unwrap();
        assert!(matches!(plan(&op, VectoredIo::Native), Plan::Fixed(_)), "arena pieces share one slot");
        assert!(matches!(plan(&op, VectoredIo::Emulated), Plan::Split));
        drop((op, a, b, dev));
        let (dev, own_path) = device("own", UringOptions::default());
        let (a, b) = (dev.alloc(8192).unwrap(), dev.alloc(8192).unwrap());
        let one = Op::readv(vec![a.slice(0, 4096).unwrap(), a.slice(4096, 4096).unwrap()], 0, 0).unwrap();
        assert!(matches!(plan(&one, VectoredIo::Native), Plan::Fixed(_)), "slices of one region share its slot");
        drop(one);
        let mixed = Op::readv(vec![a.slice(0, 4096).unwrap(), b.slice(0, 4096).unwrap()], 0, 0).unwrap();
        assert!(matches!(plan(&mixed, VectoredIo::Native), Plan::Split), "two regions, two slots");
        let (dev, plain_path) = device("plain", UringOptions { fixed_buffers: false, ..UringOptions::default() });
        let c = dev.alloc(8192).unwrap();
        let op = Op::readv(vec![c.slice(0, 4096).unwrap(), c.slice(4096, 4096).unwrap()], 0, 0).unwrap();
        assert!(matches!(plan(&op, VectoredIo::Native), Plan::Plain));
        for p in [path, own_path, plain_path] {
            std::fs::remove_file(p).unwrap();
        }
    }

    #[test]
    fn keys_never_name_a_one_slice_entry_or_the_flush() {
        let mut t = Vectored::new(VectoredIo::Native);
        for _ in 0..1000 {
            let k = t.key();
            assert!(k >> 32 != 0 && k as u32 >= 0x8000_0000, "{k:#x}");
        }
        assert!(t.complete(5, 0).is_none(), "not ours");
    }
}
