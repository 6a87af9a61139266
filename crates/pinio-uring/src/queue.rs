//! [`UringQueue`]: one ring, its in-flight table and its completions.

mod polled_flush;
mod rearm;
mod started_flush;
mod vectored;

pub use rearm::Reaped;

pub(crate) use vectored::mode as vectored_mode;

use crate::UringError;
use crate::inflight::InFlight;
use crate::registry::Sharing;
use crate::ring;
use crate::shared::Shared;
use io_uring::IoUring;
use pinio_core::{Completion, Direction, Error, FlushMode, FlushProgress, Op, OpError, Queue, Rejected, Result, Tally};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, OnceLock};

/// A queue of a [`crate::UringDevice`]: its own io_uring, subscribed to its
/// domain's table of registered buffers (so it accepts every region of the
/// domain), with the device's target registered as fixed file 0.
///
/// The queue owns the slice of every operation from [`Queue::push`] until
/// its completion is reaped; completions whose `user_data` names no
/// operation in flight (tagged-registration notifications, `MSG_RING`
/// messages, anything else) are counted and ignored. Dropping the queue
/// submits what was pushed and waits for every operation in flight.
pub struct UringQueue {
    shared: Arc<Shared>,
    /// Whether the domain uses fixed buffers (`shared.opts.fixed_buffers`).
    fixed_buffers: bool,
    /// Whether the device's IO is `O_DIRECT` (`shared.opts.direct`).
    direct: bool,
    /// Whether a kernel thread polls the submission ring (`opts.sqpoll`).
    sqpoll: bool,
    /// Whether the ring is `IORING_SETUP_IOPOLL` (`opts.iopoll`):
    /// completions are posted only when this queue polls for them.
    iopoll: bool,
    /// The result of the flush in flight, once its CQE is reaped.
    flush_result: Option<i32>,
    /// The mode of the flush started with `start_flush` and not yet seen
    /// done (`started_flush.rs`).
    started_flush: Option<FlushMode>,
    /// The `user_data` of this queue's flushes ([`flush_user_data`]).
    flush_user_data: u64,
    /// Shared with the domain's registry, which refreshes its buffer table.
    /// Only this queue touches the submission and completion queues.
    ring: Arc<IoUring>,
    subscription: Option<u64>,
    inflight: InFlight,
    /// Vectored operations in flight (their own table: the one-slice path
    /// stays as it is).
    vectored: vectored::Vectored,
    capacity: usize,
    /// Pushed but not yet accepted by the kernel.
    unsubmitted: usize,
    /// Completions reaped while the caller was not collecting (a submit that
    /// had to drain a full completion queue).
    stash: Vec<Completion>,
    strays: u64,
    eventfd: OnceLock<OwnedFd>,
    /// `false` while a single-issuer ring waits to be enabled by the first
    /// call that enters the kernel (which makes that thread its issuer).
    enabled: bool,
    /// For a single-issuer ring, which fetches the domain's buffer table
    /// itself instead of subscribing: the table generation it holds.
    table_generation: Option<u64>,
    /// `io_uring_enter` calls made so far.
    enters: u64,
    /// Reused by [`Queue::run`], so that it allocates nothing per call.
    run_out: Vec<Completion>,
}

impl UringQueue {
    /// A queue of `depth` operations (checked against the device's
    /// `max_queue_depth` before anything is allocated).
    pub(crate) fn new(shared: Arc<Shared>, depth: usize) -> Result<UringQueue> {
        let depth = shared.core.queue_depth(depth)?;
        let opts = &shared.opts;
        // A single-issuer ring takes registrations from its issuer thread
        // only, so it cannot be updated by the registry from whichever
        // thread registers a region: it fetches the whole table itself,
        // which needs a table that can be cloned, and no SQPOLL thread.
        let clonable = shared.registry.as_ref().is_none_or(|r| r.sharing() == Sharing::Clone);
        let single_issuer = opts.single_issuer && opts.sqpoll.is_none() && clonable;
        let setup =
            ring::Setup { sqpoll: opts.sqpoll, coop_taskrun: opts.coop_taskrun, single_issuer, iopoll: opts.iopoll };
        // The ring's fixed file is an open of the target of this queue's own
        // (`FileTarget::reopen`): queues on other threads then share no
        // `struct file` (its readahead state is written on every buffered
        // read). The registration holds its own reference, so `own` may go.
        // Where /proc is not mounted, the device's open file is used.
        let own = shared.target.reopen().ok();
        let fd = own.as_ref().map_or_else(|| shared.target.file.as_raw_fd(), |f| f.as_raw_fd());
        let ring = Arc::new(ring::build_with(opts.ring_entries, setup, depth, fd)?);
        drop(own);
        let (subscription, table_generation) = match &shared.registry {
            // While the ring is disabled any thread may register with it.
            Some(r) if single_issuer => (None, Some(r.refresh(&ring)?)),
            Some(r) => (Some(r.subscribe(Arc::clone(&ring))?), None),
            None => (None, None),
        };
        Ok(UringQueue {
            fixed_buffers: shared.opts.fixed_buffers,
            direct: shared.opts.direct,
            sqpoll: shared.opts.sqpoll.is_some(),
            iopoll: shared.opts.iopoll,
            flush_result: None,
            started_flush: None,
            flush_user_data: flush_user_data(),
            vectored: vectored::Vectored::new(shared.core.capabilities().vectored),
            shared,
            ring,
            subscription,
            inflight: InFlight::with_capacity(depth),
            capacity: depth,
            unsubmitted: 0,
            stash: Vec::new(),
            strays: 0,
            eventfd: OnceLock::new(),
            enabled: !single_issuer,
            table_generation,
            enters: 0,
            run_out: Vec::with_capacity(1),
        })
    }

    /// The ring's file descriptor (for `IORING_OP_MSG_RING` from other rings
    /// or `IORING_SETUP_ATTACH_WQ`). Submitting on it from elsewhere is not
    /// supported; completions it receives that name no operation of this
    /// queue are ignored.
    pub fn ring_fd(&self) -> RawFd {
        self.ring.as_raw_fd()
    }

    /// Completions received that named no operation in flight.
    pub fn stray_completions(&self) -> u64 {
        self.strays
    }

    /// `io_uring_enter` calls this queue has made (submitting, waiting,
    /// polling with completions pending in the kernel): a measure of its
    /// batching.
    pub fn enter_calls(&self) -> u64 {
        self.enters
    }

    /// What a single-issuer ring needs before it enters the kernel: to be
    /// enabled (the calling thread becomes its issuer) and to hold the
    /// domain's current buffer table.
    #[cold]
    #[inline(never)]
    fn prepare_single_issuer(&mut self) -> Result<()> {
        if !self.enabled {
            ring::enable(&self.ring)?;
            self.enabled = true;
        }
        if let (Some(held), Some(registry)) = (self.table_generation, &self.shared.registry)
            && held != registry.generation()
        {
            let now = registry.refresh(&self.ring).map_err(|e| match e {
                UringError::CloneBuffers { source } if source.raw_os_error() == Some(libc::EEXIST) => {
                    UringError::NotOwner
                }
                e => e,
            })?;
            self.table_generation = Some(now);
        }
        Ok(())
    }

    /// One `io_uring_enter` submitting what is pushed and waiting for `want`
    /// completions. `Ok(false)` means try again after reaping (interrupted,
    /// or the kernel's completion backlog is full).
    ///
    /// On an IOPOLL ring (without SQPOLL, whose kernel thread polls) every
    /// call passes `IORING_ENTER_GETEVENTS`: it is the only way completions
    /// reach the completion ring. With `want` 0 the kernel polls the
    /// device once without spinning; with more it spins until `want`
    /// operations are done.
    fn enter(&mut self, want: usize) -> Result<bool> {
        if !self.enabled
            || self.table_generation.is_some_and(|g| Some(g) != self.shared.registry.as_ref().map(|r| r.generation()))
        {
            self.prepare_single_issuer()?;
        }
        self.enters += 1;
        let entered = if self.iopoll && !self.sqpoll {
            // SAFETY: no signal mask or extended argument is passed; the
            // submissions were pushed by this queue and name memory its
            // in-flight tables own.
            unsafe {
                self.ring.submitter().enter::<libc::sigset_t>(
                    self.unsubmitted as u32,
                    want as u32,
                    crate::sys::IORING_ENTER_GETEVENTS,
                    None,
                )
            }
        } else {
            self.ring.submitter().submit_and_wait(want)
        };
        match entered {
            Ok(n) => {
                self.unsubmitted = if self.sqpoll {
                    // With SQPOLL the call returns what was in the ring when
                    // it looked (0 if the kernel thread had taken it all), not
                    // what was consumed: what is still unconsumed is what
                    // the submission ring still holds.
                    // SAFETY: only this queue pushes to this ring; the view
                    // only reads its head and tail.
                    unsafe { self.ring.submission_shared() }.len()
                } else {
                    self.unsubmitted.saturating_sub(n)
                };
                Ok(true)
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY | libc::EAGAIN)) => Ok(false),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Err(UringError::NotOwner.into()),
            Err(source) => Err(UringError::Enter { source }.into()),
        }
    }

    /// `push` when the submission queue had no room for `op` (taken back
    /// out of the in-flight table): enters the kernel until it has room,
    /// then pushes again.
    #[cold]
    #[inline(never)]
    fn push_when_full(&mut self, op: Op) -> Result<(), Rejected> {
        loop {
            // The submission queue is larger than the capacity, so this is
            // only reached if the kernel has not yet consumed earlier entries.
            let progressed = match self.enter(0) {
                Ok(p) => p,
                Err(error) => return Err(Rejected { error, op }),
            };
            if !progressed {
                let mut stash = std::mem::take(&mut self.stash);
                self.reap(&mut stash);
                self.stash = stash;
            }
            // SAFETY: only this queue uses this ring's submission queue, and
            // this handle only reads its head and tail.
            if !unsafe { self.ring.submission_shared() }.is_full() {
                return self.push(op);
            }
        }
    }

    /// Moves every completion in the ring into `out`; returns how many.
    fn reap(&mut self, out: &mut Vec<Completion>) -> usize {
        let before = out.len();
        // SAFETY: only this queue reads this ring's completion queue; the
        // registry uses the ring for registration calls only.
        let cq = unsafe { self.ring.completion_shared() };
        // Completions are written straight into `out`'s spare capacity (a
        // `push` would build each 104-byte completion on the stack first to
        // survive a reallocation that cannot happen after this reserve).
        // If anything panics before `set_len`, the written completions are
        // leaked, not dropped: their memory stays alive, which is safe.
        out.reserve(cq.len());
        let spare = &mut out.spare_capacity_mut()[..cq.len()];
        let mut n = 0;
        // Counted in plain integers and folded into the device's atomic
        // statistics once per call, before the completions reach the caller.
        let mut tally = Tally::default();
        for cqe in cq {
            let Some(op) = self.inflight.remove(cqe.user_data()) else {
                if let Some(done) = self.vectored.complete(cqe.user_data(), cqe.result()) {
                    if let Some(c) = done {
                        tally.add(c.dir, &c.result);
                        spare[n].write(c);
                        n += 1;
                    }
                } else if cqe.user_data() == self.flush_user_data {
                    self.flush_result = Some(cqe.result());
                } else {
                    self.strays += 1;
                }
                continue;
            };
            let res = cqe.result();
            if res < 0 {
                let c = spare[n].write(failed(op, -res, self.iopoll));
                tally.add(c.dir, &c.result);
                n += 1;
                continue;
            }
            let result = Ok(res as usize);
            tally.add(op.dir, &result);
            spare[n].write(Completion {
                tag: op.tag,
                dir: op.dir,
                dev_offset: op.dev_offset,
                slice: op.slice,
                result,
                rest: op.rest,
            });
            n += 1;
        }
        // SAFETY: the first `n` spare elements were just written.
        unsafe { out.set_len(before + n) };
        let stats = self.shared.core.stats();
        tally.fold_into(stats);
        if !self.direct && tally.bytes() > 0 {
            stats.copied(tally.bytes());
        }
        out.len() - before
    }
}

/// A `user_data` for this queue's flushes: below 2^32, so never a live
/// entry of the in-flight table (whose keys carry a non-zero sequence number
/// above), and random at or above 2^31, so that a stray (registration tags
/// post small numbers; a `MSG_RING` from elsewhere could post anything)
/// matches it with a chance of 2^-31 at most.
fn flush_user_data() -> u64 {
    u64::from(crate::inflight::random_u32() | 0x8000_0000)
}

/// The completion of `op`, which failed with `errno` (on an IOPOLL ring if
/// `polled`: `EOPNOTSUPP` then means the target cannot poll).
#[cold]
#[inline(never)]
fn failed(op: Op, errno: i32, polled: bool) -> Completion {
    let error = transfer_error(op.dir, &op.slice, op.dev_offset, errno, polled);
    Completion::of(op, Err(error))
}

/// The error of a read or write of `slice` at `dev_offset` that failed with
/// `errno` (on an IOPOLL ring if `polled`).
#[cold]
#[inline(never)]
fn transfer_error(dir: Direction, slice: &pinio_core::Slice, dev_offset: u64, errno: i32, polled: bool) -> Error {
    let what = match (dir, slice.key().is_registered()) {
        (Direction::Read, true) => "READ_FIXED",
        (Direction::Read, false) => "READ",
        (Direction::Write, true) => "WRITE_FIXED",
        (Direction::Write, false) => "WRITE",
    };
    let why = if polled && errno == libc::EOPNOTSUPP {
        " on an IOPOLL ring (the target's file system or driver has no polled IO; open it without UringOptions::iopoll)"
    } else {
        ""
    };
    Error::io(
        format!("{what} of {} bytes at device offset {:#x}{why}", slice.len(), dev_offset),
        io::Error::from_raw_os_error(errno),
    )
}

/// The IO path as inherent methods, which the [`Queue`] implementation
/// calls: a caller holding the concrete queue ([`crate::UringDevice::uring_queue`])
/// gets them resolved statically and inlined (no trait-object call, the
/// `Op` built in place), with the same checks and errors.
impl UringQueue {
    /// [`Queue::push`]: checks `op` (queue full, the slice's domain,
    /// alignment, transfer size, bounds against the current size, read-only
    /// device, segment count), moves it into the in-flight table and writes
    /// its SQE.
    #[inline]
    pub fn push(&mut self, op: Op) -> Result<(), Rejected> {
        if let Err(error) = self.shared.core.check_push(&op, self.in_flight(), self.capacity) {
            return Err(Rejected { error, op });
        }
        if op.is_vectored() {
            return self.push_vectored(op);
        }
        let entry = match self.inflight.insert(op) {
            Ok(e) => e,
            Err(op) => return Err(Rejected { error: Error::QueueFull { capacity: self.capacity }, op }),
        };
        let (user_data, unregistered) = (entry.key(), entry.unregistered());
        // The slice also keeps its region, and so its buffer slot, registered.
        // Only this queue pushes to this submission queue.
        // SAFETY: the entry names the slice's memory, owned by the in-flight table until its
        // completion is reaped (the DMA ownership rule, pinio_core::domain), and fixed file 0,
        // registered for this ring's whole life.
        if unsafe { self.ring.submission_shared().push(entry.sqe().entry()) }.is_err() {
            let op = self.inflight.remove(user_data).expect("just inserted");
            return self.push_when_full(op);
        }
        self.unsubmitted += 1;
        // Unregistered although fixed buffers are on: a region the fallback
        // policy let through.
        if self.fixed_buffers && unregistered {
            self.shared.core.stats().unregistered_fallback();
        }
        Ok(())
    }

    /// [`Queue::push_batch`] for any iterator: every operation gets the
    /// checks of [`UringQueue::push`], and the batch is published to the
    /// submission ring with one tail update at the end (or before a slow
    /// path: a vectored operation, a full ring, a refusal).
    #[inline]
    pub fn push_batch<I: IntoIterator<Item = Op>>(&mut self, ops: I) -> Result<usize, Rejected> {
        let mut pushed = 0;
        let mut ops = ops.into_iter();
        'views: loop {
            // SAFETY: only this queue pushes to this submission queue; the
            // view publishes its entries (one tail store) when dropped, at
            // the end of the batch or before any slow path below.
            let mut sq = unsafe { self.ring.submission_shared() };
            for op in ops.by_ref() {
                let in_flight = self.inflight.len() + self.vectored.len() + self.stash.len();
                if let Err(error) = self.shared.core.check_push(&op, in_flight, self.capacity) {
                    return Err(Rejected { error, op });
                }
                if op.is_vectored() {
                    drop(sq);
                    self.push_vectored(op)?;
                    pushed += 1;
                    continue 'views;
                }
                let entry = match self.inflight.insert(op) {
                    Ok(e) => e,
                    Err(op) => return Err(Rejected { error: Error::QueueFull { capacity: self.capacity }, op }),
                };
                let (user_data, unregistered) = (entry.key(), entry.unregistered());
                // SAFETY: as in `push`: the entry names the slice's memory,
                // owned by the in-flight table until its completion is
                // reaped, and fixed file 0, registered for the ring's life.
                if unsafe { sq.push(entry.sqe().entry()) }.is_err() {
                    drop(sq);
                    let op = self.inflight.remove(user_data).expect("just inserted");
                    self.push_when_full(op)?;
                    pushed += 1;
                    continue 'views;
                }
                self.unsubmitted += 1;
                if self.fixed_buffers && unregistered {
                    self.shared.core.stats().unregistered_fallback();
                }
                pushed += 1;
            }
            return Ok(pushed);
        }
    }

    /// [`Queue::submit`].
    pub fn submit(&mut self) -> Result<usize> {
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

    /// [`Queue::poll`].
    pub fn poll(&mut self, out: &mut Vec<Completion>) -> Result<usize> {
        let enters = self.enters;
        self.submit()?;
        // Under IOPOLL nothing is posted unless this queue polls: once per
        // call with operations in flight (submitting polled already).
        let poll_device = self.iopoll && self.enters == enters && self.inflight.len() + self.vectored.len() > 0;
        // With COOP_TASKRUN or DEFER_TASKRUN the kernel posts completions
        // only when this thread enters it; IORING_SQ_TASKRUN says some wait.
        // SAFETY: only this queue uses this ring's submission queue; the
        // view only reads its flags.
        if self.unsubmitted == 0 && (poll_device || unsafe { self.ring.submission_shared() }.taskrun()) {
            self.enter(0)?;
        }
        let before = out.len();
        out.append(&mut self.stash);
        self.reap(out);
        Ok(out.len() - before)
    }

    /// [`Queue::wait`].
    pub fn wait(&mut self, min: usize, out: &mut Vec<Completion>) -> Result<usize> {
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
                break; // the kernel accepted nothing more; try on the next call
            }
        }
        Ok(out.len() - before)
    }
}

impl Queue for UringQueue {
    fn capacity(&self) -> usize {
        self.capacity
    }

    fn in_flight(&self) -> usize {
        self.inflight.len() + self.vectored.len() + self.stash.len()
    }

    #[inline]
    fn push(&mut self, op: Op) -> Result<(), Rejected> {
        UringQueue::push(self, op)
    }

    fn push_batch(&mut self, ops: &mut dyn Iterator<Item = Op>) -> Result<usize, Rejected> {
        UringQueue::push_batch(self, ops)
    }

    fn submit(&mut self) -> Result<usize> {
        UringQueue::submit(self)
    }

    fn poll(&mut self, out: &mut Vec<Completion>) -> Result<usize> {
        UringQueue::poll(self, out)
    }

    fn wait(&mut self, min: usize, out: &mut Vec<Completion>) -> Result<usize> {
        UringQueue::wait(self, min, out)
    }

    /// [`Queue::run`] without the default's vector per call: one reused
    /// completion vector of the queue's own.
    fn run(&mut self, op: Op) -> Result<Completion, OpError> {
        if self.in_flight() != 0 {
            let error = Error::Unsupported {
                what: "run() on a queue with operations in flight".into(),
                hint: "wait for them first, or use push/submit/wait".into(),
            };
            return Err(OpError::of_op(error, op));
        }
        self.push(op).map_err(|r| OpError::of_op(r.error, r.op))?;
        let mut out = std::mem::take(&mut self.run_out);
        let r = loop {
            match self.wait(1, &mut out) {
                Ok(_) => {
                    if let Some(c) = out.pop() {
                        break Ok(c);
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                // The operation stays owned by the queue; a later wait or
                // the queue's drop collects it.
                Err(error) => break Err(OpError::no_slices(error)),
            }
        };
        self.run_out = out;
        r
    }

    /// `IORING_OP_FSYNC` (with `IORING_FSYNC_DATASYNC` for
    /// [`FlushMode::Data`]) on the target, flagged `IOSQE_IO_DRAIN`: the
    /// kernel starts it only after every operation submitted to this ring
    /// before it has completed, so it covers the writes pushed before the
    /// call as well as those completed anywhere. Their completions are kept
    /// for the next `poll`/`wait`.
    ///
    /// On an IOPOLL ring, which refuses `FSYNC`: waits for every operation
    /// pushed to this queue, then `fdatasync`/`fsync` (`polled_flush.rs`).
    fn flush(&mut self, mode: FlushMode) -> Result<()> {
        if self.iopoll {
            return self.drain_then_sync(mode);
        }
        self.finish_started_flush()?;
        let sqe = self.fsync_sqe(mode);
        self.flush_result = None;
        loop {
            // SAFETY: the entry names no memory; fixed file 0 is registered
            // for the ring's whole life. Only this queue pushes to this ring.
            if unsafe { self.ring.submission_shared().push(&sqe) }.is_ok() {
                break;
            }
            if !self.enter(0)? {
                let mut stash = std::mem::take(&mut self.stash);
                self.reap(&mut stash);
                self.stash = stash;
            }
        }
        self.unsubmitted += 1;
        let mut stash = std::mem::take(&mut self.stash);
        let r = loop {
            // Interrupted or busy (Ok(false)) just means: reap and go on.
            if let Err(e) = self.enter(1) {
                break Err(e);
            }
            self.reap(&mut stash);
            if let Some(res) = self.flush_result.take() {
                break self.flush_outcome(mode, res);
            }
        };
        self.stash = stash;
        r
    }

    /// Submits the same `FSYNC` as [`Queue::flush`] and returns:
    /// [`FlushProgress::Running`] until a reap finds its CQE
    /// (`started_flush.rs`). On an IOPOLL ring the flush is made here,
    /// blocking (as [`Queue::flush`]), and reported done: its operations
    /// complete only when this thread polls, and `fsync` has no polled form.
    fn start_flush(&mut self, mode: FlushMode) -> Result<FlushProgress> {
        if self.iopoll {
            return self.drain_then_sync(mode).map(|()| FlushProgress::Done);
        }
        self.start_flush_sqe(mode)
    }

    fn poll_flush(&mut self) -> Result<FlushProgress> {
        self.poll_started_flush()
    }

    /// `None` on an IOPOLL ring: its completions are posted only when the
    /// queue polls, so nothing would ever make the descriptor readable.
    fn event_fd(&self) -> Option<BorrowedFd<'_>> {
        if self.iopoll {
            return None;
        }
        if let Some(fd) = self.eventfd.get() {
            return Some(fd.as_fd());
        }
        // SAFETY: eventfd(2) has no memory-safety preconditions.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if raw < 0 {
            return None;
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        self.ring.submitter().register_eventfd(fd.as_raw_fd()).ok()?;
        // Completions posted before the registration did not signal it; if
        // any operation is outstanding, make the descriptor readable so that
        // a waiter looks at the queue (at worst it finds nothing yet).
        if self.in_flight() > 0 {
            let one = 1u64;
            // SAFETY: writes 8 bytes from a valid u64 to our own eventfd.
            unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
        Some(self.eventfd.get_or_init(|| fd).as_fd())
    }
}

impl Drop for UringQueue {
    fn drop(&mut self) {
        let mut out = Vec::new();
        while self.inflight.len() + self.vectored.len() > 0 || self.unsubmitted > 0 {
            out.clear();
            let all = self.inflight.len() + self.vectored.len();
            if self.wait(all, &mut out).is_err() {
                // The ring cannot be waited on: keep the memory alive (and
                // registered) rather than free what the kernel may write.
                self.inflight.leak_all();
                self.vectored.leak_all();
                break;
            }
        }
        if let (Some(id), Some(registry)) = (self.subscription, &self.shared.registry) {
            registry.unsubscribe(id);
        }
    }
}

impl std::fmt::Debug for UringQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringQueue")
            .field("ring_fd", &self.ring.as_raw_fd())
            .field("capacity", &self.capacity)
            .field("in_flight", &self.in_flight())
            .finish()
    }
}
