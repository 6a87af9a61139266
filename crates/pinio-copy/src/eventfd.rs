//! A non-blocking eventfd that signals "completions ready".

use pinio_core::{Error, Result};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `eventfd(2)` in non-blocking, close-on-exec mode.
#[derive(Debug)]
pub(crate) struct EventFd(OwnedFd);

impl EventFd {
    pub(crate) fn new() -> Result<EventFd> {
        // SAFETY: eventfd has no memory-safety preconditions; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(Error::last_os("eventfd"));
        }
        // SAFETY: `fd` is a fresh descriptor owned by nobody else.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Adds `n` to the counter, waking epoll waiters.
    pub(crate) fn signal(&self, n: u64) {
        // SAFETY: writes 8 bytes from a valid u64. A full counter (EAGAIN)
        // still leaves the fd readable, which is all a waiter needs.
        unsafe { libc::write(self.0.as_raw_fd(), (&n as *const u64).cast(), 8) };
    }

    /// Resets the counter to zero.
    pub(crate) fn drain(&self) {
        let mut v = 0u64;
        // SAFETY: reads 8 bytes into a valid u64; EAGAIN (already zero) is fine.
        unsafe { libc::read(self.0.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
