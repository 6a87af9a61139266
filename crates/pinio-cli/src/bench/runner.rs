//! Runs one workload on one device for a fixed time and measures it.

use super::cpu::process_cpu;
use super::workload::{Pattern, Workload};
use crate::CliResult;
use hdrhistogram::Histogram;
use pinio::{Completion, Device, Op, Slice};
use rand::{Rng, SeedableRng, rngs::SmallRng};
use std::time::{Duration, Instant};

/// What one run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sample {
    pub ops: u64,
    pub bytes: u64,
    pub secs: f64,
    pub cpu_secs: f64,
    /// CPU-copied payload bytes; `None` for peers that cannot tell (fio).
    pub bytes_copied: Option<u64>,
    pub lat_p50_us: f64,
    pub lat_p99_us: f64,
    pub lat_p999_us: f64,
}

impl Sample {
    pub fn iops(&self) -> f64 {
        self.ops as f64 / self.secs
    }
    pub fn gbps(&self) -> f64 {
        self.bytes as f64 / self.secs / 1e9
    }
    /// CPU nanoseconds per byte moved.
    pub fn cpu_ns_per_byte(&self) -> f64 {
        self.cpu_secs * 1e9 / self.bytes.max(1) as f64
    }
}

/// Offsets for a workload over `[0, span)`.
struct Offsets {
    pattern: Pattern,
    block: u64,
    blocks: u64,
    next: u64,
    rng: SmallRng,
    wrapped: bool,
}

impl Offsets {
    fn next(&mut self) -> u64 {
        match self.pattern {
            Pattern::Random => self.rng.random_range(0..self.blocks) * self.block,
            Pattern::Sequential => {
                let o = self.next;
                self.next += 1;
                if self.next == self.blocks {
                    self.next = 0;
                    self.wrapped = true;
                }
                o * self.block
            }
        }
    }
}

/// Runs `w` on `dev` for `dur` (after `warmup`). `on_wrap` runs when a
/// sequential pass wraps around (the cold-cache runs drop the cache there).
pub fn run(dev: &dyn Device, w: &Workload, span: u64, warmup: Duration, dur: Duration, on_wrap: &mut dyn FnMut()) -> CliResult<Sample> {
    let block = w.block;
    if (block as u64) > span {
        return Err(format!("block size {block} exceeds the device size {span}").into());
    }
    let region = dev.alloc(block * w.depth)?;
    let mut q = dev.queue(w.depth)?;
    let mut offsets = Offsets {
        pattern: w.pattern,
        block: block as u64,
        blocks: span / block as u64,
        next: 0,
        rng: SmallRng::seed_from_u64(42),
        wrapped: false,
    };
    let mut slots: Vec<Option<Slice>> = (0..w.depth).map(|i| region.slice(i * block, block).map(Some)).collect::<Result<_, _>>()?;
    let mut started = vec![Instant::now(); w.depth];
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).map_err(|e| e.to_string())?;
    let mut out: Vec<Completion> = Vec::with_capacity(w.depth);

    let push = |q: &mut Box<dyn pinio::Queue>, tag: usize, slice: Slice, offsets: &mut Offsets, started: &mut [Instant]| -> CliResult {
        let off = offsets.next();
        started[tag] = Instant::now();
        let op = Op { dir: w.dir, slice, dev_offset: off, tag: tag as u64 };
        q.push(op).map_err(|r| r.error)?;
        Ok(())
    };

    for (tag, slot) in slots.iter_mut().enumerate() {
        let s = slot.take().expect("slot filled");
        push(&mut q, tag, s, &mut offsets, &mut started)?;
    }
    q.submit()?;
    let stats0 = dev.stats();
    let t_start = Instant::now();
    let mut measuring = warmup.is_zero();
    let (mut t0, mut cpu0) = (t_start, process_cpu());
    let mut st0 = stats0;
    let (mut ops, mut bytes) = (0u64, 0u64);
    loop {
        let now = Instant::now();
        if !measuring && now - t_start >= warmup {
            measuring = true;
            (t0, cpu0, st0) = (now, process_cpu(), dev.stats());
            ops = 0;
            bytes = 0;
            hist.reset();
        }
        if measuring && now - t0 >= dur {
            break;
        }
        out.clear();
        q.wait(1, &mut out)?;
        let done = Instant::now();
        for c in out.drain(..) {
            let n = c.result.map_err(|e| format!("{} at {:#x} failed: {e}", w, c.dev_offset))?;
            if n != block {
                return Err(format!("{w}: short transfer of {n} bytes at {:#x}", c.dev_offset).into());
            }
            let tag = c.tag as usize;
            let _ = hist.record((done - started[tag]).as_nanos().max(1) as u64);
            ops += 1;
            bytes += n as u64;
            push(&mut q, tag, c.slice, &mut offsets, &mut started)?;
        }
        if offsets.wrapped {
            offsets.wrapped = false;
            on_wrap();
        }
        q.submit()?;
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu_secs = (process_cpu() - cpu0).as_secs_f64();
    let copied = dev.stats().since(&st0).bytes_copied;
    // Collect what is still in flight so the slices come home.
    while q.in_flight() > 0 {
        out.clear();
        q.wait(q.in_flight(), &mut out)?;
    }
    drop(out);
    let pct = |p: f64| hist.value_at_quantile(p) as f64 / 1000.0;
    Ok(Sample {
        ops,
        bytes,
        secs,
        cpu_secs,
        bytes_copied: Some(copied),
        lat_p50_us: pct(0.5),
        lat_p99_us: pct(0.99),
        lat_p999_us: pct(0.999),
    })
}
