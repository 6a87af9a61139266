//! A small test runner for this crate's guest binaries (`harness = false`).
//!
//! libtest runs tests on threads, but these binaries fork (a child of a multi-threaded process
//! may only make async-signal-safe calls) and the fuzzer must print its seed before anything
//! else; so each binary lists its scenarios and runs them one after another on the main thread.
//! Every scenario runs between a [`crate::vmstat::PinGuard`] and a
//! [`crate::kmsg::KernelLog`]: pins that stayed pinned or a kernel report fail it.

use crate::FuzzError;
use crate::kmsg::KernelLog;
use crate::vmstat::PinGuard;
use std::process::ExitCode;
use std::time::Instant;

/// One named scenario.
pub struct Scenario {
    /// Its name, as filters match it.
    pub name: &'static str,
    /// The body.
    pub run: fn() -> Result<(), FuzzError>,
}

/// Fails unless the binary runs in the guest with pinio.ko loaded.
pub fn require_guest(device: &str) -> Result<(), FuzzError> {
    if std::env::var_os("PINIO_GUEST").is_none() || !std::path::Path::new(device).exists() {
        return Err(FuzzError::Check(format!(
            "{device} is missing or PINIO_GUEST is unset: this is a guest test, run it with `cargo xtask test`"
        )));
    }
    Ok(())
}

/// Runs one body between a pin guard and a kernel-log watch.
pub fn checked(body: impl FnOnce() -> Result<(), FuzzError>) -> Result<(), FuzzError> {
    let guard = PinGuard::start()?;
    let mut log = KernelLog::start()?;
    let result = body();
    let reports = log.check(String::new);
    let pins = guard.finish();
    result?;
    reports?;
    pins
}

/// Runs the scenarios whose name contains one of the command-line arguments (all without
/// arguments; libtest-style `--flags` are ignored), prints a line per scenario and a summary,
/// and returns failure if any failed.
pub fn run(binary: &str, scenarios: &[Scenario]) -> ExitCode {
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let chosen: Vec<&Scenario> = scenarios
        .iter()
        .filter(|s| filters.is_empty() || filters.iter().any(|f| s.name.contains(f.as_str())))
        .collect();
    println!("{binary}: running {} scenario(s)", chosen.len());
    let (mut passed, mut failed) = (0, 0);
    for s in chosen {
        let t = Instant::now();
        match checked(s.run) {
            Ok(()) => {
                passed += 1;
                println!("scenario {} ... ok ({:.1} s)", s.name, t.elapsed().as_secs_f64());
            }
            Err(e) => {
                failed += 1;
                println!("scenario {} ... FAILED ({:.1} s)\n  {e}", s.name, t.elapsed().as_secs_f64());
            }
        }
    }
    println!("{binary}: {passed} passed, {failed} failed");
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
