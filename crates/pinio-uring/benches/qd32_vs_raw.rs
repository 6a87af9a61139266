//! 4 KiB random O_DIRECT reads at QD32 on one file: a hand-written io-uring
//! loop against the pinio uring backend.
//!
//! `cargo bench -p pinio-uring --bench qd32_vs_raw` first runs an
//! interleaved comparison (rounds alternate raw and pinio, order swapped
//! each round, same file, same offsets sequence) and prints each round's
//! IOPS and ratio, then the two criterion benchmarks. The machine is noisy:
//! trust the per-round ratios more than absolute numbers.
//!
//! Environment: `PINIO_BENCH_DIR` (default: the temp dir; must support real
//! O_DIRECT), `PINIO_QD32_ROUNDS` (default 40), `PINIO_QD32_IOS` (IOs per
//! loop per round, default 10000), `PINIO_QD32_PINIO_FIRST=1` (run the pinio
//! criterion benchmark before the raw one).

#[path = "common/qd32.rs"]
mod qd32;

use criterion::{Criterion, Throughput};
use pinio_core::Device;
use qd32::{PinioLoop, QD, RawLoop};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Wall and CPU time (user, system) of one run on this thread.
#[derive(Default, Clone, Copy)]
struct Sample {
    ios: u64,
    wall: f64,
    user: f64,
    sys: f64,
}

impl Sample {
    fn iops(&self) -> f64 {
        self.ios as f64 / self.wall
    }

    fn add(&mut self, o: Sample) {
        self.ios += o.ios;
        self.wall += o.wall;
        self.user += o.user;
        self.sys += o.sys;
    }
}

fn thread_cpu() -> (f64, f64) {
    // SAFETY: getrusage fills a plain struct through a valid pointer.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 * 1e-6;
    (t(ru.ru_utime), t(ru.ru_stime))
}

fn measure(f: impl FnOnce() -> u64) -> Sample {
    let (u0, s0) = thread_cpu();
    let t = Instant::now();
    let ios = f();
    let wall = t.elapsed().as_secs_f64();
    let (u1, s1) = thread_cpu();
    Sample { ios, wall, user: u1 - u0, sys: s1 - s0 }
}

fn interleaved(raw: &mut RawLoop, pinio: &mut PinioLoop) {
    let (rounds, ios) = (env_or("PINIO_QD32_ROUNDS", 40), env_or("PINIO_QD32_IOS", 10_000));
    println!("interleaved: {rounds} rounds x {ios} IOs per loop, QD{QD}, 4 KiB random O_DIRECT reads");
    println!("{:>5} {:>12} {:>12} {:>8}", "round", "raw IOPS", "pinio IOPS", "ratio");
    let mut ratios = Vec::new();
    let (mut total_raw, mut total_pinio) = (Sample::default(), Sample::default());
    for r in 0..rounds {
        let (a, b) = if r % 2 == 0 {
            let a = measure(|| raw.run(ios));
            (a, measure(|| pinio.run(ios)))
        } else {
            let b = measure(|| pinio.run(ios));
            (measure(|| raw.run(ios)), b)
        };
        println!("{r:>5} {:>12.0} {:>12.0} {:>8.3}", a.iops(), b.iops(), b.iops() / a.iops());
        ratios.push(b.iops() / a.iops());
        total_raw.add(a);
        total_pinio.add(b);
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    println!(
        "pinio/raw IOPS: median of per-round ratios {median:.3} (min {:.3}, max {:.3}); all rounds together {:.3}",
        ratios[0],
        ratios[ratios.len() - 1],
        total_pinio.iops() / total_raw.iops()
    );
    for (name, t) in [("raw", total_raw), ("pinio", total_pinio)] {
        let per = |x: f64| x / t.ios as f64 * 1e6;
        println!(
            "{name:>5}: {:.0} IOPS over all rounds; CPU per IO {:.2} us user + {:.2} us system",
            t.iops(),
            per(t.user),
            per(t.sys)
        );
    }
}

fn main() {
    let dir = std::env::var_os("PINIO_BENCH_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let path = qd32::scratch_file(&dir);
    let mut raw = RawLoop::new(&path);
    let mut pinio = PinioLoop::new(&path);
    let bench_mode = std::env::args().any(|a| a == "--bench");
    if !bench_mode {
        // `cargo test --benches`: check that both loops work, quickly.
        assert_eq!(raw.run(100), 100);
        assert_eq!(pinio.run(100), 100);
        return;
    }
    raw.run(2000);
    pinio.run(2000);
    interleaved(&mut raw, &mut pinio);

    let mut c = Criterion::default().configure_from_args().measurement_time(Duration::from_secs(8)).sample_size(20);
    let mut g = c.benchmark_group("qd32_4k_randread_odirect");
    g.throughput(Throughput::Elements(1));
    // Criterion runs one benchmark after the other, so drift in the
    // machine's load favours one of them; PINIO_QD32_PINIO_FIRST=1 swaps the
    // order to check for that.
    let pinio_first = std::env::var_os("PINIO_QD32_PINIO_FIRST").is_some_and(|v| v == "1");
    for which in if pinio_first { ["pinio", "raw"] } else { ["raw", "pinio"] } {
        if which == "raw" {
            g.bench_function("raw_io_uring", |b| {
                b.iter_custom(|n| {
                    let t = Instant::now();
                    raw.run(n);
                    t.elapsed()
                })
            });
        } else {
            g.bench_function("pinio_uring", |b| {
                b.iter_custom(|n| {
                    let t = Instant::now();
                    pinio.run(n);
                    t.elapsed()
                })
            });
        }
    }
    g.finish();
    let s = pinio.device().stats();
    println!("pinio device: {s}");
    assert_eq!(s.bytes_copied, 0);
    c.final_summary();
}
