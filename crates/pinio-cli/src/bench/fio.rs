//! fio as a peer: the same workload on the same file, parsed into a [`Sample`].

use super::contender::Engine;
use super::runner::Sample;
use super::workload::{Pattern, Workload};
use crate::CliResult;
use pinio::Direction;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Whether a usable `fio` is on the PATH.
pub fn available() -> bool {
    Command::new("fio").arg("--version").output().map(|o| o.status.success()).unwrap_or(false)
}

/// The fio command line for `w` with `engine` on `file`.
pub fn command(engine: &Engine, w: &Workload, file: &Path, size: u64, warmup: Duration, dur: Duration) -> Vec<String> {
    let Engine::Fio { args, honours_depth } = engine else { unreachable!("fio command of a pinio contender") };
    let rw = match (w.pattern, w.dir) {
        (Pattern::Random, Direction::Read) => "randread",
        (Pattern::Random, Direction::Write) => "randwrite",
        (Pattern::Sequential, Direction::Read) => "read",
        (Pattern::Sequential, Direction::Write) => "write",
    };
    let mut v: Vec<String> = vec![
        "--name=pinio-peer".into(),
        format!("--filename={}", file.display()),
        format!("--size={size}"),
        format!("--runtime={}ms", dur.as_millis().max(1)),
        format!("--ramp_time={}ms", warmup.as_millis()),
        "--time_based".into(),
        "--invalidate=0".into(),
        "--norandommap".into(),
        "--randrepeat=0".into(),
        format!("--numjobs={}", w.jobs),
        "--group_reporting".into(),
        "--output-format=json".into(),
        format!("--rw={rw}"),
        format!("--bs={}", w.block),
        format!("--iodepth={}", if *honours_depth { w.depth } else { 1 }),
    ];
    v.extend(args.iter().map(|s| s.to_string()));
    v
}

/// Runs fio and parses its JSON.
pub fn run(
    engine: &Engine,
    w: &Workload,
    file: &Path,
    size: u64,
    warmup: Duration,
    dur: Duration,
) -> CliResult<Sample> {
    let args = command(engine, w, file, size, warmup, dur);
    let out = Command::new("fio").args(&args).output().map_err(|e| format!("running fio: {e}"))?;
    if !out.status.success() {
        return Err(format!("fio {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()).into());
    }
    parse(&out.stdout, w.dir, w.jobs)
}

/// Parses fio's `--output-format=json` for one job, or for `jobs` jobs
/// reported as one group (`--numjobs` with `--group_reporting`).
pub fn parse(json: &[u8], dir: Direction, jobs: usize) -> CliResult<Sample> {
    // fio may print notes before the JSON document.
    let start = json.iter().position(|&b| b == b'{').ok_or("fio printed no JSON")?;
    let doc: serde_json::Value = serde_json::from_slice(&json[start..])?;
    let job = &doc["jobs"][0];
    let side = &job[match dir {
        Direction::Read => "read",
        Direction::Write => "write",
    }];
    let num = |v: &serde_json::Value, what: &str| v.as_f64().ok_or_else(|| format!("fio JSON lacks {what}"));
    let ops = num(&side["total_ios"], "total_ios")? as u64;
    let bytes = num(&side["io_bytes"], "io_bytes")? as u64;
    let secs = num(&side["runtime"], "runtime")? / 1000.0;
    // With group_reporting these are the jobs' CPU times summed over their
    // run times summed (fio's stat.c adds both `usr_time` and
    // `total_run_time` of each job): the mean per job, as a percentage of
    // one job's run time. The whole group's CPU is `jobs` times that (checked
    // against the fio process's own rusage: 2.94 s of CPU for a 2-job, 3 s
    // run that reported 45 %).
    let jobs = jobs.max(1) as f64;
    let (usr_pct, sys_pct) = (num(&job["usr_cpu"], "usr_cpu")? * jobs, num(&job["sys_cpu"], "sys_cpu")? * jobs);
    let pct = &side["clat_ns"]["percentile"];
    let p = |k: &str| pct[k].as_f64().unwrap_or(f64::NAN) / 1000.0;
    if secs <= 0.0 || ops == 0 {
        return Err("fio reported no IO".into());
    }
    Ok(Sample {
        ops,
        bytes,
        secs,
        cpu_secs: (usr_pct + sys_pct) / 100.0 * secs,
        user_secs: usr_pct / 100.0 * secs,
        sys_secs: sys_pct / 100.0 * secs,
        bytes_copied: None,
        lat_p50_us: p("50.000000"),
        lat_p99_us: p("99.000000"),
        lat_p999_us: p("99.900000"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_fio_job() {
        let json = br#"note: both iodepth >= 1 and synchronous I/O engine are selected
{"jobs":[{"usr_cpu":2.5,"sys_cpu":40.0,"read":{"total_ios":1000,"io_bytes":4096000,"runtime":2000,
 "clat_ns":{"percentile":{"50.000000":120000,"99.000000":300000,"99.900000":900000}}}}]}"#;
        let s = parse(json, Direction::Read, 1).unwrap();
        assert_eq!((s.ops, s.bytes), (1000, 4096000));
        assert!((s.secs - 2.0).abs() < 1e-9 && (s.cpu_secs - 0.85).abs() < 1e-9);
        assert!((s.user_secs - 0.05).abs() < 1e-9 && (s.sys_secs - 0.8).abs() < 1e-9);
        assert!((s.lat_p50_us - 120.0).abs() < 1e-9 && s.bytes_copied.is_none());
        assert!(parse(b"no json here", Direction::Read, 1).is_err());
        // Two jobs in one group: the group's CPU is twice the reported mean.
        let two = parse(json, Direction::Read, 2).unwrap();
        assert!((two.user_secs - 0.1).abs() < 1e-9 && (two.sys_secs - 1.6).abs() < 1e-9);
        assert!(
            parse(
                br#"{"jobs":[{"usr_cpu":1,"sys_cpu":1,"read":{"total_ios":0,"io_bytes":0,"runtime":0}}]}"#,
                Direction::Read,
                1
            )
            .is_err()
        );
    }
}
