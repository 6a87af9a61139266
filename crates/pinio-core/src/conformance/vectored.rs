//! [`vectored`]: the conformance check of vectored operations.

use super::{Check, ctx, pattern};
use crate::{Device, Error, Op, Queue, Region, Slice, VectoredIo, page_size};

/// Vectored operations ([`Op::readv`], [`Op::writev`]) on `dev`, whatever
/// its [`Capabilities::vectored`](crate::Capabilities::vectored) says:
///
/// - [`VectoredIo::Unsupported`]: pushing one is refused with
///   [`Error::Unsupported`] naming the backend, and every slice comes back
///   unchanged (through [`Queue::push`] and [`Queue::readv_at`]).
/// - otherwise: three slices from two regions of one domain are written in
///   one operation ([`Queue::writev_at`]); a plain read of the range sees
///   them back to back; a vectored read into three differently split
///   slices of two other regions returns the same bytes; a vectored read
///   running past the end of a file completes short, filling its segments
///   in order. Then the bad inputs: a range past the end of the device, a
///   segment of another domain's region, a misaligned segment address and
///   segment length (where the device requires alignment), more segments
///   than [`Capabilities::max_segments`](crate::Capabilities::max_segments),
///   an empty slice vector: each gets its typed error and hands every
///   slice back unchanged.
///
/// Segments start on page boundaries and all but the last are whole pages,
/// so that the check holds on the strictest native path (one NVMe command
/// with a PRP list).
pub fn vectored(dev: &dyn Device) -> Check<()> {
    let caps = dev.capabilities().clone();
    let page = page_size().max(caps.len_align as usize).max(caps.offset_align as usize).max(caps.mem_align as usize);
    let unit = caps.len_align.max(caps.offset_align).max(caps.mem_align).max(512) as usize;
    let a = ctx(dev.alloc(4 * page + unit), || "alloc".into())?;
    let b = ctx(dev.alloc(2 * page), || "alloc".into())?;
    let mut q = ctx(dev.queue(4), || "queue".into())?;
    if caps.vectored == VectoredIo::Unsupported {
        return unsupported(&mut *q, &caps, &a, &b, unit);
    }
    if caps.max_segments < 3 {
        return Err(format!(
            "{} says it runs vectored operations ({:?}) of at most {} segments; 3 is the least useful",
            caps.backend, caps.vectored, caps.max_segments
        ));
    }
    let total = 4 * page + unit;
    let dev_off = caps.offset_align.max(1) * 3;
    if (total as u64) > caps.max_transfer || dev_off + total as u64 > dev.size() {
        return Err(format!(
            "device too small for the vectored check: {total} bytes at {dev_off:#x} (size {}, max transfer {})",
            dev.size(),
            caps.max_transfer
        ));
    }
    let data = pattern(0x7ec7, total);

    // Write: a[0, 2p), b[p, 2p), a[3p, 4p + unit), in that order.
    let mut w = vec![slice(&a, 0, 2 * page)?, slice(&b, page, page)?, slice(&a, 3 * page, page + unit)?];
    fill(&mut w, &data);
    let (n, w) =
        q.writev_at(w, dev_off).map_err(|e| format!("writev_at of 3 slices ({total} bytes at {dev_off:#x}): {e}"))?;
    if n != total || w.len() != 3 {
        return Err(format!("writev_at moved {n} of {total} bytes and handed back {} of 3 slices", w.len()));
    }
    let lens: Vec<usize> = w.iter().map(Slice::len).collect();
    if lens != [2 * page, page, page + unit] {
        return Err(format!("writev_at handed the slices back changed or out of order: lengths {lens:?}"));
    }
    drop(w);

    // The bytes landed back to back: one plain read sees them.
    let plain = ctx(dev.alloc(total), || "alloc".into())?;
    let (n, s) =
        q.read_at(slice(&plain, 0, total)?, dev_off).map_err(|e| format!("plain read of the vectored write: {e}"))?;
    if n != total {
        return Err(format!("plain read of the vectored write moved {n} of {total} bytes"));
    }
    compare("plain read of the vectored write", &s, &data)?;
    drop(s);

    // Read back vectored, split differently: c[2p, 3p), d[0, 2p), c[0, p + unit).
    let c = ctx(dev.alloc(3 * page), || "alloc".into())?;
    let d = ctx(dev.alloc(2 * page), || "alloc".into())?;
    let r = vec![slice(&c, 2 * page, page)?, slice(&d, 0, 2 * page)?, slice(&c, 0, page + unit)?];
    let op = Op::readv(r, dev_off, 77).map_err(|e| e.to_string())?;
    q.push(op).map_err(|r| format!("push of a vectored read: {}", r.error))?;
    let mut out = Vec::new();
    while out.is_empty() {
        q.wait(1, &mut out).map_err(|e| format!("wait for the vectored read: {e}"))?;
    }
    let done = out.pop().ok_or("no completion")?;
    if done.tag != 77 || done.rest.len() != 2 {
        return Err(format!(
            "vectored read completed with tag {} and {} further slices (want 77 and 2)",
            done.tag,
            done.rest.len()
        ));
    }
    let n = done.result.as_ref().map_err(|e| format!("vectored read: {e}"))?;
    if *n != total {
        return Err(format!("vectored read moved {n} of {total} bytes"));
    }
    let back: Vec<u8> = done.segments().flat_map(|s| s.iter().copied()).collect();
    compare("vectored read", &back, &data)?;
    drop(done);

    if caps.short_reads_at_end {
        short_read(dev, &mut *q, &c, &d, unit)?;
    }
    errors(dev, &mut *q, &caps, &a, &b, unit)?;
    Ok(())
}

/// On a backend without vectored operations: the typed refusal, every
/// slice back.
fn unsupported(q: &mut dyn Queue, caps: &crate::Capabilities, a: &Region, b: &Region, unit: usize) -> Check<()> {
    let op = Op::readv(vec![slice(a, 0, unit)?, slice(b, 0, unit)?], 0, 1).map_err(|e| e.to_string())?;
    let r = match q.push(op) {
        Ok(()) => return Err(format!("{} says vectored operations are unsupported, yet pushed one", caps.backend)),
        Err(r) => r,
    };
    match &r.error {
        Error::Unsupported { what, .. } if what.contains(caps.backend) => {}
        e => {
            return Err(format!(
                "vectored push on {}: wrong error (want Unsupported naming the backend): {e}",
                caps.backend
            ));
        }
    }
    same("refused vectored push", r.op.into_slices(), &[unit, unit])?;
    let e = match q.readv_at(vec![slice(a, 0, unit)?, slice(b, 0, unit)?], 0) {
        Ok(_) => return Err("readv_at succeeded on a backend without vectored operations".into()),
        Err(e) => e,
    };
    if !matches!(e.error, Error::Unsupported { .. }) {
        return Err(format!("readv_at: wrong error: {}", e.error));
    }
    same("refused readv_at", e.into_slices(), &[unit, unit])?;
    Ok(())
}

/// A vectored read that starts inside a file and runs past its end moves
/// the bytes up to the end, filling the segments in order.
fn short_read(dev: &dyn Device, q: &mut dyn Queue, c: &Region, d: &Region, unit: usize) -> Check<()> {
    let size = dev.size();
    let align = dev.capabilities().offset_align.max(1);
    if size < unit as u64 || !size.is_multiple_of(align) || !(unit as u64).is_multiple_of(align) {
        return Ok(());
    }
    let off = size - unit as u64;
    let (n, s) = q
        .readv_at(vec![slice(c, 0, unit)?, slice(d, 0, unit)?], off)
        .map_err(|e| format!("vectored read of 2 x {unit} bytes at {off:#x}, {unit} bytes before the end: {e}"))?;
    if n != unit || s.len() != 2 {
        return Err(format!(
            "vectored read across the end moved {n} bytes (want {unit}, the bytes up to the end) and handed back {} of 2 slices",
            s.len()
        ));
    }
    Ok(())
}

/// The bad inputs of a vectored operation, each refused with every slice
/// back.
fn errors(
    dev: &dyn Device,
    q: &mut dyn Queue,
    caps: &crate::Capabilities,
    a: &Region,
    b: &Region,
    unit: usize,
) -> Check<()> {
    // Past the end of the device: the total counts, not the first slice.
    let end = crate::align_down(dev.size(), caps.offset_align.max(1)).saturating_sub(unit as u64);
    let op = Op::writev(vec![slice(a, 0, unit)?, slice(b, 0, unit)?], end, 1).map_err(|e| e.to_string())?;
    refused("vectored write past the end of the device", q, op, &[unit, unit], |e| {
        matches!(e, Error::OutOfBounds { .. })
    })?;

    // A segment of another domain's region.
    let (foreign_domain, _) = super::CountingRegistrar::domain();
    let foreign = ctx(foreign_domain.alloc(unit), || "alloc in another domain".into())?;
    let op = Op::writev(vec![slice(a, 0, unit)?, slice(&foreign, 0, unit)?], 0, 2).map_err(|e| e.to_string())?;
    refused("segment of another domain's region", q, op, &[unit, unit], |e| matches!(e, Error::ForeignRegion { .. }))?;

    if caps.mem_align > 1 {
        let m = caps.mem_align as usize;
        let op = Op::readv(vec![slice(a, 0, unit)?, slice(b, m / 2, unit)?], 0, 3).map_err(|e| e.to_string())?;
        refused("misaligned segment address", q, op, &[unit, unit], |e| {
            matches!(e, Error::Misaligned { what: "segment buffer address", .. })
        })?;
    }
    if caps.len_align > 1 {
        let h = caps.len_align as usize / 2;
        let op = Op::readv(vec![slice(a, 0, h)?, slice(b, 0, h)?], 0, 4).map_err(|e| e.to_string())?;
        refused("segment length not a multiple of len_align", q, op, &[h, h], |e| {
            matches!(e, Error::Misaligned { what: "segment length", .. })
        })?;
    }
    if caps.max_segments <= 4096 {
        let n = caps.max_segments + 1;
        let many = ctx(dev.alloc(n * unit), || "alloc".into())?;
        let slices = (0..n).map(|i| slice(&many, i * unit, unit)).collect::<Check<Vec<_>>>()?;
        let op = Op::readv(slices, 0, 5).map_err(|e| e.to_string())?;
        refused("one segment more than max_segments", q, op, &vec![unit; n], |e| {
            matches!(e, Error::TooManySegments { .. })
        })?;
    }
    match Op::readv(Vec::new(), 0, 6) {
        Err(Error::ZeroLength { .. }) => {}
        Err(e) => return Err(format!("empty slice vector: wrong error: {e}")),
        Ok(_) => return Err("an empty slice vector made an operation".into()),
    }
    Ok(())
}

fn slice(r: &Region, off: usize, len: usize) -> Check<Slice> {
    ctx(r.slice(off, len), || format!("slice [{off:#x}, +{len:#x})"))
}

/// Copies `data` across `slices`, in order.
fn fill(slices: &mut [Slice], data: &[u8]) {
    let mut at = 0;
    for s in slices {
        let n = s.len();
        s.copy_from_slice(&data[at..at + n]);
        at += n;
    }
}

fn compare(what: &str, got: &[u8], want: &[u8]) -> Check<()> {
    if got.len() != want.len() {
        return Err(format!("{what}: {} bytes, want {}", got.len(), want.len()));
    }
    match (0..want.len()).find(|&i| got[i] != want[i]) {
        Some(i) => Err(format!("{what}: byte {i} is {:#04x}, written {:#04x}", got[i], want[i])),
        None => Ok(()),
    }
}

/// The slices handed back have the lengths of those handed in, in order.
fn same(what: &str, slices: Vec<Slice>, lens: &[usize]) -> Check<()> {
    let got: Vec<usize> = slices.iter().map(Slice::len).collect();
    if got != lens {
        return Err(format!("{what}: handed back slices of lengths {got:?}, handed in {lens:?}"));
    }
    Ok(())
}

fn refused(what: &str, q: &mut dyn Queue, op: Op, lens: &[usize], ok: impl Fn(&Error) -> bool) -> Check<()> {
    match q.push(op) {
        Err(r) if ok(&r.error) => same(what, r.op.into_slices(), lens),
        Err(r) => Err(format!("{what}: wrong error: {}", r.error)),
        Ok(()) => Err(format!("{what}: accepted but must be refused")),
    }
}
