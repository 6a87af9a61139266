//! The flush of a [`UringQueue`] on an IOPOLL ring
//! ([`crate::UringOptions::iopoll`]). The kernel refuses `IORING_OP_FSYNC`
//! there (`EINVAL`: only polled reads and writes may enter such a ring), so
//! the `IOSQE_IO_DRAIN` of the interrupt-driven flush is done by hand: wait
//! for every operation pushed to the queue (their completions are kept for
//! the next `poll`/`wait`), then `fdatasync`/`fsync` the target with a system
//! call. The contract of [`pinio_core::Queue::flush`] is unchanged: the
//! writes pushed to this queue before the call and every write completed
//! before it are covered.

use super::UringQueue;
use pinio_core::{Error, FlushMode, Result};

impl UringQueue {
    /// Drains the queue into its stash, then syncs the target.
    pub(super) fn drain_then_sync(&mut self, mode: FlushMode) -> Result<()> {
        let mut stash = std::mem::take(&mut self.stash);
        let drained = loop {
            let left = self.inflight.len() + self.vectored.len();
            if left == 0 && self.unsubmitted == 0 {
                break Ok(());
            }
            // `wait` takes the (now empty) stash first, then polls the
            // device until `left` more are done.
            if let Err(e) = pinio_core::Queue::wait(self, left, &mut stash) {
                break Err(e);
            }
        };
        stash.append(&mut self.stash);
        self.stash = stash;
        drained?;
        let file = &self.shared.target.file;
        let synced = match mode {
            FlushMode::Data => file.sync_data(),
            FlushMode::All => file.sync_all(),
        };
        synced.map_err(|source| {
            let what = if mode == FlushMode::Data { "fdatasync" } else { "fsync" };
            Error::io(format!("{what} of {} (flush of an IOPOLL queue)", self.shared.target.path.display()), source)
        })
    }
}
