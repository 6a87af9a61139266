//! The locked-memory limit that registered buffers are charged against.
//!
//! io_uring charges registered buffers to `RLIMIT_MEMLOCK` unless the ring
//! was created by a thread with `CAP_IPC_LOCK` in its effective set
//! (`io_uring/io_uring.c`, `io_uring_create`).

use crate::sys::{CAP_IPC_LOCK, CAPABILITY_VERSION_3, CapData, CapHeader};

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
    fn limit_and_capability_are_consistent() {
        let limit = memlock_limit();
        match max_pinned_bytes() {
            None => assert!(has_cap_ipc_lock() || limit.is_none()),
            Some(m) => assert_eq!(Some(m), limit),
        }
    }
}
