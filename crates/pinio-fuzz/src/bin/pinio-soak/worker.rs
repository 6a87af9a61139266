//! One soak thread on one device: registrations churned continuously, IO
//! written with a pattern and read back into another region, compared.

use crate::counters::Counters;
use pinio::{Completion, Device, Op, Queue, Region};
use pinio_fuzz::rng::Rng;
use std::sync::atomic::Ordering;

/// Operations in flight per round (the queue depth).
const DEPTH: usize = 4;
/// Registered regions a thread keeps alive between rounds.
const POOL: usize = 6;

/// A thread's share of a device: `[base, base + span)`, in chunks of `chunk`.
#[derive(Clone, Copy, Debug)]
pub struct Lane {
    pub base: u64,
    pub span: u64,
    pub chunk: usize,
}

impl Lane {
    /// Splits a device among `threads`, each lane holding `DEPTH` chunks of
    /// the largest size the device's limits allow, at most `max_chunk`.
    pub fn split(dev: &dyn Device, threads: usize, max_chunk: u64) -> Result<Vec<Lane>, String> {
        let c = dev.capabilities();
        let align = c.offset_align.max(c.len_align).max(1);
        let span = pinio::align_down(dev.size() / threads as u64, align);
        let chunk = pinio::align_down((span / DEPTH as u64).min(c.max_transfer).min(max_chunk), align);
        if chunk == 0 {
            return Err(format!(
                "{}: {} bytes cannot hold {threads} lanes of {DEPTH} aligned chunks",
                dev.describe(),
                dev.size()
            ));
        }
        Ok((0..threads as u64).map(|i| Lane { base: i * span, span, chunk: chunk as usize }).collect())
    }
}

/// A region of the pool, with the bytes it must be able to hold.
fn fresh_region(dev: &dyn Device, rng: &mut Rng, min: usize, counters: &Counters) -> Result<Region, String> {
    let page = pinio::page_size();
    // Between the minimum and a few pages more, so sizes (and pin counts) vary.
    let len = min + rng.below(4) as usize * page;
    let r = dev.alloc(len).map_err(|e| format!("registering {len} bytes: {e}"))?;
    counters.registered.fetch_add(1, Ordering::Relaxed);
    Ok(r)
}

/// Runs rounds until `should_stop()`: each round replaces one region of the pool
/// (dropped, or unregistered and its buffer registered again), writes
/// `DEPTH` chunks with a pattern from one region, reads them back into
/// another, and compares.
pub fn run(
    dev: &dyn Device,
    lane: Lane,
    seed: u64,
    should_stop: &dyn Fn() -> bool,
    counters: &Counters,
) -> Result<(), String> {
    let mut rng = Rng::new(seed);
    let need = lane.chunk * DEPTH;
    let mut pool: Vec<Region> = Vec::new();
    for _ in 0..POOL {
        pool.push(fresh_region(dev, &mut rng, need, counters)?);
    }
    let mut q = dev.queue(DEPTH).map_err(|e| format!("queue: {e}"))?;
    let mut round = 0u64;
    while !should_stop() {
        churn(dev, &mut pool, &mut rng, need, counters)?;
        let (w, r) = (rng.index(POOL), rng.index(POOL));
        let slots = lane.span / lane.chunk as u64;
        let first = rng.below(slots - DEPTH as u64 + 1);
        let offsets: Vec<u64> = (0..DEPTH as u64).map(|i| lane.base + (first + i) * lane.chunk as u64).collect();
        let tag = (seed << 20) ^ round;
        // Write: each chunk a pattern of (tag, chunk index, byte position).
        let mut ops = Vec::new();
        for (i, &off) in offsets.iter().enumerate() {
            let mut s = pool[w].slice(i * lane.chunk, lane.chunk).map_err(|e| format!("write slice: {e}"))?;
            for (j, b) in s.iter_mut().enumerate() {
                *b = pattern(tag, i, j);
            }
            ops.push(Op::write(s, off, i as u64));
        }
        drop(exchange(q.as_mut(), ops, counters)?);
        // Read into the other region (or the same one: slices taken anew),
        // cleared first so that a read that moved nothing cannot pass.
        let mut ops = Vec::new();
        for (i, &off) in offsets.iter().enumerate() {
            let mut s = pool[r].slice(i * lane.chunk, lane.chunk).map_err(|e| format!("read slice: {e}"))?;
            s.fill(0);
            ops.push(Op::read(s, off, i as u64));
        }
        for c in exchange(q.as_mut(), ops, counters)? {
            let i = c.tag as usize;
            if let Some(j) = c.slice.iter().enumerate().position(|(j, &b)| b != pattern(tag, i, j)) {
                return Err(format!(
                    "{}: round {round}: read back of chunk {i} at device offset {:#x} differs at byte {j}: {:#04x}, wrote {:#04x}",
                    dev.describe(),
                    c.dev_offset,
                    c.slice[j],
                    pattern(tag, i, j)
                ));
            }
            counters.verified_bytes.fetch_add(c.slice.len() as u64, Ordering::Relaxed);
        }
        round += 1;
    }
    drop(q);
    counters.unregistered.fetch_add(pool.len() as u64, Ordering::Relaxed);
    Ok(())
}

/// Replaces one region of the pool: half the time dropped (unregistered)
/// and a new one registered, half the time unregistered explicitly and the
/// same buffer registered again.
fn churn(dev: &dyn Device, pool: &mut [Region], rng: &mut Rng, need: usize, counters: &Counters) -> Result<(), String> {
    let i = rng.index(pool.len());
    if rng.chance(1, 2) {
        pool[i] = fresh_region(dev, rng, need, counters)?;
    } else {
        let old = std::mem::replace(&mut pool[i], fresh_region(dev, rng, need, counters)?);
        let buf = old.unregister().map_err(|e| format!("unregistering an idle region: {e}"))?;
        counters.registered.fetch_add(1, Ordering::Relaxed);
        let again = dev.register(buf).map_err(|e| format!("registering a buffer again: {e}"))?;
        drop(std::mem::replace(&mut pool[i], again));
        // The explicit unregister above; the fresh region's drop below.
        counters.unregistered.fetch_add(1, Ordering::Relaxed);
    }
    counters.unregistered.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Pushes every op, waits for all, and returns the completions; any failure is fatal.
fn exchange(q: &mut dyn Queue, ops: Vec<Op>, counters: &Counters) -> Result<Vec<Completion>, String> {
    let n = ops.len();
    for op in ops {
        q.push(op).map_err(|r| format!("push: {}", r.error))?;
    }
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let want = n - out.len();
        q.wait(want, &mut out).map_err(|e| format!("wait: {e}"))?;
    }
    for c in &out {
        match &c.result {
            Ok(len) if *len == c.slice.len() => {}
            Ok(len) => {
                return Err(format!("{:?} at {:#x}: short transfer {len} of {}", c.dir, c.dev_offset, c.slice.len()));
            }
            Err(e) => return Err(format!("{:?} at {:#x}: {e}", c.dir, c.dev_offset)),
        }
    }
    counters.ops.fetch_add(n as u64, Ordering::Relaxed);
    counters.bytes.fetch_add(out.iter().map(|c| c.slice.len() as u64).sum::<u64>(), Ordering::Relaxed);
    Ok(out)
}

/// The byte at position `j` of chunk `i` in the round tagged `tag`.
fn pattern(tag: u64, i: usize, j: usize) -> u8 {
    let x = tag.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ ((i as u64) << 32) ^ (j as u64 / 8);
    (x ^ (x >> 29) ^ (j as u64)).to_le_bytes()[j % 8]
}
