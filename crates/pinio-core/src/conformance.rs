//! Generic checks every backend runs unchanged in its own tests (feature
//! `conformance`): data integrity round trips and the typed error of each bad
//! input. They return a description of the first failure instead of
//! panicking, so a caller can add its own context.

mod async_ops;
mod vectored;

pub use async_ops::{MidFlight, async_vectored_and_flush};
pub use vectored::vectored;

use crate::{Completion, Device, Error, Op, Region, Slice, align_up};
use rand::{Rng, RngCore, SeedableRng, rngs::StdRng};
use std::collections::HashSet;

/// What [`round_trips`] does.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Transfer sizes in bytes (rounded up to the device's length alignment;
    /// sizes larger than the device are skipped).
    pub sizes: Vec<usize>,
    /// Also use memory and device offsets that are only as aligned as the
    /// device requires (odd offsets where it requires nothing).
    pub unaligned: bool,
    /// Seed of the data and offsets, printed on failure.
    pub seed: u64,
    /// Queue depth: large transfers are split into at most `max_transfer`
    /// chunks and pushed as one batch of up to this many operations.
    pub depth: usize,
    /// The part of the device address space to use: `(start, len)`.
    pub window: (u64, u64),
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            sizes: vec![1, 511, 512, 4096, 4097, 65536, 1 << 20, 8 << 20],
            unaligned: true,
            seed: 0x5eed,
            depth: 32,
            window: (0, u64::MAX),
        }
    }
}

/// Totals of a [`round_trips`] run.
#[derive(Debug, Default, Clone, Copy)]
pub struct Report {
    /// Sizes run.
    pub sizes: usize,
    /// Operations completed.
    pub ops: u64,
    /// Bytes written and read back.
    pub bytes: u64,
}

type Check<T> = std::result::Result<T, String>;

fn ctx<T>(r: crate::Result<T>, what: impl FnOnce() -> String) -> Check<T> {
    r.map_err(|e| format!("{}: {e}", what()))
}

/// Writes random data from one region to the device and reads it back into
/// another, for every size of `plan`, comparing the bytes.
pub fn round_trips(dev: &dyn Device, plan: &Plan) -> Check<Report> {
    let caps = dev.capabilities().clone();
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let mut q = ctx(dev.queue(plan.depth), || "making a queue".into())?;
    let mut report = Report::default();
    for &size in &plan.sizes {
        let len = align_up(size as u64, caps.len_align.max(1)).ok_or("size overflow")? as usize;
        let (base, span) = (plan.window.0, plan.window.1.min(caps.device_size.saturating_sub(plan.window.0)));
        if len as u64 > span {
            continue;
        }
        let mem_step = caps.mem_align.max(1) as usize;
        let mem_off = match (plan.unaligned, mem_step) {
            (true, 1) => rng.random_range(1..64usize) | 1,
            (true, s) => s,
            (false, _) => 0,
        };
        let dev_step = caps.offset_align.max(1);
        let slots = (span - len as u64) / dev_step;
        let mut dev_off = base + rng.random_range(0..=slots) * dev_step;
        if plan.unaligned && dev_step == 1 && dev_off + (len as u64) < base + span {
            dev_off |= 1;
        }
        let src = ctx(dev.alloc(mem_off + len), || format!("alloc {} bytes", mem_off + len))?;
        let dst = ctx(dev.alloc(mem_off + len), || format!("alloc {} bytes", mem_off + len))?;
        let mut w = ctx(src.slice(mem_off, len), || "slice".into())?;
        rng.fill_bytes(&mut w);
        let expect = w.to_vec();
        let chunk = (caps.max_transfer as usize).min(len);
        let what = format!(
            "size {size} (len {len}, memory offset {mem_off}, device offset {dev_off:#x}, seed {:#x})",
            plan.seed
        );
        let w = transfer(&mut *q, w, dev_off, chunk, plan.depth, true).map_err(|e| format!("write of {what}: {e}"))?;
        let r = ctx(dst.slice(mem_off, len), || "slice".into())?;
        let r = transfer(&mut *q, r, dev_off, chunk, plan.depth, false).map_err(|e| format!("read of {what}: {e}"))?;
        if let Some(i) = (0..len).find(|&i| r[i] != expect[i]) {
            return Err(format!("data mismatch for {what} at byte {i}: wrote {:#04x}, read {:#04x}", expect[i], r[i]));
        }
        report.sizes += 1;
        report.ops += 2 * len.div_ceil(chunk) as u64;
        report.bytes += 2 * len as u64;
        drop((w, r));
        for reg in [src, dst] {
            reg.unregister().map_err(|e| format!("unregister after {what}: {e}"))?;
        }
    }
    Ok(report)
}

/// Moves `slice` to or from `dev_off` in chunks of `chunk` bytes, batches of
/// `depth`; returns the slice reassembled.
fn transfer(
    q: &mut dyn crate::Queue,
    slice: Slice,
    dev_off: u64,
    chunk: usize,
    depth: usize,
    write: bool,
) -> Check<Slice> {
    let total = slice.len();
    let mut pieces = Vec::new();
    let mut rest = slice;
    loop {
        match rest.split_at(chunk) {
            Ok((a, b)) => {
                pieces.push(a);
                rest = b;
            }
            Err(last) => {
                pieces.push(last);
                break;
            }
        }
    }
    let mut done: Vec<Option<Slice>> = (0..pieces.len()).map(|_| None).collect();
    let mut pending = pieces.into_iter().enumerate();
    let mut out: Vec<Completion> = Vec::new();
    let mut tags = HashSet::new();
    loop {
        while q.in_flight() < depth.min(q.capacity()) {
            let Some((i, s)) = pending.next() else { break };
            let off = dev_off + (i * chunk) as u64;
            let op = if write { Op::write(s, off, i as u64) } else { Op::read(s, off, i as u64) };
            q.push(op).map_err(|r| format!("push of chunk {i}: {}", r.error))?;
            tags.insert(i as u64);
        }
        if q.in_flight() == 0 {
            break;
        }
        out.clear();
        q.wait(1, &mut out).map_err(|e| format!("wait: {e}"))?;
        for c in out.drain(..) {
            if !tags.remove(&c.tag) {
                return Err(format!("completion with unknown or repeated tag {}", c.tag));
            }
            let n = c.result.map_err(|e| format!("chunk {} failed: {e}", c.tag))?;
            if n != c.slice.len() {
                return Err(format!("chunk {} moved {n} of {} bytes", c.tag, c.slice.len()));
            }
            done[c.tag as usize] = Some(c.slice);
        }
    }
    let mut parts = done.into_iter();
    let first = parts.next().flatten().ok_or("first chunk never completed")?;
    let mut merged = first;
    for p in parts {
        let p = p.ok_or("a chunk never completed")?;
        merged = merged.merge(p).map_err(|_| "completed chunks are not adjacent".to_string())?;
    }
    if merged.len() != total {
        return Err(format!("reassembled {} of {total} bytes", merged.len()));
    }
    Ok(merged)
}

fn expect_err(what: &str, r: crate::Result<impl std::fmt::Debug>, ok: impl Fn(&Error) -> bool) -> Check<()> {
    match r {
        Err(e) if ok(&e) => Ok(()),
        Err(e) => Err(format!("{what}: wrong error: {e}")),
        Ok(v) => Err(format!("{what}: accepted ({v:?}) but must be refused")),
    }
}

fn rejected(what: &str, q: &mut dyn crate::Queue, op: Op, ok: impl Fn(&Error) -> bool) -> Check<Slice> {
    match q.push(op) {
        Err(r) if ok(&r.error) => Ok(r.op.slice),
        Err(r) => Err(format!("{what}: wrong error: {}", r.error)),
        Ok(()) => Err(format!("{what}: accepted but must be refused")),
    }
}

/// Each bad input gets its typed error, nothing is lost, and a region with
/// live slices cannot be unregistered.
pub fn bad_inputs(dev: &dyn Device) -> Check<()> {
    let caps = dev.capabilities().clone();
    let unit = caps.len_align.max(caps.mem_align).max(caps.offset_align).max(1) as usize;
    let region: Region = ctx(dev.alloc(4 * unit), || "alloc".into())?;
    expect_err("zero-length slice", region.slice(0, 0), |e| matches!(e, Error::ZeroLength { .. }))?;
    expect_err("slice past the region", region.slice(region.len() - 1, 2), |e| matches!(e, Error::OutOfBounds { .. }))?;
    expect_err("slice with overflowing end", region.slice(usize::MAX, 2), |e| matches!(e, Error::OutOfBounds { .. }))?;
    let s = ctx(region.slice(0, unit), || "slice".into())?;
    expect_err("overlapping slice", region.slice(unit - 1, 2), |e| matches!(e, Error::SliceOverlap { .. }))?;
    let mut q = ctx(dev.queue(4), || "queue".into())?;
    let s = rejected("device offset at the end", &mut *q, Op::read(s, caps.device_size, 1), |e| {
        matches!(e, Error::OutOfBounds { .. })
    })?;
    let s = rejected("overflowing device offset", &mut *q, Op::write(s, u64::MAX - 1, 2), |e| {
        matches!(e, Error::OutOfBounds { .. } | Error::Misaligned { .. })
    })?;
    let s = if caps.offset_align > 1 {
        rejected("misaligned device offset", &mut *q, Op::read(s, caps.offset_align / 2, 3), |e| {
            matches!(e, Error::Misaligned { what: "device offset", .. })
        })?
    } else {
        s
    };
    drop(s);
    if caps.len_align > 1 {
        let s = ctx(region.slice(0, caps.len_align as usize / 2), || "slice".into())?;
        rejected("misaligned length", &mut *q, Op::read(s, 0, 4), |e| {
            matches!(e, Error::Misaligned { what: "length", .. })
        })?;
    }
    if caps.mem_align > 1 {
        let s = ctx(region.slice(caps.mem_align as usize / 2, caps.len_align.max(1) as usize), || "slice".into())?;
        rejected("misaligned buffer address", &mut *q, Op::read(s, 0, 5), |e| {
            matches!(e, Error::Misaligned { what: "buffer address", .. })
        })?;
    }
    // A live slice keeps the region registered.
    let live = ctx(region.slice(0, unit), || "slice".into())?;
    let region = match region.unregister() {
        Err(crate::UnregisterError::Busy { region, outstanding }) if outstanding >= 1 => region,
        Err(e) => return Err(format!("unregister with a live slice: wrong error: {e}")),
        Ok(_) => return Err("unregister with a live slice succeeded".into()),
    };
    // Queue full: push capacity + 1 valid operations without submitting.
    let cap = q.capacity();
    let mut held = Vec::new();
    let mut pushed = 0;
    let full_region = ctx(dev.alloc((cap + 1) * unit), || "alloc".into())?;
    for i in 0..=cap {
        let s = ctx(full_region.slice(i * unit, unit), || "slice".into())?;
        match q.push(Op::read(s, 0, 100 + i as u64)) {
            Ok(()) => pushed += 1,
            Err(r) if matches!(r.error, Error::QueueFull { .. }) && i == cap => held.push(r.op.slice),
            Err(r) => return Err(format!("push {i} of {}: {}", cap + 1, r.error)),
        }
    }
    if held.len() != 1 || pushed != cap {
        return Err(format!("queue of capacity {cap} accepted {pushed} ops and refused {}", held.len()));
    }
    // Dropping the queue waits for what is in flight and frees the slices.
    drop(q);
    drop(held);
    drop(live);
    ctx(region.unregister().map_err(Error::from), || "unregister after the slice was dropped".into())?;
    ctx(full_region.unregister().map_err(Error::from), || "unregister after the queue was dropped".into())?;
    Ok(())
}

/// [`crate::Queue::push_batch`]: a batch whose third operation is out of
/// bounds pushes the two before it, hands the third back inside the error
/// (its typed error, its tag, its slice) and leaves the fourth in the
/// iterator; pushing what is left then completes, and every slice comes
/// back exactly once. Reads only, of the first four alignment units of the
/// device.
pub fn push_batch(dev: &dyn Device) -> Check<()> {
    let caps = dev.capabilities().clone();
    let unit = caps.len_align.max(caps.mem_align).max(caps.offset_align).max(1) as usize;
    if caps.device_size < 4 * unit as u64 {
        return Err(format!("device of {} bytes is too small for 4 units of {unit}", caps.device_size));
    }
    let region: Region = ctx(dev.alloc(4 * unit), || "alloc".into())?;
    let mut q = ctx(dev.queue(4), || "queue".into())?;
    let mut slices = Vec::new();
    for i in 0..4 {
        slices.push(ctx(region.slice(i * unit, unit), || "slice".into())?);
    }
    let mut ops = slices.into_iter().enumerate().map(|(i, s)| {
        let off = if i == 2 { caps.device_size } else { (i * unit) as u64 };
        Op::read(s, off, i as u64)
    });
    let refused = match q.push_batch(&mut ops) {
        Err(r) if matches!(r.error, Error::OutOfBounds { .. }) && r.op.tag == 2 => r.op.slice,
        Err(r) => return Err(format!("batch: operation {} refused with the wrong error: {}", r.op.tag, r.error)),
        Ok(n) => return Err(format!("batch with an out-of-bounds operation: all {n} accepted")),
    };
    if q.in_flight() != 2 {
        return Err(format!("after the refusal {} operations are in flight, not the 2 before it", q.in_flight()));
    }
    let mut left: Vec<Op> = ops.collect();
    if left.len() != 1 || left[0].tag != 3 {
        return Err(format!(
            "the iterator kept {:?}, not the operation after the refused one",
            left.iter().map(|o| o.tag).collect::<Vec<_>>()
        ));
    }
    left.push(Op::read(refused, (2 * unit) as u64, 2));
    match q.push_batch(&mut left.into_iter()) {
        Ok(2) => {}
        Ok(n) => return Err(format!("second batch: {n} of 2 pushed")),
        Err(r) => return Err(format!("second batch: operation {} refused: {}", r.op.tag, r.error)),
    }
    let mut out = Vec::new();
    while q.in_flight() > 0 {
        let n = q.in_flight();
        ctx(q.wait(n, &mut out), || "wait".into())?;
    }
    let mut tags: Vec<u64> = out.iter().map(|c| c.tag).collect();
    tags.sort_unstable();
    if tags != [0, 1, 2, 3] {
        return Err(format!("completions carry tags {tags:?}, not 0..4 once each"));
    }
    for c in out {
        let n = c.result.map_err(|e| format!("read {} failed: {e}", c.tag))?;
        if n != unit {
            return Err(format!("read {} moved {n} of {unit} bytes", c.tag));
        }
    }
    Ok(())
}

/// A slice of a region of `a`'s domain is refused by a queue of `b`, a
/// device of another domain, and the slice comes back.
pub fn foreign_region(a: &dyn Device, b: &dyn Device) -> Check<()> {
    if a.domain().id() == b.domain().id() {
        return Err("foreign_region needs devices of two different domains".into());
    }
    let unit = a.capabilities().len_align.max(b.capabilities().len_align).max(1) as usize;
    let region = ctx(a.alloc(unit), || "alloc".into())?;
    let mut q = ctx(b.queue(2), || "queue".into())?;
    let s = ctx(region.slice(0, unit), || "slice".into())?;
    let s = rejected("slice of another domain's region", &mut *q, Op::read(s, 0, 0), |e| {
        matches!(e, Error::ForeignRegion { .. })
    })?;
    if s.len() != unit {
        return Err("the refused slice came back changed".into());
    }
    Ok(())
}

/// Runs one operation on a fresh queue of `dev` and checks it moved every byte.
fn run_one(dev: &dyn Device, op: Op, what: &str) -> Check<Slice> {
    let mut q = ctx(dev.queue(2), || format!("queue for {what}"))?;
    let len = op.slice.len();
    let c = q.run(op).map_err(|e| format!("{what}: {e}"))?;
    let n = c.result.map_err(|e| format!("{what}: {e}"))?;
    if n != len {
        return Err(format!("{what}: moved {n} of {len} bytes"));
    }
    Ok(c.slice)
}

/// `a` and `b` are two different devices (two files, two channels, two PCI
/// devices) opened in one domain: one registration serves both.
///
/// The same slice of one region is written to both devices and read back
/// from each into one other region; the bytes match; a write to `b` leaves
/// `a` unchanged (they are two targets); the domain counted one pin per
/// region (none where the backend pins nothing); both devices report the
/// same registration counters, and none on a zero-copy path copied a byte
/// on the CPU.
pub fn shared_domain(a: &dyn Device, b: &dyn Device) -> Check<()> {
    let domain = a.domain();
    if domain.id() != b.domain().id() {
        return Err(format!(
            "shared_domain needs two devices of one domain, got {} and {}",
            domain.id(),
            b.domain().id()
        ));
    }
    let (ca, cb) = (a.capabilities(), b.capabilities());
    let unit = [ca.len_align, cb.len_align, ca.offset_align, cb.offset_align, ca.mem_align, cb.mem_align, 512]
        .into_iter()
        .max()
        .unwrap_or(512)
        .min(ca.device_size)
        .min(cb.device_size) as usize;
    if unit == 0 {
        return Err("a device of size 0".into());
    }
    let before = domain.stats();
    let (copied_a, copied_b) = (a.stats().bytes_copied, b.stats().bytes_copied);
    let src = ctx(domain.alloc(unit), || "alloc in the domain".into())?;
    let dst = ctx(b.alloc(2 * unit), || "alloc through the second device".into())?;
    let own =
        [&src, &dst].iter().filter(|r| matches!(r.key().registration, crate::Registration::Own(_))).count() as u64;
    if domain.stats().pins - before.pins != own {
        return Err(format!("domain counted {} pins for {own} registrations", domain.stats().pins - before.pins));
    }
    let p = pattern(0xd0d0, unit);
    let mut s = ctx(src.slice(0, unit), || "slice".into())?;
    s.copy_from_slice(&p);
    let s = run_one(a, Op::write(s, 0, 1), "write through the first device")?;
    let s = run_one(b, Op::write(s, 0, 2), "the same slice written through the second device")?;
    let (ra, rb) = (ctx(dst.slice(0, unit), || "slice".into())?, ctx(dst.slice(unit, unit), || "slice".into())?);
    let ra = run_one(a, Op::read(ra, 0, 3), "read back from the first device")?;
    let rb = run_one(b, Op::read(rb, 0, 4), "read back from the second device")?;
    if ra[..] != p[..] || rb[..] != p[..] {
        return Err("bytes read back differ from the bytes written".into());
    }
    // Two targets, not one: new bytes on `b` leave `a` as it was.
    let mut s = s;
    s.iter_mut().for_each(|x| *x = !*x);
    let s = run_one(b, Op::write(s, 0, 5), "second write to the second device")?;
    let ra = run_one(a, Op::read(ra, 0, 6), "read of the first device after writing the second")?;
    if ra[..] != p[..] {
        return Err("writing the second device changed the first: are they the same target?".into());
    }
    if a.stats().pins != b.stats().pins || a.stats().bytes_pinned != b.stats().bytes_pinned {
        return Err(format!("devices of one domain report different registrations: {} vs {}", a.stats(), b.stats()));
    }
    for (dev, before, name) in [(a, copied_a, "first"), (b, copied_b, "second")] {
        if !dev.capabilities().cpu_copies && dev.stats().bytes_copied != before {
            return Err(format!(
                "the {name} device is zero-copy but its CPU copied {} bytes",
                dev.stats().bytes_copied - before
            ));
        }
    }
    drop((s, ra, rb));
    for r in [src, dst] {
        r.unregister().map_err(|e| format!("unregister: {e}"))?;
    }
    if domain.stats().unpins - before.unpins != own {
        return Err(format!("domain released {} of {own} registrations", domain.stats().unpins - before.unpins));
    }
    Ok(())
}

/// `n` threads, each with its own queue and regions, run [`round_trips`] on
/// disjoint parts of the device at once.
pub fn concurrent_round_trips(dev: &dyn Device, threads: usize, sizes: &[usize]) -> Check<()> {
    let caps = dev.capabilities();
    let align = caps.offset_align.max(caps.len_align).max(1);
    let span = crate::align_down(caps.device_size / threads.max(1) as u64, align);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let window = (t as u64 * span, span);
                let plan = Plan { sizes: sizes.to_vec(), unaligned: true, seed: 0xc0ffee + t as u64, depth: 8, window };
                s.spawn(move || round_trips(dev, &plan))
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| "a round-trip thread panicked".to_string())??;
        }
        Ok(())
    })
}

/// Reads `len` bytes at `off` of `dev` through a queue of its own, in chunks
/// of the device's largest transfer (at most 1 MiB): what a test reads back
/// to see what a device holds.
pub fn read_bytes(dev: &dyn Device, off: u64, len: u64) -> Check<Vec<u8>> {
    let max = dev.capabilities().max_transfer.min(1 << 20);
    let region = ctx(dev.alloc(max as usize), || format!("alloc {max} bytes"))?;
    let mut q = ctx(dev.queue(1), || "queue(1)".into())?;
    let mut out = Vec::with_capacity(len as usize);
    let mut at = 0;
    while at < len {
        let n = (len - at).min(max);
        let s = ctx(region.slice(0, n as usize), || format!("slice of {n} bytes"))?;
        let (_, s) = q.read_at(s, off + at).map_err(|e| format!("read {n} at {:#x}: {}", off + at, e.error))?;
        out.extend_from_slice(&s);
        at += n;
    }
    Ok(out)
}

/// Writes `data` at `off` of `dev` through a queue of its own, in chunks of
/// the device's largest transfer (at most 1 MiB).
pub fn write_bytes(dev: &dyn Device, off: u64, data: &[u8]) -> Check<()> {
    let max = dev.capabilities().max_transfer.min(1 << 20) as usize;
    let region = ctx(dev.alloc(max), || format!("alloc {max} bytes"))?;
    let mut q = ctx(dev.queue(1), || "queue(1)".into())?;
    for (i, chunk) in data.chunks(max).enumerate() {
        let mut s = ctx(region.slice(0, chunk.len()), || format!("slice of {} bytes", chunk.len()))?;
        s.copy_from_slice(chunk);
        let at = off + (i * max) as u64;
        q.write_at(s, at).map_err(|e| format!("write {} at {at:#x}: {}", chunk.len(), e.error))?;
    }
    Ok(())
}

/// Random bytes for tests, reproducible from `seed`.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

/// A registrar for tests of the model itself: registers nothing for real
/// ([`crate::Registration::Own`] keys at a fixed device address, so pins are
/// counted) and counts its releases.
#[derive(Debug, Default)]
pub struct CountingRegistrar {
    released: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl CountingRegistrar {
    /// The device address every region of this registrar starts at.
    pub const DEVICE_ADDR: u64 = 0x10_0000;

    /// A domain over a new counting registrar, and its release counter.
    pub fn domain() -> (crate::Domain, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let r = CountingRegistrar::default();
        let released = r.released.clone();
        (crate::Domain::new(r), released)
    }
}

// SAFETY: registers nothing, so no device can reach any memory through it.
unsafe impl crate::Registrar for CountingRegistrar {
    fn backend(&self) -> &'static str {
        "test"
    }

    fn register(&self, _buf: &mut crate::DmaBuf) -> crate::Result<crate::RegionKey> {
        Ok(crate::RegionKey { registration: crate::Registration::Own(1), device_addr: Self::DEVICE_ADDR })
    }

    fn unregister(&self, _key: crate::RegionKey, _buf: &crate::DmaBuf) -> crate::Result<()> {
        self.released.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    fn describe(&self) -> String {
        "counting test registrar".into()
    }
}

/// [`crate::Queue::flush`] drains: writes pushed (not waited for) before a
/// flush have completed when it returns, their completions wait in the
/// queue for the next poll, and the bytes read back are the bytes written;
/// both flush modes succeed on an idle queue too.
pub fn flush_drains(dev: &dyn Device) -> Check<()> {
    let caps = dev.capabilities().clone();
    let unit = caps.len_align.max(caps.offset_align).max(caps.mem_align).max(512) as usize;
    let n = 4usize.min((caps.device_size / unit as u64) as usize);
    if n == 0 {
        return Err("device too small for the flush check".into());
    }
    let region = ctx(dev.alloc(n * unit), || "alloc".into())?;
    let mut q = ctx(dev.queue(n.max(2)), || "queue".into())?;
    let data = pattern(0xf1a5, n * unit);
    for i in 0..n {
        let mut s = ctx(region.slice(i * unit, unit), || "slice".into())?;
        s.copy_from_slice(&data[i * unit..(i + 1) * unit]);
        q.push(Op::write(s, (i * unit) as u64, i as u64)).map_err(|r| format!("push write {i}: {}", r.error))?;
    }
    ctx(q.flush(crate::FlushMode::Data), || "flush (data) with writes pushed".into())?;
    let mut out = Vec::new();
    ctx(q.poll(&mut out), || "poll after the flush".into())?;
    if out.len() != n || q.in_flight() != 0 {
        return Err(format!(
            "after the flush, {} of {n} write completions were ready and {} still in flight",
            out.len(),
            q.in_flight()
        ));
    }
    for c in out.drain(..) {
        ctx(c.result, || format!("write {}", c.tag))?;
    }
    ctx(q.flush(crate::FlushMode::All), || "flush (all) on an idle queue".into())?;
    let back = ctx(dev.alloc(n * unit), || "alloc".into())?;
    let s = ctx(back.slice_all(), || "slice".into())?;
    let (_, s) = q.read_at(s, 0).map_err(|e| format!("read back: {e}"))?;
    if let Some(i) = (0..data.len()).find(|&i| s[i] != data[i]) {
        return Err(format!("byte {i} read back after the flush is {:#04x}, written {:#04x}", s[i], data[i]));
    }
    Ok(())
}

/// Runs a future to completion on the calling thread, parking it between
/// polls: a minimal executor for tests of the async layer without a runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let mut f = std::pin::pin!(f);
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}
