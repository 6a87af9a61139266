//! [`SlicePool`]: fixed-size slices of one region, taken and given back from
//! any thread.

use crate::{Error, Region, Result, Slice};
use crossbeam::queue::ArrayQueue;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Fixed-size slices of one region, shared by every thread (`Send + Sync`):
/// the buffer pool of a storage engine, registered once.
///
/// [`SlicePool::take`] and [`SlicePool::give`] are lock-free (a bounded
/// MPMC queue of ready slices); only a caller that has to *wait* for a slice
/// ([`SlicePool::take_blocking`], [`SlicePool::take_async`]) touches a lock,
/// to sleep. The slices are ordinary [`Slice`]s: they go into any queue of a
/// device of the region's domain and come back in completions.
///
/// A slice dropped instead of given back is not lost: its range is free in
/// the region's lease table again, and the pool makes it anew the next time
/// it runs dry (it then sees fewer live leases in the region than it has
/// slices). The region belongs to the pool: slices of it made outside the
/// pool would hide such drops.
///
/// ```
/// use pinio_core::{conformance::CountingRegistrar, SlicePool};
/// let (domain, _) = CountingRegistrar::domain();
/// let pool = SlicePool::new(domain.alloc(64 * 4096)?, 4096)?;
/// let a = pool.take().expect("64 slices to start with");
/// assert_eq!((a.len(), pool.available()), (4096, 63));
/// pool.give(a).expect("a slice of this pool");
/// assert_eq!(pool.available(), 64);
/// # Ok::<(), pinio_core::Error>(())
/// ```
pub struct SlicePool {
    region: Region,
    slice_len: usize,
    ready: ArrayQueue<Slice>,
    /// Takers sleeping or registered to be woken.
    waiting: AtomicUsize,
    sleepers: Mutex<Vec<Waker>>,
    wake: Condvar,
}

impl SlicePool {
    /// Cuts `region` into `region.len() / slice_len` slices of `slice_len`
    /// bytes. Fails if `slice_len` is 0 or larger than the region, or if any
    /// of those ranges is already leased by a live slice.
    pub fn new(region: Region, slice_len: usize) -> Result<SlicePool> {
        if slice_len == 0 {
            return Err(Error::ZeroLength { what: "pool slice" });
        }
        let count = region.len() / slice_len;
        if count == 0 {
            return Err(Error::OutOfBounds {
                what: "region",
                offset: 0,
                len: slice_len as u64,
                limit: region.len() as u64,
            });
        }
        let ready = ArrayQueue::new(count);
        for i in 0..count {
            let s = region.slice(i * slice_len, slice_len)?;
            // `count` slots for `count` slices: never full here.
            let _ = ready.push(s);
        }
        Ok(SlicePool {
            region,
            slice_len,
            ready,
            waiting: AtomicUsize::new(0),
            sleepers: Mutex::new(Vec::new()),
            wake: Condvar::new(),
        })
    }

    /// The region the slices are cut from.
    pub fn region(&self) -> &Region {
        &self.region
    }

    /// Bytes per slice.
    pub fn slice_len(&self) -> usize {
        self.slice_len
    }

    /// How many slices the pool has in all.
    pub fn capacity(&self) -> usize {
        self.ready.capacity()
    }

    /// How many slices are ready to take now.
    pub fn available(&self) -> usize {
        self.ready.len()
    }

    /// Takes a slice if one is ready; never blocks, never locks (except to
    /// make anew slices that were dropped instead of given back).
    pub fn take(&self) -> Option<Slice> {
        if let Some(s) = self.ready.pop() {
            return Some(s);
        }
        self.reclaim_dropped();
        self.ready.pop()
    }

    /// Takes a slice, sleeping until one is given back or `timeout` passes
    /// (`None`: no limit).
    pub fn take_blocking(&self, timeout: Option<Duration>) -> Option<Slice> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(s) = self.take() {
                return Some(s);
            }
            let mut guard = self.sleepers();
            self.waiting.fetch_add(1, Ordering::AcqRel);
            // Checked again under the lock: a give between the failed take
            // and here sees `waiting` and notifies under this same lock.
            if let Some(s) = self.take() {
                self.waiting.fetch_sub(1, Ordering::AcqRel);
                return Some(s);
            }
            guard = match deadline {
                None => self.wake.wait(guard).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        self.waiting.fetch_sub(1, Ordering::AcqRel);
                        return None;
                    }
                    self.wake.wait_timeout(guard, left).unwrap_or_else(|p| p.into_inner()).0
                }
            };
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            drop(guard);
        }
    }

    /// A future that resolves to a slice as soon as one is ready.
    /// Runtime-agnostic: it registers its task's waker and is woken by
    /// [`SlicePool::give`]. Dropping it gives nothing up: no slice is taken
    /// until it resolves.
    pub fn take_async(&self) -> TakeSlice<'_> {
        TakeSlice { pool: self }
    }

    /// Gives a slice back. A slice that is not one of this pool's (another
    /// region, another length or offset) is handed back in the error.
    pub fn give(&self, slice: Slice) -> std::result::Result<(), Slice> {
        if !self.owns(&slice) {
            return Err(slice);
        }
        // A full queue would mean more slices than the pool has: impossible
        // while the lease table keeps its ranges exclusive; the slice comes
        // back rather than being lost.
        self.ready.push(slice)?;
        if self.waiting.load(Ordering::Acquire) > 0 {
            self.wake_all();
        }
        Ok(())
    }

    fn owns(&self, slice: &Slice) -> bool {
        slice.len() == self.slice_len
            && slice.offset().is_multiple_of(self.slice_len)
            && slice.domain_id() == self.region.domain_id()
            && slice.as_ptr() as usize == self.region.as_ptr() as usize + slice.offset()
    }

    fn sleepers(&self) -> MutexGuard<'_, Vec<Waker>> {
        self.sleepers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes every waiter: one of them gets the slice, the others look,
    /// find none and wait again. Waking all (only when someone waits, that
    /// is when the pool ran dry) means a waker left behind by a dropped
    /// future can never swallow the wake-up meant for a live one.
    #[cold]
    fn wake_all(&self) {
        let wakers = std::mem::take(&mut *self.sleepers());
        self.waiting.fetch_sub(wakers.len(), Ordering::AcqRel);
        self.wake.notify_all();
        for w in wakers {
            w.wake();
        }
    }

    /// Makes anew the slices that were dropped instead of given back: the
    /// ranges free in the region's lease table.
    #[cold]
    fn reclaim_dropped(&self) {
        // Every slice of the pool, ready or out, is a live lease of the
        // region: fewer leases than slices means some were dropped.
        if self.region.live_slices() >= self.capacity() {
            return;
        }
        for i in 0..self.capacity() {
            // A range still leased (out, in flight, or ready) is refused.
            if let Ok(s) = self.region.slice(i * self.slice_len, self.slice_len)
                && self.ready.push(s).is_err()
            {
                break;
            }
        }
    }
}

impl std::fmt::Debug for SlicePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlicePool")
            .field("region", &self.region)
            .field("slice_len", &self.slice_len)
            .field("capacity", &self.capacity())
            .field("available", &self.available())
            .finish()
    }
}

/// The future of [`SlicePool::take_async`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct TakeSlice<'a> {
    pool: &'a SlicePool,
}

impl Future for TakeSlice<'_> {
    type Output = Slice;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Slice> {
        let pool = self.pool;
        if let Some(s) = pool.take() {
            return Poll::Ready(s);
        }
        let mut sleepers = pool.sleepers();
        // Registered (and counted) before the second look, under the lock
        // `wake_all` takes: a give in between either leaves a slice for the
        // second look or finds this waker.
        if !sleepers.iter().any(|w| w.will_wake(cx.waker())) {
            sleepers.push(cx.waker().clone());
            pool.waiting.fetch_add(1, Ordering::AcqRel);
        }
        match pool.take() {
            Some(s) => Poll::Ready(s),
            None => Poll::Pending,
        }
    }
}
