//! One operation, run with `pread`/`pwrite` through a bounce buffer.
//!
//! A vectored operation runs the same way: its segments are one sequence
//! of bytes, gathered into the bounce buffer before each `pwrite` and
//! scattered from it after each `pread` (what `pwritev`/`preadv` do, with
//! the copy every operation of this backend makes anyway), so it costs the
//! system calls of one transfer of its total length.

use crate::shared::Shared;
use pinio_core::{Completion, Direction, DmaBuf, Error, Op, Result, Slice};
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
    if op.is_vectored() {
        return execute_vectored(shared, bounce, op);
    }
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

/// Where a vectored operation's byte sequence is: a segment and an offset
/// in it.
struct Cursor {
    seg: usize,
    at: usize,
}

impl Cursor {
    /// Copies between `buf` and the segments from the cursor on, `gather`
    /// (segments to `buf`) or scatter (`buf` to segments), and advances.
    fn copy(&mut self, segs: &mut [&mut Slice], buf: &mut [u8], gather: bool) {
        let mut done = 0;
        while done < buf.len() {
            let s = &mut *segs[self.seg];
            let n = (s.len() - self.at).min(buf.len() - done);
            if gather {
                buf[done..done + n].copy_from_slice(&s[self.at..self.at + n]);
            } else {
                s[self.at..self.at + n].copy_from_slice(&buf[done..done + n]);
            }
            (done, self.at) = (done + n, self.at + n);
            if self.at == s.len() {
                (self.seg, self.at) = (self.seg + 1, 0);
            }
        }
    }
}

/// [`execute`] of a vectored operation: its segments gathered into (or
/// scattered from) `bounce`, one `pwrite`/`pread` per bounce chunk of the
/// total. A short transfer (a read at the end of the file) ends it: the
/// segments are filled in order up to the count it returns, as `preadv`
/// does.
#[cold]
fn execute_vectored(shared: &Shared, bounce: &mut DmaBuf, op: &mut Op) -> Result<usize> {
    let fd = shared.target.file.as_raw_fd();
    let direct = shared.target.direct;
    let chunk_max = bounce.len().min(shared.bounce_bytes);
    let (dir, dev_offset, total) = (op.dir, op.dev_offset, op.len());
    let mut segs: Vec<&mut Slice> = op.segments_mut().collect();
    let mut cursor = Cursor { seg: 0, at: 0 };
    let mut done = 0usize;
    while done < total {
        let n = chunk_max.min(total - done);
        let off = dev_offset + done as u64;
        let got = match dir {
            Direction::Write => {
                cursor.copy(&mut segs, &mut bounce[..n], true);
                // SAFETY: the bounce buffer holds at least n valid bytes.
                let r = unsafe { libc::pwrite(fd, bounce.as_ptr().cast(), n, off as libc::off_t) };
                if r < 0 {
                    return Err(Error::last_os(format!(
                        "pwrite of {n} bytes (gathered from {} slices) at {off:#x}",
                        segs.len()
                    )));
                }
                r as usize
            }
            Direction::Read => {
                // SAFETY: the bounce buffer is valid for n bytes of writes
                // and no reference to it is alive.
                let r = unsafe { libc::pread(fd, bounce.as_mut_ptr().cast(), n, off as libc::off_t) };
                if r < 0 {
                    return Err(Error::last_os(format!(
                        "pread of {n} bytes (scattered to {} slices) at {off:#x}",
                        segs.len()
                    )));
                }
                let r = r as usize;
                cursor.copy(&mut segs, &mut bounce[..r], false);
                r
            }
        };
        shared.core.stats().copied(if direct { got } else { 2 * got } as u64);
        done += got;
        if got < n {
            // End of file (a read), or a write the file system took only
            // in part: the completion reports the bytes done, as the
            // one-slice path and pwritev/preadv do.
            break;
        }
    }
    Ok(done)
}
