//! `pinio-soak`: every backend busy at once for minutes, with registrations
//! churned continuously and every byte read back and compared; a report
//! line of operations and memory every `--report-secs`; at the end, every
//! pinned page released and no kernel report.
//!
//! Run in the guest on the `test` kernel with `cargo xtask vm soak
//! --minutes 10` (docs/reliability.md). Not a CI test: a bench-style run.
//!
//! ```text
//! pinio-soak [--minutes M] [--threads N] [--report-secs S] [--switch-secs S]
//!            [--backends kmod,edu,nvme,copy,uring] [--seed X]
//! ```

mod backends;
mod counters;
mod sample;
mod worker;

use backends::{Backend, Plan, Shared};
use counters::Counters;
use pinio_fuzz::kmsg::KernelLog;
use pinio_fuzz::vmstat::PinCounters;
use sample::Sample;
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

struct Args {
    minutes: f64,
    threads: usize,
    report: Duration,
    switch_every: Duration,
    backends: Vec<Backend>,
    seed: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        minutes: 10.0,
        threads: 3,
        report: Duration::from_secs(30),
        switch_every: Duration::from_secs(60),
        backends: Backend::ALL.to_vec(),
        seed: pinio_fuzz::rng::Rng::fresh_seed(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let num = |v: String| v.parse::<f64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--minutes" => a.minutes = num(value()?)?,
            "--threads" => a.threads = num(value()?)? as usize,
            "--report-secs" => a.report = Duration::from_secs_f64(num(value()?)?),
            "--switch-secs" => a.switch_every = Duration::from_secs_f64(num(value()?)?),
            "--backends" => a.backends = value()?.split(',').map(Backend::parse).collect::<Result<_, _>>()?,
            "--seed" => {
                let v = value()?;
                a.seed = u64::from_str_radix(v.trim_start_matches("0x"), 16)
                    .map_err(|e| format!("--seed {v}: {e} (hex)"))?;
            }
            "-h" | "--help" => {
                println!(
                    "pinio-soak [--minutes M] [--threads N per backend] [--report-secs S] [--switch-secs S] [--backends kmod,edu,nvme,copy,uring] [--seed HEX]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    if a.threads == 0 || a.minutes <= 0.0 || a.report.is_zero() {
        return Err("--threads, --minutes and --report-secs must be positive".into());
    }
    Ok(a)
}

fn main() -> ExitCode {
    match soak() {
        Ok(()) => {
            println!("soak: PASS");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("soak: FAIL: {e}");
            ExitCode::FAILURE
        }
    }
}

fn soak() -> Result<(), String> {
    let args = parse_args()?;
    let mut kmsg = KernelLog::start().map_err(|e| e.to_string())?;
    backends::discover();
    let pins_before = PinCounters::read().map_err(|e| e.to_string())?;
    let names: Vec<&str> = args.backends.iter().map(|b| b.name()).collect();
    println!(
        "soak: seed {:#x}, {} min, {} thread(s) per backend, backends {}, NVMe changes driver every {:.0} s; pins outstanding at start {}",
        args.seed,
        args.minutes,
        args.threads,
        names.join(","),
        args.switch_every.as_secs_f64(),
        pins_before.outstanding()
    );
    println!("soak: t=0s {}", Sample::take(None).describe());
    let stop = AtomicBool::new(false);
    let shared = Shared::default();
    let counters: Vec<[Counters; 2]> = args.backends.iter().map(|_| Default::default()).collect();
    let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(args.minutes * 60.0);
    std::thread::scope(|s| {
        for (i, &backend) in args.backends.iter().enumerate() {
            let plan = Plan {
                backend,
                threads: args.threads,
                switch_every: args.switch_every,
                seed: args.seed ^ ((i as u64 + 1) << 56),
            };
            let (stop, shared, counters, errors) = (&stop, &shared, &counters[i], &errors);
            s.spawn(move || {
                if let Err(e) = backends::drive(&plan, stop, shared, counters) {
                    errors.lock().unwrap_or_else(|p| p.into_inner()).push(format!("{}: {e}", plan.backend.name()));
                    stop.store(true, Ordering::Relaxed);
                }
            });
        }
        let mut next = start + args.report;
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now >= end {
                break;
            }
            if now < next {
                std::thread::sleep((next.min(end) - now).min(Duration::from_millis(200)));
                continue;
            }
            next += args.report;
            report(&args, &counters, &shared, start);
            let reports = kmsg.reports();
            if !reports.is_empty() {
                errors
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(format!("kernel report: {}", reports.join(" | ")));
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    report(&args, &counters, &shared, start);
    let mut errors = errors.into_inner().unwrap_or_else(|p| p.into_inner());
    let reports = kmsg.reports();
    if !reports.is_empty() {
        errors.push(format!("kernel report: {}", reports.join(" | ")));
    }
    // io_uring releases a closed ring's registered buffers from a kernel
    // worker, a moment after the close: give the counters a few seconds.
    let mut pins_after = PinCounters::read().map_err(|e| e.to_string())?;
    let settle = Instant::now();
    while pins_after.outstanding() != pins_before.outstanding() && settle.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
        pins_after = PinCounters::read().map_err(|e| e.to_string())?;
    }
    println!(
        "soak: end after {:.1} s: nr_foll_pin_acquired {} nr_foll_pin_released {} (during the soak: +{} / +{}), pins outstanding {} (at start {})",
        start.elapsed().as_secs_f64(),
        pins_after.acquired,
        pins_after.released,
        pins_after.acquired - pins_before.acquired,
        pins_after.released - pins_before.released,
        pins_after.outstanding(),
        pins_before.outstanding()
    );
    if pins_after.outstanding() != pins_before.outstanding() {
        errors.push(format!(
            "pins leaked: {} page(s) outstanding after the soak, {} before",
            pins_after.outstanding(),
            pins_before.outstanding()
        ));
    }
    let total_ops: u64 = counters.iter().flatten().map(|c| c.ops.load(Ordering::Relaxed)).sum();
    if total_ops == 0 {
        errors.push("no operation completed".into());
    }
    if errors.is_empty() { Ok(()) } else { Err(errors.join("\n  ")) }
}

/// One line per backend and one of memory, prefixed with the elapsed time.
fn report(args: &Args, counters: &[[Counters; 2]], shared: &Shared, start: Instant) {
    let t = start.elapsed().as_secs();
    for (b, c) in args.backends.iter().zip(counters) {
        match b {
            Backend::Nvme => {
                println!("soak: t={t}s nvme(userspace) {}", c[0].summary());
                println!("soak: t={t}s nvme(kernel+uring) {}", c[1].summary());
            }
            b => println!("soak: t={t}s {} {}", b.name(), c[0].summary()),
        }
    }
    let kmod = shared.kmod.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let kmod_pinned = kmod.and_then(|d| backends::kmod_info(d.as_ref())).map(|i| i.pinned_pages);
    println!("soak: t={t}s memory {}", Sample::take(kmod_pinned).describe());
}
