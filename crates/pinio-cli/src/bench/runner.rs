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
    /// The user-space part of `cpu_secs`.
    pub user_secs: f64,
    /// The kernel part of `cpu_secs`.
    pub sys_secs: f64,
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
    /// User-space CPU microseconds per IO.
    pub fn user_us_per_io(&self) -> f64 {
        self.user_secs * 1e6 / self.ops.max(1) as f64
    }
    /// Kernel CPU microseconds per IO.
    pub fn sys_us_per_io(&self) -> f64 {
        self.sys_secs * 1e6 / self.ops.max(1) as f64
    }
    /// IOs per second of CPU time (user + system): what a core buys.
    pub fn ios_per_cpu_sec(&self) -> f64 {
        self.ops as f64 / self.cpu_secs
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

/// When a run's phases end: all of its threads share one clock.
#[derive(Clone, Copy)]
struct Clock {
    /// Start of the measured window (end of the warm-up).
    warm: Instant,
    /// End of the measured window.
    end: Instant,
}

/// What one thread of a run counted inside the measured window.
struct Counted {
    ops: u64,
    bytes: u64,
    hist: Histogram<u64>,
}

/// Runs `w` on `dev` for `dur` (after `warmup`), with `w.jobs` threads,
/// each with its own queue and buffers on `dev`. `on_wrap` runs when a
/// sequential pass of the first thread wraps around (the cold-cache runs
/// drop the cache there). CPU time is the whole process's over the
/// measured window (the calling thread sleeps meanwhile).
pub fn run(
    dev: &dyn Device,
    w: &Workload,
    span: u64,
    warmup: Duration,
    dur: Duration,
    on_wrap: &mut (dyn FnMut() + Send),
) -> CliResult<Sample> {
    if (w.block as u64) > span {
        return Err(format!("block size {} exceeds the device size {span}", w.block).into());
    }
    let start = Instant::now();
    let clock = Clock { warm: start + warmup, end: start + warmup + dur };
    std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(w.jobs);
        let mut first_wrap = Some(on_wrap);
        for j in 0..w.jobs {
            let wrap = first_wrap.take();
            handles.push(scope.spawn(move || {
                let mut none = || {};
                let wrap: &mut (dyn FnMut() + Send) = match wrap {
                    Some(f) => f,
                    None => &mut none,
                };
                job(dev, w, span, 42 + j as u64, clock, wrap).map_err(|e| e.to_string())
            }));
        }
        // The measured window, seen from here: the workers check the same
        // instants on every completion batch.
        sleep_until(clock.warm);
        let (t0, cpu0, st0) = (Instant::now(), process_cpu(), dev.stats());
        sleep_until(clock.end);
        let (secs, cpu, copied) =
            (t0.elapsed().as_secs_f64(), process_cpu().since(&cpu0), dev.stats().since(&st0).bytes_copied);
        let mut total: Option<Counted> = None;
        for h in handles {
            let c = h.join().map_err(|_| "a benchmark thread panicked".to_string())??;
            match &mut total {
                None => total = Some(c),
                Some(t) => {
                    t.ops += c.ops;
                    t.bytes += c.bytes;
                    t.hist.add(&c.hist).map_err(|e| e.to_string())?;
                }
            }
        }
        let t = total.ok_or("no benchmark thread ran")?;
        let pct = |p: f64| t.hist.value_at_quantile(p) as f64 / 1000.0;
        let (user_secs, sys_secs) = (cpu.user.as_secs_f64(), cpu.sys.as_secs_f64());
        Ok(Sample {
            ops: t.ops,
            bytes: t.bytes,
            secs,
            cpu_secs: user_secs + sys_secs,
            user_secs,
            sys_secs,
            bytes_copied: Some(copied),
            lat_p50_us: pct(0.5),
            lat_p99_us: pct(0.99),
            lat_p999_us: pct(0.999),
        })
    })
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

/// One thread of a run: its own queue of `w.depth` and its own buffers,
/// kept full until `clock.end`; counts what completes between
/// `clock.warm` and `clock.end`.
fn job(
    dev: &dyn Device,
    w: &Workload,
    span: u64,
    seed: u64,
    clock: Clock,
    on_wrap: &mut dyn FnMut(),
) -> CliResult<Counted> {
    let block = w.block;
    let region = dev.alloc(block * w.depth)?;
    let mut q = dev.queue(w.depth)?;
    let mut offsets = Offsets {
        pattern: w.pattern,
        block: block as u64,
        blocks: span / block as u64,
        next: 0,
        rng: SmallRng::seed_from_u64(seed),
        wrapped: false,
    };
    let mut slots: Vec<Option<Slice>> =
        (0..w.depth).map(|i| region.slice(i * block, block).map(Some)).collect::<Result<_, _>>()?;
    let mut started = vec![Instant::now(); w.depth];
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).map_err(|e| e.to_string())?;
    let mut out: Vec<Completion> = Vec::with_capacity(w.depth);

    let push = |q: &mut Box<dyn pinio::Queue>,
                tag: usize,
                slice: Slice,
                offsets: &mut Offsets,
                started: &mut [Instant]|
     -> CliResult {
        let off = offsets.next();
        started[tag] = Instant::now();
        let op = match w.dir {
            pinio::Direction::Read => Op::read(slice, off, tag as u64),
            pinio::Direction::Write => Op::write(slice, off, tag as u64),
        };
        q.push(op).map_err(|r| r.error)?;
        Ok(())
    };

    for (tag, slot) in slots.iter_mut().enumerate() {
        let s = slot.take().expect("slot filled");
        push(&mut q, tag, s, &mut offsets, &mut started)?;
    }
    q.submit()?;
    let mut measuring = false;
    let (mut ops, mut bytes) = (0u64, 0u64);
    loop {
        let now = Instant::now();
        if !measuring && now >= clock.warm {
            measuring = true;
            ops = 0;
            bytes = 0;
            hist.reset();
        }
        if now >= clock.end {
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
    // Collect what is still in flight so the slices come home.
    while q.in_flight() > 0 {
        out.clear();
        q.wait(q.in_flight(), &mut out)?;
    }
    Ok(Counted { ops, bytes, hist })
}
