//! The runtime-agnostic completion waiter: one process-wide thread that
//! sleeps in `epoll_wait` on the completion fds of every [`super::AsyncQueue`]
//! and wakes the tasks waiting on a queue when its fd signals.
//!
//! The fds are watched edge-triggered (`EPOLLET`), so an fd that stays
//! readable (an eventfd nobody drains) wakes its tasks once per new event,
//! not in a loop. A task registers its waker *before* it looks at the queue
//! one last time (see `super::Shared::drive`), so a completion that arrived
//! before the registration is found by that look, and one arriving after it
//! raises a new edge that this thread turns into a wake-up.

use crate::{Error, Result};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::task::Waker;

/// Wakers of the tasks waiting on one queue's completions: a readiness
/// registers each waiting task here and wakes them all at each event of the
/// queue's completion fd (a reactor that keeps one waker per fd, such as
/// tokio's `AsyncFd`, would wake only the last task to poll).
#[derive(Debug, Default)]
pub struct Sleepers(Mutex<Vec<Waker>>);

impl Sleepers {
    fn lock(&self) -> MutexGuard<'_, Vec<Waker>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers `waker` (once) to be woken at the queue's next event.
    pub fn register(&self, waker: &Waker) {
        let mut w = self.lock();
        if !w.iter().any(|x| x.will_wake(waker)) {
            w.push(waker.clone());
        }
    }

    /// Wakes and forgets every registered task.
    pub fn wake_all(&self) {
        let wakers = std::mem::take(&mut *self.lock());
        for w in wakers {
            w.wake();
        }
    }
}

struct Waiter {
    epoll: OwnedFd,
    watched: Mutex<HashMap<u64, Weak<Sleepers>>>,
    next: Mutex<u64>,
}

fn waiter() -> Result<&'static Waiter> {
    static WAITER: OnceLock<std::result::Result<Waiter, String>> = OnceLock::new();
    WAITER
        .get_or_init(start)
        .as_ref()
        .map_err(|e| Error::Unsupported { what: "the completion waiter thread".into(), hint: e.clone() })
}

fn start() -> std::result::Result<Waiter, String> {
    // SAFETY: epoll_create1 has no memory-safety preconditions; the result is checked.
    let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if fd < 0 {
        return Err(format!("epoll_create1: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
    let raw = epoll.as_raw_fd();
    std::thread::Builder::new()
        .name("pinio-completions".into())
        .spawn(move || run(raw))
        .map_err(|e| format!("spawning the waiter thread: {e}"))?;
    Ok(Waiter { epoll, watched: Mutex::new(HashMap::new()), next: Mutex::new(1) })
}

/// The thread: wait for edges, wake the tasks of the queues that signalled.
fn run(epoll: RawFd) {
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 64];
    loop {
        // SAFETY: `events` is valid for its length; the epoll fd lives in a
        // process-wide static that is never dropped.
        let n = unsafe { libc::epoll_wait(epoll, events.as_mut_ptr(), events.len() as i32, -1) };
        if n < 0 {
            continue; // EINTR
        }
        let Ok(w) = waiter() else { return };
        for e in &events[..n as usize] {
            let sleepers = w.watched.lock().unwrap_or_else(|p| p.into_inner()).get(&{ e.u64 }).and_then(Weak::upgrade);
            if let Some(s) = sleepers {
                s.wake_all();
            }
        }
    }
}

/// One queue's fd under watch; dropping it stops the watch.
#[derive(Debug)]
pub(crate) struct Watch {
    key: u64,
    fd: OwnedFd,
}

impl Watch {
    /// Watches a duplicate of `fd` (the queue keeps its own) and wakes
    /// `sleepers` at each of its events.
    pub(crate) fn new(fd: std::os::fd::BorrowedFd<'_>, sleepers: &Arc<Sleepers>) -> Result<Watch> {
        let w = waiter()?;
        let fd = fd.try_clone_to_owned().map_err(|e| Error::io("duplicating the completion fd", e))?;
        let key = {
            let mut next = w.next.lock().unwrap_or_else(|p| p.into_inner());
            *next += 1;
            *next
        };
        w.watched.lock().unwrap_or_else(|p| p.into_inner()).insert(key, Arc::downgrade(sleepers));
        let mut ev = libc::epoll_event { events: (libc::EPOLLIN | libc::EPOLLET) as u32, u64: key };
        // SAFETY: both fds are open; `ev` is a valid epoll_event.
        if unsafe { libc::epoll_ctl(w.epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd.as_raw_fd(), &mut ev) } < 0 {
            w.watched.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
            return Err(Error::last_os("epoll_ctl(EPOLL_CTL_ADD) of a completion fd"));
        }
        Ok(Watch { key, fd })
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Ok(w) = waiter() {
            // SAFETY: both fds are open; a null event is allowed for DEL.
            unsafe {
                libc::epoll_ctl(w.epoll.as_raw_fd(), libc::EPOLL_CTL_DEL, self.fd.as_raw_fd(), std::ptr::null_mut())
            };
            w.watched.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.key);
        }
    }
}
