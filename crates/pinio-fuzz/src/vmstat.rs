//! Pin accounting: `nr_foll_pin_acquired` and `nr_foll_pin_released` of `/proc/vmstat`.
//!
//! The kernel counts every page pinned with `FOLL_PIN` (`pin_user_pages*()`: pinio's module,
//! VFIO type1 mappings, io_uring fixed buffers, `O_DIRECT`) in `nr_foll_pin_acquired` and every
//! unpin in `nr_foll_pin_released`, one per page (Documentation/core-api/pin_user_pages.rst).
//! Their difference is the number of pages pinned right now, system-wide.
//!
//! # Using [`PinGuard`] from another crate's guest test
//!
//! ```no_run
//! # fn main() -> Result<(), pinio_fuzz::FuzzError> {
//! use pinio_fuzz::vmstat::PinGuard;
//! let guard = PinGuard::start()?;            // snapshot (waits for earlier releases to settle)
//! // ... register 3 pages and keep them registered on purpose ...
//! guard.expect_alive(3)?;                   // exactly 3 more pages pinned than at start
//! // ... unregister them, close everything ...
//! guard.finish()?;                          // fails with the difference if any page stayed pinned
//! # Ok(()) }
//! ```
//!
//! Add `pinio-fuzz = { path = "../pinio-fuzz" }` to the crate's `[dev-dependencies]`. The counters
//! are global: run tests that use a guard one at a time (the guest runs one test binary at a time;
//! inside a binary, serialise with a mutex), and give asynchronous releases (io_uring ring
//! teardown, a VFIO container closed by an exiting child) the grace period of [`PinGuard::finish`].

use crate::{Errno, FuzzError};
use std::time::{Duration, Instant};

/// The two counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinCounters {
    /// `nr_foll_pin_acquired`.
    pub acquired: u64,
    /// `nr_foll_pin_released`.
    pub released: u64,
}

impl PinCounters {
    /// Reads both counters, first folding the per-CPU deltas (`/proc/sys/vm/stat_refresh`, root
    /// only: without it the values can lag by a few pages per CPU).
    pub fn read() -> Result<PinCounters, FuzzError> {
        let _ = std::fs::write("/proc/sys/vm/stat_refresh", "1");
        let text = std::fs::read_to_string("/proc/vmstat").map_err(|e| FuzzError::Setup {
            what: "reading /proc/vmstat".into(),
            errno: Errno(e.raw_os_error().unwrap_or(0)),
            hint: "is /proc mounted?",
        })?;
        let get = |key: &str| -> Result<u64, FuzzError> {
            text.lines()
                .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
                .ok_or_else(|| FuzzError::Check(format!("{key} is missing from /proc/vmstat (kernel older than 5.8?)")))
        };
        Ok(PinCounters { acquired: get("nr_foll_pin_acquired")?, released: get("nr_foll_pin_released")? })
    }

    /// Pages pinned now (acquired - released).
    pub fn outstanding(&self) -> i64 {
        self.acquired as i64 - self.released as i64
    }
}

/// Pages pinned (system-wide) right now.
pub fn pins_outstanding() -> Result<i64, FuzzError> {
    Ok(PinCounters::read()?.outstanding())
}

/// Pins did not balance: more (a leak) or fewer (a double unpin) pages pinned than expected.
#[derive(Debug, thiserror::Error)]
#[error(
    "pin accounting: expected {expected} page(s) still pinned since the start of the check, found {found} \
     ({}; acquired +{acquired}, released +{released} since the start)",
    if found > expected { "a leak: pages stayed pinned" } else { "more pages released than pinned: a double unpin" }
)]
pub struct PinLeak {
    /// Pages expected to be pinned on purpose.
    pub expected: i64,
    /// Pages found pinned.
    pub found: i64,
    /// `nr_foll_pin_acquired` growth since the start.
    pub acquired: u64,
    /// `nr_foll_pin_released` growth since the start.
    pub released: u64,
}

/// A snapshot of the pin counters that checks, later, that exactly the expected number of pages
/// is still pinned. See the module docs for an example.
#[derive(Debug, Clone)]
pub struct PinGuard {
    start: PinCounters,
}

/// How long [`PinGuard`] waits for asynchronous releases before it calls a difference a leak.
pub const SETTLE: Duration = Duration::from_secs(5);

impl PinGuard {
    /// Takes the snapshot. First waits (up to [`SETTLE`]) until the counters stop moving, so
    /// releases still running from earlier work are not counted against this check.
    pub fn start() -> Result<PinGuard, FuzzError> {
        let deadline = Instant::now() + SETTLE;
        let mut last = PinCounters::read()?;
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            let now = PinCounters::read()?;
            if now == last {
                break;
            }
            last = now;
        }
        Ok(PinGuard { start: last })
    }

    /// The counters at the snapshot.
    pub fn start_counters(&self) -> PinCounters {
        self.start
    }

    /// Pages pinned now minus pages pinned at the snapshot.
    pub fn delta(&self) -> Result<i64, FuzzError> {
        Ok(PinCounters::read()?.outstanding() - self.start.outstanding())
    }

    /// Checks that exactly `pages` more pages are pinned than at the snapshot (registrations kept
    /// alive on purpose), waiting up to [`SETTLE`] for asynchronous releases.
    pub fn expect_alive(&self, pages: i64) -> Result<(), FuzzError> {
        let deadline = Instant::now() + SETTLE;
        loop {
            let now = PinCounters::read()?;
            let found = now.outstanding() - self.start.outstanding();
            if found == pages {
                return Ok(());
            }
            // A difference that keeps shrinking towards the target may still be releasing.
            if Instant::now() >= deadline || found < pages {
                return Err(PinLeak {
                    expected: pages,
                    found,
                    acquired: now.acquired - self.start.acquired,
                    released: now.released - self.start.released,
                }
                .into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Checks that every page pinned since the snapshot was released.
    pub fn finish(self) -> Result<(), FuzzError> {
        self.expect_alive(0)
    }
}
