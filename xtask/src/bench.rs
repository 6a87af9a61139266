//! `cargo xtask vm bench`: guest benchmarks in one boot of the `bench` kernel,
//! results as JSON in `<target>/guest-bench/`.
//!
//! Two sources (docs/guest.md):
//! - the kernel's own pinning benchmark `gup_test` (tools/testing/selftests/mm),
//!   run as a fixed anchor; its output is parsed into `gup_test.json`;
//! - every workspace crate with a `guest-bench` feature and
//!   `[[bench]] name = "guest_<x>", harness = false, required-features = ["guest-bench"]`:
//!   the bench binary runs as root in the guest with `PINIO_BENCH_OUT` naming
//!   the JSON file it must write (`<crate>-<bench>.json`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::cli::BenchArgs;
use crate::guest_build::Binary;
use crate::kernel::Kernel;
use crate::paths::Paths;
use crate::shell::{join, quote};

/// gup_test runs: (label, flags). -a pin_user_pages_fast, -L FOLL_LONGTERM
/// pin_user_pages; -t with THP, -T without; 128 MiB, 512 pages per call, 10 repeats.
const GUP_RUNS: &[(&str, &[&str])] = &[
    ("pin_fast_thp", &["-a", "-t"]),
    ("pin_fast_4k", &["-a", "-T"]),
    ("pin_longterm_thp", &["-L", "-t"]),
    ("pin_longterm_4k", &["-L", "-T"]),
];
const GUP_COMMON: &[&str] = &["-w", "-m", "128", "-n", "512", "-r", "10"];

/// Builds and runs every guest benchmark; exits non-zero if one failed.
pub fn run(paths: &Paths, args: &BenchArgs) -> Result<ExitCode> {
    crate::deps::ensure()?;
    let kernel = crate::kernel::ensure_built(paths, args.variant)?;
    let mut modules = Vec::new();
    if let Some(m) = crate::kmod::build_pinio(paths, &kernel)? {
        modules.push((m.ko, String::new()));
    }
    let out_dir = paths.target_dir()?.join("guest-bench");
    fs::create_dir_all(&out_dir)?;
    let out_dir = out_dir.canonicalize()?;
    let gup = build_gup_test(paths, &kernel)?;
    let mut benches = Vec::new();
    let packages = crate::guest_build::opted_in(paths, "guest-bench", "bench")?;
    benches.extend(crate::guest_build::build_rust(paths, &packages, "guest-bench", "bench")?);
    let run_dir = crate::vm::new_run_dir(paths)?;
    let script = script(paths, &gup, &benches, &out_dir, &run_dir)?;
    let job = crate::vm::Job { script, modules, stall_after: None };
    let outcome = crate::vm::boot(paths, &kernel, &job, &run_dir, Duration::from_secs(args.timeout))?;
    outcome.print_verdict();
    let mut failures = outcome.problems();
    if outcome.exit_code != Some(0) {
        failures.push(format!("the bench job exited with {:?}", outcome.exit_code));
    }
    let mut results = Vec::new();
    match gup_results(&run_dir) {
        Ok(v) => {
            let path = out_dir.join("gup_test.json");
            fs::write(&path, serde_json::to_string_pretty(&v)?)?;
            results.push(path);
        }
        Err(e) => failures.push(format!("gup_test: {e:#}")),
    }
    for b in &benches {
        let path = out_dir.join(json_name(b));
        match fs::read_to_string(&path)
            .map_err(anyhow::Error::from)
            .and_then(|t| Ok(serde_json::from_str::<Value>(&t)?))
        {
            Ok(_) => results.push(path),
            Err(e) => failures.push(format!("{} wrote no valid JSON to {}: {e}", b.name, path.display())),
        }
    }
    let summary = json!({
        "kernel": kernel.dir.file_name().map(|n| n.to_string_lossy().into_owned()),
        "variant": kernel.variant.name(),
        "results": results.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "failures": failures,
    });
    fs::write(out_dir.join("summary.json"), serde_json::to_string_pretty(&summary)?)?;
    for p in &results {
        println!("bench result: {}", p.display());
    }
    if failures.is_empty() {
        let _ = fs::remove_dir_all(&run_dir);
        println!("guest-bench: {} results in {}", results.len(), out_dir.display());
        Ok(ExitCode::SUCCESS)
    } else {
        for f in &failures {
            eprintln!("xtask: bench failure: {f}");
        }
        Ok(ExitCode::FAILURE)
    }
}

fn json_name(b: &Binary) -> String {
    format!("{}.json", b.name.replace('/', "-"))
}

fn script(paths: &Paths, gup: &Path, benches: &[Binary], out_dir: &Path, run_dir: &Path) -> Result<String> {
    let repo = paths.repo.canonicalize()?;
    let mut s = format!("cd {} || exit 125\nexport PINIO_GUEST=1\nstatus=0\n", quote(&repo.to_string_lossy()));
    for (label, flags) in GUP_RUNS {
        let mut argv = vec![gup.to_string_lossy().into_owned()];
        argv.extend(flags.iter().chain(GUP_COMMON).map(|f| f.to_string()));
        let out = run_dir.join(format!("gup_test-{label}.txt"));
        s.push_str(&format!(
            "echo 'PINIO-BENCH gup_test {label}'\n{} > {} 2>&1 || status=1\ncat {}\n",
            join(&argv),
            quote(&out.to_string_lossy()),
            quote(&out.to_string_lossy())
        ));
    }
    for b in benches {
        let out = out_dir.join(json_name(b));
        s.push_str(&format!(
            "echo 'PINIO-BENCH {}'\nrm -f {out}\nPINIO_BENCH_OUT={out} {} || status=1\n",
            b.name,
            quote(&b.path.to_string_lossy()),
            out = quote(&out.to_string_lossy())
        ));
    }
    s.push_str("exit $status\n");
    Ok(s)
}

/// Compiles the kernel's gup_test statically from the kernel tree.
fn build_gup_test(paths: &Paths, kernel: &Kernel) -> Result<PathBuf> {
    let src = kernel.dir.join("tools/testing/selftests/mm");
    let out = paths.xtask_out()?.join("guest-bench-bin");
    fs::create_dir_all(&out)?;
    let exe = out.join("gup_test");
    let k = kernel.dir.display();
    crate::cmd::run(
        Command::new("gcc")
            .current_dir(&src)
            .args(["-O2", "-static", "-D_GNU_SOURCE"])
            .arg(format!("-I{k}"))
            .arg(format!("-I{k}/tools/testing/selftests"))
            .arg(format!("-I{k}/tools/include/uapi"))
            .arg(format!("-I{k}/tools/include"))
            .arg("-I.")
            .args(["gup_test.c", "vm_util.c", "hugepage_settings.c", "-lpthread", "-o"])
            .arg(&exe),
    )
    .context("building the kernel's gup_test")?;
    Ok(exe)
}

/// Parses gup_test's `Time: get:N put:M us` lines into JSON.
fn gup_results(run_dir: &Path) -> Result<Value> {
    let mut runs = Vec::new();
    for (label, flags) in GUP_RUNS {
        let path = run_dir.join(format!("gup_test-{label}.txt"));
        let text = fs::read_to_string(&path).with_context(|| format!("no output at {}", path.display()))?;
        let samples = parse_gup(&text);
        if samples.is_empty() {
            bail!("{label}: no `Time: get:.. put:..` lines in its output:\n{text}");
        }
        let (get, put): (Vec<u64>, Vec<u64>) = samples.into_iter().unzip();
        runs.push(json!({
            "name": label,
            "args": flags.iter().chain(GUP_COMMON).collect::<Vec<_>>(),
            "unit": "us per 128 MiB (512 pages per call)",
            "get_us": get,
            "put_us": put,
        }));
    }
    Ok(json!({ "benchmark": "gup_test", "runs": runs }))
}

fn parse_gup(text: &str) -> Vec<(u64, u64)> {
    text.lines()
        .filter_map(|l| {
            let rest = &l[l.find("Time: get:")? + "Time: get:".len()..];
            let (get, rest) = rest.split_once(" put:")?;
            let put = rest.split_whitespace().next()?;
            Some((get.trim().parse().ok()?, put.trim_end_matches(',').parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_gup_lines() {
        let text = "TAP version 13\n# PIN_FAST_BENCHMARK: Time: get:1234 put:56 us\n# PIN_FAST_BENCHMARK: Time: get:7 put:8 us, truncated (size: 1)\nok 1\n";
        assert_eq!(parse_gup(text), vec![(1234, 56), (7, 8)]);
        assert!(parse_gup("nothing").is_empty());
    }
}
