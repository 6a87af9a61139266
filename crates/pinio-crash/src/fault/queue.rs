//! The queue of a [`super::FaultDevice`].

use super::rules::Fault;
use super::state::FaultState;
use crate::tags::TagTable;
use pinio_core::{
    Completion, Device, Error, FlushMode, FlushProgress, Op, Queue, Rejected, Result, Slice, SliceTail, align_down,
};
use std::collections::VecDeque;
use std::sync::Arc;

/// What the queue knows of an operation it forwarded.
struct Pending {
    /// The application's tag.
    tag: u64,
    /// A delay or reorder to apply to its completion.
    fault: Option<Fault>,
    /// What a short transfer cut off: the tail of the first segment, and
    /// the later segments, handed back with the completion.
    tail: Option<Slice>,
    rest: Vec<Slice>,
}

/// A completion held back for a number of further `poll`/`wait` calls.
struct Held {
    c: Completion,
    calls_left: u32,
}

pub(crate) struct FaultQueue {
    // Dropped first: the inner queue's drop waits for the device, then the
    // completions held here are dropped, handing their slices back.
    inner: Box<dyn Queue>,
    dev: Arc<dyn Device>,
    state: Arc<FaultState>,
    ops: TagTable<Pending>,
    /// Completions to hand out at the next poll or wait (injected failures,
    /// delays that ran out).
    ready: VecDeque<Completion>,
    held: Vec<Held>,
    /// Completions to hand out after another operation's completion.
    reordered: Vec<Completion>,
    scratch: Vec<Completion>,
}

impl FaultQueue {
    pub(crate) fn new(inner: Box<dyn Queue>, dev: Arc<dyn Device>, state: Arc<FaultState>) -> FaultQueue {
        FaultQueue {
            inner,
            dev,
            state,
            ops: TagTable::new(),
            ready: VecDeque::new(),
            held: Vec::new(),
            reordered: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Cuts `op` to about half its bytes (whole units of the device's
    /// alignment): the operation to send, the tail cut off its first
    /// segment and the later segments cut off. `Err` hands `op` back when
    /// it is a single unit.
    fn shorten(&self, op: Op) -> std::result::Result<(Op, Option<Slice>, Vec<Slice>), Op> {
        let caps = self.dev.capabilities();
        let unit = caps.offset_align.max(caps.len_align).max(caps.mem_align).max(1);
        let half = align_down((op.len() / 2) as u64, unit) as usize;
        if half == 0 {
            return Err(op);
        }
        let Op { dir, slice, dev_offset, tag, rest } = op;
        if slice.len() > half {
            match slice.split_at(half) {
                Ok((head, tail)) => {
                    Ok((Op { dir, slice: head, dev_offset, tag, rest: SliceTail::new() }, Some(tail), rest.into_vec()))
                }
                Err(whole) => Err(Op { dir, slice: whole, dev_offset, tag, rest }),
            }
        } else {
            let (mut kept, mut sum) = (0, slice.len());
            while kept < rest.len() && sum + rest[kept].len() <= half {
                sum += rest[kept].len();
                kept += 1;
            }
            let mut rest = rest.into_vec();
            let cut = rest.split_off(kept);
            Ok((Op { dir, slice, dev_offset, tag, rest: rest.into() }, None, cut))
        }
    }

    /// Moves held-back completions whose delay ran out to `ready`.
    fn tick(&mut self) {
        let mut i = 0;
        while i < self.held.len() {
            self.held[i].calls_left = self.held[i].calls_left.saturating_sub(1);
            if self.held[i].calls_left == 0 {
                let h = self.held.remove(i);
                self.ready.push_back(h.c);
            } else {
                i += 1;
            }
        }
    }

    /// Takes the inner queue's completions in `scratch`: their tags and
    /// slices back, then to `out`, held back, or reordered.
    fn absorb(&mut self, out: &mut Vec<Completion>) {
        let mut others = false;
        for mut c in self.scratch.drain(..) {
            let Some(p) = self.ops.remove(c.tag) else {
                out.push(c);
                continue;
            };
            c.tag = p.tag;
            if p.tail.is_some() || !p.rest.is_empty() {
                c = reassemble(c, p.tail, p.rest);
            }
            match p.fault {
                Some(Fault::Delay(n)) => self.held.push(Held { c, calls_left: n }),
                Some(Fault::Reorder) => self.reordered.push(c),
                _ => {
                    others = true;
                    out.push(c);
                }
            }
        }
        if others || self.inner.in_flight() == 0 {
            out.append(&mut self.reordered);
        }
    }
}

/// A completion of a shortened operation with every slice cut off handed
/// back, in order.
fn reassemble(c: Completion, tail: Option<Slice>, cut: Vec<Slice>) -> Completion {
    let Completion { tag, dir, dev_offset, slice, result, rest } = c;
    let mut rest = rest.into_vec();
    let slice = match tail {
        None => slice,
        Some(t) => match slice.merge(t) {
            Ok(s) => s,
            Err((head, tail)) => {
                rest.insert(0, tail);
                head
            }
        },
    };
    rest.extend(cut);
    Completion { tag, dir, dev_offset, slice, result, rest: rest.into() }
}

/// Restores a refused operation: its tag, and what a short fault cut off.
fn restore(op: Op, tag: u64, tail: Option<Slice>, cut: Vec<Slice>) -> Op {
    let Op { dir, slice, dev_offset, rest, .. } = op;
    let c = reassemble(Completion { tag, dir, dev_offset, slice, result: Ok(0), rest }, tail, cut);
    Op { dir, slice: c.slice, dev_offset, tag, rest: c.rest }
}

fn injected(desc: String, errno: i32) -> Error {
    Error::io(desc, std::io::Error::from_raw_os_error(errno))
}

impl Queue for FaultQueue {
    fn capacity(&self) -> usize {
        self.inner.capacity()
    }

    fn in_flight(&self) -> usize {
        self.inner.in_flight() + self.ready.len() + self.held.len() + self.reordered.len()
    }

    fn push(&mut self, op: Op) -> Result<(), Rejected> {
        // The queue's own rules first: a fault only ever hits an operation
        // the device would have taken.
        if let Err(error) = self.dev.core().check_push(&op, self.in_flight(), self.capacity()) {
            return Err(Rejected { error, op });
        }
        let decision = self.state.decide(Some(op.dir));
        let (mut op, fault, tail, cut) = match decision {
            Some((f @ (Fault::Eio | Fault::Enospc), desc)) => {
                let errno = f.errno().unwrap_or(libc::EIO);
                self.ready.push_back(Completion::of(op, Err(injected(desc, errno))));
                return Ok(());
            }
            Some((Fault::Short, _)) => match self.shorten(op) {
                Ok((op, tail, cut)) => (op, None, tail, cut),
                Err(op) => {
                    // A single unit: nothing moves.
                    self.ready.push_back(Completion::of(op, Ok(0)));
                    return Ok(());
                }
            },
            Some((f, _)) => (op, Some(f), None, Vec::new()),
            None => (op, None, None, Vec::new()),
        };
        let tag = op.tag;
        op.tag = self.ops.insert(Pending { tag, fault, tail, rest: cut });
        let inner_tag = op.tag;
        match self.inner.push(op) {
            Ok(()) => Ok(()),
            Err(r) => {
                let (tail, cut) = self.ops.remove(inner_tag).map(|p| (p.tail, p.rest)).unwrap_or_default();
                Err(Rejected { error: r.error, op: restore(r.op, tag, tail, cut) })
            }
        }
    }

    fn submit(&mut self) -> Result<usize> {
        self.inner.submit()
    }

    fn poll(&mut self, out: &mut Vec<Completion>) -> Result<usize> {
        self.tick();
        let start = out.len();
        out.extend(self.ready.drain(..));
        self.scratch.clear();
        let r = self.inner.poll(&mut self.scratch);
        self.absorb(out);
        r?;
        Ok(out.len() - start)
    }

    fn wait(&mut self, min: usize, out: &mut Vec<Completion>) -> Result<usize> {
        self.tick();
        let start = out.len();
        out.extend(self.ready.drain(..));
        loop {
            let got = out.len() - start;
            let need = min.min(got + self.in_flight()).saturating_sub(got);
            if need == 0 {
                // Submit what was pushed, as wait does.
                if self.inner.in_flight() > 0 {
                    self.inner.submit()?;
                }
                break;
            }
            let inner = self.inner.in_flight();
            if inner == 0 {
                // Only held-back completions remain: waiting for them would
                // never end, so they come now.
                out.append(&mut self.reordered);
                out.extend(self.held.drain(..).map(|h| h.c));
                continue;
            }
            self.scratch.clear();
            let r = self.inner.wait(need.min(inner), &mut self.scratch);
            self.absorb(out);
            r?;
        }
        Ok(out.len() - start)
    }

    fn flush(&mut self, mode: FlushMode) -> Result<()> {
        if let Some((f, desc)) = self.state.decide(None) {
            return Err(injected(desc, f.errno().unwrap_or(libc::EIO)));
        }
        self.inner.flush(mode)
    }

    fn start_flush(&mut self, mode: FlushMode) -> Result<FlushProgress> {
        if let Some((f, desc)) = self.state.decide(None) {
            return Err(injected(desc, f.errno().unwrap_or(libc::EIO)));
        }
        self.inner.start_flush(mode)
    }

    fn poll_flush(&mut self) -> Result<FlushProgress> {
        self.inner.poll_flush()
    }
}
