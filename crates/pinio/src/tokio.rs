//! The tokio integration (feature `tokio`): async queues woken by the
//! runtime's own reactor instead of pinio's waiter thread, and (with
//! `uring`) zero-copy socket sends awaited the same way.

#[cfg(feature = "uring")]
mod zc;
#[cfg(feature = "uring")]
pub use zc::AsyncZcSender;

use pinio_core::aio::{AsyncQueue, Readiness, Sleepers};
use pinio_core::{Error, Queue, Result};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::task::Context;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::task::JoinHandle;

/// A small task on the runtime that waits for the queue's completion fd in
/// tokio's reactor and wakes every task armed on the queue at each event.
/// (An `AsyncFd` keeps one waker per direction, so tasks cannot each wait on
/// it directly.)
struct TokioReadiness {
    sleepers: Arc<Sleepers>,
    driver: JoinHandle<()>,
}

impl Readiness for TokioReadiness {
    fn arm(&self, cx: &mut Context<'_>) -> bool {
        self.sleepers.register(cx.waker());
        false
    }
}

impl Drop for TokioReadiness {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

async fn drive(fd: AsyncFd<OwnedFd>, sleepers: Arc<Sleepers>) {
    loop {
        match fd.readable().await {
            Ok(mut guard) => {
                // Edge-triggered: the next completion raises a new event.
                guard.clear_ready();
                sleepers.wake_all();
            }
            Err(_) => {
                // The reactor cannot watch the fd any more: leave the
                // waiting tasks to poll on their own.
                sleepers.wake_all();
                return;
            }
        }
    }
}

/// Wraps `queue` for async code on the current tokio runtime: its
/// completion fd is registered with the runtime's reactor, so tasks waiting
/// for operations sleep in tokio's own `epoll_wait`. Must be called from
/// within a runtime (outside one it is an [`Error::Unsupported`]). A queue without a completion fd (polled mode) is
/// polled, as [`AsyncQueue::new`] does.
///
/// ```
/// use pinio::Device;
/// # let path = std::path::Path::new("/var/tmp").join(format!("pinio-doc-{}-tokio", std::process::id()));
/// # let spec = format!("uring:{}", path.display());
/// # pinio::Builder::parse(&spec)?.create(1 << 20).open()?;
/// let rt = tokio::runtime::Builder::new_current_thread().enable_io().build().unwrap();
/// let n = rt.block_on(async {
///     let dev = pinio::open(&spec)?;                       // e.g. "uring:/var/tmp/data"
///     let q = pinio::tokio::async_queue(dev.queue(32)?)?;  // woken by tokio's reactor
///     let region = dev.alloc(4096)?;
///     let (n, _slice) = q.read_at(region.slice(0, 4096)?, 0).await?;
///     Ok::<usize, pinio::Error>(n)
/// })?;
/// assert_eq!(n, 4096);
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), pinio::Error>(())
/// ```
pub fn async_queue(queue: Box<dyn Queue>) -> Result<AsyncQueue> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(Error::Unsupported {
            what: "pinio::tokio::async_queue outside a tokio runtime".into(),
            hint: "call it from within the runtime (a task or Runtime::enter), or use pinio::aio::AsyncQueue::new"
                .into(),
        });
    }
    let Some(fd) = queue.event_fd() else { return AsyncQueue::new(queue) };
    let fd = fd.try_clone_to_owned().map_err(|e| Error::io("duplicating the completion fd", e))?;
    // SAFETY: `fd` is an `OwnedFd` moved into the `AsyncFd`: it is open, stays
    // open and names the same file description until the `AsyncFd` drops,
    // and `as_raw_fd` of an `OwnedFd` always returns that one descriptor.
    let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
        .map_err(|e| Error::io("registering the completion fd with tokio", e.into()))?;
    let sleepers = Arc::new(Sleepers::default());
    let driver = tokio::spawn(drive(fd, sleepers.clone()));
    Ok(AsyncQueue::with_readiness(queue, Box::new(TokioReadiness { sleepers, driver })))
}
