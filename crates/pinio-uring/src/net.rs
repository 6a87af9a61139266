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
use std::os::fd::AsRawFd;
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
        Ok(ZcSender { domain: domain.clone(), registry, ring, subscription, stream, next: 1, stats: ZcStats::default() })
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
        if slice.domain_id() != self.domain.id() {
            let error = Error::ForeignRegion { region_domain: slice.domain_id(), domain: self.domain.id() };
            return Err(OpError { error, slice: Some(slice) });
        }
        let (len, slot) = (slice.len(), slice.key().handle());
        let fixed = slot.is_some();
        let (mut sent, mut copied) = (0usize, false);
        while sent < len {
            let chunk = (len - sent).min(MAX_SEND);
            // SAFETY: `sent < len`, so the pointer stays inside the slice.
            let ptr = unsafe { slice.as_ptr().add(sent) };
            let mut sqe = opcode::SendZc::new(types::Fixed(0), ptr, chunk as u32).zc_flags(IORING_SEND_ZC_REPORT_USAGE);
            if let Some(slot) = slot {
                // The domain's registrar hands out slots below SLOTS.
                sqe = sqe.buf_index(Some(slot as u16));
            }
            let user_data = self.next;
            self.next += 1;
            let sqe = sqe.build().user_data(user_data);
            // the memory is the slice's, which this function holds
            // until the notification completion below (the DMA ownership
            // rule, pinio_core::domain); fixed file 0 is the socket, owned by
            // `self`. Only this sender uses this ring.
            // SAFETY: the entry names memory this function holds until its notification, on fixed file 0 owned by `self` (argued above).
            if unsafe { self.ring.submission_shared().push(&sqe) }.is_err() {
                // Cannot happen: the queue is empty between sends.
                let source = io::Error::other("the sender's submission queue is full");
                return Err(OpError { error: UringError::Enter { source }.into(), slice: Some(slice) });
            }
            let (res, was_copied) = match self.complete(user_data) {
                Ok(r) => r,
                Err(error) => {
                    std::mem::forget(slice);
                    return Err(OpError { error, slice: None });
                }
            };
            copied |= was_copied;
            if res <= 0 {
                let source = if res == 0 {
                    io::Error::new(io::ErrorKind::WriteZero, "the socket accepted no bytes (peer closed?)")
                } else {
                    io::Error::from_raw_os_error(-res)
                };
                return Err(OpError { error: UringError::SendZc { len, sent, source }.into(), slice: Some(slice) });
            }
            let n = res as u64;
            self.stats.sends += 1;
            self.stats.bytes += n;
            if was_copied {
                self.stats.copied_sends += 1;
                self.stats.copied_bytes += n;
            }
            if fixed {
                self.stats.fixed_sends += 1;
            }
            sent += res as usize;
        }
        Ok(ZcSent { slice, bytes: sent, copied, fixed })
    }

    /// Waits for the result of send `user_data` and, if it promised one,
    /// its notification; returns the result and whether the kernel copied.
    fn complete(&mut self, user_data: u64) -> Result<(i32, bool)> {
        let notifications = &mut self.stats.notifications;
        let (mut result, mut more, mut notified, mut copied) = (None, false, false, false);
        loop {
            match self.ring.submitter().submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY | libc::EAGAIN)) => {}
                Err(source) => return Err(UringError::Enter { source }.into()),
            }
            // SAFETY: only this sender reads this ring's completion queue.
            for cqe in unsafe { self.ring.completion_shared() } {
                if cqe.user_data() != user_data {
                    continue; // a stray: not ours
                }
                if cqueue::notif(cqe.flags()) {
                    notified = true;
                    *notifications += 1;
                    copied |= cqe.result() & IORING_NOTIF_USAGE_ZC_COPIED != 0;
                } else {
                    result = Some(cqe.result());
                    more = cqueue::more(cqe.flags());
                }
            }
            if let Some(res) = result
                && (!more || notified)
            {
                return Ok((res, copied));
            }
        }
    }
}

impl Drop for ZcSender {
    fn drop(&mut self) {
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
