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
//! O_DIRECT), `PINIO_QD32_ROUNDS` (default 10), `PINIO_QD32_IOS` (IOs per
//! loop per round, default 20000).

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

fn iops(f: impl FnOnce() -> u64) -> f64 {
    let t = Instant::now();
    let n = f();
    n as f64 / t.elapsed().as_secs_f64()
}

fn interleaved(raw: &mut RawLoop, pinio: &mut PinioLoop) {
    let (rounds, ios) = (env_or("PINIO_QD32_ROUNDS", 10), env_or("PINIO_QD32_IOS", 20_000));
    println!("interleaved: {rounds} rounds x {ios} IOs per loop, QD{QD}, 4 KiB random O_DIRECT reads");
    println!("{:>5} {:>12} {:>12} {:>8}", "round", "raw IOPS", "pinio IOPS", "ratio");
    let mut ratios = Vec::new();
    let (mut sum_raw, mut sum_pinio) = (0.0, 0.0);
    for r in 0..rounds {
        let (a, b) = if r % 2 == 0 {
            let a = iops(|| raw.run(ios));
            (a, iops(|| pinio.run(ios)))
        } else {
            let b = iops(|| pinio.run(ios));
            (iops(|| raw.run(ios)), b)
        };
        println!("{r:>5} {a:>12.0} {b:>12.0} {:>8.3}", b / a);
        ratios.push(b / a);
        sum_raw += a;
        sum_pinio += b;
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    println!(
        "pinio/raw IOPS ratio: median {median:.3}, min {:.3}, max {:.3}, ratio of means {:.3}",
        ratios[0],
        ratios[ratios.len() - 1],
        sum_pinio / sum_raw
    );
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
    g.bench_function("raw_io_uring", |b| {
        b.iter_custom(|n| {
            let t = Instant::now();
            raw.run(n);
            t.elapsed()
        })
    });
    g.bench_function("pinio_uring", |b| {
        b.iter_custom(|n| {
            let t = Instant::now();
            pinio.run(n);
            t.elapsed()
        })
    });
    g.finish();
    let s = pinio.device().stats();
    println!("pinio device: {s}");
    assert_eq!(s.bytes_copied, 0);
    c.final_summary();
}
