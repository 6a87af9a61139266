//! The one error type of this crate, and errno values that print their name.

use std::fmt;

/// An errno value returned by a system call, printed as `EFAULT (Bad address)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

impl Errno {
    /// The errno the last failing system call of this thread left.
    pub fn last() -> Errno {
        Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }

    /// The symbolic name for the errnos pinio's ABI uses, `E<n>` otherwise.
    pub fn name(self) -> String {
        let known = [
            (libc::EPERM, "EPERM"),
            (libc::ENOENT, "ENOENT"),
            (libc::ESRCH, "ESRCH"),
            (libc::EINTR, "EINTR"),
            (libc::EBADF, "EBADF"),
            (libc::EAGAIN, "EAGAIN"),
            (libc::ENOMEM, "ENOMEM"),
            (libc::EACCES, "EACCES"),
            (libc::EFAULT, "EFAULT"),
            (libc::EBUSY, "EBUSY"),
            (libc::ENODEV, "ENODEV"),
            (libc::EINVAL, "EINVAL"),
            (libc::ENOTTY, "ENOTTY"),
            (libc::ENOSPC, "ENOSPC"),
            (libc::ESPIPE, "ESPIPE"),
            (libc::ERANGE, "ERANGE"),
            (libc::EOVERFLOW, "EOVERFLOW"),
        ];
        known.iter().find(|(e, _)| *e == self.0).map_or_else(|| format!("E{}", self.0), |(_, n)| n.to_string())
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), std::io::Error::from_raw_os_error(self.0))
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// What went wrong in a fuzz run or a scenario.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FuzzError {
    /// The module answered a call differently from what its ABI (docs/kmod.md) promises.
    #[error(
        "call #{index} {call}: expected {expected}, got {got} (seed {seed:#x}; replay with PINIO_FUZZ_SEED={seed:#x})\nlast calls:\n{trace}"
    )]
    Oracle {
        /// The run's seed.
        seed: u64,
        /// Index of the offending call in the run.
        index: u64,
        /// The call and its arguments.
        call: String,
        /// What the model expected.
        expected: String,
        /// What the kernel answered.
        got: String,
        /// The calls before it, oldest first.
        trace: String,
    },
    /// Pinned pages were not released (or more were released than taken).
    #[error(transparent)]
    PinLeak(#[from] crate::vmstat::PinLeak),
    /// The kernel logged a report (KASAN, lockdep, WARNING, BUG, ...).
    #[error("the kernel reported a problem{context}:\n{lines}")]
    KernelReport {
        /// Where (for the fuzzer: the seed and the call index).
        context: String,
        /// The report's lines.
        lines: String,
    },
    /// A setup step failed (mmap, fork, opening the device, ...): not a finding about the module.
    #[error("{what}: {errno}; {hint}")]
    Setup {
        /// What was attempted.
        what: String,
        /// Its errno.
        errno: Errno,
        /// What to check.
        hint: &'static str,
    },
    /// A scenario's expectation did not hold.
    #[error("{0}")]
    Check(String),
    /// A configuration value (environment variable) could not be used.
    #[error("{name}={value:?} is not valid: {why}")]
    Config {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What it must be.
        why: &'static str,
    },
}

impl FuzzError {
    /// A setup failure of `what` with the current errno.
    pub fn setup(what: impl Into<String>, hint: &'static str) -> FuzzError {
        FuzzError::Setup { what: what.into(), errno: Errno::last(), hint }
    }
}

/// Fails a scenario with a message unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::FuzzError::Check(format!($($fmt)+)));
        }
    };
}
