//! [`NvmeUringQueue`]: one passthrough ring (128-byte SQEs, 32-byte CQEs),
//! its in-flight table and its completions.

use crate::NvmeUringError;
use crate::error::status_of;
use crate::inflight::InFlight;
use crate::shared::Shared;
use crate::sys::{self, UringCmd};
use io_uring::{IoUring, cqueue, opcode, squeue, types};
use pinio_core::{Completion, Direction, Error, FlushMode, Op, Queue, Registration, Rejected, Result, Tally};
use pinio_uring::{TableSubscription, UringRegistrar};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

/// The ring type of NVMe passthrough.
type Ring = IoUring<squeue::Entry128, cqueue::Entry32>;

/// `IORING_ENTER_GETEVENTS`.
const GETEVENTS: u32 = 1;

/// A queue of an [`crate::NvmeUringDevice`]: its own ring, with the
/// namespace device as fixed file 0 and a clone of the domain's buffer
/// table, so every region of the domain is a valid buffer index.
///
/// The queue owns each operation's slice from [`Queue::push`] until its
/// completion is reaped. Dropping it submits what was pushed and waits for
/// every operation in flight.
pub struct NvmeUringQueue {
    shared: Arc<Shared>,
    ring: Arc<Ring>,
    /// Keeps the ring's copy of the table current; dropped after the ring
    /// has no operation in flight (fields drop after `Drop::drop`).
    _subscription: Option<TableSubscription>,
    inflight: InFlight,
    capacity: usize,
    /// Pushed but not yet accepted by the kernel.
    unsubmitted: usize,
    /// Completions reaped while the caller was not collecting.
    stash: Vec<Completion>,
    /// `user_data` of this queue's flushes: below 2^32 with a zero index
    /// field impossible for a live entry (entries carry a non-zero
    /// sequence number in the high half).
    flush_user_data: u64,
    flush_result: Option<i32>,
    iopoll: bool,
    strays: u64,
}

impl NvmeUringQueue {
    pub(crate) fn new(shared: Arc<Shared>, depth: usize) -> Result<NvmeUringQueue> {
        let depth = shared.core.queue_depth(depth)?;
        let entries =
            shared.opts.ring_entries.max(depth as u32).checked_next_power_of_two().unwrap_or(1 << 15).min(1 << 15);
        let mut builder = Ring::builder();
        builder.dontfork();
        if shared.opts.iopoll {
            builder.setup_iopoll();
        }
        let polled = if shared.opts.iopoll { ", IOPOLL" } else { "" };
        let ring = builder.build(entries).map_err(|source| NvmeUringError::Setup { entries, polled, source })?;
        ring.submitter()
            .register_files(&[shared.file.as_raw_fd()])
            .map_err(|source| NvmeUringError::RegisterFile { source })?;
        let ring = Arc::new(ring);
        let registrar = shared.core.domain().require::<UringRegistrar>("nvme-uring")?;
        let subscription = registrar.subscribe(Arc::clone(&ring))?;
        Ok(NvmeUringQueue {
            iopoll: shared.opts.iopoll,
            shared,
            ring,
            _subscription: subscription,
            inflight: InFlight::with_capacity(depth),
            capacity: depth,
            unsubmitted: 0,
            stash: Vec::new(),
            flush_user_data: 0x8000_0000 | u64::from(std::process::id() & 0x7fff_ffff),
            flush_result: None,
            strays: 0,
        })
    }

    /// The ring's file descriptor.
    pub fn ring_fd(&self) -> RawFd {
        self.ring.as_raw_fd()
    }

    /// Completions received that named no operation in flight.
    pub fn stray_completions(&self) -> u64 {
        self.strays
    }

    /// Pushes `op` without the device's admission checks other than the
    /// queue's capacity and the slice's domain: commands past the end of
    /// the namespace or larger than the transfer limit reach the kernel
    /// and the controller, for tests of their own answers.
    #[cfg(feature = "raw-io")]
    pub fn push_unchecked(&mut self, op: Op) -> Result<(), Rejected> {
        if self.in_flight() >= self.capacity {
            return Err(Rejected { error: Error::QueueFull { capacity: self.capacity }, op });
        }
        let domain = self.shared.core.domain_id();
        if op.slice.domain_id() != domain || op.is_vectored() || op.slice.is_empty() {
            let error = Error::ForeignRegion { region_domain: op.slice.domain_id(), domain };
            return Err(Rejected { error, op });
        }
        self.push_admitted(op)
    }

    fn push_admitted(&mut self, op: Op) -> Result<(), Rejected> {
        let user_data = match self.inflight.insert(op) {
            Ok(u) => u,
            Err(op) => return Err(Rejected { error: Error::QueueFull { capacity: self.capacity }, op }),
        };
        let op = self.inflight.get_mut(user_data).expect("just inserted");
        let sqe = sqe(&self.shared, op, user_data);
        loop {
            // The entry names the slice's memory by address (and by buffer
            // index for a registered region, whose slot the region keeps
            // filled) and fixed file 0, registered for the ring's life.
            // SAFETY: that memory is owned by the in-flight table until the
            // completion is reaped (the DMA ownership rule, pinio_core::domain);
            // only this queue pushes to this ring.
            if unsafe { self.ring.submission_shared().push(&sqe) }.is_ok() {
                break;
            }
            if let Err(error) = self.make_room() {
                let op = self.inflight.remove(user_data).expect("in flight");
                return Err(Rejected { error, op });
            }
        }
        self.unsubmitted += 1;
        Ok(())
    }

    /// Enters the kernel to let it consume submissions, reaping into the
    /// stash if that was all it could do.
    fn make_room(&mut self) -> Result<()> {
        if !self.enter(0)? {
            let mut stash = std::mem::take(&mut self.stash);
            self.reap(&mut stash);
            self.stash = stash;
        }
        Ok(())
    }

    /// One `io_uring_enter`: submits what is pushed and waits for `want`
    /// completions (under IOPOLL, always polls for them). `Ok(false)`: try
    /// again after reaping (interrupted, or the completion backlog is full).
    fn enter(&mut self, want: usize) -> Result<bool> {
        let flags = if want > 0 || self.iopoll { GETEVENTS } else { 0 };
        let (submit, want) = (self.unsubmitted as u32, want as u32);
        // SAFETY: no signal mask or extended argument is passed; the
        // submissions were pushed by this queue and name memory the
        // in-flight table owns.
        let r = unsafe { self.ring.submitter().enter::<libc::sigset_t>(submit, want, flags, None) };
        match r {
            Ok(n) => {
                self.unsubmitted = self.unsubmitted.saturating_sub(n);
                Ok(true)
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY | libc::EAGAIN)) => Ok(false),
            Err(source) => Err(NvmeUringError::Enter { source }.into()),
        }
    }

    /// Moves every completion in the ring into `out`; returns how many.
    fn reap(&mut self, out: &mut Vec<Completion>) -> usize {
        let before = out.len();
        let mut tally = Tally::default();
        // SAFETY: only this queue reads this ring's completion queue; the
        // domain's registry uses the ring for registration calls only.
        let cq = unsafe { self.ring.completion_shared() };
        for cqe in cq {
            let user_data = cqe.user_data();
            if user_data == self.flush_user_data {
                self.flush_result = Some(cqe.result());
                continue;
            }
            let Some(op) = self.inflight.remove(user_data) else {
                self.strays += 1;
                continue;
            };
            let result = outcome(&op, cqe.result(), self.shared.lba_shift);
            tally.add(op.dir, &result);
            out.push(Completion::of(op, result));
        }
        tally.fold_into(self.shared.core.stats());
        out.len() - before
    }
}

/// The 128-byte SQE of `op` (admitted: one slice of the device's domain):
/// NVMe Read or Write of whole blocks, with the region's buffer index when
/// it is registered in the table.
fn sqe(shared: &Shared, op: &mut Op, user_data: u64) -> squeue::Entry128 {
    let shift = shared.lba_shift;
    let slba = op.dev_offset >> shift;
    let blocks = (op.slice.len() as u64) >> shift;
    let cmd = UringCmd {
        opcode: if op.dir == Direction::Read { sys::OP_READ } else { sys::OP_WRITE },
        nsid: shared.geometry.nsid,
        addr: op.slice.as_mut_ptr() as u64,
        data_len: op.slice.len() as u32,
        cdw10: slba as u32,
        cdw11: (slba >> 32) as u32,
        // Number of logical blocks, 0's based.
        cdw12: blocks.saturating_sub(1) as u32,
        ..Default::default()
    };
    let index = match op.slice.key().registration {
        Registration::Own(slot) | Registration::Piece(slot) if shared.opts.fixed_buffers => Some(slot as u16),
        _ => None,
    };
    opcode::UringCmd80::new(types::Fixed(0), sys::NVME_URING_CMD_IO)
        .cmd(cmd.bytes())
        .buf_index(index)
        .build()
        .user_data(user_data)
}

/// What a passthrough CQE result means for `op`: 0 is success, a negative
/// value an errno from the kernel (the command never reached the device,
/// or was cancelled), a positive one the NVMe status the controller
/// returned.
fn outcome(op: &Op, res: i32, shift: u32) -> Result<usize> {
    if res == 0 {
        return Ok(op.slice.len());
    }
    let verb = if op.dir == Direction::Read { "Read" } else { "Write" };
    let registered = !matches!(op.slice.key().registration, Registration::None);
    let command = format!(
        "NVMe {verb} of {} blocks at LBA {:#x} ({} bytes at device offset {:#x}, uring_cmd{})",
        (op.slice.len() as u64) >> shift,
        op.dev_offset >> shift,
        op.slice.len(),
        op.dev_offset,
        if registered { " with a fixed buffer" } else { "" }
    );
    if res < 0 {
        return Err(Error::io(command, io::Error::from_raw_os_error(-res)));
    }
    match status_of(res as u32) {
        Some(status) => Err(NvmeUringError::Command { command, status }.into()),
        None => Ok(op.slice.len()),
    }
}

impl Queue for NvmeUringQueue {
    fn capacity(&self) -> usize {
        self.capacity
    }

    fn in_flight(&self) -> usize {
        self.inflight.len() + self.stash.len()
    }

    fn push(&mut self, op: Op) -> Result<(), Rejected> {
        if let Err(error) = self.shared.core.check_push(&op, self.in_flight(), self.capacity) {
            return Err(Rejected { error, op });
        }
        self.push_admitted(op)
    }

    fn submit(&mut self) -> Result<usize> {
        let pending = self.unsubmitted;
        while self.unsubmitted > 0 {
            let before = self.unsubmitted;
            if !self.enter(0)? {
                let mut stash = std::mem::take(&mut self.stash);
                self.reap(&mut stash);
                self.stash = stash;
            } else if self.unsubmitted == before {
                break;
            }
        }
        Ok(pending - self.unsubmitted)
    }

    fn poll(&mut self, out: &mut Vec<Completion>) -> Result<usize> {
        let before = out.len();
        if self.unsubmitted > 0 || (self.iopoll && self.inflight.len() > 0) {
            self.enter(0)?;
        }
        out.append(&mut self.stash);
        self.reap(out);
        Ok(out.len() - before)
    }

    fn wait(&mut self, min: usize, out: &mut Vec<Completion>) -> Result<usize> {
        let before = out.len();
        let want = min.min(self.in_flight());
        out.append(&mut self.stash);
        self.reap(out);
        loop {
            let need = want.saturating_sub(out.len() - before);
            if need == 0 && self.unsubmitted == 0 {
                break;
            }
            let pending = self.unsubmitted;
            let progressed = self.enter(need)?;
            self.reap(out);
            if need == 0 && progressed && self.unsubmitted == pending {
                break;
            }
        }
        Ok(out.len() - before)
    }

    /// An NVMe Flush (`NVME_URING_CMD_IO`, opcode 0x00) flagged
    /// `IOSQE_IO_DRAIN`, so the kernel issues it only after every command
    /// submitted to this ring before it has completed: it covers the
    /// writes pushed to this queue as well as those completed anywhere.
    /// Both modes are the same command (the namespace has no metadata to
    /// skip). Their completions are kept for the next `poll`/`wait`.
    fn flush(&mut self, _mode: FlushMode) -> Result<()> {
        let cmd = UringCmd { opcode: sys::OP_FLUSH, nsid: self.shared.geometry.nsid, ..Default::default() };
        let sqe = opcode::UringCmd80::new(types::Fixed(0), sys::NVME_URING_CMD_IO)
            .cmd(cmd.bytes())
            .build()
            .flags(squeue::Flags::IO_DRAIN)
            .user_data(self.flush_user_data);
        self.flush_result = None;
        loop {
            // SAFETY: the entry names no memory; fixed file 0 is registered
            // for the ring's life. Only this queue pushes to this ring.
            if unsafe { self.ring.submission_shared().push(&sqe) }.is_ok() {
                break;
            }
            self.make_room()?;
        }
        self.unsubmitted += 1;
        let mut stash = std::mem::take(&mut self.stash);
        let r = loop {
            if let Err(e) = self.enter(1) {
                break Err(e);
            }
            self.reap(&mut stash);
            if let Some(res) = self.flush_result.take() {
                let command = format!("NVMe Flush of namespace {}", self.shared.geometry.nsid);
                break if res < 0 {
                    Err(Error::io(command, io::Error::from_raw_os_error(-res)))
                } else if let Some(status) = status_of(res as u32) {
                    Err(NvmeUringError::Command { command, status }.into())
                } else {
                    Ok(())
                };
            }
        };
        self.stash = stash;
        r
    }
}

impl Drop for NvmeUringQueue {
    fn drop(&mut self) {
        let mut out = Vec::new();
        while self.inflight.len() > 0 || self.unsubmitted > 0 {
            out.clear();
            let all = self.inflight.len();
            if self.wait(all, &mut out).is_err() {
                // The ring cannot be waited on: keep the memory alive (and
                // registered) rather than free what the kernel may write.
                self.inflight.leak_all();
                break;
            }
        }
    }
}

impl std::fmt::Debug for NvmeUringQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvmeUringQueue")
            .field("ring_fd", &self.ring.as_raw_fd())
            .field("capacity", &self.capacity)
            .field("in_flight", &self.in_flight())
            .finish()
    }
}
