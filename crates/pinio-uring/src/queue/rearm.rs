//! [`UringQueue::wait_rearm`]: each completion looked at in place, its
//! slice still in the in-flight table, and either moved again at another
//! device offset ([`Reaped::rearm`]) or handed out as a [`Completion`].

use super::{UringQueue, failed, transfer_error};
use crate::inflight::{Entry, FreeList};
use pinio_core::{Completion, DeviceCore, Direction, Error, Rejected, Result, Slice};
use std::mem::ManuallyDrop;

/// One completed one-slice operation of [`UringQueue::wait_rearm`], its
/// slice still held by the queue: read its outcome and its bytes, then
/// [`Reaped::rearm`] it (the same slice, the same direction, another device
/// offset) or take it out with [`Reaped::into_completion`]. Dropped (or
/// forgotten) without either, its completion is kept for the next
/// [`UringQueue::wait`]/[`UringQueue::poll`].
pub struct Reaped<'a, 'q> {
    cx: &'a mut Context<'q>,
    /// Its live entry in the in-flight table.
    entry: &'a mut Entry,
    res: i32,
}

/// What every [`Reaped`] of one pass over the completion ring shares,
/// built once per pass: one view of the submission ring, published (one
/// tail store) when the pass ends.
struct Context<'q> {
    sq: io_uring::SubmissionQueue<'q, io_uring::squeue::Entry>,
    /// The in-flight table's free list (its entries are lent out one by
    /// one, each in its [`Reaped`]).
    list: &'q mut FreeList,
    core: &'q DeviceCore,
    stash: &'q mut Vec<Completion>,
    /// Entries re-armed into `sq` in this pass (added to the queue's
    /// unsubmitted count when the pass ends).
    rearmed: usize,
    /// Of those, entries of regions outside the registered-buffer table
    /// (counted as fallbacks when the pass ends, if fixed buffers are on).
    unregistered: u64,
    capacity: usize,
    polled: bool,
}

impl Reaped<'_, '_> {
    /// The tag it was pushed with.
    #[inline]
    pub fn tag(&self) -> u64 {
        self.entry.fields().2
    }

    /// Its direction.
    #[inline]
    pub fn dir(&self) -> Direction {
        self.entry.fields().0
    }

    /// Its device offset.
    #[inline]
    pub fn dev_offset(&self) -> u64 {
        self.entry.fields().1
    }

    /// Bytes transferred, as [`Completion::result`] says them.
    #[inline]
    pub fn result(&self) -> Result<usize> {
        if self.res >= 0 { Ok(self.res as usize) } else { Err(error(self.cx, self.entry, self.res)) }
    }

    /// The slice: for a read, the bytes the device wrote.
    #[inline]
    pub fn slice(&self) -> &Slice {
        self.entry.slice()
    }

    /// The slice's bytes, mutably (the device is done with them until the
    /// slice is re-armed), such as the next data to write. Bytes only: the
    /// slice itself cannot be swapped for another, whose domain, address
    /// and length were never checked.
    #[inline]
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        self.entry.slice_mut()
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
    pub fn rearm(self, dev_offset: u64, tag: u64) -> Result<(), Rejected> {
        // Decided: the drop that keeps an undecided completion must not run.
        let this = &mut *ManuallyDrop::new(self);
        let (cx, entry) = (&mut *this.cx, &mut *this.entry);
        if let Err(error) = cx.core.check_rearm(entry.fields().0, entry.sqe().len(), dev_offset) {
            return Err(refused(cx, entry, error, dev_offset, tag));
        }
        // Its stored SQE, at the new offset with the new key.
        entry.rearm(dev_offset, tag);
        // The entry names the slice's memory, which the in-flight table keeps
        // owning until this new `user_data`'s completion is reaped, and fixed
        // file 0, registered for the ring's whole life.
        // SAFETY: only this queue pushes to this ring; the entry's memory and file outlive it (above).
        if unsafe { cx.sq.push(entry.sqe().entry()) }.is_err() {
            return push_after_sync(cx, entry, tag);
        }
        cx.rearmed += 1;
        cx.unregistered += entry.unregistered() as u64;
        Ok(())
    }

    /// The completion, as [`UringQueue::wait`] would hand it over: the slice
    /// leaves the queue.
    pub fn into_completion(self) -> Completion {
        let this = &mut *ManuallyDrop::new(self);
        take_completion(this.cx, this.entry, this.res)
    }
}

/// The error of live entry `idx`, whose CQE said `res` (negative).
#[cold]
#[inline(never)]
fn error(cx: &Context<'_>, entry: &Entry, res: i32) -> Error {
    let (dir, dev_offset, _) = entry.fields();
    transfer_error(dir, entry.slice(), dev_offset, -res, cx.polled)
}

/// The view found the ring full: look again at what the kernel took, and
/// push the SQE of re-armed `entry` (tagged `tag`) again; if it still does
/// not fit, the operation leaves the queue refused.
#[cold]
#[inline(never)]
fn push_after_sync(cx: &mut Context<'_>, entry: &mut Entry, tag: u64) -> Result<(), Rejected> {
    cx.sq.sync();
    // SAFETY: as in `Reaped::rearm`.
    if unsafe { cx.sq.push(entry.sqe().entry()) }.is_err() {
        let error = Error::QueueFull { capacity: cx.capacity };
        let dev_offset = entry.sqe().dev_offset();
        return Err(refused(cx, entry, error, dev_offset, tag));
    }
    cx.rearmed += 1;
    cx.unregistered += entry.unregistered() as u64;
    Ok(())
}

/// Counts `n` re-armed operations that ran without registration although
/// fixed buffers are on (regions the fallback policy let through).
#[cold]
#[inline(never)]
fn fallbacks(core: &DeviceCore, n: u64) {
    for _ in 0..n {
        core.stats().unregistered_fallback();
    }
}

/// Live `entry` taken out of the queue, as it would have been pushed
/// at `dev_offset` with `tag`, refused with `error`.
#[cold]
#[inline(never)]
fn refused(cx: &mut Context<'_>, entry: &mut Entry, error: Error, dev_offset: u64, tag: u64) -> Rejected {
    let mut op = cx.list.take(entry);
    (op.dev_offset, op.tag) = (dev_offset, tag);
    Rejected { error, op }
}

/// The completion of live `entry`, whose CQE said `res`, out of the
/// table.
fn take_completion(cx: &mut Context<'_>, entry: &mut Entry, res: i32) -> Completion {
    let op = cx.list.take(entry);
    if res >= 0 { Completion::of(op, Ok(res as usize)) } else { failed(op, -res, cx.polled) }
}

impl Drop for Reaped<'_, '_> {
    /// Dropped without a decision (also while a panicking handler
    /// unwinds; [`Reaped::rearm`] and [`Reaped::into_completion`] do not
    /// drop it): the completion is kept, so the entry does not stay in the
    /// table waiting for a completion that already came.
    #[inline]
    fn drop(&mut self) {
        keep(self.cx, self.entry, self.res);
    }
}

/// A [`Reaped`] dropped (or forgotten) without a decision: its completion
/// waits for the next wait or poll.
#[cold]
#[inline(never)]
fn keep(cx: &mut Context<'_>, entry: &mut Entry, res: i32) {
    let c = take_completion(cx, entry, res);
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
    #[inline]
    pub fn wait_rearm<F>(&mut self, min: usize, mut handler: F) -> Result<usize>
    where
        F: FnMut(Reaped<'_, '_>),
    {
        let want = min.min(self.inflight.len() + self.vectored.len());
        // Pushed before the call: submitted before it returns.
        let mut owed = self.unsubmitted;
        let mut got = 0;
        // After an enter: whether it wanted no completion, made progress,
        // and how many entries were unsubmitted before it.
        let mut entered = None;
        loop {
            // One call site, so that the pass is inlined once.
            got += self.reap_in_place(&mut handler);
            if let Some((true, true, pending)) = entered
                && self.unsubmitted == pending
            {
                break; // the kernel accepted nothing more; try on the next call
            }
            let need = want.saturating_sub(got);
            if need == 0 && owed == 0 {
                break;
            }
            let pending = self.unsubmitted;
            let progressed = self.enter(need)?;
            // The kernel takes entries in ring order: those owed first.
            owed = owed.saturating_sub(pending - self.unsubmitted);
            entered = Some((need == 0, progressed, pending));
        }
        Ok(got)
    }

    /// One pass over the completion ring for [`UringQueue::wait_rearm`];
    /// returns how many completions it reaped.
    #[inline(always)]
    fn reap_in_place<F>(&mut self, handler: &mut F) -> usize
    where
        F: FnMut(Reaped<'_, '_>),
    {
        // The device's statistics, counted in plain integers and folded in
        // once per pass: every completion is one operation, a failure also
        // an error; `bytes` counts the bytes of every success, `written`
        // those of writes.
        let (mut n, mut failures, mut bytes, mut written) = (0u64, 0u64, 0u64, 0u64);
        // SAFETY: only this queue reads this ring's completion queue and
        // pushes to its submission queue; the registry uses the ring for
        // registration calls only.
        let (cq, sq) = unsafe { (self.ring.completion_shared(), self.ring.submission_shared()) };
        let (entries, list) = self.inflight.split();
        let mut cx = Context {
            sq,
            list,
            core: &self.shared.core,
            stash: &mut self.stash,
            rearmed: 0,
            unregistered: 0,
            capacity: self.capacity,
            polled: self.iopoll,
        };
        for cqe in cq {
            let (user_data, res) = (cqe.user_data(), cqe.result());
            let Some(entry) = Entry::find(entries, user_data) else {
                if let Some(done) = self.vectored.complete(user_data, res) {
                    if let Some(c) = done {
                        match (&c.result, c.dir) {
                            (Ok(b), Direction::Read) => bytes += *b as u64,
                            (Ok(b), Direction::Write) => (bytes, written) = (bytes + *b as u64, written + *b as u64),
                            (Err(_), _) => failures += 1,
                        }
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
            n += 1;
            if res >= 0 {
                // Without a branch on the direction: all bytes, and again
                // those of writes.
                let is_write = entry.fields().0 == Direction::Write;
                bytes += res as u64;
                written += res as u64 * is_write as u64;
            } else {
                failures += 1;
            }
            handler(Reaped { cx: &mut cx, entry, res });
            // Neither re-armed (a new key) nor taken out nor dropped: the
            // handler forgot it. Keep its completion.
            if let Some(entry) = Entry::find(entries, user_data) {
                keep(&mut cx, entry, res);
            }
        }
        let (rearmed, unregistered) = (cx.rearmed, cx.unregistered);
        // Publishes what the handler re-armed (one tail store).
        drop(cx);
        self.unsubmitted += rearmed;
        if self.fixed_buffers && unregistered > 0 {
            fallbacks(&self.shared.core, unregistered);
        }
        if n > 0 {
            let stats = self.shared.core.stats();
            stats.read_many(n - failures, bytes - written);
            if written > 0 {
                stats.written_many(0, written);
            }
            if failures > 0 {
                stats.failed_many(failures);
            }
            if !self.direct && bytes > 0 {
                stats.copied(bytes);
            }
        }
        n as usize
    }
}
