//! [`AsyncZcSender`]: io_uring `SEND_ZC` awaited in tokio.

use pinio_core::{Domain, Error, OpError, Result, Slice};
use pinio_uring::net::{ZcSender, ZcSent};
use std::net::TcpStream;
use std::os::fd::OwnedFd;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// Zero-copy sends ([`ZcSender`], `IORING_OP_SEND_ZC` from a uring
/// domain's registered regions) for tokio tasks: the send is started
/// without blocking and the task sleeps in tokio's reactor on the sender's
/// ring fd until the kernel's notification hands the slice back.
///
/// Dropping a [`AsyncZcSender::send`] future before it resolves does not
/// cancel the send (the kernel may be reading the memory) and does not free
/// the slice: it stays with the sender until its notification, and the next
/// `send` first waits for that (then drops the old slice: a pool makes a
/// dropped slice anew). Dropping the sender waits for it too.
///
/// ```no_run
/// # async fn demo(stream: std::net::TcpStream) -> pinio::Result<()> {
/// let dev = pinio::open("uring:/var/tmp/data")?;
/// let mut tx = pinio::tokio::AsyncZcSender::new(dev.domain(), stream)?;
/// let region = dev.alloc(1 << 20)?;
/// let sent = tx.send(region.slice(0, 4096)?).await?;   // no copy in user space
/// assert_eq!(sent.bytes, 4096);
/// let _slice = sent.slice;                               // the kernel is done with it
/// # Ok(()) }
/// ```
pub struct AsyncZcSender {
    sender: ZcSender,
    ready: AsyncFd<OwnedFd>,
}

impl AsyncZcSender {
    /// A sender for `stream` (blocking or not: io_uring waits for room in
    /// the socket itself), of slices of `domain`'s regions (a uring domain;
    /// another is refused with [`Error::WrongDomain`]). Must be called from
    /// within a tokio runtime.
    pub fn new(domain: &Domain, stream: TcpStream) -> Result<AsyncZcSender> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Unsupported {
                what: "pinio::tokio::AsyncZcSender outside a tokio runtime".into(),
                hint: "call it from within the runtime (a task or Runtime::enter), or use pinio::uring::net::ZcSender"
                    .into(),
            });
        }
        let sender = ZcSender::new(domain, stream)?;
        let fd = sender
            .completion_fd()
            .try_clone_to_owned()
            .map_err(|e| Error::io("duplicating the sender's ring fd", e))?;
        // SAFETY: `fd` is an `OwnedFd` moved into the `AsyncFd`: it stays open
        // and names the same ring until the `AsyncFd` drops, and `as_raw_fd`
        // of an `OwnedFd` always returns that one descriptor.
        let ready = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(|e| Error::io("registering the sender's ring fd with tokio", e.into()))?;
        Ok(AsyncZcSender { sender, ready })
    }

    /// The blocking sender inside: its socket ([`ZcSender::stream`]) and
    /// counters ([`ZcSender::stats`]).
    pub fn sender(&self) -> &ZcSender {
        &self.sender
    }

    /// Sends all of `slice`; resolves once the kernel has released it (the
    /// notification of every piece), with the slice. On a send error the
    /// slice comes back inside the error.
    pub async fn send(&mut self, slice: Slice) -> std::result::Result<ZcSent, OpError> {
        let mut slice = slice;
        loop {
            match self.sender.start(slice) {
                Ok(()) => break,
                // A send whose future was dropped is still under way: wait
                // for its notification, then drop its outcome and slice.
                Err(OpError { error: Error::QueueFull { .. }, slice: Some(s), .. }) => {
                    slice = s;
                    if let Err(error) = self.wait().await {
                        return Err(OpError::with_slice(error, slice));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        match self.wait().await {
            Ok(done) => done,
            // The slice stays with the sender, whose drop waits for it.
            Err(error) => Err(OpError::no_slices(error)),
        }
    }

    /// Waits until the send under way is over and returns its outcome.
    async fn wait(&mut self) -> Result<std::result::Result<ZcSent, OpError>> {
        loop {
            if let Some(done) = self.sender.poll_sent() {
                return Ok(done);
            }
            // Edge-triggered: cleared before the next look, so a completion
            // arriving in between raises a new edge.
            match self.ready.readable().await {
                Ok(mut guard) => guard.clear_ready(),
                Err(e) => return Err(Error::io("waiting for SEND_ZC completions", e)),
            }
        }
    }
}

impl std::fmt::Debug for AsyncZcSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncZcSender").field("sender", &self.sender).finish()
    }
}
