//! async/await over any [`Queue`]: [`AsyncQueue`] and its operation futures.
//!
//! # How completions wake tasks
//!
//! Every backend's queue has a completion fd ([`Queue::event_fd`]: an io_uring
//! eventfd, the copy queue's eventfd, `/dev/pinio` itself, an MSI-X eventfd)
//! that signals when completions are ready. An [`AsyncQueue`] owns one queue
//! (behind a mutex, so its futures are `Send` and any task on any thread may
//! use it) and a [`Readiness`]: by default a process-wide waiter thread that
//! sleeps in `epoll_wait` on the completion fds of all async queues (no
//! runtime dependency); with the `tokio` feature of the `pinio` crate, the
//! runtime's own reactor (`AsyncFd`). A future that finds its operation not
//! done yet drives the queue (collects every ready completion and hands each
//! to its future, waking that future's task), arms the readiness for its
//! task, looks once more, and sleeps. A queue without a completion fd (a
//! polled NVMe or edu queue) is polled: its futures ask to be polled again
//! at once, spinning as polled mode does.
//!
//! # Cancellation
//!
//! The owned-buffer rule of the synchronous API holds: once pushed, an
//! operation's slice belongs to the queue until the device is done with it.
//! Dropping a future whose operation is in flight does not cancel the
//! transfer and does not free the slice: the operation is marked abandoned,
//! and when its completion arrives (found by any later drive, or by the
//! queue's drop, which waits for everything in flight) the slice is dropped
//! then, after the device finished with it. This is the rule tokio-uring
//! documents; rio was unsound exactly here.
//!
//! # Threads
//!
//! An `AsyncQueue` is `Clone + Send + Sync`; its futures are `Send`. One
//! queue per runtime worker thread (or per task group) keeps the queue's
//! mutex uncontended and matches io_uring's single-issuer rings; sharing one
//! queue between many tasks on many threads is correct, and the tasks then
//! take turns at the mutex for the few microseconds a push or a drive takes.

mod flush;
mod vectored;
mod waiter;

pub use flush::Flush;
pub use vectored::ReadWriteV;
pub use waiter::Sleepers;

use crate::{Completion, Error, FlushMode, Op, OpError, Queue, Result, Slice};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// How an [`AsyncQueue`] learns that its queue's completion fd signalled.
///
/// Implemented by the built-in waiter thread and by runtime integrations
/// (`pinio::tokio`). Many tasks may wait on one queue at once: an
/// implementation must wake every task armed before an event (see
/// [`Sleepers`]), not only the last.
pub trait Readiness: Send + Sync {
    /// Arms a wake-up of `cx`'s task at the completion fd's next event.
    ///
    /// Returns `true` when the fd has signalled since it was last armed
    /// (look at the queue again before arming), `false` once armed.
    fn arm(&self, cx: &mut Context<'_>) -> bool;
}

/// The built-in readiness: the process-wide epoll waiter thread.
struct ThreadReadiness {
    sleepers: Arc<waiter::Sleepers>,
    _watch: waiter::Watch,
}

impl Readiness for ThreadReadiness {
    fn arm(&self, cx: &mut Context<'_>) -> bool {
        self.sleepers.register(cx.waker());
        false
    }
}

/// Arms `shared`'s readiness for `cx`'s task, giving it `look`s until one
/// answers or the readiness is armed and one last look finds nothing: the
/// wait of every future here.
fn poll_with<T>(shared: &Shared, cx: &mut Context<'_>, mut look: impl FnMut(&mut Context<'_>) -> Option<T>) -> Poll<T> {
    loop {
        if let Some(r) = look(cx) {
            return Poll::Ready(r);
        }
        if !shared.readiness.arm(cx) {
            // Armed; a completion that arrived before arming is found by
            // this last look, a later one wakes the task.
            return match look(cx) {
                Some(r) => Poll::Ready(r),
                None => Poll::Pending,
            };
        }
    }
}

/// Readiness of a queue without a completion fd: poll again at once.
struct Spin;

impl Readiness for Spin {
    fn arm(&self, cx: &mut Context<'_>) -> bool {
        cx.waker().wake_by_ref();
        false
    }
}

struct State {
    queue: Box<dyn Queue>,
    next_tag: u64,
    /// Completions collected for futures that have not taken them yet.
    done: HashMap<u64, Completion>,
    /// The task of each operation in flight, woken when it completes.
    tasks: HashMap<u64, Waker>,
    /// Operations whose future was dropped while they were in flight.
    abandoned: HashSet<u64>,
    /// Tags pushed whose completion has not been collected yet (what a
    /// [`Flush`] waits for).
    pending: BTreeSet<u64>,
    /// The flushes of [`Flush`] futures (`flush.rs`).
    flushes: flush::Flushes,
    /// Tasks waiting for any completion rather than their own (a push
    /// refused by a full queue, a flush waiting for earlier operations):
    /// woken by whichever task collects one. The completion fd cannot be
    /// relied on for them: a task that drains the queue also resets the fd,
    /// and a reactor that looks after that sees no event.
    progress: Vec<Waker>,
    out: Vec<Completion>,
}

impl State {
    /// Collects every ready completion: abandoned ones are dropped (the
    /// device is done with their slices), the others are filed and their
    /// tasks woken.
    fn drive(&mut self) -> Result<()> {
        let mut out = std::mem::take(&mut self.out);
        let r = self.queue.poll(&mut out);
        if !out.is_empty() {
            for w in std::mem::take(&mut self.progress) {
                w.wake();
            }
        }
        for c in out.drain(..) {
            self.pending.remove(&c.tag);
            if self.abandoned.remove(&c.tag) {
                continue;
            }
            if let Some(w) = self.tasks.remove(&c.tag) {
                w.wake();
            }
            self.done.insert(c.tag, c);
        }
        self.out = out;
        r.map(drop)
    }

    /// Registers `waker` to be woken when any completion is collected.
    fn wait_for_progress(&mut self, waker: &Waker) {
        if !self.progress.iter().any(|w| w.will_wake(waker)) {
            self.progress.push(waker.clone());
        }
    }
}

struct Shared {
    state: Mutex<State>,
    readiness: Box<dyn Readiness>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update of the state is complete before the lock is released;
        // a panic elsewhere cannot leave it torn.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A [`Queue`] for async code: operations are futures, completions wake the
/// tasks that wait for them. See the [module docs](self) for the wake-up,
/// cancellation and thread rules.
///
/// ```
/// # use pinio_core::{aio::AsyncQueue, conformance::CountingRegistrar};
/// # fn demo(dev: &dyn pinio_core::Device) -> pinio_core::Result<()> {
/// let q = AsyncQueue::new(dev.queue(32)?)?;
/// let region = dev.alloc(4096)?;
/// let task = async {
///     let (n, slice) = q.read_at(region.slice(0, 4096)?, 0).await?;
///     Ok::<_, pinio_core::Error>((n, slice))
/// };
/// # drop(task); Ok(()) }
/// ```
#[derive(Clone)]
pub struct AsyncQueue {
    shared: Arc<Shared>,
}

impl AsyncQueue {
    /// Wraps `queue`, woken by the built-in waiter thread (or polled, for a
    /// queue without a completion fd).
    pub fn new(queue: Box<dyn Queue>) -> Result<AsyncQueue> {
        let readiness: Box<dyn Readiness> = match queue.event_fd() {
            Some(fd) => {
                let sleepers = Arc::new(waiter::Sleepers::default());
                let watch = waiter::Watch::new(fd, &sleepers)?;
                Box::new(ThreadReadiness { sleepers, _watch: watch })
            }
            None => Box::new(Spin),
        };
        Ok(AsyncQueue::with_readiness(queue, readiness))
    }

    /// Wraps `queue` with a readiness of the caller's (a runtime's reactor
    /// watching `queue.event_fd()`).
    pub fn with_readiness(queue: Box<dyn Queue>, readiness: Box<dyn Readiness>) -> AsyncQueue {
        let state = State {
            queue,
            next_tag: 0,
            done: HashMap::new(),
            tasks: HashMap::new(),
            abandoned: HashSet::new(),
            pending: BTreeSet::new(),
            flushes: flush::Flushes::default(),
            progress: Vec::new(),
            out: Vec::new(),
        };
        AsyncQueue { shared: Arc::new(Shared { state: Mutex::new(state), readiness }) }
    }

    /// Runs `op` (its tag is replaced by the queue's own); resolves to its
    /// completion, whose slice is the caller's again.
    pub fn run(&self, op: Op) -> OpFuture {
        OpFuture { shared: self.shared.clone(), op: Some(op), tag: None }
    }

    /// Reads `slice.len()` bytes at `dev_offset` into `slice`.
    pub fn read_at(&self, slice: Slice, dev_offset: u64) -> ReadWrite {
        ReadWrite(self.run(Op::read(slice, dev_offset, 0)))
    }

    /// Writes `slice` at `dev_offset`.
    pub fn write_at(&self, slice: Slice, dev_offset: u64) -> ReadWrite {
        ReadWrite(self.run(Op::write(slice, dev_offset, 0)))
    }

    /// Reads the device range at `dev_offset` into `slices`, in order, as
    /// one vectored operation ([`Op::readv`]); resolves to the bytes read
    /// and every slice. Dropped mid-flight, the slices stay with the queue
    /// until the device is done with all of them.
    pub fn readv_at(&self, slices: Vec<Slice>, dev_offset: u64) -> ReadWriteV {
        ReadWriteV::new(self, Op::readv(slices, dev_offset, 0))
    }

    /// Writes `slices`, in order, at `dev_offset` as one vectored operation
    /// ([`Op::writev`]); resolves to the bytes written and every slice.
    pub fn writev_at(&self, slices: Vec<Slice>, dev_offset: u64) -> ReadWriteV {
        ReadWriteV::new(self, Op::writev(slices, dev_offset, 0))
    }

    /// Makes writes durable, as [`Queue::flush`] does, without blocking
    /// while the writes before it complete: see [`Flush`].
    pub fn flush(&self, mode: FlushMode) -> Flush {
        Flush::new(self.shared.clone(), mode)
    }

    /// Operations pushed and not completed yet (abandoned ones included).
    pub fn in_flight(&self) -> usize {
        self.shared.lock().queue.in_flight()
    }
}

impl std::fmt::Debug for AsyncQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncQueue").field("in_flight", &self.in_flight()).finish()
    }
}

/// The future of one operation ([`AsyncQueue::run`]): resolves to its
/// [`Completion`], or to the error of a push the queue refused (with the
/// slice). `Send`; dropping it mid-flight leaves the slice to the queue.
#[must_use = "futures do nothing unless polled"]
pub struct OpFuture {
    shared: Arc<Shared>,
    /// The operation until it is pushed.
    op: Option<Op>,
    /// Its tag once pushed.
    tag: Option<u64>,
}

impl OpFuture {
    /// Pushes the operation if it has not been; `Err` when the queue
    /// refused it for good.
    fn push(&mut self, st: &mut State) -> std::result::Result<(), OpError> {
        let Some(mut op) = self.op.take() else { return Ok(()) };
        let tag = st.next_tag;
        op.tag = tag;
        match st.queue.push(op) {
            Ok(()) => {
                st.next_tag += 1;
                st.pending.insert(tag);
                self.tag = Some(tag);
                st.queue.submit().map_err(OpError::no_slices)?;
                Ok(())
            }
            // Full: keep it and try again when completions made room.
            Err(r) if matches!(r.error, Error::QueueFull { .. }) => {
                self.op = Some(r.op);
                Ok(())
            }
            Err(r) => Err(OpError::of_op(r.error, r.op)),
        }
    }

    /// One look: push if needed, drive, take the completion if it is there.
    fn look(&mut self, cx: &Context<'_>) -> Option<std::result::Result<Completion, OpError>> {
        let shared = self.shared.clone();
        let mut st = shared.lock();
        if let Err(e) = self.push(&mut st) {
            return Some(Err(e));
        }
        if let Err(error) = st.drive() {
            // The operation (if pushed) stays with the queue.
            return Some(Err(match self.op.take() {
                Some(op) => OpError::of_op(error, op),
                None => OpError::no_slices(error),
            }));
        }
        if self.op.is_some() {
            // Still waiting for room: any completion's arrival may make some.
            st.wait_for_progress(cx.waker());
            return None;
        }
        let tag = self.tag.expect("pushed");
        if let Some(c) = st.done.remove(&tag) {
            self.tag = None;
            return Some(Ok(c));
        }
        st.tasks.insert(tag, cx.waker().clone());
        None
    }
}

impl Future for OpFuture {
    type Output = std::result::Result<Completion, OpError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let shared = self.shared.clone();
        poll_with(&shared, cx, |cx| self.look(cx))
    }
}

impl Drop for OpFuture {
    fn drop(&mut self) {
        if let Some(tag) = self.tag.take() {
            let mut st = self.shared.lock();
            st.tasks.remove(&tag);
            // Done already: dropping the completion frees nothing the device
            // still uses. In flight: the queue keeps the slice until then.
            if st.done.remove(&tag).is_none() {
                st.abandoned.insert(tag);
            }
        }
    }
}

/// The future of [`AsyncQueue::read_at`] and [`AsyncQueue::write_at`]:
/// resolves to the bytes moved and the slice, as the blocking
/// [`Queue::read_at`] does.
#[must_use = "futures do nothing unless polled"]
pub struct ReadWrite(OpFuture);

impl Future for ReadWrite {
    type Output = std::result::Result<(usize, Slice), OpError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|r| {
            let c = r?;
            match c.result {
                Ok(n) => Ok((n, c.slice)),
                Err(error) => Err(OpError::with_slice(error, c.slice)),
            }
        })
    }
}
