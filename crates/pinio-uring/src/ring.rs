//! Making the ring of one queue or sender.

use crate::UringError;
use io_uring::IoUring;
use std::os::fd::RawFd;

/// Largest submission queue io_uring accepts (`IORING_MAX_ENTRIES`), and so
/// the deepest queue a device makes.
pub(crate) const MAX_ENTRIES: u32 = 32768;

/// A ring with at least `depth` (at most [`MAX_ENTRIES`]) submission
/// entries, `entries` if that is more, rounded up to a power of two; with a
/// kernel polling thread idling after `sqpoll` ms if asked; with `fd`
/// registered as fixed file 0.
pub(crate) fn build(entries: u32, sqpoll: Option<u32>, depth: usize, fd: RawFd) -> Result<IoUring, UringError> {
    let depth = depth.min(MAX_ENTRIES as usize) as u32;
    let entries = entries.max(depth).checked_next_power_of_two().unwrap_or(MAX_ENTRIES).min(MAX_ENTRIES);
    let mut builder = IoUring::builder();
    builder.dontfork();
    if let Some(idle) = sqpoll {
        builder.setup_sqpoll(idle);
    }
    let ring = builder.build(entries).map_err(|source| UringError::Setup { entries, source })?;
    ring.submitter().register_files(&[fd]).map_err(|source| UringError::RegisterFile { source })?;
    Ok(ring)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_entry_counts_are_capped_not_overflowed() {
        let file = std::fs::File::open("/proc/self/exe").unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
        for (entries, depth) in [(u32::MAX, 1), ((1 << 31) + 1, 1), (0, usize::MAX), (0, 1)] {
            let ring = build(entries, None, depth, fd).unwrap_or_else(|e| panic!("{entries} entries, depth {depth}: {e}"));
            let want = if entries == 0 && depth == 1 { 1 } else { MAX_ENTRIES as usize };
            // SAFETY: reads the submission queue's size; nothing is pushed.
            assert_eq!(unsafe { ring.submission_shared() }.capacity(), want);
        }
    }
}
