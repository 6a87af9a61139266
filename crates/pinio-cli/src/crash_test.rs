//! `pinio crash-test`: run a checker on every crash state of a crash log.

use crate::CliResult;
use clap::Args;
use pinio::crash::CrashTest;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `pinio crash-test`.
#[derive(Args, Debug)]
pub struct CrashTestArgs {
    /// The crash log, written by a `record:<log>:<selection>` device.
    #[arg(long)]
    pub log: PathBuf,
    /// The check, run through `sh -c` once per state, with `{image}`
    /// replaced by the path of the materialized crash image (`{state}` by
    /// the state's index, `{epoch}` by the completed flushes it follows).
    /// Exit status 0 passes the state.
    #[arg(long)]
    pub check: String,
    /// How many crash states to check (the first ones are each flush's
    /// durable image, then every epoch with all later writes landed, then
    /// sampled subsets, orders and torn writes).
    #[arg(long, default_value_t = 1000)]
    pub states: u64,
    /// The seed: the same log, seed and state index give the same state.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Check only this state (to reproduce a failure).
    #[arg(long)]
    pub state: Option<u64>,
    /// The device's atomic unit in bytes: a torn write persists some of
    /// these units and not others (512: any disk sector; 4096: devices
    /// that guarantee 4 KiB atomic writes).
    #[arg(long, default_value_t = 512)]
    pub sector: u64,
    /// Checks run at once (default: the CPUs available).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Directory for the crash images (one per job; a failing state's
    /// shrunk image is kept there).
    #[arg(long, default_value = "/var/tmp")]
    pub dir: PathBuf,
    /// How many failing states to shrink to their fewest writes.
    #[arg(long, default_value_t = 3)]
    pub shrink: usize,
    /// Seconds a check may run before its state counts as failed.
    #[arg(long, default_value_t = 60.0)]
    pub timeout: f64,
    /// Also check the states before the first completed flush (by default
    /// they start there: before it the application was promised nothing).
    #[arg(long)]
    pub from_start: bool,
}

/// Runs the command; fails when any state failed.
pub fn run(a: CrashTestArgs) -> CliResult {
    let jobs = a.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if !(a.timeout > 0.0 && a.timeout.is_finite()) {
        return Err(format!("--timeout must be a positive number of seconds, got {}", a.timeout).into());
    }
    let test = CrashTest {
        log: a.log,
        check: a.check,
        states: a.states,
        seed: a.seed,
        only: a.state,
        sector: a.sector,
        jobs,
        dir: a.dir,
        shrink: a.shrink,
        timeout: Duration::from_secs_f64(a.timeout),
        from_start: a.from_start,
    };
    let stdout = std::io::stdout();
    let report = test.run(&mut stdout.lock())?;
    if report.failures.is_empty() {
        Ok(())
    } else {
        let first = &report.failures[0].state;
        Err(format!(
            "{} of {} crash states failed (first: state {} with --seed {})",
            report.failures.len(),
            report.checked,
            first.index,
            test.seed
        )
        .into())
    }
}
