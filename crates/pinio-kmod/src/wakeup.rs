//! How a queue's waiters learn that it has completions to collect.
//!
//! The module signals one file (its waitqueue, `poll`) for the records of every queue of the
//! session, and whichever queue reaps files the others' records into their mailboxes
//! (`router.rs`). A waiter watching only the module's file would miss records another
//! queue reaped for it: the file is no longer readable once they left the kernel, so no event
//! ever comes for them. So each queue has a [`Mailbox`] flag (an eventfd, raised by the queue
//! that files records for it) and its completion fd is a small epoll set over both, readable
//! when the module holds records *or* another queue filed some for this one.

use pinio_core::{Error, Result};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// A queue's "records were filed for you" flag: an eventfd.
#[derive(Debug)]
pub(crate) struct Mailbox {
    efd: OwnedFd,
}

impl Mailbox {
    pub(crate) fn new() -> Result<Mailbox> {
        // SAFETY: eventfd has no memory-safety preconditions; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(Error::last_os("eventfd for a kmod queue's completions"));
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        Ok(Mailbox { efd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    /// Raises the flag (readable until [`Mailbox::clear`]).
    pub(crate) fn raise(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an eventfd this value owns. A full
        // counter (EAGAIN) still leaves the fd readable, which is all a raise has to achieve.
        unsafe { libc::write(self.efd.as_raw_fd(), (&raw const one).cast(), 8) };
    }

    /// Lowers the flag. Called before the queue looks at its mailbox, so that a raise after
    /// the look leaves it readable for the next one.
    pub(crate) fn clear(&self) {
        let mut n: u64 = 0;
        // SAFETY: reads at most 8 bytes into a live u64 from a non-blocking eventfd this value
        // owns; EAGAIN (not raised) is the expected answer when nothing was filed.
        unsafe { libc::read(self.efd.as_raw_fd(), (&raw mut n).cast(), 8) };
    }
}

impl AsFd for Mailbox {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.efd.as_fd()
    }
}

/// A queue's completion fd: an epoll set, readable when the module's file or the queue's
/// [`Mailbox`] is.
#[derive(Debug)]
pub(crate) struct CompletionFd {
    epoll: OwnedFd,
}

impl CompletionFd {
    pub(crate) fn new(module: BorrowedFd<'_>, mailbox: &Mailbox) -> Result<CompletionFd> {
        // SAFETY: epoll_create1 has no memory-safety preconditions; the result is checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(Error::last_os("epoll_create1 for a kmod queue's completion fd"));
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
        for (what, watched) in [("the module's file", module), ("the queue's mailbox", mailbox.as_fd())] {
            let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: 0 };
            // SAFETY: both fds are open for this call; `ev` is a valid epoll_event.
            if unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, watched.as_raw_fd(), &mut ev) } < 0 {
                return Err(Error::last_os(format!("epoll_ctl(EPOLL_CTL_ADD) of {what}")));
            }
        }
        Ok(CompletionFd { epoll })
    }
}

impl AsFd for CompletionFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }
}
