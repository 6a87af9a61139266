//! CPU time of the whole process (all threads), user and system apart.

use std::time::Duration;

/// CPU time consumed by this process so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    /// Time spent in user space.
    pub user: Duration,
    /// Time spent in the kernel on the process's behalf.
    pub sys: Duration,
}

impl Cpu {
    /// `self - earlier`, per kind (saturating: the clock is monotonic, but
    /// `getrusage` rounds to its tick).
    pub fn since(&self, earlier: &Cpu) -> Cpu {
        Cpu { user: self.user.saturating_sub(earlier.user), sys: self.sys.saturating_sub(earlier.sys) }
    }
}

/// User and system time consumed by this process so far.
pub fn process_cpu() -> Cpu {
    // SAFETY: rusage is plain old data; getrusage fills it through a valid pointer.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Cpu { user: tv(ru.ru_utime), sys: tv(ru.ru_stime) }
}
