//! `pinio bench`: zero-copy backends against copy IO, side by side.
//!
//! Method: one scratch file of real data; every (workload, configuration)
//! pair runs once per repeat, the pairs interleaved within each repeat so
//! that a noisy neighbour hits all of them alike; each run has a warm-up;
//! the table shows the median with min and max, and warns when repeats
//! disagree by more than the noise margin.

mod contender;
mod cpu;
mod escape;
mod fio;
#[cfg(test)]
mod fixture;
#[cfg(test)]
mod page_tests;
mod plot;
mod report;
#[cfg(test)]
mod report_tests;
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
    /// Directory for the scratch file. It must support O_DIRECT, so not
    /// tmpfs: the default, /var/tmp, is on disk where the temp dir (/tmp)
    /// often is not. The file is kept for the next run unless --clean.
    #[arg(long, default_value = "/var/tmp")]
    pub dir: PathBuf,
    /// Remove the scratch file when the run ends (by default it is kept, so
    /// that the next run of the same --size-mib reuses it).
    #[arg(long)]
    pub clean: bool,
    /// Scratch file size in MiB.
    #[arg(long, default_value_t = 1024)]
    pub size_mib: u64,
    /// Workloads (repeatable), e.g. randread-4k-qd32, read-1m-qd4, write-128k-qd1;
    /// a `-jN` suffix runs N threads, each with its own queue (randread-4k-qd32-j2).
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
    /// fio's io_uring (fixedbufs, registerfiles; direct, and buffered from
    /// a hot page cache) and psync (direct and buffered) jobs as peers when
    /// fio is installed, 128 KiB / 1 MiB sequential reads and writes, and
    /// 4 KiB random reads on two threads (randread-4k-qd32-j2).
    #[arg(long)]
    pub full: bool,
    /// Leave fio out of --full even when it is installed.
    #[arg(long)]
    pub no_fio: bool,
    /// A run under a minute: 256 MiB file, 1 s runs, 3 repeats.
    #[arg(long)]
    pub quick: bool,
    /// Directory for results.json (every sample), results.svg (the plots)
    /// and results.html (table and plots on one page).
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
    "randread-4k-qd32-j2",
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
    let names: Vec<String> =
        if a.workloads.is_empty() { defaults.iter().map(|s| s.to_string()).collect() } else { a.workloads.clone() };
    let workloads: Vec<Workload> = names.iter().map(|s| Workload::parse(s)).collect::<Result<_, _>>()?;
    let with_fio = a.full && !a.no_fio && fio::available();
    if a.full && !a.no_fio && !with_fio {
        eprintln!("pinio bench: fio is not installed, so no fio peers (apt-get install fio)");
    }
    let contenders = if a.full { Contender::full(with_fio) } else { Contender::defaults() };
    let size = a.size_mib << 20;
    let runs =
        (workloads.iter().map(|w| contenders.iter().filter(|c| c.runs(w)).count()).sum::<usize>() * a.repeats) as u64;
    let pb = ProgressBar::new(runs);
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .map_err(|e| e.to_string())?,
    );
    pb.enable_steady_tick(Duration::from_millis(200));
    let file = scratch::ensure(&a.dir, size, &pb)?;
    let measured = measure(&a, &workloads, &contenders, &file, size, &pb);
    pb.finish_and_clear();
    let reported = measured.and_then(|results| report(&a, &file, &results));
    // Where the scratch file is, whatever happened above.
    if a.clean {
        let _ = std::fs::remove_file(file.with_extension("partial"));
        match std::fs::remove_file(&file) {
            Ok(()) => println!("removed the scratch file {} (--clean)", file.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => eprintln!("pinio bench: could not remove the scratch file {}: {e}", file.display()),
        }
    } else {
        println!("{}", scratch_note(&file, a.size_mib));
    }
    reported
}

/// The closing line about the scratch file that was kept.
fn scratch_note(file: &std::path::Path, size_mib: u64) -> String {
    let shown = file.display().to_string();
    let plain = shown.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    let quoted = if plain { shown.clone() } else { format!("'{}'", shown.replace('\'', r"'\''")) };
    format!(
        "the scratch file {shown} ({size_mib} MiB) is kept so that the next run reuses it; remove it with: rm {quoted} (or pass --clean to remove it after a run)"
    )
}

/// Runs the matrix: every repeat, every workload, every configuration.
fn measure(
    a: &BenchArgs,
    workloads: &[Workload],
    contenders: &[Contender],
    file: &std::path::Path,
    size: u64,
    pb: &ProgressBar,
) -> CliResult<report::Results> {
    let mut results = report::Results::new(workloads, contenders);
    for rep in 0..a.repeats {
        for (wi, w) in workloads.iter().enumerate() {
            for (ci, c) in contenders.iter().enumerate().filter(|(_, c)| c.runs(w)) {
                pb.set_message(format!("repeat {}/{}: {w} on {c}", rep + 1, a.repeats));
                match c.cache {
                    Cache::Cold => scratch::drop_cache(file)?,
                    Cache::Hot => scratch::warm_cache(file)?,
                    Cache::Bypassed => {}
                }
                let (warmup, secs) = (Duration::from_secs_f64(a.warmup), Duration::from_secs_f64(a.secs));
                let s = match c.engine {
                    Engine::Pinio { .. } => {
                        let dev = c.open(file).map_err(|e| format!("opening {c} on {}: {e}", file.display()))?;
                        let mut on_wrap = || {
                            if c.cache == Cache::Cold {
                                let _ = scratch::drop_cache(file);
                            }
                        };
                        runner::run(&*dev, w, size, warmup, secs, &mut on_wrap)
                    }
                    Engine::Fio { .. } => fio::run(&c.engine, w, file, size, warmup, secs),
                }
                .map_err(|e| format!("{w} on {c}: {e}"))?;
                results.add(wi, ci, s);
                pb.inc(1);
            }
        }
    }
    Ok(results)
}

/// Prints the table and writes results.json, results.svg and results.html.
fn report(a: &BenchArgs, file: &std::path::Path, results: &report::Results) -> CliResult {
    let method = format!(
        "pinio bench: {} MiB scratch file {}, {} s per run after {} s warm-up, {} interleaved repeats (median, [min-max])",
        a.size_mib,
        file.display(),
        a.secs,
        a.warmup,
        a.repeats
    );
    println!("{method}");
    print!("{}", results.table(a.noise));
    std::fs::create_dir_all(&a.out).map_err(|e| format!("creating {}: {e}", a.out.display()))?;
    let (json, svg_path, html_path) =
        (a.out.join("results.json"), a.out.join("results.svg"), a.out.join("results.html"));
    let write = |path: &std::path::Path, text: &str| {
        std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
    };
    write(&json, &results.json(a)?)?;
    let svg = plot::svg(results);
    write(&svg_path, &svg)?;
    write(&html_path, &results.html(&method, a.noise, &svg))?;
    println!(
        "table and plots: {}; every sample: {}; plots alone: {}",
        html_path.display(),
        json.display(),
        svg_path.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    #[test]
    fn scratch_defaults_to_var_tmp_and_is_kept() {
        let a = Cli::parse_from(["pinio"]).bench;
        assert_eq!(a.dir, PathBuf::from("/var/tmp"));
        assert!(!a.clean);
        assert!(Cli::parse_from(["pinio", "--clean"]).bench.clean);
    }

    #[test]
    fn the_note_says_where_and_how_to_remove() {
        let n = scratch_note(std::path::Path::new("/var/tmp/pinio-bench-256M.dat"), 256);
        assert!(n.contains("/var/tmp/pinio-bench-256M.dat (256 MiB)"), "{n}");
        assert!(n.contains("rm /var/tmp/pinio-bench-256M.dat") && n.contains("--clean"), "{n}");
        let n = scratch_note(std::path::Path::new("/mnt/my disk/it's.dat"), 1);
        assert!(n.contains(r"rm '/mnt/my disk/it'\''s.dat'"), "{n}");
    }
}
