//! `cargo xtask vm soak`: every backend that runs in the guest busy at once
//! for minutes on the `test` kernel (KASAN, lockdep), with registrations
//! churned continuously and every byte read back (the `pinio-soak` binary
//! of crates/pinio-fuzz). A bench-style run, not part of `cargo xtask test`.
//!
//! The verdict: the soak's own (data compared, module and vmstat pin
//! counters balanced, no kernel report seen from /dev/kmsg), then the
//! boot's (console scanned for kernel reports, `nr_foll_pin_acquired ==
//! nr_foll_pin_released` after the module is unloaded).

use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::cli::SoakArgs;
use crate::paths::Paths;
use crate::shell::{join, quote};

/// Boot, module load and shutdown around the soak, with room for a slow host.
const MARGIN_SECS: u64 = 600;

/// Builds `pinio-soak` statically and runs it in one boot.
pub fn run(paths: &Paths, args: &SoakArgs) -> Result<ExitCode> {
    crate::deps::ensure()?;
    let kernel = crate::kernel::ensure_built(paths, args.variant)?;
    let mut modules = Vec::new();
    if let Some(m) = crate::kmod::build_pinio(paths, &kernel)? {
        modules.push((m.ko, String::new()));
    }
    let exe = build(paths)?;
    let repo = paths.repo.canonicalize()?;
    let mut argv = vec![exe.to_string_lossy().into_owned(), "--minutes".into(), args.minutes.to_string()];
    argv.extend(["--threads".into(), args.threads.to_string(), "--report-secs".into(), args.report_secs.to_string()]);
    if let Some(b) = &args.backends {
        argv.extend(["--backends".into(), b.clone()]);
    }
    if let Some(s) = &args.seed {
        argv.extend(["--seed".into(), s.clone()]);
    }
    let script = format!("cd {} || exit 125\nexport PINIO_GUEST=1\n{}\n", quote(&repo.to_string_lossy()), join(&argv));
    let run_dir = crate::vm::new_run_dir(paths)?;
    let timeout = Duration::from_secs((args.minutes * 60.0).ceil() as u64 + MARGIN_SECS);
    let outcome =
        crate::vm::boot(paths, &kernel, &crate::vm::Job { script, modules, stall_after: None }, &run_dir, timeout)?;
    outcome.print_verdict();
    let problems = outcome.problems();
    let code = outcome.exit_code.unwrap_or(1);
    if problems.is_empty() && code == 0 {
        eprintln!("xtask: soak PASSED (console log kept: {})", outcome.console_log.display());
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("xtask: soak FAILED (exit {code}; console log {})", outcome.console_log.display());
        Ok(ExitCode::FAILURE)
    }
}

/// `cargo build --release` of the soak binary, static, for the guest.
fn build(paths: &Paths) -> Result<std::path::PathBuf> {
    let mut cmd = Command::new("nice");
    cmd.args(["-n", "10"])
        .arg(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args([
            "build",
            "--release",
            "--target",
            crate::guest_build::TARGET,
            "-p",
            "pinio-fuzz",
            "--bin",
            "pinio-soak",
            "--manifest-path",
        ])
        .arg(paths.repo.join("Cargo.toml"))
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .stdout(Stdio::inherit());
    eprintln!("xtask: building pinio-soak (static)");
    let status = cmd.status().context("cannot start cargo")?;
    if !status.success() {
        bail!("building pinio-soak failed ({status})");
    }
    let exe = paths.target_dir()?.join(crate::guest_build::TARGET).join("release/pinio-soak");
    if !exe.is_file() {
        bail!("cargo built pinio-soak but {} is missing", exe.display());
    }
    Ok(exe.canonicalize()?)
}
