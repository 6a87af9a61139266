//! Zero-copy sends (`IORING_OP_SEND_ZC`) from a uring domain's registered
//! regions over a TCP socket.
//!
//! A zero-copy send completes twice: first with the number of bytes sent
//! (flag `IORING_CQE_F_MORE` promises a second completion), then with a
//! *notification* (`IORING_CQE_F_NOTIF`) once the kernel no longer needs
//! the memory. [`ZcSender::send`] hands the slice back only after that
//! notification, so the bytes cannot be changed while the network stack may
//! still read them. With `IORING_SEND_ZC_REPORT_USAGE` the notification also
//! says whether the kernel copied after all, which it always does over
//! loopback (the receiving socket cannot keep references to the sender's
//! pages) and may do for devices without scatter-gather.

use crate::registry::Registry;
use crate::sys::{IORING_NOTIF_USAGE_ZC_COPIED, IORING_SEND_ZC_REPORT_USAGE};
use crate::{UringError, UringRegistrar, ring};
use io_uring::{IoUring, cqueue, opcode, types};
use pinio_core::{Domain, Error, OpError, Result, Slice};
use std::io;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::Arc;

/// The largest piece handed to one `SEND_ZC` (its length field is 32 bits).
const MAX_SEND: usize = 1 << 30;

/// Counters of a [`ZcSender`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ZcStats {
    /// `SEND_ZC` operations completed.
    pub sends: u64,
    /// Bytes sent.
    pub bytes: u64,
    /// Sends whose notification said the kernel copied the data.
    pub copied_sends: u64,
    /// Bytes of those sends.
    pub copied_bytes: u64,
    /// Sends from a registered buffer (`IORING_RECVSEND_FIXED_BUF`).
    pub fixed_sends: u64,
    /// Notification completions received (one per send that promised one
    /// with `IORING_CQE_F_MORE`); a slice is returned only after its own.
    pub notifications: u64,
}

/// The outcome of [`ZcSender::send`].
#[derive(Debug)]
pub struct ZcSent {
    /// The slice, returned after the last notification.
    pub slice: Slice,
    /// Bytes sent (the whole slice).
    pub bytes: usize,
    /// Whether the kernel reported copying any of it
    /// (`IORING_NOTIF_USAGE_ZC_COPIED`).
    pub copied: bool,
    /// Whether the send used the region's registered buffer (no per-send pinning).
    pub fixed: bool,
}

/// Sends slices of a uring domain's regions over a TCP socket with
/// `SEND_ZC`, from their registered buffers.
///
/// The sender has its own ring, subscribed to the domain's table of
/// registered buffers like a queue of any file of the domain, with the
/// socket as fixed file 0.
pub struct ZcSender {
    domain: Domain,
    /// The domain's buffer table (`None` without fixed buffers).
    registry: Option<Arc<Registry>>,
    ring: Arc<IoUring>,
    subscription: Option<u64>,
    stream: TcpStream,
    next: u64,
    stats: ZcStats,
    /// The send started and not over yet.
    pending: Option<Pending>,
}

impl ZcSender {
    /// A sender for `stream`, sending slices of the regions of `domain`, a
    /// uring domain (that of any [`crate::UringDevice`]: `device.domain()`).
    /// A domain of another backend is refused with
    /// [`Error::WrongDomain`].
    pub fn new(domain: &Domain, stream: TcpStream) -> Result<ZcSender> {
        let registry = domain.require::<UringRegistrar>("uring")?.registry().cloned();
        let ring = Arc::new(ring::build(8, None, 8, stream.as_raw_fd())?);
        let subscription = match &registry {
            Some(r) => Some(r.subscribe(Arc::clone(&ring))?),
            None => None,
        };
        Ok(ZcSender {
            domain: domain.clone(),
            registry,
            ring,
            subscription,
            stream,
            next: 1,
            stats: ZcStats::default(),
            pending: None,
        })
    }

    /// The socket.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Counters since the sender was made.
    pub fn stats(&self) -> ZcStats {
        self.stats
    }

    /// Sends all of `slice` and returns it once the kernel has released it
    /// (after the notification completion of every piece).
    ///
    /// On a send error the slice comes back inside the error. If waiting on
    /// the ring itself fails, the slice is kept (leaked) because the kernel
    /// may still read it, and the error has no slice.
    pub fn send(&mut self, slice: Slice) -> Result<ZcSent, OpError> {
        self.start(slice)?;
        loop {
            if let Err(error) = self.enter(1) {
                return Err(self.abandon(error));
            }
            if let Some(r) = self.poll_sent() {
                return r;
            }
        }
    }

    /// Starts sending all of `slice` without waiting: the non-blocking half
    /// of [`ZcSender::send`], for event loops. Wait for the fd of
    /// [`ZcSender::completion_fd`] to be readable, then call
    /// [`ZcSender::poll_sent`] until it returns the slice. One send at a
    /// time: a second `start` before the first finished is refused with
    /// [`Error::QueueFull`] (and its slice).
    pub fn start(&mut self, slice: Slice) -> Result<(), OpError> {
        if slice.domain_id() != self.domain.id() {
            let error = Error::ForeignRegion { region_domain: slice.domain_id(), domain: self.domain.id() };
            return Err(OpError { error, slice: Some(slice), rest: Vec::new() });
        }
        if self.pending.is_some() {
            return Err(OpError { error: Error::QueueFull { capacity: 1 }, slice: Some(slice), rest: Vec::new() });
        }
        let fixed = slice.key().handle().is_some();
        self.pending = Some(Pending { slice, sent: 0, fixed, copied: false, piece: None });
        if let Err(e) = self.push_piece() {
            let slice = self.pending.take().map(|p| p.slice);
            return Err(OpError { error: e, slice, rest: Vec::new() });
        }
        Ok(())
    }

    /// The ring's fd: readable (`poll`, `epoll`, a runtime's reactor) when
    /// completions of the started send are waiting for
    /// [`ZcSender::poll_sent`].
    pub fn completion_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the ring's fd is open for as long as `self.ring` is, and the
        // borrow cannot outlive `self`.
        unsafe { BorrowedFd::borrow_raw(self.ring.as_raw_fd()) }
    }

    /// Collects the completions that arrived, without waiting. `Some` once
    /// the send started by [`ZcSender::start`] is over: all of the slice
    /// sent and every notification received (the slice is the caller's
    /// again), or an error with the slice. `None`: still under way (or
    /// nothing started).
    pub fn poll_sent(&mut self) -> Option<Result<ZcSent, OpError>> {
        loop {
            let (res, was_copied) = self.reap()?;
            let p = self.pending.as_mut()?;
            p.copied |= was_copied;
            let len = p.slice.len();
            if res <= 0 {
                let source = if res == 0 {
                    io::Error::new(io::ErrorKind::WriteZero, "the socket accepted no bytes (peer closed?)")
                } else {
                    io::Error::from_raw_os_error(-res)
                };
                let sent = p.sent;
                let slice = self.pending.take().map(|p| p.slice);
                return Some(Err(OpError {
                    error: UringError::SendZc { len, sent, source }.into(),
                    slice,
                    rest: Vec::new(),
                }));
            }
            let n = res as u64;
            self.stats.sends += 1;
            self.stats.bytes += n;
            if was_copied {
                self.stats.copied_sends += 1;
                self.stats.copied_bytes += n;
            }
            if p.fixed {
                self.stats.fixed_sends += 1;
            }
            p.sent += res as usize;
            if p.sent >= len {
                let p = self.pending.take()?;
                return Some(Ok(ZcSent { bytes: p.sent, copied: p.copied, fixed: p.fixed, slice: p.slice }));
            }
            // A short send: the rest goes in a new piece.
            if let Err(error) = self.push_piece() {
                let slice = self.pending.take().map(|p| p.slice);
                return Some(Err(OpError { error, slice, rest: Vec::new() }));
            }
        }
    }

    /// Queues and submits the next piece of the pending send.
    fn push_piece(&mut self) -> Result<()> {
        let Some(p) = self.pending.as_mut() else {
            return Ok(());
        };
        let (len, slot) = (p.slice.len(), p.slice.key().handle());
        let chunk = (len - p.sent).min(MAX_SEND);
        // SAFETY: `sent < len`, so the pointer stays inside the slice.
        let ptr = unsafe { p.slice.as_ptr().add(p.sent) };
        let mut sqe = opcode::SendZc::new(types::Fixed(0), ptr, chunk as u32).zc_flags(IORING_SEND_ZC_REPORT_USAGE);
        if let Some(slot) = slot {
            // The domain's registrar hands out slots below SLOTS.
            sqe = sqe.buf_index(Some(slot as u16));
        }
        let user_data = self.next;
        self.next += 1;
        let sqe = sqe.build().user_data(user_data);
        p.piece = Some(Piece { user_data, result: None, more: false, notified: false, copied: false });
        // the memory is the slice's, which `self.pending` holds until the
        // piece's notification completion (the DMA ownership rule,
        // pinio_core::domain; `Drop` waits for it); fixed file 0 is the
        // socket, owned by `self`. Only this sender uses this ring.
        // SAFETY: the entry names memory held until its notification, on fixed file 0 owned by `self` (argued above).
        if unsafe { self.ring.submission_shared().push(&sqe) }.is_err() {
            // Cannot happen: one piece at a time.
            p.piece = None;
            let source = io::Error::other("the sender's submission queue is full");
            return Err(UringError::Enter { source }.into());
        }
        self.enter(0)
    }

    /// Submits what is queued and waits for `want` completions.
    fn enter(&self, want: usize) -> Result<()> {
        loop {
            match self.ring.submitter().submit_and_wait(want) {
                Ok(_) => return Ok(()),
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR)) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::EAGAIN)) => {
                    return Ok(());
                }
                Err(source) => return Err(UringError::Enter { source }.into()),
            }
        }
    }

    /// Takes the completions of the current piece from the ring; returns
    /// its result and whether the kernel copied once its notification (if
    /// promised) has arrived.
    fn reap(&mut self) -> Option<(i32, bool)> {
        let notifications = &mut self.stats.notifications;
        let p = self.pending.as_mut()?;
        let piece = p.piece.as_mut()?;
        // SAFETY: only this sender reads this ring's completion queue.
        for cqe in unsafe { self.ring.completion_shared() } {
            if cqe.user_data() != piece.user_data {
                continue; // a stray: not ours
            }
            if cqueue::notif(cqe.flags()) {
                piece.notified = true;
                *notifications += 1;
                piece.copied |= cqe.result() & IORING_NOTIF_USAGE_ZC_COPIED != 0;
            } else {
                piece.result = Some(cqe.result());
                piece.more = cqueue::more(cqe.flags());
            }
        }
        let res = piece.result?;
        if piece.more && !piece.notified {
            return None;
        }
        let copied = piece.copied;
        p.piece = None;
        Some((res, copied))
    }

    /// The pending send's slice after a failure to wait on the ring: kept
    /// (leaked) if the kernel may still read it.
    fn abandon(&mut self, error: Error) -> OpError {
        if let Some(p) = self.pending.take() {
            std::mem::forget(p.slice);
        }
        OpError { error, slice: None, rest: Vec::new() }
    }
}

/// The send under way: its slice, held until the kernel released it.
struct Pending {
    slice: Slice,
    sent: usize,
    fixed: bool,
    /// Whether any piece's notification said the kernel copied.
    copied: bool,
    piece: Option<Piece>,
}

/// One `SEND_ZC` of a pending send.
struct Piece {
    user_data: u64,
    result: Option<i32>,
    more: bool,
    notified: bool,
    /// Its notification said the kernel copied.
    copied: bool,
}

impl Drop for ZcSender {
    fn drop(&mut self) {
        // A send still under way: the kernel may read its slice until the
        // notification, so wait for it (or keep the slice if waiting fails).
        while self.pending.is_some() {
            if self.poll_sent().is_some() {
                break;
            }
            if self.enter(1).is_err() {
                if let Some(p) = self.pending.take() {
                    std::mem::forget(p.slice);
                }
                break;
            }
        }
        if let (Some(id), Some(registry)) = (self.subscription, &self.registry) {
            registry.unsubscribe(id);
        }
    }
}

impl std::fmt::Debug for ZcSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZcSender").field("stream", &self.stream).field("stats", &self.stats).finish()
    }
}
