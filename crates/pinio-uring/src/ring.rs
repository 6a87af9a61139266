//! Making the ring of one queue or sender.

use crate::UringError;
use io_uring::IoUring;
use std::os::fd::RawFd;

/// Largest submission queue io_uring accepts (`IORING_MAX_ENTRIES`), and so
/// the deepest queue a device makes.
pub(crate) const MAX_ENTRIES: u32 = 32768;

/// How a ring is set up (the `IORING_SETUP_*` flags pinio chooses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Setup {
    /// A kernel thread polls the submission ring, idling after this many ms.
    pub sqpoll: Option<u32>,
    /// `COOP_TASKRUN | TASKRUN_FLAG`: no interruption to post completions;
    /// the ring's `IORING_SQ_TASKRUN` flag says when to enter.
    pub coop_taskrun: bool,
    /// `SINGLE_ISSUER | DEFER_TASKRUN | R_DISABLED`: one submitting thread,
    /// completions posted only when it waits; created disabled, so that
    /// the thread that first enables it ([`enable`]) becomes the issuer.
    pub single_issuer: bool,
    /// `IOPOLL`: polled completions, posted only when the ring is entered
    /// with `GETEVENTS`.
    pub iopoll: bool,
}

/// [`build_with`] a kernel polling thread idling after `sqpoll` ms if asked,
/// and no other setup flag.
pub(crate) fn build(entries: u32, sqpoll: Option<u32>, depth: usize, fd: RawFd) -> Result<IoUring, UringError> {
    build_with(entries, Setup { sqpoll, ..Setup::default() }, depth, fd)
}

/// A ring with at least `depth` (at most [`MAX_ENTRIES`]) submission
/// entries, `entries` if that is more, rounded up to a power of two, set
/// up as `setup` says, with `fd` registered as fixed file 0.
pub(crate) fn build_with(entries: u32, setup: Setup, depth: usize, fd: RawFd) -> Result<IoUring, UringError> {
    let depth = depth.min(MAX_ENTRIES as usize) as u32;
    let entries = entries.max(depth).checked_next_power_of_two().unwrap_or(MAX_ENTRIES).min(MAX_ENTRIES);
    let mut builder = IoUring::builder();
    builder.dontfork();
    if let Some(idle) = setup.sqpoll {
        builder.setup_sqpoll(idle);
    }
    if setup.iopoll {
        builder.setup_iopoll();
    }
    if setup.single_issuer {
        // DEFER_TASKRUN implies the task-run flag's job (completions wait
        // for the issuer's GETEVENTS); TASKRUN_FLAG still tells a poller
        // when there is work to fetch.
        builder.setup_single_issuer().setup_defer_taskrun().setup_taskrun_flag().setup_r_disabled();
    } else if setup.coop_taskrun && setup.sqpoll.is_none() {
        builder.setup_coop_taskrun().setup_taskrun_flag();
    }
    let ring = builder.build(entries).map_err(|source| UringError::Setup { entries, source })?;
    ring.submitter().register_files(&[fd]).map_err(|source| UringError::RegisterFile { source })?;
    Ok(ring)
}

/// Enables a ring made with [`Setup::single_issuer`]: the calling thread
/// becomes its only issuer.
pub(crate) fn enable(ring: &IoUring) -> Result<(), UringError> {
    ring.submitter().register_enable_rings().map_err(|source| match source.raw_os_error() {
        Some(libc::EEXIST) => UringError::NotOwner,
        _ => UringError::Enter { source },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_entry_counts_are_capped_not_overflowed() {
        let file = std::fs::File::open("/proc/self/exe").unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
        for (entries, depth) in [(u32::MAX, 1), ((1 << 31) + 1, 1), (0, usize::MAX), (0, 1)] {
            let ring =
                build(entries, None, depth, fd).unwrap_or_else(|e| panic!("{entries} entries, depth {depth}: {e}"));
            let want = if entries == 0 && depth == 1 { 1 } else { MAX_ENTRIES as usize };
            // SAFETY: reads the submission queue's size; nothing is pushed.
            assert_eq!(unsafe { ring.submission_shared() }.capacity(), want);
        }
    }

    #[test]
    fn every_setup_builds_and_a_single_issuer_ring_has_one_owner() {
        let file = std::fs::File::open("/proc/self/exe").unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
        let flags = [(false, false), (true, false), (false, true), (true, true)];
        for ((coop_taskrun, single_issuer), iopoll) in flags.into_iter().flat_map(|f| [(f, false), (f, true)]) {
            let setup = Setup { sqpoll: None, coop_taskrun, single_issuer, iopoll };
            let ring = build_with(8, setup, 1, fd).unwrap_or_else(|e| panic!("{setup:?}: {e}"));
            if single_issuer {
                // Disabled until enabled: entering fails with EBADFD.
                assert_eq!(ring.submit().unwrap_err().raw_os_error(), Some(libc::EBADFD));
                std::thread::scope(|s| s.spawn(|| enable(&ring).unwrap()).join().unwrap());
                // The enabling thread owns it; this one may not submit.
                assert!(matches!(enable(&ring), Err(UringError::NotOwner) | Err(UringError::Enter { .. })));
                let err = ring.submitter().submit_and_wait(1).unwrap_err();
                assert_eq!(err.raw_os_error(), Some(libc::EEXIST), "{setup:?}");
            } else {
                assert_eq!(ring.submit().unwrap(), 0);
            }
        }
    }
}
