//! A second open file of the same target, for a queue of its own.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

use crate::FileTarget;

impl FileTarget {
    /// Opens the target again, with the same access and `O_DIRECT` as the
    /// first open: a new open file description (`struct file`) of the same
    /// inode, through `/proc/self/fd` (so a file since renamed or unlinked
    /// is still the one reopened).
    ///
    /// Why a queue wants one: the kernel writes an open file's readahead
    /// state on every buffered read, so two threads reading through one open
    /// file share that cache line; fio's jobs each open the file, and so can
    /// pinio's queues.
    pub fn reopen(&self) -> std::io::Result<File> {
        let mut o = OpenOptions::new();
        o.read(true).write(self.writable);
        if self.direct {
            o.custom_flags(libc::O_DIRECT);
        }
        o.open(format!("/proc/self/fd/{}", self.file.as_raw_fd()))
    }
}
