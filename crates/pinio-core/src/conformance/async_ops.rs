//! [`async_vectored_and_flush`]: the conformance check of the async
//! vectored futures and the async flush.

use super::{Check, ctx, pattern};
use crate::aio::AsyncQueue;
use crate::{Device, Error, FlushMode, Region, Slice, UnregisterError, VectoredIo, page_size};
use std::future::Future;
use std::task::{Context, Poll, Waker};

/// The async vectored futures and [`AsyncQueue::flush`] on `dev`, using the
/// device range from `base` (the check overwrites up to 4 MiB of it; on a
/// device without vectored operations, six units of its length alignment):
///
/// - [`AsyncQueue::writev_at`] of three slices of two regions, then
///   [`AsyncQueue::readv_at`] into two slices split differently, same
///   bytes; on a device without vectored operations, the typed refusal with
///   every slice back.
/// - a flush covers what was pushed before it: write futures pushed (polled
///   once) before [`AsyncQueue::flush`] are all complete when the flush
///   resolves (each resolves at its next poll), and the bytes read back are
///   the bytes written.
/// - a flush future dropped before it resolves leaves nothing behind: the
///   writes it waited for still complete, a later flush succeeds, nothing
///   stays in flight.
/// - a vectored future dropped mid-flight leaves its slices with the
///   queue: their region cannot be unregistered until the queue collected
///   the completion (here: a later flush), and can be afterwards.
///
/// The result says whether the last check ran ([`MidFlight`]): a device
/// that completes every read within its first poll (a buffered io_uring
/// read served from the page cache completes inline, at submission) has
/// nothing in flight to drop. Callers whose device must have reads in
/// flight assert [`MidFlight::Checked`].
pub fn async_vectored_and_flush(dev: &dyn Device, base: u64) -> Check<MidFlight> {
    let caps = dev.capabilities().clone();
    let page = page_size().max(caps.len_align as usize).max(caps.offset_align as usize).max(caps.mem_align as usize);
    let q = ctx(dev.queue(8).and_then(AsyncQueue::new), || "async queue".into())?;
    let a = ctx(dev.alloc(4 * page), || "alloc".into())?;
    let b = ctx(dev.alloc(4 * page), || "alloc".into())?;
    if caps.vectored == VectoredIo::Unsupported {
        let e = match block_on(q.readv_at(vec![slice(&a, 0, page)?, slice(&b, 0, page)?], base)) {
            Ok(_) => {
                return Err(format!(
                    "readv_at future succeeded on {}, whose capabilities say Unsupported",
                    caps.backend
                ));
            }
            Err(e) => e,
        };
        if !matches!(e.error, Error::Unsupported { .. }) {
            return Err(format!("readv_at future: wrong error: {}", e.error));
        }
        let lens: Vec<usize> = e.into_slices().iter().map(Slice::len).collect();
        if lens != [page, page] {
            return Err(format!("refused readv_at future handed back slices of lengths {lens:?}"));
        }
    } else {
        let total = 3 * page;
        if base + (4 * total) as u64 > dev.size() || total as u64 > caps.max_transfer {
            return Err(format!("device too small for the async check from {base:#x}"));
        }
        let data = pattern(0xa5c, total);
        let mut w = vec![slice(&a, page, page)?, slice(&b, 0, page)?, slice(&a, 3 * page, page)?];
        let mut at = 0;
        for s in &mut w {
            let n = s.len();
            s.copy_from_slice(&data[at..at + n]);
            at += n;
        }
        let (n, w) = block_on(q.writev_at(w, base)).map_err(|e| format!("writev_at future: {e}"))?;
        if n != total || w.len() != 3 {
            return Err(format!("writev_at future moved {n} of {total} bytes, handed back {} of 3 slices", w.len()));
        }
        drop(w);
        let r = vec![slice(&b, page, 2 * page)?, slice(&a, 0, page)?];
        let (n, r) = block_on(q.readv_at(r, base)).map_err(|e| format!("readv_at future: {e}"))?;
        let back: Vec<u8> = r.iter().flat_map(|s| s.iter().copied()).collect();
        if n != total || back != data {
            return Err(format!("readv_at future moved {n} of {total} bytes; same bytes: {}", back == data));
        }
    }
    // Writes of one unit each, after the range the vectored part used.
    let unit = caps.len_align.max(caps.offset_align).max(caps.mem_align).max(512) as usize;
    let at = if caps.vectored == VectoredIo::Unsupported { base } else { base + (4 * page) as u64 };
    if at + (6 * unit) as u64 > dev.size() {
        return Err(format!("device too small for the async flush check at {at:#x}"));
    }
    flush_covers_what_was_pushed(dev, &q, at, unit)?;
    dropped_flush_leaves_nothing(dev, &q, at + (4 * unit) as u64, unit)?;
    let mid_flight = if caps.vectored != VectoredIo::Unsupported {
        dropped_vectored_future_keeps_its_slices(dev, &q, base, page)?
    } else {
        MidFlight::NoVectored
    };
    if q.in_flight() != 0 {
        return Err(format!("{} operations still in flight at the end", q.in_flight()));
    }
    Ok(mid_flight)
}

/// Whether [`async_vectored_and_flush`] dropped a vectored read future
/// while its read was in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a device that must have reads in flight asserts `MidFlight::Checked`"]
pub enum MidFlight {
    /// One was dropped mid-flight, and its slices stayed with the queue
    /// until the queue collected the completion.
    Checked,
    /// The device has no vectored operations: there was nothing to drop.
    NoVectored,
    /// The device is smaller than two reads of half its largest transfer
    /// (up to 1 MiB each) from the check's base: not tried.
    DeviceTooSmall,
    /// Every vectored read tried (`tries` of them, over at least 5 s)
    /// completed within its first poll: none was ever in flight to drop.
    AlwaysInline {
        /// Reads tried.
        tries: u32,
    },
}

/// Write futures polled once (pushed) before the flush: complete when it
/// resolves.
fn flush_covers_what_was_pushed(dev: &dyn Device, q: &AsyncQueue, at: u64, unit: usize) -> Check<()> {
    let n = 4;
    let region = ctx(dev.alloc(n * unit), || "alloc".into())?;
    let data = pattern(0xf1, n * unit);
    let mut writes = Vec::new();
    for i in 0..n {
        let mut s = slice(&region, i * unit, unit)?;
        s.copy_from_slice(&data[i * unit..(i + 1) * unit]);
        let mut f = Box::pin(q.write_at(s, at + (i * unit) as u64));
        let first = poll_once(f.as_mut());
        writes.push((f, first));
    }
    block_on(q.flush(FlushMode::Data)).map_err(|e| format!("flush after {n} pushed writes: {e}"))?;
    for (i, (mut f, first)) in writes.into_iter().enumerate() {
        let r = match first {
            Poll::Ready(r) => r,
            Poll::Pending => match poll_once(f.as_mut()) {
                Poll::Ready(r) => r,
                Poll::Pending => {
                    return Err(format!(
                        "write {i}, pushed before the flush, is still pending after the flush resolved"
                    ));
                }
            },
        };
        r.map_err(|e| format!("write {i}: {e}"))?;
    }
    let back = ctx(dev.alloc(n * unit), || "alloc".into())?;
    let (_, s) =
        block_on(q.read_at(slice(&back, 0, n * unit)?, at)).map_err(|e| format!("read back after the flush: {e}"))?;
    if s[..] != data[..] {
        return Err("bytes read back after the flush differ from those written".into());
    }
    Ok(())
}

/// A flush future dropped after one poll: the writes still complete, a later
/// flush succeeds.
fn dropped_flush_leaves_nothing(dev: &dyn Device, q: &AsyncQueue, at: u64, unit: usize) -> Check<()> {
    let region = ctx(dev.alloc(2 * unit), || "alloc".into())?;
    let mut writes = Vec::new();
    for i in 0..2 {
        let mut f = Box::pin(q.write_at(slice(&region, i * unit, unit)?, at + (i * unit) as u64));
        let first = poll_once(f.as_mut());
        writes.push((f, first));
    }
    {
        let mut flush = Box::pin(q.flush(FlushMode::Data));
        let _ = poll_once(flush.as_mut());
    }
    for (i, (f, first)) in writes.into_iter().enumerate() {
        let r = match first {
            Poll::Ready(r) => r,
            Poll::Pending => block_on(f),
        };
        r.map_err(|e| format!("write {i} after its flush was dropped: {e}"))?;
    }
    block_on(q.flush(FlushMode::All)).map_err(|e| format!("flush after a dropped flush: {e}"))?;
    Ok(())
}

/// A vectored read future dropped mid-flight: its regions stay busy until
/// the queue collected the completion.
fn dropped_vectored_future_keeps_its_slices(
    dev: &dyn Device,
    q: &AsyncQueue,
    at: u64,
    page: usize,
) -> Check<MidFlight> {
    let caps = dev.capabilities();
    let half = ((caps.max_transfer as usize / 2).min(1 << 20) / page * page).max(page);
    if at + 2 * half as u64 > dev.size() {
        return Ok(MidFlight::DeviceTooSmall);
    }
    // At least eight tries, then more for up to 5 s: a read served from the
    // page cache (or by a fast device) often completes within its first poll.
    let start = std::time::Instant::now();
    let mut tries = 0;
    while tries < 8 || start.elapsed() < std::time::Duration::from_secs(5) {
        tries += 1;
        let a = ctx(dev.alloc(half), || "alloc".into())?;
        let b = ctx(dev.alloc(half), || "alloc".into())?;
        let mut f = Box::pin(q.readv_at(vec![slice(&a, 0, half)?, slice(&b, 0, half)?], at));
        if let Poll::Ready(r) = poll_once(f.as_mut()) {
            r.map_err(|e| format!("vectored read: {e}"))?;
            continue; // done at once: not mid-flight, try again
        }
        drop(f);
        let b = match b.unregister() {
            Err(UnregisterError::Busy { region, .. }) => region,
            Ok(_) => {
                return Err("a region whose slice is in a dropped, unfinished vectored read was unregistered".into());
            }
            Err(e) => return Err(format!("unregister during the dropped read: {e}")),
        };
        // A later flush collects the completion (the device is done then)
        // and drops the slices.
        block_on(q.flush(FlushMode::Data)).map_err(|e| format!("flush after the dropped read: {e}"))?;
        for (name, r) in [("first", a), ("second", b)] {
            r.unregister().map_err(|e| format!("unregister the {name} region after its read completed: {e}"))?;
        }
        return Ok(MidFlight::Checked);
    }
    Ok(MidFlight::AlwaysInline { tries })
}

fn slice(r: &Region, off: usize, len: usize) -> Check<Slice> {
    ctx(r.slice(off, len), || format!("slice [{off:#x}, +{len:#x})"))
}

/// Polls `f` once with a waker that does nothing (the caller polls again).
fn poll_once<F: Future + ?Sized>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    f.poll(&mut Context::from_waker(Waker::noop()))
}

fn block_on<F: Future>(f: F) -> F::Output {
    super::block_on(f)
}
