//! Hands each queue its own completions.
//!
//! The module keeps one completion queue per open file (session), but pinio makes one
//! [`crate::KmodQueue`] per thread, on any channel of the session (regions are registered per
//! open file, so every channel and queue of a session shares it). Each queue therefore
//! tags its descriptors with its queue id in the upper 32 bits of [`abi::Desc::tag`]; whichever
//! queue reaps the kernel's records files them into per-queue mailboxes, and the others are woken
//! to collect theirs: threads blocked in [`Router::collect`] by a condition variable, waiters on
//! a queue's completion fd by its [`Mailbox`] flag (see [`crate::wakeup`]). Only one thread
//! reaps from the kernel at a time.

use crate::KmodError;
use crate::abi::CompletionRecord;
use crate::sys::PinioFd;
use crate::wakeup::Mailbox;
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Records reaped per `PINIO_IOC_REAP`.
const REAP_BATCH: usize = 256;

#[derive(Default)]
struct Mailboxes {
    boxes: HashMap<u32, Vec<CompletionRecord>>,
    /// Each queue's flag, raised when another queue files records for it.
    flags: HashMap<u32, Arc<Mailbox>>,
    /// A thread is inside `PINIO_IOC_REAP` right now.
    reaping: bool,
    /// Queues whose non-blocking look found another thread reaping and gave up: their flags are
    /// raised when that reap ends, so they look again. Their waiters may have spent the module's
    /// event on that look, and the records the event announced may have arrived after the
    /// reaper's `PINIO_IOC_REAP` took its batch: nobody else would ever reap them.
    deferred: Vec<u32>,
    next_queue: u32,
}

/// Per-queue mailboxes of completion records of one open file.
#[derive(Default)]
pub(crate) struct Router {
    state: Mutex<Mailboxes>,
    filed: Condvar,
}

/// The queue id carried by a kernel tag.
pub(crate) fn queue_of(tag: u64) -> u32 {
    (tag >> 32) as u32
}

/// A kernel tag for operation `local` of queue `queue`.
pub(crate) fn tag(queue: u32, local: u32) -> u64 {
    (u64::from(queue) << 32) | u64::from(local)
}

impl Router {
    fn lock(&self) -> MutexGuard<'_, Mailboxes> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A mailbox for a new queue, whose `flag` is raised when another queue files records for
    /// it; returns its id.
    pub(crate) fn add_queue(&self, flag: Arc<Mailbox>) -> u32 {
        let mut st = self.lock();
        // Ids wrap after 2^32 queues; skip those still in use.
        let mut id = st.next_queue;
        while st.boxes.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        st.next_queue = id.wrapping_add(1);
        st.boxes.insert(id, Vec::new());
        st.flags.insert(id, flag);
        id
    }

    /// Drops the mailbox of a queue that has nothing in flight.
    pub(crate) fn remove_queue(&self, queue: u32) {
        let mut st = self.lock();
        st.boxes.remove(&queue);
        st.flags.remove(&queue);
    }

    /// Moves records of `queue` into `out` until it holds at least `min` of them (0: never
    /// blocks). Returns early with fewer only if the kernel has nothing outstanding at all.
    pub(crate) fn collect(
        &self,
        fd: &PinioFd,
        queue: u32,
        min: usize,
        out: &mut Vec<CompletionRecord>,
    ) -> Result<(), KmodError> {
        let mut st = self.lock();
        loop {
            if let Some(mine) = st.boxes.get_mut(&queue) {
                out.append(mine);
            }
            if out.len() >= min && min > 0 {
                return Ok(());
            }
            if min == 0 && st.reaping {
                // Never block a look on another thread's reap (it may wait in the kernel).
                if !st.deferred.contains(&queue) {
                    st.deferred.push(queue);
                }
                return Ok(());
            }
            if st.reaping {
                st = self.filed.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            st.reaping = true;
            drop(st);
            let (got, result) = self.reap_once(fd, if min == 0 { 0 } else { 1 });
            st = self.lock();
            file(&mut st, &got, Some(queue));
            self.filed.notify_all();
            result?;
            if let Some(mine) = st.boxes.get_mut(&queue) {
                out.append(mine);
            }
            // A look (`min == 0`) empties the kernel's queue: records left there would have no
            // event of their own (the module signalled them already).
            let emptied = got.len() < REAP_BATCH;
            if (min == 0 && emptied) || (min > 0 && out.len() >= min) || got.is_empty() {
                return Ok(());
            }
        }
    }

    /// Makes room in the kernel's completion queue: reaps (waiting for at least one record) and
    /// files what it got, or waits for the thread that is reaping.
    pub(crate) fn make_room(&self, fd: &PinioFd) -> Result<(), KmodError> {
        let mut st = self.lock();
        if st.reaping {
            drop(self.filed.wait(st).unwrap_or_else(|p| p.into_inner()));
            return Ok(());
        }
        st.reaping = true;
        drop(st);
        let (got, result) = self.reap_once(fd, 1);
        let mut st = self.lock();
        file(&mut st, &got, None);
        self.filed.notify_all();
        result
    }

    fn reap_once(&self, fd: &PinioFd, min: u32) -> (Vec<CompletionRecord>, Result<(), KmodError>) {
        let mut got = Vec::with_capacity(REAP_BATCH);
        let result = fd.reap(&mut got, min).map(drop);
        (got, result)
    }
}

/// Ends a reap: files `got` into the queues' mailboxes and raises the flag of each queue other
/// than `reaper` (which takes its own records at once) that got some, and of each queue whose
/// look gave up during the reap (`Mailboxes::deferred`).
fn file(st: &mut Mailboxes, got: &[CompletionRecord], reaper: Option<u32>) {
    st.reaping = false;
    let mut raised: Vec<u32> = std::mem::take(&mut st.deferred);
    for r in got {
        let q = queue_of(r.tag);
        if let Some(b) = st.boxes.get_mut(&q) {
            b.push(*r);
            if Some(q) != reaper && !raised.contains(&q) {
                raised.push(q);
            }
        }
    }
    for q in raised {
        if let Some(flag) = st.flags.get(&q) {
            flag.raise();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsFd, AsRawFd};

    fn readable(m: &Mailbox) -> bool {
        let mut p = libc::pollfd { fd: m.as_fd().as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd, no timeout.
        unsafe { libc::poll(&mut p, 1, 0) == 1 }
    }

    fn record(queue: u32) -> CompletionRecord {
        CompletionRecord { tag: tag(queue, 7), ..CompletionRecord::default() }
    }

    /// A look that finds another queue reaping returns at once, and that queue's flag is raised
    /// when the reap ends even if the reap brought nothing for it: its waiter may have spent the
    /// module's event on the look, for records the reaper's batch missed.
    #[test]
    fn a_look_during_another_queues_reap_is_raised_when_the_reap_ends() {
        let router = Router::default();
        let (a, b) = (Arc::new(Mailbox::new().unwrap()), Arc::new(Mailbox::new().unwrap()));
        let (qa, qb) = (router.add_queue(a.clone()), router.add_queue(b.clone()));
        // No ioctl is made on a look that gives up: any fd will do.
        let fd = PinioFd::open("/dev/null").unwrap();
        router.lock().reaping = true; // queue A is inside PINIO_IOC_REAP
        let mut out = Vec::new();
        router.collect(&fd, qb, 0, &mut out).unwrap();
        assert!(out.is_empty());
        assert!(!readable(&b));
        file(&mut router.lock(), &[record(qa)], Some(qa));
        assert!(readable(&b), "B's look gave up during A's reap: B must look again");
        assert!(!readable(&a), "the reaper takes its own records at once");
        b.clear();
        // Raised once per giving-up, not at every later reap.
        router.lock().reaping = true;
        file(&mut router.lock(), &[], Some(qa));
        assert!(!readable(&b));
    }

    /// Records filed for a queue other than the reaper raise that queue's flag, and land in its
    /// mailbox for its next look.
    #[test]
    fn records_filed_for_another_queue_raise_its_flag() {
        let router = Router::default();
        let (a, b) = (Arc::new(Mailbox::new().unwrap()), Arc::new(Mailbox::new().unwrap()));
        let (qa, qb) = (router.add_queue(a.clone()), router.add_queue(b.clone()));
        router.lock().reaping = true;
        file(&mut router.lock(), &[record(qb), record(qa), record(qb)], Some(qa));
        assert!(readable(&b) && !readable(&a));
        let fd = PinioFd::open("/dev/null").unwrap();
        router.lock().reaping = true; // a look takes its mailbox without reaping
        let mut out = Vec::new();
        router.collect(&fd, qb, 0, &mut out).unwrap();
        assert_eq!(out.len(), 2);
    }
}
