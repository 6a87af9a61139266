//! Making the ring of one queue or sender.

use crate::{UringError, UringOptions};
use io_uring::IoUring;
use std::os::fd::RawFd;

/// Largest submission queue io_uring accepts (`IORING_MAX_ENTRIES`).
const MAX_ENTRIES: u32 = 32768;

/// A ring with at least `depth` submission entries, set up as `opts` says,
/// with `fd` registered as fixed file 0.
pub(crate) fn build(opts: &UringOptions, depth: usize, fd: RawFd) -> Result<IoUring, UringError> {
    let entries = opts.ring_entries.max(depth.min(MAX_ENTRIES as usize) as u32).next_power_of_two().min(MAX_ENTRIES);
    let mut builder = IoUring::builder();
    builder.dontfork();
    if let Some(idle) = opts.sqpoll {
        builder.setup_sqpoll(idle);
    }
    let ring = builder.build(entries).map_err(|source| UringError::Setup { entries, source })?;
    ring.submitter().register_files(&[fd]).map_err(|source| UringError::RegisterFile { source })?;
    Ok(ring)
}
