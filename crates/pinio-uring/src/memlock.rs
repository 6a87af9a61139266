//! The locked-memory limit that registered buffers are charged against.
//!
//! io_uring charges registered buffers to `RLIMIT_MEMLOCK` unless the ring
//! was created by a thread with `CAP_IPC_LOCK` in its effective set
//! (`io_uring/io_uring.c`, `io_uring_create`). The charge is the user's,
//! not the process's: `__io_account_mem` (`io_uring/rsrc.c`) adds the
//! pages to `user->locked_vm` and compares the sum with the calling task's
//! limit, so every process of the user shares it.
//!
//! # Late release
//!
//! A process that exits with registered buffers does not give its charge
//! back at exit. Closing the ring's file runs `io_uring_release`, which
//! calls `io_ring_ctx_wait_and_kill`: it kills the ring's reference and
//! queues `io_ring_exit_work` on a workqueue. That work waits for the
//! ring's references to drop (an RCU grace period at least, polled every
//! `HZ / 20`), then calls `io_ring_ctx_free`, whose
//! `io_sqe_buffers_unregister` finally reaches `io_buffer_unmap` and
//! `io_unaccount_mem` (`io_uring/io_uring.c`, `io_uring/rsrc.c`, Linux 7.3).
//! So for milliseconds to tens of milliseconds after its parent has seen
//! the process exit, its charge still counts against the user's limit, and
//! a registration that fits refuses with `ENOMEM`.
//!
//! `LateRelease` (crate-private) handles it: a refusal although this domain's own charge
//! plus the request fits under the limit is retried, with backoff, for up
//! to [`LATE_RELEASE_WAIT`]. When the charge really is held elsewhere (a
//! live process of the same user), the wait ends with the error, whose
//! message says so, and refusals in the following [`QUIET_AFTER_WAIT`] do
//! not wait again, so that a policy of falling back does not pay the wait
//! for every region.

use crate::registry::RegisterFailure;
use crate::sys::{CAP_IPC_LOCK, CAPABILITY_VERSION_3, CapData, CapHeader};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a refused registration that should fit is retried.
pub const LATE_RELEASE_WAIT: Duration = Duration::from_millis(200);

/// After a wait that ended in a refusal, how long further refusals fail at
/// once.
pub const QUIET_AFTER_WAIT: Duration = Duration::from_secs(1);

/// The first pause between attempts; each next one doubles.
const FIRST_PAUSE: Duration = Duration::from_millis(1);

/// Whether `requested` more bytes, with `locked` already registered, each
/// charged `rings` times, fit under `limit` as the kernel counts (whole
/// pages).
pub(crate) fn fits(locked: u64, requested: u64, rings: u64, limit: u64) -> bool {
    let page = pinio_core::page_size() as u64;
    let pages = |b: u64| b.div_ceil(page);
    (pages(locked) + pages(requested)).checked_mul(rings).is_some_and(|p| p <= limit / page)
}

/// Retries of registrations refused by a charge the kernel has not yet
/// released (see the [module docs](self)). One per domain.
#[derive(Debug, Default)]
pub(crate) struct LateRelease {
    /// When the last wait ended without success.
    gave_up: Mutex<Option<Instant>>,
}

impl LateRelease {
    /// Runs `attempt` (the registration of `requested` bytes under `limit`,
    /// `None` when unlimited) and, while it is refused although it fits,
    /// again after 1, 2, 4, … ms, for up to [`LATE_RELEASE_WAIT`] in all.
    pub(crate) fn register<T>(
        &self,
        requested: u64,
        limit: Option<u64>,
        mut attempt: impl FnMut() -> Result<T, RegisterFailure>,
    ) -> Result<T, RegisterFailure> {
        let mut result = attempt();
        let Some(limit) = limit else { return result };
        let mut deadline = None;
        let mut pause = FIRST_PAUSE;
        loop {
            match &result {
                Ok(_) => {
                    *self.gave_up() = None;
                    return result;
                }
                Err(RegisterFailure::Memlock { locked, rings }) if fits(*locked, requested, *rings, limit) => {}
                Err(_) => return result,
            }
            let now = Instant::now();
            if self.gave_up().is_some_and(|t| now.duration_since(t) < QUIET_AFTER_WAIT) {
                return result;
            }
            let end = *deadline.get_or_insert(now + LATE_RELEASE_WAIT);
            if now >= end {
                *self.gave_up() = Some(now);
                return result;
            }
            std::thread::sleep(pause.min(end - now));
            pause *= 2;
            result = attempt();
        }
    }

    fn gave_up(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.gave_up.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The soft `RLIMIT_MEMLOCK` in bytes; `None` when unlimited or unreadable.
pub fn memlock_limit() -> Option<u64> {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one struct through a valid pointer.
    let r = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut rl) };
    (r == 0 && rl.rlim_cur != libc::RLIM_INFINITY).then_some(rl.rlim_cur)
}

/// Whether the calling thread has `CAP_IPC_LOCK` in its effective set, which
/// exempts rings it creates from `RLIMIT_MEMLOCK`.
pub fn has_cap_ipc_lock() -> bool {
    let mut hdr = CapHeader { version: CAPABILITY_VERSION_3, pid: 0 };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget(2) with a version-3 header reads the header and writes
    // two CapData entries, both valid for the call.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut hdr as *mut CapHeader, data.as_mut_ptr()) };
    r == 0 && data[0].effective & (1 << CAP_IPC_LOCK) != 0
}

/// The most memory a domain may register, if it is limited: the soft
/// `RLIMIT_MEMLOCK` unless this thread has `CAP_IPC_LOCK`.
pub fn max_pinned_bytes() -> Option<u64> {
    if has_cap_ipc_lock() { None } else { memlock_limit() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_counts_whole_pages_per_ring() {
        let page = pinio_core::page_size() as u64;
        assert!(fits(0, 8 << 20, 1, 8 << 20));
        assert!(!fits(1, 8 << 20, 1, 8 << 20), "one byte more is one page more");
        assert!(fits(2 << 20, 2 << 20, 2, 8 << 20));
        assert!(!fits(2 << 20, (2 << 20) + 1, 2, 8 << 20));
        assert!(!fits(0, page, u64::MAX, u64::MAX), "no overflow");
    }

    fn refused(locked: u64) -> Result<(), RegisterFailure> {
        Err(RegisterFailure::Memlock { locked, rings: 1 })
    }

    #[test]
    fn a_refusal_that_fits_is_retried_until_it_succeeds() {
        let late = LateRelease::default();
        let mut calls = 0;
        let start = Instant::now();
        let r = late.register(4096, Some(1 << 20), || {
            calls += 1;
            if calls < 4 { refused(0) } else { Ok(()) }
        });
        assert!(r.is_ok());
        assert_eq!(calls, 4);
        assert!(start.elapsed() >= Duration::from_millis(7), "1 + 2 + 4 ms of pauses");
    }

    #[test]
    fn a_refusal_that_cannot_fit_is_not_retried() {
        let late = LateRelease::default();
        let mut calls = 0;
        let r = late.register(2 << 20, Some(1 << 20), || {
            calls += 1;
            refused(0)
        });
        assert!(r.is_err());
        assert_eq!(calls, 1);
        let r = late.register(4096, None, || {
            calls += 1;
            refused(0)
        });
        assert!(r.is_err() && calls == 2, "no limit known: not retried");
    }

    /// Attempts made by a registration that fits but is always refused.
    fn attempts_while_refused(late: &LateRelease) -> u32 {
        let mut calls = 0;
        let r = late.register(4096, Some(1 << 20), || {
            calls += 1;
            refused(0)
        });
        assert!(r.is_err());
        calls
    }

    #[test]
    fn a_fruitless_wait_is_bounded_and_not_repeated_at_once() {
        let late = LateRelease::default();
        let start = Instant::now();
        let calls = attempts_while_refused(&late);
        let took = start.elapsed();
        assert!(took >= LATE_RELEASE_WAIT, "{took:?}");
        // Pauses of 1, 2, 4, ... ms until 200 ms have passed: at most 9
        // attempts however slow the machine (fewer when it is slower).
        assert!((2..=9).contains(&calls), "{calls} attempts");
        assert_eq!(attempts_while_refused(&late), 1, "no second wait right after a fruitless one");
        // A success ends the quiet period.
        assert!(late.register(4096, Some(1 << 20), || Ok(())).is_ok());
        let mut calls = 0;
        let _ = late.register(4096, Some(1 << 20), || {
            calls += 1;
            if calls < 2 { refused(0) } else { Ok(()) }
        });
        assert_eq!(calls, 2, "retried again after a success");
    }

    #[test]
    fn limit_and_capability_are_consistent() {
        let limit = memlock_limit();
        match max_pinned_bytes() {
            None => assert!(has_cap_ipc_lock() || limit.is_none()),
            Some(m) => assert_eq!(Some(m), limit),
        }
    }
}
