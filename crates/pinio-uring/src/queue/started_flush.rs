//! The non-blocking flush of a [`UringQueue`]: [`Queue::start_flush`]
//! submits the same `IORING_OP_FSYNC` (flagged `IOSQE_IO_DRAIN`) as the
//! blocking [`Queue::flush`] and returns; [`Queue::poll_flush`] reports its
//! CQE when a reap has found it. One flush runs at a time: a blocking flush
//! called while a started one runs first waits for it.
//!
//! [`Queue::start_flush`]: pinio_core::Queue::start_flush
//! [`Queue::poll_flush`]: pinio_core::Queue::poll_flush
//! [`Queue::flush`]: pinio_core::Queue::flush

use super::UringQueue;
use io_uring::{opcode, squeue, types};
use pinio_core::{Error, FlushMode, FlushProgress, Result};
use std::io;

impl UringQueue {
    /// The FSYNC entry of a flush in `mode`.
    pub(super) fn fsync_sqe(&self, mode: FlushMode) -> squeue::Entry {
        let flags = match mode {
            FlushMode::Data => types::FsyncFlags::DATASYNC,
            FlushMode::All => types::FsyncFlags::empty(),
        };
        opcode::Fsync::new(types::Fixed(0))
            .flags(flags)
            .build()
            .flags(squeue::Flags::IO_DRAIN)
            .user_data(self.flush_user_data)
    }

    /// The outcome of a flush's CQE result.
    pub(super) fn flush_outcome(&self, mode: FlushMode, res: i32) -> Result<()> {
        if res < 0 {
            let what = if mode == FlushMode::Data { "FSYNC (DATASYNC)" } else { "FSYNC" };
            return Err(Error::io(
                format!("{what} of {}", self.shared.target.path.display()),
                io::Error::from_raw_os_error(-res),
            ));
        }
        Ok(())
    }

    /// [`pinio_core::Queue::start_flush`].
    pub(super) fn start_flush_sqe(&mut self, mode: FlushMode) -> Result<FlushProgress> {
        if self.started_flush.is_some() {
            return Err(Error::Unsupported {
                what: "starting a flush while the one started before is running".into(),
                hint: "call poll_flush until it reports Done, then start the next".into(),
            });
        }
        let sqe = self.fsync_sqe(mode);
        self.flush_result = None;
        loop {
            // SAFETY: the entry names no memory; fixed file 0 is registered
            // for the ring's whole life. Only this queue pushes to this ring.
            if unsafe { self.ring.submission_shared().push(&sqe) }.is_ok() {
                break;
            }
            if !self.enter(0)? {
                let mut stash = std::mem::take(&mut self.stash);
                self.reap(&mut stash);
                self.stash = stash;
            }
        }
        self.unsubmitted += 1;
        self.started_flush = Some(mode);
        pinio_core::Queue::submit(self)?;
        self.poll_started_flush()
    }

    /// [`pinio_core::Queue::poll_flush`]: collects what the kernel has
    /// posted (completions wait in the stash), then looks for the flush's.
    pub(super) fn poll_started_flush(&mut self) -> Result<FlushProgress> {
        let Some(mode) = self.started_flush else { return Ok(FlushProgress::Done) };
        if self.flush_result.is_none() {
            pinio_core::Queue::submit(self)?;
            // With COOP_TASKRUN or DEFER_TASKRUN completions are posted only
            // when this thread enters the kernel.
            // SAFETY: only this queue uses this ring's submission queue; the
            // view only reads its flags.
            if unsafe { self.ring.submission_shared() }.taskrun() {
                self.enter(0)?;
            }
            let mut stash = std::mem::take(&mut self.stash);
            self.reap(&mut stash);
            self.stash = stash;
        }
        match self.flush_result.take() {
            None => Ok(FlushProgress::Running),
            Some(res) => {
                self.started_flush = None;
                self.flush_outcome(mode, res).map(|()| FlushProgress::Done)
            }
        }
    }

    /// Before a blocking flush: waits for a started one (its outcome is
    /// not this flush's, and its CQE must not be taken for this one's).
    pub(super) fn finish_started_flush(&mut self) -> Result<()> {
        while self.started_flush.is_some() {
            if self.poll_started_flush()? == FlushProgress::Running {
                self.enter(1)?;
            }
        }
        Ok(())
    }
}
