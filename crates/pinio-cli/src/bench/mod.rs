//! `pinio bench`: zero-copy backends against copy IO, side by side.
//!
//! Method: one scratch file of real data; every (workload, configuration)
//! pair runs once per repeat, the pairs interleaved within each repeat so
//! that a noisy neighbour hits all of them alike; each run has a warm-up;
//! the table shows the median with min and max, and warns when repeats
//! disagree by more than the noise margin.

mod contender;
mod cpu;
mod fio;
mod plot;
mod report;
mod runner;
mod scratch;
mod workload;

use crate::CliResult;
use clap::Args;
use contender::{Cache, Contender, Engine};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::time::Duration;
use workload::Workload;

/// Arguments of `pinio bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Directory for the scratch file (must support O_DIRECT: not tmpfs).
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    pub dir: PathBuf,
    /// Scratch file size in MiB.
    #[arg(long, default_value_t = 1024)]
    pub size_mib: u64,
    /// Workloads (repeatable), e.g. randread-4k-qd32, read-1m-qd4, write-128k-qd1.
    #[arg(long = "workload")]
    pub workloads: Vec<String>,
    /// Seconds measured per run.
    #[arg(long, default_value_t = 2.0)]
    pub secs: f64,
    /// Warm-up seconds before each run.
    #[arg(long, default_value_t = 0.5)]
    pub warmup: f64,
    /// Interleaved repeats of the whole matrix.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Every configuration and workload: adds io_uring without fixed buffers,
    /// fio's io_uring (fixedbufs, registerfiles) and psync (direct and
    /// buffered) jobs as peers when fio is installed, and 128 KiB / 1 MiB
    /// sequential reads and writes.
    #[arg(long)]
    pub full: bool,
    /// Leave fio out of --full even when it is installed.
    #[arg(long)]
    pub no_fio: bool,
    /// A run under a minute: 256 MiB file, 1 s runs, 3 repeats.
    #[arg(long)]
    pub quick: bool,
    /// Directory for results.json (every sample) and results.svg (the plot).
    #[arg(long, default_value = "target/pinio-bench")]
    pub out: PathBuf,
    /// Relative spread (max-min)/median above which a row is flagged noisy.
    #[arg(long, default_value_t = 0.2)]
    pub noise: f64,
}

/// The workloads of a plain `pinio bench`.
const DEFAULT_WORKLOADS: &[&str] = &["randread-4k-qd1", "randread-4k-qd32", "read-1m-qd4"];
/// The workloads of `pinio bench --full`.
const FULL_WORKLOADS: &[&str] = &[
    "randread-4k-qd1",
    "randread-4k-qd32",
    "read-128k-qd4",
    "read-1m-qd4",
    "write-128k-qd4",
    "write-1m-qd4",
];

pub fn run(mut a: BenchArgs) -> CliResult {
    if a.quick {
        a.size_mib = a.size_mib.min(256);
        a.secs = a.secs.min(1.0);
        a.warmup = a.warmup.min(0.2);
    }
    if a.repeats == 0 {
        return Err("--repeats must be at least 1".into());
    }
    let defaults = if a.full { FULL_WORKLOADS } else { DEFAULT_WORKLOADS };
    let names: Vec<String> = if a.workloads.is_empty() { defaults.iter().map(|s| s.to_string()).collect() } else { a.workloads.clone() };
    let workloads: Vec<Workload> = names.iter().map(|s| Workload::parse(s)).collect::<Result<_, _>>()?;
    let with_fio = a.full && !a.no_fio && fio::available();
    if a.full && !a.no_fio && !with_fio {
        eprintln!("pinio bench: fio is not installed, so no fio peers (apt-get install fio)");
    }
    let contenders = if a.full { Contender::full(with_fio) } else { Contender::defaults() };
    let size = a.size_mib << 20;
    let runs = (workloads.len() * contenders.len() * a.repeats) as u64;
    let pb = ProgressBar::new(runs);
    pb.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}").map_err(|e| e.to_string())?);
    pb.enable_steady_tick(Duration::from_millis(200));
    let file = scratch::ensure(&a.dir, size, &pb)?;
    let mut results = report::Results::new(&workloads, &contenders);
    for rep in 0..a.repeats {
        for (wi, w) in workloads.iter().enumerate() {
            for (ci, c) in contenders.iter().enumerate() {
                pb.set_message(format!("repeat {}/{}: {w} on {c}", rep + 1, a.repeats));
                match c.cache {
                    Cache::Cold => scratch::drop_cache(&file)?,
                    Cache::Hot => scratch::warm_cache(&file)?,
                    Cache::Bypassed => {}
                }
                let (warmup, secs) = (Duration::from_secs_f64(a.warmup), Duration::from_secs_f64(a.secs));
                let s = match c.engine {
                    Engine::Pinio { .. } => {
                        let dev = c.open(&file).map_err(|e| format!("opening {c} on {}: {e}", file.display()))?;
                        let mut on_wrap = || {
                            if c.cache == Cache::Cold {
                                let _ = scratch::drop_cache(&file);
                            }
                        };
                        runner::run(&*dev, w, size, warmup, secs, &mut on_wrap)
                    }
                    Engine::Fio { .. } => fio::run(&c.engine, w, &file, size, warmup, secs),
                }
                .map_err(|e| format!("{w} on {c}: {e}"))?;
                results.add(wi, ci, s);
                pb.inc(1);
            }
        }
    }
    pb.finish_and_clear();
    println!("pinio bench: {} MiB scratch file {}, {} s per run after {} s warm-up, {} interleaved repeats (median, [min-max])", a.size_mib, file.display(), a.secs, a.warmup, a.repeats);
    print!("{}", results.table(a.noise));
    std::fs::create_dir_all(&a.out).map_err(|e| format!("creating {}: {e}", a.out.display()))?;
    let (json, svg) = (a.out.join("results.json"), a.out.join("results.svg"));
    std::fs::write(&json, results.json(&a)?)?;
    plot::write(&results, &svg)?;
    println!("every sample: {}; plot: {}", json.display(), svg.display());
    Ok(())
}
