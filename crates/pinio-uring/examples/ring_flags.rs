//! What each ring setup flag does to pinio's uring queue: 4 KiB random reads
//! at QD1 and QD32, page-cache hot (buffered, fixed buffers: the CPU-bound
//! case) and O_DIRECT (device-bound), with every combination of
//! `UringOptions::coop_taskrun` and `UringOptions::single_issuer` (which
//! brings DEFER_TASKRUN, superseding COOP_TASKRUN),
//! interleaved: each repeat runs every (mode, depth, flags) cell once.
//! Prints IOPS, user and system CPU per IO (`getrusage(RUSAGE_THREAD)`) and
//! `io_uring_enter` calls per IO (`UringQueue::enter_calls`), median
//! [min-max] over the repeats.
//!
//! ```text
//! cargo run --release -p pinio-uring --example ring_flags -- FILE [SECS] [REPEATS]
//! ```
//!
//! FILE must exist, hold written data, be at least 64 MiB and sit on a file
//! system with real O_DIRECT (e.g. the scratch file of `pinio bench` in
//! /var/tmp). It is read, never written; its pages are read into the page
//! cache before the hot runs.

use pinio_core::{Completion, Device, Op, Queue};
use pinio_uring::{UringDevice, UringOptions};
use std::io::Read;
use std::time::{Duration, Instant};

/// One measured run.
struct Run {
    iops: f64,
    user_us: f64,
    sys_us: f64,
    enters_per_io: f64,
}

fn thread_cpu() -> (f64, f64) {
    // SAFETY: rusage is plain old data; getrusage fills it through a valid pointer.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    (s(ru.ru_utime), s(ru.ru_stime))
}

/// xorshift64 offsets, block-aligned inside the file.
struct Offsets(u64, u64);

impl Offsets {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % self.1) * 4096
    }
}

fn run(path: &std::path::Path, opts: UringOptions, depth: usize, secs: f64) -> Result<Run, Box<dyn std::error::Error>> {
    let dev = UringDevice::open(path, opts)?;
    let blocks = dev.capabilities().device_size / 4096;
    let region = dev.alloc(depth * 4096)?;
    let mut q = dev.uring_queue(depth)?;
    let mut offsets = Offsets(0x9e37_79b9_7f4a_7c15, blocks);
    for i in 0..depth {
        q.push(Op::read(region.slice(i * 4096, 4096)?, offsets.next(), i as u64))?;
    }
    let mut out: Vec<Completion> = Vec::with_capacity(depth);
    let warm = Instant::now() + Duration::from_millis(200);
    let (mut ios, mut start, mut cpu0, mut enters0) = (0u64, None, (0.0, 0.0), 0);
    let end = warm + Duration::from_secs_f64(secs);
    loop {
        let now = Instant::now();
        if start.is_none() && now >= warm {
            (start, cpu0, enters0, ios) = (Some(now), thread_cpu(), q.enter_calls(), 0);
        }
        if now >= end {
            break;
        }
        out.clear();
        q.wait(1, &mut out)?;
        for c in out.drain(..) {
            c.result?;
            ios += 1;
            q.push(Op::read(c.slice, offsets.next(), c.tag)).map_err(|r| r.error)?;
        }
    }
    let elapsed = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
    let cpu = thread_cpu();
    let enters = q.enter_calls() - enters0;
    while q.in_flight() > 0 {
        out.clear();
        q.wait(q.in_flight(), &mut out)?;
    }
    let per_io = |s: f64| s * 1e6 / ios.max(1) as f64;
    Ok(Run {
        iops: ios as f64 / elapsed,
        user_us: per_io(cpu.0 - cpu0.0),
        sys_us: per_io(cpu.1 - cpu0.1),
        enters_per_io: enters as f64 / ios.max(1) as f64,
    })
}

fn spread(mut v: Vec<f64>) -> String {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
    if median >= 1000.0 {
        format!("{:.1}k [{:.1}k-{:.1}k]", median / 1e3, v[0] / 1e3, v[n - 1] / 1e3)
    } else {
        format!("{median:.3} [{:.3}-{:.3}]", v[0], v[n - 1])
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = std::path::PathBuf::from(args.next().ok_or("usage: ring_flags FILE [SECS] [REPEATS]")?);
    let secs: f64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1.0);
    let repeats: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(5);
    // SINGLE_ISSUER comes with DEFER_TASKRUN, which supersedes COOP_TASKRUN.
    let flags = [(false, false), (true, false), (false, true)];
    let mut cells = Vec::new();
    for direct in [false, true] {
        for depth in [1usize, 32] {
            for (coop_taskrun, single_issuer) in flags {
                cells.push((direct, depth, coop_taskrun, single_issuer, Vec::new()));
            }
        }
    }
    for rep in 0..repeats {
        eprintln!("repeat {}/{repeats}", rep + 1);
        // Hot runs read from the page cache: read the whole file first.
        std::io::copy(&mut std::fs::File::open(&path)?.take(u64::MAX), &mut std::io::sink())?;
        for (direct, depth, coop_taskrun, single_issuer, runs) in cells.iter_mut() {
            let opts = UringOptions {
                direct: *direct,
                coop_taskrun: *coop_taskrun,
                single_issuer: *single_issuer,
                writable: false,
                ..UringOptions::default()
            };
            runs.push(run(&path, opts, *depth, secs)?);
        }
    }
    println!("4 KiB random reads, {secs} s per run, {repeats} interleaved repeats, median [min-max]");
    println!(
        "{:<9} {:>4} {:<26} {:>24} {:>22} {:>22} {:>22}",
        "mode", "QD", "setup", "IOPS", "user us/IO", "sys us/IO", "enters/IO"
    );
    for (direct, depth, coop, single, runs) in &cells {
        let setup = match (coop, single) {
            (false, false) => "none",
            (true, false) => "COOP_TASKRUN (default)",
            (_, true) => "SINGLE_ISSUER+DEFER",
        };
        let col = |f: fn(&Run) -> f64| spread(runs.iter().map(f).collect());
        println!(
            "{:<9} {:>4} {:<26} {:>24} {:>22} {:>22} {:>22}",
            if *direct { "O_DIRECT" } else { "hot" },
            depth,
            setup,
            col(|r| r.iops),
            col(|r| r.user_us),
            col(|r| r.sys_us),
            col(|r| r.enters_per_io)
        );
    }
    Ok(())
}
