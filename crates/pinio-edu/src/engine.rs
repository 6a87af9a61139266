//! edu's single DMA engine, shared by every queue of a device: transfers
//! wait in one FIFO, run one at a time, and finish in order.
//!
//! Whoever waits drives: the waiting thread that finds the engine busy and
//! nobody else watching blocks on the MSI eventfd (or spins on the command
//! register in poll mode), then records the finished transfer and starts
//! the next one; other waiters sleep on a condition variable. A transfer
//! that does not finish within [`DMA_TIMEOUT`] stops the device: bus
//! mastering is switched off, so it can no longer touch memory, and every
//! queued transfer fails.

use crate::regs::{self, DmaProgram};
use pinio_vfio::{PCI_COMMAND_MASTER, VfioPci};
use std::collections::{BTreeMap, VecDeque};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use vmm_sys_util::eventfd::EventFd;

/// How long one edu DMA may take. It takes 100 ms of virtual time; the
/// margin covers a QEMU main loop starved by a busy host under TCG.
pub(crate) const DMA_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a transfer did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// It (or one before it) timed out and the device was stopped.
    Timeout,
    /// The device had been stopped before.
    Stopped,
}

/// A transfer's outcome: bytes moved, or why not.
pub(crate) type Outcome = Result<usize, Fault>;

struct Running {
    ticket: u64,
    len: usize,
    started: Instant,
}

#[derive(Default)]
struct State {
    fifo: VecDeque<(u64, DmaProgram, usize)>,
    running: Option<Running>,
    done: BTreeMap<u64, Outcome>,
    next: u64,
    driving: bool,
    stopped: bool,
}

/// The engine of one opened edu.
pub(crate) struct Engine {
    pci: Arc<VfioPci>,
    irq: Option<EventFd>,
    st: Mutex<State>,
    cv: Condvar,
}

impl Engine {
    /// An idle engine; completions come from `irq` (MSI) when given, else
    /// from polling the command register.
    pub(crate) fn new(pci: Arc<VfioPci>, irq: Option<EventFd>) -> Engine {
        Engine { pci, irq, st: Mutex::new(State::default()), cv: Condvar::new() }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The MSI eventfd, if completions are interrupt driven.
    pub(crate) fn irq(&self) -> Option<&EventFd> {
        self.irq.as_ref()
    }

    /// Queues a transfer of `len` bytes; returns its ticket.
    pub(crate) fn enqueue(&self, prog: DmaProgram, len: usize) -> Result<u64, Fault> {
        let mut st = self.lock();
        if st.stopped {
            return Err(Fault::Stopped);
        }
        st.next += 1;
        let ticket = st.next;
        st.fifo.push_back((ticket, prog, len));
        self.advance_locked(&mut st);
        Ok(ticket)
    }

    /// Takes the outcome of `ticket` if it has finished.
    pub(crate) fn take(&self, ticket: u64) -> Option<Outcome> {
        self.lock().done.remove(&ticket)
    }

    /// Removes `ticket` if it has not started; true if it was removed.
    pub(crate) fn cancel(&self, ticket: u64) -> bool {
        let mut st = self.lock();
        let before = st.fifo.len();
        st.fifo.retain(|(t, _, _)| *t != ticket);
        st.fifo.len() != before
    }

    /// Records a finished transfer and starts the next one.
    pub(crate) fn advance(&self) {
        let mut st = self.lock();
        self.advance_locked(&mut st);
    }

    fn advance_locked(&self, st: &mut State) {
        if let Some(fd) = &self.irq {
            // Drain the counter first: an MSI after this read re-arms it.
            let _ = fd.read();
        }
        let bar = self.pci.bar0();
        if let Some(r) = &st.running {
            if bar.read64(regs::REG_DMA_CMD) & regs::CMD_RUN == 0 {
                bar.write32(regs::REG_IRQ_ACK, regs::IRQ_DMA);
                let (ticket, len) = (r.ticket, r.len);
                st.done.insert(ticket, Ok(len));
                st.running = None;
            } else if r.started.elapsed() > DMA_TIMEOUT {
                self.stop(st);
                return;
            }
        }
        if st.running.is_none()
            && !st.stopped
            && let Some((ticket, p, len)) = st.fifo.pop_front()
        {
            bar.write64(regs::REG_DMA_SRC, p.src);
            bar.write64(regs::REG_DMA_DST, p.dst);
            bar.write64(regs::REG_DMA_COUNT, p.count);
            // Writing the command register starts the transfer.
            bar.write64(regs::REG_DMA_CMD, p.cmd);
            st.running = Some(Running { ticket, len, started: Instant::now() });
        }
    }

    fn stop(&self, st: &mut State) {
        // Without bus mastering the device cannot reach memory any more, so
        // the slices of the stuck transfers can be handed back safely.
        let _ = self.pci.set_command_bits(PCI_COMMAND_MASTER, false);
        st.stopped = true;
        if let Some(r) = st.running.take() {
            st.done.insert(r.ticket, Err(Fault::Timeout));
        }
        for (t, _, _) in st.fifo.drain(..) {
            st.done.insert(t, Err(Fault::Timeout));
        }
        self.cv.notify_all();
    }

    /// Blocks until the engine may have made progress (a transfer finished,
    /// or a short while passed). Returns at once when the engine is idle.
    pub(crate) fn wait_progress(&self) {
        let mut st = self.lock();
        self.advance_locked(&mut st);
        if st.running.is_none() {
            return;
        }
        if st.driving {
            let _ = self.cv.wait_timeout(st, Duration::from_millis(50));
            return;
        }
        st.driving = true;
        drop(st);
        match &self.irq {
            Some(fd) => wait_readable(fd, Duration::from_millis(250)),
            None => self.spin(Duration::from_millis(20)),
        }
        let mut st = self.lock();
        st.driving = false;
        self.advance_locked(&mut st);
        self.cv.notify_all();
    }

    /// Polls the command register until the transfer finishes or `max` passes.
    fn spin(&self, max: Duration) {
        let t = Instant::now();
        while self.pci.bar0().read64(regs::REG_DMA_CMD) & regs::CMD_RUN != 0 && t.elapsed() < max {
            std::hint::spin_loop();
            std::thread::yield_now();
        }
    }

    /// Whether the device was stopped after a timeout.
    pub(crate) fn stopped(&self) -> bool {
        self.lock().stopped
    }
}

/// Sleeps in poll(2) until `fd` is readable or `max` passes.
fn wait_readable(fd: &EventFd, max: Duration) {
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd, owned by this frame; EINTR and timeouts are
    // fine (the caller re-checks the device).
    unsafe { libc::poll(&mut p, 1, max.as_millis() as libc::c_int) };
}
