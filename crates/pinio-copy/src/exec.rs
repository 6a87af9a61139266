//! One operation, run with `pread`/`pwrite` through a bounce buffer.

use crate::shared::Shared;
use pinio_core::{Completion, Direction, DmaBuf, Error, Op, Result};
use std::os::fd::AsRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs `op` to completion with `bounce` on the calling thread, counts it
/// in the device's statistics, and makes its completion.
pub(crate) fn complete(shared: &Shared, bounce: &mut DmaBuf, mut op: Op) -> Completion {
    // A panic (which no path here is known to reach) must still give the
    // operation back, or its queue would wait for it forever.
    let result = catch_unwind(AssertUnwindSafe(|| execute(shared, bounce, &mut op))).unwrap_or_else(|_| {
        Err(Error::Backend { backend: "copy", source: "the thread running this operation panicked".into() })
    });
    shared.core.record(op.dir, &result);
    Completion::of(op, result)
}

/// Moves `op`'s bytes chunk by chunk through `bounce`.
fn execute(shared: &Shared, bounce: &mut DmaBuf, op: &mut Op) -> Result<usize> {
    let fd = shared.target.file.as_raw_fd();
    let direct = shared.target.direct;
    let chunk_max = bounce.len().min(shared.bounce_bytes);
    let mut done = 0usize;
    let total = op.slice.len();
    while done < total {
        let n = chunk_max.min(total - done);
        let off = op.dev_offset + done as u64;
        let got = match op.dir {
            Direction::Write => {
                bounce[..n].copy_from_slice(&op.slice[done..done + n]);
                // SAFETY: the bounce buffer holds at least n valid bytes.
                let r = unsafe { libc::pwrite(fd, bounce.as_ptr().cast(), n, off as libc::off_t) };
                if r < 0 {
                    return Err(Error::last_os(format!("pwrite of {n} bytes at {off:#x}")));
                }
                r as usize
            }
            Direction::Read => {
                // SAFETY: the bounce buffer is valid for n bytes of writes
                // and no reference to it is alive.
                let r = unsafe { libc::pread(fd, bounce.as_mut_ptr().cast(), n, off as libc::off_t) };
                if r < 0 {
                    return Err(Error::last_os(format!("pread of {n} bytes at {off:#x}")));
                }
                let r = r as usize;
                op.slice[done..done + r].copy_from_slice(&bounce[..r]);
                r
            }
        };
        // The bounce copy, plus the kernel's page-cache copy when buffered.
        shared.core.stats().copied(if direct { got } else { 2 * got } as u64);
        done += got;
        if got < n {
            break; // end of file
        }
    }
    Ok(done)
}
