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
    accounting::LockedVmCharge,
    completion_ring::CompletionRing,
    devmem::DeviceMemory,
    region::{RegionRef, Run},
    region_table::RegionTable,
};
use kernel::{
    bindings, new_condvar, new_mutex, new_poll_condvar,
    prelude::*,
    sync::{poll::PollCondVar, Arc, CondVar, Mutex},
    transmute::AsBytes,
    uaccess::{UserSlice, UserSliceReader, UserSliceWriter},
    workqueue::{self, impl_has_work, new_work, Work, WorkItem},
};

/// Bytes the engine copies before it wakes completion waiters even in the middle of a batch.
const NOTIFY_BYTES: usize = 1 << 20;

/// Regions `range` of `run` that left the table together, to be released together.
struct Stretch {
    run: Arc<Run>,
    range: core::ops::Range<usize>,
}

/// A validated descriptor waiting for (or being run by) the DMA engine.
struct Job {
    region: RegionRef,
    desc: abi::Desc,
}

/// Mutable state of a session, behind [`Session::state`].
///
/// # Invariants
///
/// - `regions` is `None` only once [`Session::shutdown`] took the table; its ids are
///   `1..next_region_id` (or any id but 0 once `next_region_id` wrapped to 0).
/// - `pinned_pages` is the sum of `nr_pages()` of the regions, plus pages reserved by a REGISTER
///   that is pinning right now; it never exceeds the `max_pinned_pages` limit.
/// - `in_flight` is `queued.len()` plus the jobs the worker has taken and not completed, and
///   equals the sum of the in-flight counts of the table's regions.
/// - `outstanding` is `in_flight + completions.len()` and never exceeds `queue_depth`.
struct State {
    regions: Option<RegionTable>,
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
            regions: Some(RegionTable::new()),
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
            regions: st.regions.as_ref().map_or(0, RegionTable::len) as u32,
        }
    }

    /// REGISTER: pins `[args.addr, args.addr + args.len)` and writes the new region id into
    /// `args.region_id`.
    ///
    /// Errors: `EINVAL` (zero length, bad access bits), `EOVERFLOW` (the range wraps), `ENOSPC`
    /// (the per-open cap `max_pinned_pages`, or region ids exhausted), `ENOMEM` (`RLIMIT_MEMLOCK`),
    /// `EFAULT` (unmapped, or read-only while device writes were asked for).
    pub(crate) fn register(&self, args: &mut abi::RegisterArgs) -> Result {
        let nr_pages = Self::check_entry(args)?;
        self.reserve(nr_pages)?;
        let run = LockedVmCharge::charge_current(nr_pages)
            .and_then(|mut charge| Self::pin_run(core::slice::from_ref(args), &mut charge));
        let run = match run {
            Ok((run, _)) => run,
            Err(e) => {
                self.state.lock().pinned_pages -= nr_pages;
                return Err(e);
            }
        };
        let mut st = self.state.lock();
        match Self::insert(&mut st, core::slice::from_ref(&run)) {
            Ok(id) => {
                args.region_id = id;
                Ok(())
            }
            Err(e) => {
                st.pinned_pages -= nr_pages;
                drop(st);
                // The last reference: unpins and uncharges, outside the lock.
                drop(run);
                Err(e)
            }
        }
    }

    /// REGISTER_VEC: registers every entry of the user array of `args.count` [`abi::RegisterArgs`]
    /// at `args.entries`, or none, and writes each region id into its entry (consecutive ids in
    /// array order). One session lock round, one `RLIMIT_MEMLOCK` charge (one `get_task_mm`, one
    /// `mmap_lock`) for all of them, and one run (one pin call, one object) per stretch of
    /// entries on adjacent pages ([`Run`]).
    ///
    /// Errors, in this order, nothing registered: `EINVAL` (`flags`, `count` 0 or above
    /// `MAX_VEC`), `EFAULT` (the array is unreadable), per entry in array order `EINVAL` /
    /// `EOVERFLOW` as for REGISTER, `ENOSPC` (the cap, for the sum of all entries; or ids
    /// exhausted), `ENOMEM` (`RLIMIT_MEMLOCK`, for the sum), the first pinning error in array
    /// order (`EFAULT`), `EFAULT` (the ids cannot be written back).
    pub(crate) fn register_vec(&self, args: &abi::VecArgs) -> Result<usize> {
        let (mut entries, writer) =
            read_vec::<abi::RegisterArgs, _>(args, UserSlice::reader_writer)?;
        let mut total = 0usize;
        for e in entries.iter() {
            total = total.checked_add(Self::check_entry(e)?).ok_or(ENOSPC)?;
        }
        let mut runs = KVVec::with_capacity(entries.len(), GFP_KERNEL)?;
        self.reserve(total)?;
        let pinned = LockedVmCharge::charge_current(total).and_then(|mut charge| {
            let mut rest = &entries[..];
            while !rest.is_empty() {
                let (run, count) = Self::pin_run(rest, &mut charge)?;
                // Cannot fail for want of room: there are at most `entries.len()` runs.
                runs.push_within_capacity(run).map_err(|_| ENOMEM)?;
                rest = &rest[count..];
            }
            Ok(())
        });
        let inserted = {
            let mut st = self.state.lock();
            let inserted = pinned.and_then(|()| Self::insert(&mut st, &runs));
            if inserted.is_err() {
                st.pinned_pages -= total;
            }
            inserted
        };
        let first = match inserted {
            Ok(first) => first,
            Err(e) => {
                // The last references: unpins and uncharges.
                drop(runs);
                return Err(e);
            }
        };
        for (i, e) in entries.iter_mut().enumerate() {
            // No wrap: `insert` checked that the ids up to `first + count - 1` exist.
            e.region_id = first + i as u32;
        }
        drop(runs);
        let mut writer = writer;
        if let Err(e) = writer.write_slice(entries.as_bytes()) {
            // The caller cannot learn the ids: do not leave the regions pinned.
            // Left registered (until close) only if another thread of the caller already has
            // DMA in flight on one of them, having guessed its id.
            if let Ok(removed) = self.remove_regions(entries.len(), |i| entries[i].region_id) {
                release_regions(removed);
            }
            return Err(e);
        }
        Ok(entries.len())
    }

    /// UNREGISTER: unpins a region. `EINVAL` for a nonzero `reserved`, `ENOENT` for an unknown
    /// id, `EBUSY` while DMA on it is in flight.
    pub(crate) fn unregister(&self, args: &abi::UnregisterArgs) -> Result {
        if args.reserved != 0 {
            return Err(EINVAL);
        }
        let removed = self.remove_regions(1, |_| args.region_id)?;
        // Unpin and uncharge outside the lock; no job holds the region (in_flight was 0).
        release_regions(removed);
        Ok(())
    }

    /// UNREGISTER_VEC: unregisters every region of the user array of `args.count`
    /// [`abi::UnregisterArgs`] at `args.entries`, or none; one uncharge per mm for all of them.
    ///
    /// Errors, in this order, nothing unregistered: `EINVAL` (`flags`, `count` 0 or above
    /// `MAX_VEC`), `EFAULT` (the array is unreadable), `EINVAL` (a nonzero `reserved`; an id
    /// twice in the array), then per entry in array order `ENOENT` (unknown id) or `EBUSY` (DMA
    /// in flight).
    pub(crate) fn unregister_vec(&self, args: &abi::VecArgs) -> Result<usize> {
        let (entries, ()) = read_vec::<abi::UnregisterArgs, _>(args, |s| (s.reader(), ()))?;
        // Ids in increasing order (as a registration handed them out) cannot repeat; any other
        // order is sorted to find a repeat.
        let mut increasing = true;
        let mut prev = None;
        for e in entries.iter() {
            if e.reserved != 0 {
                return Err(EINVAL);
            }
            increasing &= prev.is_none_or(|p| p < e.region_id);
            prev = Some(e.region_id);
        }
        if !increasing {
            let mut ids = KVVec::with_capacity(entries.len(), GFP_KERNEL)?;
            for e in entries.iter() {
                ids.push_within_capacity(e.region_id).map_err(|_| ENOMEM)?;
            }
            ids.sort_unstable();
            if ids.windows(2).any(|w| w[0] == w[1]) {
                return Err(EINVAL);
            }
        }
        let removed = self.remove_regions(entries.len(), |i| entries[i].region_id)?;
        release_regions(removed);
        Ok(entries.len())
    }

    /// Checks one REGISTER entry; returns the number of pages it spans.
    fn check_entry(e: &abi::RegisterArgs) -> Result<usize> {
        Run::check_access(e.access)?;
        Run::pages_spanned(e.addr, e.len)
    }

    /// Reserves `pages` against the per-open cap before anything is pinned (no lock is held
    /// while pinning, so two threads cannot both overshoot the cap). `ENOSPC` over the cap.
    fn reserve(&self, pages: usize) -> Result {
        let mut st = self.state.lock();
        let total = st.pinned_pages.checked_add(pages).ok_or(ENOSPC)?;
        if total > self.dev.limits.max_pinned_pages {
            return Err(ENOSPC);
        }
        st.pinned_pages = total;
        Ok(())
    }

    /// Pins the longest prefix of the checked `entries` that can be one run ([`Run::register`])
    /// with its share of `charge`; returns the run and how many entries it took. One allocation
    /// for the run object (a run of one short buffer keeps its page pointers inside it), one more
    /// for its arrays when it holds several regions or more than a few pages.
    fn pin_run(
        entries: &[abi::RegisterArgs],
        charge: &mut LockedVmCharge,
    ) -> Result<(Arc<Run>, usize)> {
        let (run, count) = Run::register(entries, charge)?;
        Ok((Arc::new(run, GFP_KERNEL)?, count))
    }

    /// Stores the regions of `runs` under consecutive new ids, in order; returns the first.
    /// `ENOSPC` when the ids of this session would run out; `ENOMEM`; on error nothing is stored.
    fn insert(st: &mut State, runs: &[Arc<Run>]) -> Result<u32> {
        let count: u64 = runs.iter().map(|r| r.count() as u64).sum();
        let first = st.next_region_id;
        // Ids are never reused within a session: after the last one `next_region_id` wraps to 0
        // and REGISTER fails with `ENOSPC`.
        if first == 0 || count == 0 || u64::from(first) + count - 1 > u64::from(u32::MAX) {
            return Err(ENOSPC);
        }
        st.regions.as_mut().ok_or(ENXIO)?.append(first, runs)?;
        // INVARIANT: `count` regions were stored at the ids `first..first + count`.
        st.next_region_id = (u64::from(first) + count) as u32;
        Ok(first)
    }

    /// Removes the `n` regions `id_at(0)`, ..., `id_at(n - 1)` (no id twice) from the table, all
    /// or none: `ENOENT` for an unknown id and `EBUSY` for a region with DMA in flight, for the
    /// first such id in order. Returns the removed regions as stretches of adjacent regions of
    /// one run, none with DMA in flight, for the caller to unpin with [`release_regions`]
    /// outside the lock.
    fn remove_regions(&self, n: usize, id_at: impl Fn(usize) -> u32) -> Result<KVVec<Stretch>> {
        let mut guard = self.state.lock();
        let st = &mut *guard;
        let table = st.regions.as_mut().ok_or(ENOENT)?;
        // Check every id first (all or nothing), a stretch at a time: ids that name the regions
        // following each other in one run are checked together, each in a few steps.
        let (mut pages, mut stretches, mut hint, mut i) = (0, 0, 0, 0);
        while i < n {
            let (slot, index, len) = table.stretch(id_at(i), (i + 1..n).map(&id_at), hint)?;
            pages += table
                .run_at(slot)
                .map_or(0, |run| run.pages_of(index..index + len));
            stretches += 1;
            (hint, i) = (slot, i + len);
        }
        // Nothing removed yet: an `ENOMEM` here leaves everything registered. Sleeping in the
        // allocation under the state mutex is allowed.
        let mut removed = KVVec::<Stretch>::with_capacity(stretches, GFP_KERNEL)?;
        let mut i = 0;
        while i < n {
            // The same stretches as above: nothing changed but the regions already removed,
            // which are not among these ids.
            let (slot, index, len) = table.stretch(id_at(i), (i + 1..n).map(&id_at), hint)?;
            // One reference per stretch. If these were the run's last regions, the table's own
            // reference dropped here is not the last, so nothing is unpinned under the lock.
            let run = table.run_at(slot).ok_or(ENOENT)?.clone();
            drop(table.remove_range(slot, index..index + len));
            let stretch = Stretch {
                run,
                range: index..index + len,
            };
            // Cannot fail: the stretches were counted above.
            removed.push_within_capacity(stretch).map_err(|_| ENOMEM)?;
            (hint, i) = (slot, i + len);
        }
        table.compact();
        // INVARIANT: the removed regions leave the pinned total.
        st.pinned_pages -= pages;
        Ok(removed)
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
        let bytes = count.checked_mul(size_of::<abi::Desc>()).ok_or(EINVAL)?;
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
                let region = st.lookup(desc.region_id).ok_or(ENOENT)?;
                region.check_dir(desc.dir)?;
                let end = desc.region_offset.checked_add(desc.len).ok_or(ERANGE)?;
                if end > region.len() as u64 {
                    return Err(ERANGE);
                }
                self.dev.check_range(desc.dev_offset, desc.len)?;
                jobs.push(
                    Job {
                        region,
                        desc: *desc,
                    },
                    GFP_KERNEL,
                )?;
            }
            st.queued.reserve(count, GFP_KERNEL)?;
            // From here on nothing fails.
            // The table is there: every descriptor's region was found in it above.
            if let Some(table) = st.regions.as_mut() {
                for job in jobs.iter() {
                    table.start_job(job.desc.region_id);
                }
            }
            for job in jobs.drain_all() {
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
            st.regions.take()
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
                if let Some(table) = st.regions.as_mut() {
                    table.end_job(desc.region_id);
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

impl State {
    /// The region `id` of the table (a new reference to its run), if registered.
    fn lookup(&self, id: u32) -> Option<RegionRef> {
        self.regions.as_ref()?.region(id)
    }
}

/// Unpins the regions [`Session::remove_regions`] removed, one unpin call per stretch of
/// adjacent regions of one run, then returns their locked-memory charges: one
/// `account_locked_vm` per sequence of stretches charged to the same mm.
fn release_regions(removed: KVVec<Stretch>) {
    let mut charge: Option<LockedVmCharge> = None;
    for Stretch { run, range } in removed {
        // SAFETY: `remove_regions` took the regions out of the table (each id once) with no
        // descriptor in flight, and only jobs, counted in flight, read or write a region:
        // nothing else releases or uses them.
        let share = unsafe { run.release(range) };
        // Unpinned above; if this was the last reference, dropping the run frees it.
        drop(run);
        match charge.as_mut() {
            None => charge = Some(share),
            Some(c) => {
                if let Err(other) = c.merge(share) {
                    // Another mm (the file was used by another process): return the sum so far.
                    drop(charge.replace(other));
                }
            }
        }
    }
    drop(charge);
}

/// Reads the entry array of a vectored ioctl: `EINVAL` for nonzero `flags` or a `count` of 0 or
/// above [`abi::MAX_VEC`], `EFAULT` if it is unreadable. `split` turns the user slice into its
/// reader and whatever else the caller keeps (the writer for the results).
fn read_vec<T, W>(
    args: &abi::VecArgs,
    split: impl FnOnce(UserSlice) -> (UserSliceReader, W),
) -> Result<(KVVec<T>, W)>
where
    T: kernel::transmute::FromBytes + AsBytes,
{
    if args.flags != 0 || args.count == 0 || args.count > abi::MAX_VEC {
        return Err(EINVAL);
    }
    let count = args.count as usize;
    let addr = usize::try_from(args.entries).map_err(|_| EFAULT)?;
    let (mut reader, rest) = split(UserSlice::new(
        UserPtr::from_addr(addr),
        count * size_of::<T>(),
    ));
    let mut entries = KVVec::<T>::with_capacity(count, GFP_KERNEL)?;
    let spare = &mut entries.spare_capacity_mut()[..count];
    // SAFETY: `spare` is `count` elements of `T`, so `count * size_of::<T>()` bytes, viewed as
    // possibly uninitialised bytes (any byte may be written there).
    let bytes = unsafe {
        core::slice::from_raw_parts_mut(spare.as_mut_ptr().cast(), count * size_of::<T>())
    };
    reader.read_raw(bytes)?;
    // SAFETY: `read_raw` initialised all `count * size_of::<T>()` bytes of the first `count`
    // elements, and any bytes are a valid `T` (`FromBytes`).
    unsafe { entries.inc_len(count) };
    Ok((entries, rest))
}

/// Reads a `T` argument of an ioctl.
pub(crate) fn read_arg<T: kernel::transmute::FromBytes>(mut r: UserSliceReader) -> Result<T> {
    r.read::<T>()
}
