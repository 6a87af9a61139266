// SPDX-License-Identifier: GPL-2.0

//! One open file of `/dev/pinio`: its regions, its DMA queue, its completion queue, and the DMA
//! engine worker that runs its descriptors.
//!
//! C headers: [`include/linux/workqueue.h`](srctree/include/linux/workqueue.h),
//! [`include/linux/poll.h`](srctree/include/linux/poll.h).
//!
//! Lifetime: a descriptor is *in flight* from SUBMIT until the worker has copied it (the region
//! cannot be unregistered meanwhile: `EBUSY`), and *outstanding* until its completion record is
//! reaped (at most `queue_depth` per file). On close, [`Session::shutdown`] waits for every
//! in-flight descriptor and for the worker to return, then unpins every region.
//!
//! Lock order: session state, then `mmap_lock` (REAP writes records to userspace under the
//! state lock; a REGISTER that fails after pinning unpins and uncharges under it). The DMA
//! worker holds the device-memory lock, never the state lock, while it copies; the copy path
//! holds the device-memory lock, then `mmap_lock` when a user page faults. Nothing takes a
//! pinio lock under `mmap_lock`.

use crate::{
    abi,
    completion_ring::CompletionRing,
    devmem::DeviceMemory,
    region::Region,
};
use kernel::{
    bindings,
    new_condvar, new_mutex, new_poll_condvar,
    prelude::*,
    rbtree::RBTree,
    sync::{poll::PollCondVar, Arc, CondVar, Mutex},
    uaccess::{UserSliceReader, UserSliceWriter},
    workqueue::{self, impl_has_work, new_work, Work, WorkItem},
};

/// Bytes the engine copies before it wakes completion waiters even in the middle of a batch.
const NOTIFY_BYTES: usize = 1 << 20;

/// A registered region and the number of its descriptors in flight.
struct RegionEntry {
    region: Arc<Region>,
    in_flight: usize,
}

/// A validated descriptor waiting for (or being run by) the DMA engine.
struct Job {
    region: Arc<Region>,
    desc: abi::Desc,
}

/// Mutable state of a session, behind [`Session::state`].
///
/// # Invariants
///
/// - `pinned_pages` is the sum of `nr_pages()` of the regions, plus pages reserved by a REGISTER
///   that is pinning right now; it never exceeds the `max_pinned_pages` limit.
/// - `in_flight` is `queued.len()` plus the jobs the worker has taken and not completed, and
///   equals the sum of `RegionEntry::in_flight`.
/// - `outstanding` is `in_flight + completions.len()` and never exceeds `queue_depth`.
struct State {
    regions: RBTree<u32, RegionEntry>,
    next_region_id: u32,
    pinned_pages: usize,
    queued: KVVec<Job>,
    in_flight: usize,
    outstanding: usize,
    completions: CompletionRing,
}

/// The per-open context of `/dev/pinio`.
#[pin_data]
pub(crate) struct Session {
    dev: Arc<DeviceMemory>,
    #[pin]
    state: Mutex<State>,
    /// Signalled when `in_flight` drops to zero.
    #[pin]
    idle: CondVar,
    /// Signalled when a completion is posted; poll waiters sleep on it.
    #[pin]
    completed: PollCondVar,
    #[pin]
    work: Work<Session>,
}

impl_has_work! {
    impl HasWork<Self> for Session { self.work }
}

impl Session {
    /// A new session on `dev` with an empty completion ring of `queue_depth` records.
    pub(crate) fn new(dev: Arc<DeviceMemory>) -> Result<Arc<Self>> {
        let depth = dev.limits.queue_depth as usize;
        let state = State {
            regions: RBTree::new(),
            next_region_id: 1,
            pinned_pages: 0,
            queued: KVVec::new(),
            in_flight: 0,
            outstanding: 0,
            completions: CompletionRing::new(depth)?,
        };
        Arc::pin_init(
            try_pin_init!(Self {
                dev,
                state <- new_mutex!(state),
                idle <- new_condvar!(),
                completed <- new_poll_condvar!(),
                work <- new_work!("pinio::Session::work"),
            }),
            GFP_KERNEL,
        )
    }

    /// The device memory this session works on.
    pub(crate) fn device(&self) -> &DeviceMemory {
        &self.dev
    }

    /// The condition variable `poll` waits on.
    pub(crate) fn completed(&self) -> &PollCondVar {
        &self.completed
    }

    /// Readiness for `poll`: (completions available, room for another descriptor).
    pub(crate) fn readiness(&self) -> (bool, bool) {
        let st = self.state.lock();
        (
            st.completions.len() > 0,
            st.outstanding < self.dev.limits.queue_depth as usize,
        )
    }

    /// INFO.
    pub(crate) fn info(&self) -> abi::Info {
        let limits = &self.dev.limits;
        let st = self.state.lock();
        abi::Info {
            abi_version: abi::ABI_VERSION,
            page_size: kernel::page::PAGE_SIZE as u32,
            dev_mem_size: limits.mem_size as u64,
            max_pinned_pages: limits.max_pinned_pages as u64,
            pinned_pages: st.pinned_pages as u64,
            queue_depth: limits.queue_depth,
            max_batch: limits.queue_depth,
            outstanding: st.outstanding as u32,
            regions: st.regions.iter().count() as u32,
        }
    }

    /// REGISTER: pins `[args.addr, args.addr + args.len)` and returns the new region id.
    ///
    /// Errors: `EINVAL` (zero length, bad access bits), `EOVERFLOW` (the range wraps), `ENOSPC`
    /// (the per-open cap `max_pinned_pages`, or region ids exhausted), `ENOMEM` (`RLIMIT_MEMLOCK`),
    /// `EFAULT` (unmapped, or read-only while device writes were asked for).
    pub(crate) fn register(&self, args: &abi::RegisterArgs) -> Result<u32> {
        Region::check_access(args.access)?;
        let nr_pages = Region::pages_spanned(args.addr, args.len)?;
        let cap = self.dev.limits.max_pinned_pages;

        // Reserve the pages against the cap before pinning anything (no lock is held while
        // pinning, so two threads cannot both overshoot the cap).
        {
            let mut st = self.state.lock();
            let total = st.pinned_pages.checked_add(nr_pages).ok_or(ENOSPC)?;
            if total > cap {
                return Err(ENOSPC);
            }
            st.pinned_pages = total;
        }

        let region = Region::register(args.addr, args.len, args.access, nr_pages)
            .and_then(|r| Ok(Arc::new(r, GFP_KERNEL)?));
        let mut st = self.state.lock();
        let region = match region {
            Ok(region) => region,
            Err(e) => {
                st.pinned_pages -= nr_pages;
                return Err(e);
            }
        };
        let id = st.next_region_id;
        if id == 0 {
            // All 2^32 - 1 ids of this session were used.
            st.pinned_pages -= nr_pages;
            return Err(ENOSPC);
        }
        let entry = RegionEntry {
            region,
            in_flight: 0,
        };
        if let Err(e) = st.regions.try_create_and_insert(id, entry, GFP_KERNEL) {
            st.pinned_pages -= nr_pages;
            return Err(e);
        }
        // Ids are never reused within a session; after the last one this wraps to 0 and
        // REGISTER fails with `ENOSPC`.
        st.next_region_id = id.wrapping_add(1);
        Ok(id)
    }

    /// UNREGISTER: unpins a region. `ENOENT` for an unknown id, `EBUSY` while DMA on it is in
    /// flight.
    pub(crate) fn unregister(&self, args: &abi::UnregisterArgs) -> Result {
        if args.reserved != 0 {
            return Err(EINVAL);
        }
        let entry = {
            let mut st = self.state.lock();
            match st.regions.get(&args.region_id) {
                None => return Err(ENOENT),
                Some(e) if e.in_flight > 0 => return Err(EBUSY),
                Some(_) => {}
            }
            let entry = st.regions.remove(&args.region_id).ok_or(ENOENT)?;
            st.pinned_pages -= entry.region.nr_pages();
            entry
        };
        // Unpin and uncharge outside the lock. No job holds the region (in_flight was 0 and the
        // worker drops its reference before completing), so this is the last reference.
        drop(entry);
        Ok(())
    }

    /// SUBMIT: reads `args.count` descriptors, validates all of them, then queues all of them.
    ///
    /// Errors (nothing is queued): `EINVAL` (flags, count 0 or above the batch limit, bad
    /// direction, zero length, reserved bits), `EAGAIN` (the queue would exceed `queue_depth`:
    /// reap first), `ENOENT` (unknown region), `EACCES` (direction not allowed by the region's
    /// access), `ERANGE` (outside the region or the device memory), `EFAULT` (descriptor array).
    pub(crate) fn submit(self: &Arc<Self>, args: &abi::SubmitArgs) -> Result<usize> {
        let depth = self.dev.limits.queue_depth as usize;
        let count = args.count as usize;
        if args.flags != 0 || count == 0 || count > depth {
            return Err(EINVAL);
        }
        let bytes = count
            .checked_mul(size_of::<abi::Desc>())
            .ok_or(EINVAL)?;
        let mut reader = kernel::uaccess::UserSlice::new(
            UserPtr::from_addr(usize::try_from(args.descs).map_err(|_| EFAULT)?),
            bytes,
        )
        .reader();
        let mut descs = KVVec::with_capacity(count, GFP_KERNEL)?;
        for _ in 0..count {
            descs.push(reader.read::<abi::Desc>()?, GFP_KERNEL)?;
        }
        let mut jobs = KVVec::with_capacity(count, GFP_KERNEL)?;

        {
            let mut st = self.state.lock();
            if st.outstanding + count > depth {
                return Err(EAGAIN);
            }
            // Validate everything before touching the state.
            for desc in descs.iter() {
                if desc.dir != abi::DIR_TO_DEVICE && desc.dir != abi::DIR_FROM_DEVICE {
                    return Err(EINVAL);
                }
                if desc.len == 0 {
                    return Err(EINVAL);
                }
                let entry = st.regions.get(&desc.region_id).ok_or(ENOENT)?;
                entry.region.check_dir(desc.dir)?;
                let end = desc.region_offset.checked_add(desc.len).ok_or(ERANGE)?;
                if end > entry.region.len() as u64 {
                    return Err(ERANGE);
                }
                self.dev.check_range(desc.dev_offset, desc.len)?;
                jobs.push(
                    Job {
                        region: entry.region.clone(),
                        desc: *desc,
                    },
                    GFP_KERNEL,
                )?;
            }
            st.queued.reserve(count, GFP_KERNEL)?;
            // From here on nothing fails.
            for job in jobs.drain_all() {
                if let Some(entry) = st.regions.get_mut(&job.desc.region_id) {
                    entry.in_flight += 1;
                }
                st.queued.push_within_capacity(job).map_err(|_| ENOMEM)?;
            }
            // INVARIANT: `count` jobs were queued and counted in their regions.
            st.in_flight += count;
            st.outstanding += count;
        }

        // SAFETY: `system_dfl_wq` (the unbound system workqueue; `system_unbound_wq` is
        // deprecated in 7.3 and warns) is set up at boot, `__ro_after_init`, and never destroyed.
        let queue = unsafe { workqueue::Queue::from_raw(bindings::system_dfl_wq) };
        // `Err` means the work is already queued; it will see the new jobs when it runs.
        let _ = queue.enqueue(self.clone());
        Ok(count)
    }

    /// REAP: writes up to `args.max` completion records to userspace, first waiting
    /// (interruptibly: `EINTR`) until `min(args.min, args.max, outstanding)` are available.
    pub(crate) fn reap(&self, args: &abi::ReapArgs) -> Result<u32> {
        if args.reserved != 0 || args.max == 0 {
            return Err(EINVAL);
        }
        let max = args.max as usize;
        let bytes = max
            .checked_mul(size_of::<abi::CompletionRecord>())
            .ok_or(EINVAL)?;
        let mut writer: UserSliceWriter = kernel::uaccess::UserSlice::new(
            UserPtr::from_addr(usize::try_from(args.records).map_err(|_| EFAULT)?),
            bytes,
        )
        .writer();

        let mut st = self.state.lock();
        let want = core::cmp::min(args.min as usize, max);
        // Capped at what is outstanding *now*, on every wake-up: another REAP may take records
        // meanwhile, and a record that was taken will never arrive.
        while st.completions.len() < core::cmp::min(want, st.outstanding) {
            if self.completed.wait_interruptible(&mut st) {
                return Err(EINTR);
            }
        }
        // Records are popped only once written, so an `EFAULT` loses none. Writing to userspace
        // under our lock is fine: a page fault never takes it.
        let mut written = 0u32;
        while (written as usize) < max {
            let Some(record) = st.completions.front() else {
                break;
            };
            if let Err(e) = writer.write(record) {
                if written == 0 {
                    return Err(e);
                }
                break;
            }
            st.completions.pop();
            st.outstanding -= 1;
            written += 1;
        }
        Ok(written)
    }

    /// Called once when the file is released: waits until no descriptor is in flight and the
    /// worker has returned, then unpins every region. Waits uninterruptibly: a killed process
    /// must not leave pages pinned or the device writing into them.
    pub(crate) fn shutdown(&self) {
        let regions = {
            let mut st = self.state.lock();
            while st.in_flight > 0 {
                self.idle.wait(&mut st);
            }
            st.pinned_pages = 0;
            core::mem::replace(&mut st.regions, RBTree::new())
        };
        // No new work can be queued: the file is being released, so no ioctl runs concurrently.
        // SAFETY: `self.work` is an initialised `work_struct` (pinned in this `Arc`); flushing
        // waits for a running `WorkItem::run` of this session to return and touches nothing else.
        unsafe { bindings::flush_work(Work::raw_get(&self.work)) };
        // Unpins and uncharges every region (no job references them any more).
        drop(regions);
    }

    /// Runs every queued job; posts one completion per job.
    fn run_queued(&self) {
        loop {
            let batch = {
                let mut st = self.state.lock();
                if st.queued.is_empty() {
                    return;
                }
                core::mem::replace(&mut st.queued, KVVec::new())
            };
            let count = batch.len();
            let mut unannounced = 0usize;
            for (i, job) in batch.into_iter().enumerate() {
                let Job { region, desc } = job;
                let result = self.dev.dma(&region, &desc);
                // Drop the engine's reference before the descriptor stops being in flight, so
                // UNREGISTER and release always drop the last reference.
                drop(region);
                let record = abi::CompletionRecord {
                    tag: desc.tag,
                    bytes: *result.as_ref().unwrap_or(&0) as u64,
                    status: result.err().map_or(0, |e| e.to_errno()),
                    reserved: 0,
                };
                let mut st = self.state.lock();
                if let Some(entry) = st.regions.get_mut(&desc.region_id) {
                    entry.in_flight -= 1;
                }
                // Cannot fail: `outstanding <= queue_depth` reserved a slot at SUBMIT.
                let _ = st.completions.push(record);
                st.in_flight -= 1;
                let idle = st.in_flight == 0;
                drop(st);
                // One wake-up per batch, or per `NOTIFY_BYTES` copied: each wake-up of a REAP or
                // poll waiter costs far more than recording a completion.
                unannounced += desc.len as usize;
                if i + 1 == count || unannounced >= NOTIFY_BYTES {
                    unannounced = 0;
                    self.completed.notify_all();
                }
                if idle {
                    self.idle.notify_all();
                }
            }
        }
    }
}

impl WorkItem for Session {
    type Pointer = Arc<Session>;

    /// The DMA engine: copies between device memory and pinned pages, never through a user
    /// virtual address.
    fn run(this: Arc<Session>) {
        this.run_queued();
    }
}

/// Reads a `T` argument of an ioctl.
pub(crate) fn read_arg<T: kernel::transmute::FromBytes>(mut r: UserSliceReader) -> Result<T> {
    r.read::<T>()
}
