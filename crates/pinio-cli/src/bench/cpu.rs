//! CPU time of the whole process (all threads, user plus system).

use std::time::Duration;

/// User plus system time consumed by this process so far.
pub fn process_cpu() -> Duration {
    // SAFETY: rusage is plain old data; getrusage fills it through a valid pointer.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}
