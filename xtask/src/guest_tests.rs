//! `cargo xtask test`: host tests, then every guest test in one boot of the
//! `test` kernel, with a PASS/FAIL line per test, the stage times, and one summary line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;

use crate::cli::{TestArgs, Variant};
use crate::paths::Paths;
use crate::shell::{join, quote};
use crate::vm::Outcome;

/// Per-test time limit inside the guest.
const TEST_TIMEOUT_SECS: u64 = 600;
/// A guest silent for longer than a test may run is stuck (no test output,
/// and the per-test timeout did not fire): it is made to report and power
/// off (`stall.rs`) rather than waited on until the boot's timeout.
const STALL_AFTER: Duration = Duration::from_secs(TEST_TIMEOUT_SECS + 60);

/// One guest test: a name and the command line that runs it.
struct GuestTest {
    name: String,
    argv: Vec<String>,
}

impl GuestTest {
    fn new(name: impl Into<String>, argv: &[&str]) -> Self {
        Self { name: name.into(), argv: argv.iter().map(|s| s.to_string()).collect() }
    }
}

/// Runs the host tests and the guest tests; fails if anything failed.
///
/// The test kernel and the modules are built (or found in the cache) on a
/// thread of their own while the host tests and the guest binaries build and
/// run: on a fresh machine the kernel's make leaves a core idle in its serial
/// steps, which the other builds fill.
pub fn run(paths: &Paths, args: &TestArgs) -> Result<ExitCode> {
    let mut stages = Stages::new();
    crate::deps::ensure()?;
    stages.done("setup (install-deps.sh)");
    std::thread::scope(|scope| {
        let kernel = (!args.no_guest).then(|| scope.spawn(|| prepare_kernel(paths)));
        let mut host_ok = true;
        let mut host: Option<crate::test_count::Counts> = None;
        if !args.no_host {
            eprintln!("xtask: host tests: cargo test --workspace --no-fail-fast");
            let mut cmd = std::process::Command::new("nice");
            cmd.args(["-n", "10"])
                .arg(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
                .args(["test", "--workspace", "--no-fail-fast", "--manifest-path"])
                .arg(paths.repo.join("Cargo.toml"));
            let counts = crate::test_count::run_counting(&mut cmd);
            host_ok = counts.as_ref().is_ok_and(|c| c.ok);
            host = counts.ok();
            if !host_ok {
                eprintln!("xtask: host tests FAILED (continuing with the guest tests)");
            }
            stages.done("host tests");
            if let Err(err) = crate::package_check::run(paths) {
                eprintln!("xtask: package check FAILED: {err:#}");
                host_ok = false;
            }
            stages.done("package check");
        }
        let Some(kernel) = kernel else {
            return Ok(if host_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        };
        let binaries = guest_binaries(paths)?;
        stages.done("guest binaries");
        let prepared = kernel.join().map_err(|_| anyhow::anyhow!("the kernel build thread panicked"))??;
        stages.done("test kernel and modules (waited for)");
        let guest = guest(paths, args, &mut stages, prepared, binaries)?;
        stages.print();
        if !host_ok {
            eprintln!("xtask: host tests or the package check FAILED (see above)");
        }
        println!("{}", summary(host.as_ref(), host_ok, &guest));
        Ok(if host_ok && guest.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    })
}

/// The test kernel and the modules built against it.
struct Prepared {
    kernel: crate::kernel::Kernel,
    pinio: Option<crate::kmod::Module>,
    smoke: crate::kmod::Module,
}

fn prepare_kernel(paths: &Paths) -> Result<Prepared> {
    let kernel = crate::kernel::ensure_built(paths, Variant::Test)?;
    let pinio = crate::kmod::build_pinio(paths, &kernel)?;
    let smoke = crate::kmod::build_smoke(paths, &kernel)?;
    Ok(Prepared { kernel, pinio, smoke })
}

/// The guest programs that need no kernel: Rust test binaries, the static
/// CLI, C programs.
struct Binaries {
    rust: Vec<GuestTest>,
    cli: PathBuf,
    c: Vec<GuestTest>,
}

fn guest_binaries(paths: &Paths) -> Result<Binaries> {
    let packages = crate::guest_build::opted_in(paths, "guest-tests", "test")?;
    let rust = crate::guest_build::build_rust(paths, &packages, "guest-tests", "test")?
        .into_iter()
        .map(|bin| GuestTest { name: bin.name, argv: vec![bin.path.to_string_lossy().into_owned()] })
        .collect();
    let cli = crate::guest_cli::build(paths)?.join(crate::guest_cli::NAME);
    let c_out = paths.xtask_out()?.join("guest-c");
    let mut c = Vec::new();
    for src in crate::guest_build::c_sources(paths)? {
        let bin = crate::guest_build::build_c(paths, &src, &c_out)?;
        c.push(GuestTest { name: bin.name, argv: vec![bin.path.to_string_lossy().into_owned()] });
    }
    Ok(Binaries { rust, cli, c })
}

/// What the guest run found, for the summary line.
struct GuestResult {
    passed: usize,
    failed: usize,
    /// Calls the interface fuzzer made (its PASS line), if it ran and passed.
    fuzz_calls: Option<u64>,
    /// Kernel reports (KASAN, WARN, lockdep...) that were not expected.
    kernel_reports: usize,
}

/// The last line of `cargo xtask test`: everything a reader needs at a glance.
fn summary(host: Option<&crate::test_count::Counts>, host_ok: bool, guest: &GuestResult) -> String {
    let host = match host {
        Some(c) => {
            let package = if host_ok { "" } else { " (or package check failed)" };
            format!("host {} passed, {} failed{package}", c.passed, c.failed)
        }
        None => "host not run".to_string(),
    };
    let fuzz = guest.fuzz_calls.map_or("fuzz did not pass".to_string(), |n| format!("fuzz {n} calls"));
    format!(
        "xtask: {}: {host}; guest {} passed, {} failed; {fuzz}; {} kernel reports",
        if host_ok && guest.failed == 0 { "PASS" } else { "FAIL" },
        guest.passed,
        guest.failed,
        guest.kernel_reports
    )
}

/// The call count of the fuzzer's `guest_fuzz: PASS seed ...: N calls` line.
fn fuzz_calls(lines: &[String]) -> Option<u64> {
    lines.iter().find_map(|l| {
        let rest = &l[l.find("guest_fuzz: PASS seed ")?..];
        let before = &rest[..rest.find(" calls")?];
        before.rsplit(' ').next()?.parse().ok()
    })
}

fn guest(
    paths: &Paths,
    args: &TestArgs,
    stages: &mut Stages,
    prepared: Prepared,
    binaries: Binaries,
) -> Result<GuestResult> {
    let Prepared { kernel, pinio, smoke } = prepared;
    let repo = paths.repo.canonicalize()?;
    let smoke_sh = repo.join("xtask/guest/smoke.sh").to_string_lossy().into_owned();
    let smoke_ko = smoke.ko.canonicalize()?.to_string_lossy().into_owned();

    let mut tests = vec![
        GuestTest::new("smoke/vfio-container", &["sh", &smoke_sh, "vfio"]),
        GuestTest::new("smoke/intel-iommu", &["sh", &smoke_sh, "iommu"]),
        GuestTest::new("smoke/pci-edu", &["sh", &smoke_sh, "pci", "1234", "11e8"]),
        GuestTest::new("smoke/pci-nvme", &["sh", &smoke_sh, "pci", "1b36", "0010"]),
        GuestTest::new("smoke/nvme-disk", &["sh", &smoke_sh, "nvme-disk"]),
        GuestTest::new("smoke/rust-module-load-unload", &["sh", &smoke_sh, "module-cycle", &smoke_ko]),
    ];
    let mut modules = Vec::new();
    if let Some(m) = &pinio {
        let ko = m.ko.canonicalize()?.to_string_lossy().into_owned();
        tests.push(GuestTest::new("smoke/pinio-module-unload-reload", &["sh", &smoke_sh, "module-reload", &ko]));
        modules.push((m.ko.clone(), String::new()));
    } else {
        eprintln!("xtask: kmod/ has no Kbuild yet: the module smoke test uses xtask/guest/smoke-kmod only");
    }
    tests.extend(binaries.rust);
    // The README's one-command echo: the static CLI through the kernel module.
    if pinio.is_some() {
        let cli = binaries.cli.to_string_lossy().into_owned();
        tests.push(GuestTest::new("cli/pinio-echo-kmod", &[&cli, "echo", "kmod:/dev/pinio"]));
    }
    tests.extend(binaries.c);

    // Built once here: the guests below would otherwise race to build it.
    crate::initramfs::ensure(paths)?;
    let times_path = paths.cache.join("guest-test-times.tsv");
    let mut times = crate::guest_lanes::Times::load(&times_path);
    let names: Vec<String> = tests.iter().map(|t| t.name.clone()).collect();
    let lanes = crate::guest_lanes::split(&names, args.guests as usize, &times);
    let job = crate::vm::Job { script: String::new(), modules, stall_after: Some(STALL_AFTER) };
    let timeout = Duration::from_secs(args.timeout);
    eprintln!("xtask: {} guest tests in {} guest(s) booted side by side", tests.len(), lanes.len());
    let outcomes: Vec<Result<Outcome>> = std::thread::scope(|scope| {
        let handles: Vec<_> = lanes
            .iter()
            .enumerate()
            .map(|(i, lane)| {
                let lane_tests: Vec<&GuestTest> = lane.iter().map(|&t| &tests[t]).collect();
                let job = crate::vm::Job { script: runner_script(&repo, &lane_tests), ..job.clone() };
                let tag = if lanes.len() > 1 { format!("[vm{}] ", i + 1) } else { String::new() };
                let kernel = &kernel;
                scope.spawn(move || {
                    let run_dir = crate::vm::new_run_dir(paths)?;
                    crate::vm::boot_tagged(paths, kernel, &job, &run_dir, timeout, &tag)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("guest thread panicked"))))
            .collect()
    });
    let mut result = GuestResult { passed: 0, failed: 0, fuzz_calls: None, kernel_reports: 0 };
    for (i, (lane, outcome)) in lanes.iter().zip(outcomes).enumerate() {
        let outcome = outcome?;
        let vm = if lanes.len() > 1 { format!(" (vm{})", i + 1) } else { String::new() };
        if lanes.len() > 1 {
            eprintln!("xtask: vm{}:", i + 1);
        }
        outcome.print_verdict();
        let lane_tests: Vec<&GuestTest> = lane.iter().map(|&t| &tests[t]).collect();
        let (passed, failed) = verdicts(&lane_tests, &outcome, &vm, &mut times);
        result.passed += passed;
        result.failed += failed;
        result.fuzz_calls = result.fuzz_calls.or(fuzz_calls(&outcome.lines));
        result.kernel_reports += outcome.reports.iter().filter(|r| r.fails()).count();
        if failed == 0 {
            let _ = std::fs::remove_dir_all(&outcome.run_dir);
        }
    }
    times.save();
    stages.done("guest boot and tests");
    Ok(result)
}

/// Wall time of each stage of `cargo xtask test`, printed at the end so the
/// budget (30 minutes from nothing, 6 warm) can be checked on every run.
struct Stages {
    last: std::time::Instant,
    start: std::time::Instant,
    done: Vec<(&'static str, Duration)>,
}

impl Stages {
    fn new() -> Self {
        let now = std::time::Instant::now();
        Self { last: now, start: now, done: Vec::new() }
    }

    fn done(&mut self, name: &'static str) {
        let now = std::time::Instant::now();
        self.done.push((name, now - self.last));
        self.last = now;
    }

    fn print(&self) {
        let mut line = String::from("xtask: time:");
        for (name, d) in &self.done {
            line.push_str(&format!(" {name} {},", minutes(*d)));
        }
        line.push_str(&format!(" total {}", minutes(self.start.elapsed())));
        eprintln!("{line}");
    }
}

fn minutes(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 { format!("{}m{:02}s", s / 60, s % 60) } else { format!("{s}s") }
}

fn runner_script(repo: &Path, tests: &[&GuestTest]) -> String {
    runner_script_with(repo, tests, TEST_TIMEOUT_SECS)
}

/// The guest's test runner, `limit` seconds per test. A test still running
/// at its limit is killed after a watchdog printed what each of its threads
/// was doing (state, wait channel, system call, kernel stack): a hang then
/// says where it waits, not just "Killed".
fn runner_script_with(repo: &Path, tests: &[&GuestTest], limit: u64) -> String {
    let mut s = format!(
        "cd {} || exit 125\nexport PINIO_GUEST=1\nfailed=0\n{}\
         run_test() {{\n  name=$1; shift\n  echo \"PINIO-TEST-BEGIN $name\"\n  \
         \"$@\" &\n  pid=$!\n  watchdog \"$name\" $pid &\n  dog=$!\n  \
         wait $pid\n  rc=$?\n  kill $dog 2>/dev/null\n  wait $dog\n  echo \"PINIO-TEST-END $name $rc\"\n  \
         [ \"$rc\" = 0 ] || failed=$((failed + 1))\n}}\n",
        quote(&repo.to_string_lossy()),
        watchdog(limit)
    );
    for t in tests {
        s.push_str(&format!("run_test {} {}\n", quote(&t.name), join(&t.argv)));
    }
    s.push_str("[ \"$failed\" = 0 ]\n");
    s
}

/// `watchdog NAME PID`: after `limit` seconds, if PID still runs, prints
/// each of its threads and kills it (exit status 137, as `timeout -s KILL`
/// gave). A TERM (the test ended) stops it at once.
fn watchdog(limit: u64) -> String {
    format!(
        "watchdog() {{\n  sleep {limit} &\n  nap=$!\n  trap 'kill $nap 2>/dev/null; exit 0' TERM\n  wait $nap\n  \
         kill -0 $2 2>/dev/null || exit 0\n  \
         echo \"PINIO-TEST-TIMEOUT $1: still running after {limit} s; its threads:\"\n  \
         for t in /proc/$2/task/*; do\n    \
         echo \"  thread $(cat $t/comm 2>/dev/null) state $(cut -d' ' -f3 $t/stat 2>/dev/null) \
         wchan $(cat $t/wchan 2>/dev/null) syscall $(cat $t/syscall 2>/dev/null)\"\n    \
         sed 's/^/      /' $t/stack 2>/dev/null\n  done\n  kill -KILL $2\n}}\n"
    )
}

/// Prints PASS/FAIL per test and records each finished test's time; returns
/// (passed, failed). Problems of the boot itself (reports outside any test,
/// timeouts, pin leaks) count as one more failure, `guest/boot-and-shutdown{vm}`.
fn verdicts(
    tests: &[&GuestTest],
    outcome: &Outcome,
    vm: &str,
    times: &mut crate::guest_lanes::Times,
) -> (usize, usize) {
    let (mut passed, mut failed) = (0, 0);
    let mut claimed = vec![false; outcome.reports.len()];
    for t in tests {
        let begin = outcome.lines.iter().position(|l| marker(l, "TEST-BEGIN").is_some_and(|r| r == t.name));
        let end = outcome.lines.iter().enumerate().find_map(|(i, l)| {
            let rest = marker(l, "TEST-END")?;
            let (name, rc) = rest.rsplit_once(' ')?;
            (name == t.name).then(|| (i, rc.trim().parse::<i32>().ok()))
        });
        let took = match (begin, end) {
            (Some(b), Some((e, _))) => {
                let d = outcome.times[e].saturating_sub(outcome.times[b]);
                times.record(&t.name, d);
                format!(" ({:.1} s{vm})", d.as_secs_f64())
            }
            _ => String::new(),
        };
        let verdict = match (begin, end) {
            (None, _) => Err("did not run (the guest stopped before it)".to_string()),
            (Some(_), None) => Err("did not finish (guest hung or crashed; see the console above)".to_string()),
            (Some(b), Some((e, rc))) => {
                let mut reasons = Vec::new();
                match rc {
                    Some(0) => {}
                    Some(137) => reasons.push(format!("killed after {TEST_TIMEOUT_SECS} s")),
                    Some(rc) => reasons.push(format!("exit status {rc}")),
                    None => reasons.push("unreadable exit status".into()),
                }
                for (i, r) in outcome.reports.iter().enumerate() {
                    if r.start > b && r.start < e {
                        claimed[i] = true;
                        if r.fails() {
                            reasons.push(format!("kernel report {} at console line {}", r.kind, r.start + 1));
                        }
                    }
                }
                if reasons.is_empty() { Ok(()) } else { Err(reasons.join("; ")) }
            }
        };
        match verdict {
            Ok(()) => {
                passed += 1;
                println!("PASS {}{took}", t.name);
            }
            Err(why) => {
                failed += 1;
                println!("FAIL {}{took}: {why}", t.name);
            }
        }
    }
    let mut boot_problems: Vec<String> = Vec::new();
    if outcome.timed_out {
        boot_problems.push(format!("guest timed out after {} s", outcome.timeout.as_secs()));
    }
    boot_problems.extend(outcome.guest_errors.iter().cloned());
    for (i, r) in outcome.reports.iter().enumerate() {
        if !claimed[i] && r.fails() {
            boot_problems.push(format!("kernel report {} outside any test at console line {}", r.kind, r.start + 1));
        }
    }
    if let Some((a, r)) = outcome.pins
        && a != r
    {
        boot_problems.push(format!("pinned pages leaked: acquired {a} != released {r}"));
    }
    if outcome.exit_code.is_none() && !outcome.timed_out {
        boot_problems.push("the guest stopped without reporting an exit status".into());
    }
    if boot_problems.is_empty() {
        passed += 1;
        println!("PASS guest/boot-and-shutdown{vm}");
    } else {
        failed += 1;
        println!("FAIL guest/boot-and-shutdown{vm}: {}", boot_problems.join("; "));
    }
    (passed, failed)
}

/// The text after `PINIO-<kind> ` on a console line.
fn marker<'a>(line: &'a str, kind: &str) -> Option<&'a str> {
    let tag = format!("PINIO-{kind} ");
    line.find(&tag).map(|p| line[p + tag.len()..].trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_parses() {
        assert_eq!(marker("PINIO-TEST-END smoke/a 0", "TEST-END"), Some("smoke/a 0"));
        assert_eq!(marker("noise PINIO-TEST-BEGIN x", "TEST-BEGIN"), Some("x"));
        assert_eq!(marker("PINIO-TEST-BEGIN x", "TEST-END"), None);
    }

    #[test]
    fn fuzz_calls_come_from_the_pass_line() {
        let lines = vec![
            "guest_fuzz: seed 0x1 (replay with PINIO_FUZZ_SEED=0x1), 100000 calls, 8 race rounds".to_string(),
            "[ 12.0] guest_fuzz: PASS seed 0x1: 100012 calls (40 address-space changes), 0 kernel reports".to_string(),
        ];
        assert_eq!(fuzz_calls(&lines), Some(100012));
        assert_eq!(fuzz_calls(&lines[..1]), None);
    }

    #[test]
    fn summary_is_one_line_with_every_count() {
        let host = crate::test_count::Counts { passed: 812, failed: 0, ok: true };
        let g = GuestResult { passed: 40, failed: 1, fuzz_calls: Some(100000), kernel_reports: 0 };
        let line = summary(Some(&host), true, &g);
        let want =
            "xtask: FAIL: host 812 passed, 0 failed; guest 40 passed, 1 failed; fuzz 100000 calls; 0 kernel reports";
        assert_eq!(line, want);
        assert!(!line.contains('\n'));
    }

    #[test]
    fn runner_runs_each_test_with_markers() {
        let tests = [GuestTest::new("a/b", &["sh", "x y"])];
        let s = runner_script(Path::new("/r"), &tests.iter().collect::<Vec<_>>());
        assert!(s.contains("run_test a/b sh 'x y'\n"), "{s}");
        assert!(s.contains("PINIO-TEST-END $name $rc"));
        assert!(s.starts_with("cd /r "));
    }

    /// The runner in the host's sh and in busybox's (the guest's shell,
    /// when installed): a test over its limit is reported with its threads
    /// and killed (137); a test under it passes untouched.
    #[test]
    fn a_test_over_its_limit_is_reported_with_its_threads_and_killed() {
        let tests = [GuestTest::new("slow", &["sleep", "30"]), GuestTest::new("quick", &["true"])];
        let script = runner_script_with(Path::new("/"), &tests.iter().collect::<Vec<_>>(), 1);
        let mut shells = vec![std::process::Command::new("sh")];
        if Path::new("/bin/busybox").exists() {
            let mut busybox = std::process::Command::new("/bin/busybox");
            busybox.arg("sh");
            shells.push(busybox);
        }
        for mut sh in shells {
            let t = std::time::Instant::now();
            let out = sh.arg("-c").arg(&script).output().expect("a shell");
            let out = String::from_utf8_lossy(&out.stdout);
            assert!(t.elapsed() < Duration::from_secs(20), "{sh:?}: the watchdog did not kill the test: {out}");
            assert!(out.contains("PINIO-TEST-TIMEOUT slow: still running after 1 s"), "{sh:?}: {out}");
            assert!(out.contains("  thread sleep state S"), "{sh:?}: {out}");
            assert!(out.contains("PINIO-TEST-END slow 137"), "{sh:?}: {out}");
            assert!(out.contains("PINIO-TEST-END quick 0"), "{sh:?}: {out}");
            assert!(!out.contains("PINIO-TEST-TIMEOUT quick"), "{sh:?}: {out}");
        }
    }
}
