//! [`UringQueue::wait_rearm`]: each completion looked at in place, its
//! slice still in the in-flight table, and either moved again at another
//! device offset ([`Reaped::rearm`]) or handed out as a [`Completion`].

use super::{UringQueue, failed, transfer_error};
use crate::inflight::InFlight;
use crate::transfer::Transfer;
use pinio_core::{Completion, DeviceCore, Direction, Error, Rejected, Result, Slice, Tally};

/// One completed one-slice operation of [`UringQueue::wait_rearm`], its
/// slice still held by the queue: read its outcome and its bytes, then
/// [`Reaped::rearm`] it (the same slice, the same direction, another device
/// offset) or take it out with [`Reaped::into_completion`]. Dropped (or
/// forgotten) without either, its completion is kept for the next
/// [`UringQueue::wait`]/[`UringQueue::poll`].
pub struct Reaped<'a, 'q> {
    cx: &'a mut Context<'q>,
    idx: u32,
    res: i32,
}

/// What every [`Reaped`] of one pass over the completion ring shares,
/// built once per pass: one view of the submission ring, published (one
/// tail store) when the pass ends.
struct Context<'q> {
    sq: io_uring::SubmissionQueue<'q, io_uring::squeue::Entry>,
    inflight: &'q mut InFlight,
    core: &'q DeviceCore,
    unsubmitted: &'q mut usize,
    stash: &'q mut Vec<Completion>,
    capacity: usize,
    polled: bool,
    fixed_buffers: bool,
    /// Whether the [`Reaped`] handed out last was re-armed or taken out;
    /// if not (dropped, or forgotten), the pass keeps its completion.
    consumed: bool,
}

impl Reaped<'_, '_> {
    /// The tag it was pushed with.
    #[inline]
    pub fn tag(&self) -> u64 {
        self.cx.inflight.fields(self.idx).2
    }

    /// Its direction.
    #[inline]
    pub fn dir(&self) -> Direction {
        self.cx.inflight.fields(self.idx).0
    }

    /// Its device offset.
    #[inline]
    pub fn dev_offset(&self) -> u64 {
        self.cx.inflight.fields(self.idx).1
    }

    /// Bytes transferred, as [`Completion::result`] says them.
    #[inline]
    pub fn result(&self) -> Result<usize> {
        if self.res >= 0 { Ok(self.res as usize) } else { Err(self.error()) }
    }

    #[cold]
    #[inline(never)]
    fn error(&self) -> Error {
        let (dir, dev_offset, _) = self.cx.inflight.fields(self.idx);
        transfer_error(dir, self.slice(), dev_offset, -self.res, self.cx.polled)
    }

    /// The slice: for a read, the bytes the device wrote.
    #[inline]
    pub fn slice(&self) -> &Slice {
        self.cx.inflight.slice(self.idx)
    }

    /// The slice's bytes, mutably (the device is done with them until the
    /// slice is re-armed), such as the next data to write. Bytes only: the
    /// slice itself cannot be swapped for another, whose domain, address
    /// and length were never checked.
    #[inline]
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        self.cx.inflight.slice_mut(self.idx)
    }

    /// Moves the same slice again, in the same direction, at `dev_offset`,
    /// tagged `tag`: into the submission ring at once, submitted by the next
    /// call that enters the kernel, like a pushed operation. The slice's
    /// domain, address, length, transfer size and direction were admitted
    /// when it was pushed and cannot have changed; the device offset is
    /// checked for alignment and against the device's current size
    /// ([`DeviceCore::check_rearm`]). Refused (or, only while a polling
    /// kernel thread lags, with the submission ring full:
    /// [`Error::QueueFull`]), the operation comes back inside the error,
    /// out of the queue.
    #[inline]
    pub fn rearm(mut self, dev_offset: u64, tag: u64) -> Result<(), Rejected> {
        self.cx.consumed = true;
        let (dir, _, _) = self.cx.inflight.fields(self.idx);
        let slice = self.cx.inflight.slice(self.idx);
        if let Err(error) = self.cx.core.check_rearm(dir, slice.len() as u64, dev_offset) {
            return Err(self.refused(error, dev_offset, tag));
        }
        let transfer = Transfer::of_slice(dir, slice, dev_offset);
        let user_data = self.cx.inflight.rearm(self.idx, dev_offset, tag);
        let sqe = transfer.sqe(user_data);
        // The entry names the slice's memory, which the in-flight table keeps
        // owning until this new `user_data`'s completion is reaped, and fixed
        // file 0, registered for the ring's whole life.
        // SAFETY: only this queue pushes to this ring; the entry's memory and file outlive it (above).
        let pushed = unsafe { self.cx.sq.push(&sqe) }.is_ok() || self.push_after_sync(&sqe);
        if !pushed {
            return Err(self.refused(Error::QueueFull { capacity: self.cx.capacity }, dev_offset, tag));
        }
        *self.cx.unsubmitted += 1;
        if self.cx.fixed_buffers && transfer.unregistered() {
            self.cx.core.stats().unregistered_fallback();
        }
        Ok(())
    }

    /// The view found the ring full: look again at what the kernel took.
    #[cold]
    #[inline(never)]
    fn push_after_sync(&mut self, sqe: &io_uring::squeue::Entry) -> bool {
        self.cx.sq.sync();
        // SAFETY: as in `rearm`.
        unsafe { self.cx.sq.push(sqe) }.is_ok()
    }

    /// The operation taken out of the queue, as it would have been pushed
    /// at `dev_offset` with `tag`, refused with `error`.
    #[cold]
    #[inline(never)]
    fn refused(&mut self, error: Error, dev_offset: u64, tag: u64) -> Rejected {
        let mut op = self.cx.inflight.take(self.idx);
        (op.dev_offset, op.tag) = (dev_offset, tag);
        Rejected { error, op }
    }

    /// The completion, as [`UringQueue::wait`] would hand it over: the slice
    /// leaves the queue.
    pub fn into_completion(self) -> Completion {
        self.cx.consumed = true;
        take_completion(&mut *self.cx, self.idx, self.res)
    }
}

/// The completion of live entry `idx`, whose CQE said `res`, out of the
/// table.
fn take_completion(cx: &mut Context<'_>, idx: u32, res: i32) -> Completion {
    let op = cx.inflight.take(idx);
    if res >= 0 { Completion::of(op, Ok(res as usize)) } else { failed(op, -res, cx.polled) }
}

impl Drop for Reaped<'_, '_> {
    /// Dropped without a decision (also while a panicking handler
    /// unwinds): the completion is kept, so the entry does not stay in the
    /// table waiting for a completion that already came.
    #[inline]
    fn drop(&mut self) {
        if !self.cx.consumed {
            self.cx.consumed = true;
            keep(self.cx, self.idx, self.res);
        }
    }
}

/// A [`Reaped`] dropped (or forgotten) without a decision: its completion
/// waits for the next wait or poll.
#[cold]
#[inline(never)]
fn keep(cx: &mut Context<'_>, idx: u32, res: i32) {
    let c = take_completion(cx, idx, res);
    cx.stash.push(c);
}

impl UringQueue {
    /// [`UringQueue::wait`] for a loop that moves the same slices again:
    /// submits what was pushed before the call, then blocks until at least
    /// `min` completions (capped at the operations in flight) have been
    /// reaped; each completed one-slice operation is handed to `handler` as
    /// a [`Reaped`], its slice still in the queue, to be re-armed at another
    /// device offset or taken out. Returns how many completions were
    /// reaped. Completions of vectored operations, and those the handler
    /// drops, are kept for the next [`UringQueue::wait`]/[`UringQueue::poll`].
    ///
    /// Re-arming skips what cannot have changed (the slice's domain,
    /// address, length, transfer size and direction were checked at push)
    /// and the in-flight table's release and reinsertion; the device offset
    /// is checked as at push. The device's statistics count the
    /// completions when the call returns.
    ///
    /// ```no_run
    /// # fn f(q: &mut pinio_uring::UringQueue, mut next_offset: impl FnMut() -> u64) -> pinio_core::Result<()> {
    /// q.wait_rearm(1, |done| match done.result() {
    ///     Ok(_) => {
    ///         let _bytes: &[u8] = done.slice(); // the data read
    ///         let tag = done.tag();
    ///         if let Err(refused) = done.rearm(next_offset(), tag) {
    ///             drop(refused.op); // out of the queue, its slice with it
    ///         }
    ///     }
    ///     Err(_) => drop(done.into_completion()),
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn wait_rearm<F>(&mut self, min: usize, mut handler: F) -> Result<usize>
    where
        F: FnMut(Reaped<'_, '_>),
    {
        let want = min.min(self.inflight.len() + self.vectored.len());
        // Pushed before the call: submitted before it returns.
        let mut owed = self.unsubmitted;
        let mut got = self.reap_in_place(&mut handler);
        loop {
            let need = want.saturating_sub(got);
            if need == 0 && owed == 0 {
                break;
            }
            let pending = self.unsubmitted;
            let progressed = self.enter(need)?;
            // The kernel takes entries in ring order: those owed first.
            owed = owed.saturating_sub(pending - self.unsubmitted);
            got += self.reap_in_place(&mut handler);
            if need == 0 && progressed && self.unsubmitted == pending {
                break; // the kernel accepted nothing more; try on the next call
            }
        }
        Ok(got)
    }

    /// One pass over the completion ring for [`UringQueue::wait_rearm`];
    /// returns how many completions it reaped.
    fn reap_in_place<F>(&mut self, handler: &mut F) -> usize
    where
        F: FnMut(Reaped<'_, '_>),
    {
        let mut tally = Tally::default();
        let mut n = 0;
        // SAFETY: only this queue reads this ring's completion queue and
        // pushes to its submission queue; the registry uses the ring for
        // registration calls only.
        let (cq, sq) = unsafe { (self.ring.completion_shared(), self.ring.submission_shared()) };
        let mut cx = Context {
            sq,
            inflight: &mut self.inflight,
            core: &self.shared.core,
            unsubmitted: &mut self.unsubmitted,
            stash: &mut self.stash,
            capacity: self.capacity,
            polled: self.iopoll,
            fixed_buffers: self.fixed_buffers,
            consumed: false,
        };
        for cqe in cq {
            let (user_data, res) = (cqe.user_data(), cqe.result());
            let Some(idx) = cx.inflight.find(user_data) else {
                if let Some(done) = self.vectored.complete(user_data, res) {
                    if let Some(c) = done {
                        tally.add(c.dir, &c.result);
                        cx.stash.push(c);
                        n += 1;
                    }
                } else if user_data == self.flush_user_data {
                    self.flush_result = Some(res);
                } else {
                    self.strays += 1;
                }
                continue;
            };
            tally.add_raw(cx.inflight.fields(idx).0, if res >= 0 { Ok(res as usize) } else { Err(()) });
            n += 1;
            cx.consumed = false;
            handler(Reaped { cx: &mut cx, idx, res });
            if !cx.consumed {
                keep(&mut cx, idx, res);
            }
        }
        // Publishes what the handler re-armed (one tail store).
        drop(cx);
        let stats = self.shared.core.stats();
        tally.fold_into(stats);
        if !self.direct && tally.bytes() > 0 {
            stats.copied(tally.bytes());
        }
        n
    }
}
