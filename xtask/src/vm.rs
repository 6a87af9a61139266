//! One boot of the guest: shares, run directory, modules, the job, and the
//! verdict (exit status, kernel reports, pin counters).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::cli::{RunArgs, Variant};
use crate::kernel::Kernel;
use crate::logscan::Report;
use crate::paths::Paths;

/// Guest memory of the `test` kernel: room for the tests' huge pages (64 ×
/// 2 MiB reserved at boot) and buffers of up to 64 MiB next to KASAN's
/// shadow (an eighth of it). Early boot costs about a second per GiB under
/// TCG (the shadow and `struct page`s are initialised for all of it), so
/// no more than that.
const TEST_MEMORY_MIB: u32 = 1024;
/// Guest memory of the `bench` kernel (no KASAN; boots in ~2 s anyway).
const BENCH_MEMORY_MIB: u32 = 2048;

/// Guest memory for `variant`; `PINIO_GUEST_MEMORY_MIB` overrides it.
fn memory_mib(variant: Variant) -> u32 {
    let default = match variant {
        Variant::Test => TEST_MEMORY_MIB,
        Variant::Bench => BENCH_MEMORY_MIB,
    };
    std::env::var("PINIO_GUEST_MEMORY_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
const CPUS: u32 = 2;

/// QEMU's `-accel` for `variant`; `PINIO_QEMU_ACCEL` overrides it. The test
/// kernel's guests run both vCPUs on one host thread: with a thread per
/// vCPU a guest now and then froze for good (docs/guest.md, "A guest that
/// goes silent"), and a test run must not hang. The bench kernel's keep a
/// thread per vCPU: two-thread measurements need two vCPUs that really run
/// at once.
fn accel(variant: Variant) -> String {
    let default = match variant {
        Variant::Test => "tcg,thread=single",
        Variant::Bench => "tcg,thread=multi",
    };
    std::env::var("PINIO_QEMU_ACCEL").unwrap_or_else(|_| default.to_string())
}
const NVME_BYTES: u64 = 256 << 20;

/// What to run in one boot.
#[derive(Clone)]
pub struct Job {
    /// Body of job.sh (run with sh, cwd and env set by the body itself).
    pub script: String,
    /// Modules to insmod before the job, with their parameters.
    pub modules: Vec<(PathBuf, String)>,
    /// How long the job may leave the console silent before the guest
    /// counts as stuck and is made to report and power off (`stall.rs`);
    /// None for jobs that may rightly be silent long (benches, soak).
    pub stall_after: Option<Duration>,
}

/// What happened in one boot.
pub struct Outcome {
    pub lines: Vec<String>,
    /// Host time since QEMU started at which each line arrived.
    pub times: Vec<Duration>,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub timeout: Duration,
    pub reports: Vec<Report>,
    /// insmod/rmmod failures and other init errors, as printed by the guest.
    pub guest_errors: Vec<String>,
    /// `nr_foll_pin_acquired` / `nr_foll_pin_released` at the end of the run.
    pub pins: Option<(u64, u64)>,
    /// Host wall time from starting QEMU to the job starting.
    pub boot_to_cmd: Option<Duration>,
    /// Guest uptime when the job started.
    pub guest_uptime_at_cmd: Option<f64>,
    pub console_log: PathBuf,
    /// The run directory (job script, outputs the job wrote).
    pub run_dir: PathBuf,
}

impl Outcome {
    /// Reasons this boot failed apart from the job's own exit status.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.timed_out {
            out.push(format!(
                "the guest did not finish within {} s (hung or too slow; raise --timeout)",
                self.timeout.as_secs()
            ));
        } else if self.exit_code.is_none() {
            out.push("the guest stopped without reporting the command's exit status (crash or panic?)".into());
        }
        out.extend(self.guest_errors.iter().cloned());
        for r in self.reports.iter().filter(|r| r.fails()) {
            out.push(format!("kernel report: {} (console line {}): {}", r.kind, r.start + 1, r.lines[0].trim()));
        }
        if let Some((acq, rel)) = self.pins
            && acq != rel
        {
            out.push(format!(
                "pinned pages leaked: nr_foll_pin_acquired {acq} != nr_foll_pin_released {rel} after all processes exited and modules unloaded"
            ));
        }
        out
    }

    /// Prints kernel reports (full excerpts), pin counters and problems.
    pub fn print_verdict(&self) {
        for r in &self.reports {
            let tag = match (r.expected, r.known) {
                (true, _) => "expected kernel report".to_string(),
                (false, Some(name)) => format!("known kernel bug, not pinio's ({name}; docs/reliability.md)"),
                (false, None) => "KERNEL REPORT".to_string(),
            };
            eprintln!("\nxtask: {tag}: {} (console line {}):", r.kind, r.start + 1);
            for line in &r.lines {
                eprintln!("  | {line}");
            }
        }
        if let Some((acq, rel)) = self.pins {
            eprintln!("xtask: /proc/vmstat at end of run: nr_foll_pin_acquired {acq}, nr_foll_pin_released {rel}");
        }
        if let Some(t) = self.boot_to_cmd {
            let up = self.guest_uptime_at_cmd.map_or(String::new(), |u| format!(" (guest uptime {u:.1} s)"));
            eprintln!("xtask: boot to command: {:.1} s{up}", t.as_secs_f64());
        }
        let problems = self.problems();
        if !problems.is_empty() {
            eprintln!("\nxtask: the guest run FAILED:");
            for p in &problems {
                eprintln!("  - {p}");
            }
            eprintln!("xtask: full console log: {}", self.console_log.display());
        }
    }
}

/// `cargo xtask vm run`.
pub fn run_command(paths: &Paths, args: &RunArgs) -> Result<ExitCode> {
    crate::deps::ensure()?;
    let kernel = crate::kernel::ensure_built(paths, args.variant)?;
    let mut modules = Vec::new();
    if !args.no_module
        && let Some(m) = crate::kmod::build_pinio(paths, &kernel)?
    {
        modules.push((m.ko, String::new()));
    }
    if let Some(params) = &args.smoke_module {
        let m = crate::kmod::build_smoke(paths, &kernel)?;
        modules.push((m.ko, params.clone()));
    }
    let shares = shares(paths)?;
    let mut cmd = args.cmd.clone();
    let cli_dir = crate::guest_cli::prepare(paths, &mut cmd)?;
    let run_dir = new_run_dir(paths)?;
    bring_in_binary(&mut cmd, &shares, &run_dir)?;
    let cwd = guest_cwd(paths, &shares)?;
    let path =
        cli_dir.map_or(String::new(), |d| format!("export PATH={}:$PATH\n", crate::shell::quote(&d.to_string_lossy())));
    let script = format!(
        "cd {} || exit 125\nexport PINIO_GUEST=1\n{path}exec {}\n",
        crate::shell::quote(&cwd.to_string_lossy()),
        crate::shell::join(&cmd)
    );
    let job = Job { script, modules, stall_after: args.stall_after.map(Duration::from_secs) };
    let outcome = boot(paths, &kernel, &job, &run_dir, Duration::from_secs(args.timeout))?;
    outcome.print_verdict();
    let problems = outcome.problems();
    let code = outcome.exit_code.unwrap_or(1);
    eprintln!("xtask: guest command exited with {}", outcome.exit_code.map_or("no status".into(), |c| c.to_string()));
    if problems.is_empty() && code == 0 {
        let _ = fs::remove_dir_all(&outcome.run_dir);
    }
    if problems.is_empty() || args.keep_going {
        if !problems.is_empty() {
            eprintln!("xtask: --keep-going: returning the command's status despite the problems above");
        }
        Ok(exit_code(code))
    } else {
        Ok(exit_code(if code == 0 { 1 } else { code }))
    }
}

/// Converts a guest exit status to our own.
pub fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(1))
}

/// The directories shared with the guest at the same path: the repository,
/// and cargo's target dir when it lies outside the repository.
pub fn shares(paths: &Paths) -> Result<Vec<(String, PathBuf)>> {
    let repo = paths.repo.canonicalize()?;
    let mut shares = vec![("pinio_repo".to_string(), repo.clone())];
    let target = paths.target_dir()?;
    fs::create_dir_all(&target)?;
    let target = target.canonicalize()?;
    if !target.starts_with(&repo) {
        shares.push(("pinio_target".to_string(), target));
    }
    for (_, dir) in &shares {
        let s = dir.to_string_lossy();
        if s.contains([' ', ',', ':', '\t', '\n']) {
            anyhow::bail!("cannot share {s} with the guest: the path contains a space, comma or colon");
        }
    }
    Ok(shares)
}

/// A fresh run directory inside the target dir (visible to the guest).
/// Run directories are kept when a run fails; those older than a day are removed.
pub fn new_run_dir(paths: &Paths) -> Result<PathBuf> {
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
    let vm_dir = paths.xtask_out()?.join("vm");
    prune_run_dirs(&vm_dir);
    // Unique within this process too: guests may be booted side by side.
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = vm_dir.join(format!("run-{stamp}-{}-{n}", std::process::id()));
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir.canonicalize()?)
}

fn prune_run_dirs(vm_dir: &Path) {
    let Ok(entries) = fs::read_dir(vm_dir) else { return };
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(24 * 3600));
        if old && e.file_name().to_string_lossy().starts_with("run-") {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

fn guest_cwd(paths: &Paths, shares: &[(String, PathBuf)]) -> Result<PathBuf> {
    let cwd = std::env::current_dir()?.canonicalize()?;
    if shares.iter().any(|(_, d)| cwd.starts_with(d)) { Ok(cwd) } else { Ok(paths.repo.canonicalize()?) }
}

/// If the command names a host file the guest cannot see, copy it into the run dir.
fn bring_in_binary(cmd: &mut [String], shares: &[(String, PathBuf)], run_dir: &Path) -> Result<()> {
    let Some(first) = cmd.first_mut() else { return Ok(()) };
    if !first.contains('/') {
        return Ok(());
    }
    let host = Path::new(first.as_str());
    let Ok(abs) = host.canonicalize() else { return Ok(()) };
    if !abs.is_file() || shares.iter().any(|(_, d)| abs.starts_with(d)) {
        *first = abs.to_string_lossy().into_owned();
        return Ok(());
    }
    let dest = run_dir.join(abs.file_name().context("command has no file name")?);
    fs::copy(&abs, &dest).with_context(|| format!("cannot copy {} into the guest's run dir", abs.display()))?;
    *first = dest.to_string_lossy().into_owned();
    Ok(())
}

/// Boots the guest once and runs `job`, echoing the console to stdout.
pub fn boot(paths: &Paths, kernel: &Kernel, job: &Job, run_dir: &Path, timeout: Duration) -> Result<Outcome> {
    boot_tagged(paths, kernel, job, run_dir, timeout, "")
}

/// [`boot`], with every echoed console line prefixed by `tag` (so that the
/// consoles of guests booted side by side can be told apart).
pub fn boot_tagged(
    paths: &Paths,
    kernel: &Kernel,
    job: &Job,
    run_dir: &Path,
    timeout: Duration,
    tag: &str,
) -> Result<Outcome> {
    let shares = shares(paths)?;
    let initrd = crate::initramfs::ensure(paths)?;
    fs::write(run_dir.join("job.sh"), &job.script)?;
    let mut modules = String::new();
    for (ko, params) in &job.modules {
        modules.push_str(&format!("{} {params}\n", ko.canonicalize()?.display()));
    }
    fs::write(run_dir.join("modules"), modules)?;
    let nvme = scratch_disk(paths, run_dir)?;
    let share_arg: Vec<String> = shares.iter().map(|(t, d)| format!("{t}:{}", d.display())).collect();
    let extra = std::env::var("PINIO_GUEST_CMDLINE").unwrap_or_default();
    let append = format!(
        "console=ttyS0 printk.time=1 loglevel=5 panic=-1 intel_iommu=on hugepages=64 nvme.poll_queues=2 tsc=reliable no_timer_check lapic=notscdeadline highres=off nohz=off rcupdate.rcu_cpu_stall_timeout=120 pty.legacy_count=0 rdinit=/init \
         {} {extra} pinio_shares={} pinio_run={}",
        crate::stall::CMDLINE,
        share_arg.join(","),
        run_dir.display()
    );
    let machine = crate::qemu::Machine {
        kernel: kernel.boot_image(),
        bios: crate::qemu::fast_firmware(),
        initrd,
        append,
        shares,
        nvme_image: nvme.clone(),
        hotplug_dir: Some(run_dir.to_path_buf()),
        memory_mib: memory_mib(kernel.variant),
        cpus: CPUS,
        accel: accel(kernel.variant),
        timeout,
        stall_after: job.stall_after,
    };
    eprintln!(
        "xtask: {tag}booting the {} kernel ({}) with {} MiB, {} vCPUs, {}",
        kernel.variant.name(),
        kernel.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        memory_mib(kernel.variant),
        CPUS,
        machine.accel
    );
    let result = machine.boot(|line| println!("{tag}{line}"));
    let _ = fs::remove_file(&nvme);
    let boot = result?;
    let console_log = run_dir.join("console.log");
    fs::write(&console_log, boot.lines.join("\n") + "\n")?;
    Ok(parse(boot, timeout, console_log, run_dir.to_path_buf()))
}

fn parse(boot: crate::qemu::Boot, timeout: Duration, console_log: PathBuf, run_dir: PathBuf) -> Outcome {
    let mut exit_code = None;
    let mut guest_errors = Vec::new();
    let (mut acq, mut rel) = (None, None);
    let mut boot_to_cmd = None;
    let mut guest_uptime_at_cmd = None;
    let mut stall_at = None;
    for (i, line) in boot.lines.iter().enumerate() {
        if stall_at.is_none() && line.starts_with(crate::stall::MARK) {
            stall_at = Some(i);
            guest_errors.push(format!(
                "{} (the report the kernel printed on the NMI is in the console log; docs/guest.md, \"A guest that goes silent\")",
                line.trim_start_matches(crate::stall::MARK).trim()
            ));
        }
        if line.starts_with("qemu: ") && line.contains("terminating on signal") {
            guest_errors.push(format!("QEMU was killed from outside xtask ({})", line.trim_start_matches("qemu: ")));
        }
        let Some(pos) = line.find("PINIO-") else { continue };
        let rest = &line[pos + "PINIO-".len()..];
        let mut words = rest.split_whitespace();
        match words.next() {
            Some("EXIT") => exit_code = words.next().and_then(leading_int),
            Some("CMD-START") => {
                boot_to_cmd = Some(boot.times[i]);
                guest_uptime_at_cmd = words.next().and_then(|u| u.parse().ok());
            }
            Some("INSMOD-FAIL") => guest_errors
                .push(format!("module failed to load in the guest: {}", rest["INSMOD-FAIL ".len()..].trim())),
            Some("RMMOD-FAIL") => {
                guest_errors.push(format!("module failed to unload: {}", rest["RMMOD-FAIL ".len()..].trim()))
            }
            Some("ERROR") => guest_errors.push(format!("guest init: {}", rest["ERROR ".len()..].trim())),
            Some("VMSTAT") => {
                let key = words.next();
                let value = words.next().and_then(leading_int).and_then(|v| u64::try_from(v).ok());
                match key {
                    Some("nr_foll_pin_acquired") => acq = value,
                    Some("nr_foll_pin_released") => rel = value,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    let mut reports = crate::logscan::scan(&boot.lines);
    // What the kernel printed after the NMI is one report, of the stall
    // (named in guest_errors above), not one per stack it dumped.
    if let Some(at) = stall_at {
        reports.retain(|r| r.start < at);
    }
    Outcome {
        reports,
        lines: boot.lines,
        times: boot.times,
        exit_code,
        timed_out: boot.timed_out,
        timeout,
        guest_errors,
        pins: acq.zip(rel),
        boot_to_cmd,
        guest_uptime_at_cmd,
        console_log,
        run_dir,
    }
}

/// The integer at the start of `word` (kernel output may follow on the same line).
fn leading_int(word: &str) -> Option<i32> {
    let end = word
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && c == '-')))
        .map_or(word.len(), |(i, _)| i);
    word[..end].parse().ok()
}

/// A fresh ext4-formatted scratch file for the emulated NVMe disk, one per
/// boot (named after the run directory: guests may boot side by side).
fn scratch_disk(paths: &Paths, run_dir: &Path) -> Result<PathBuf> {
    let dir = paths.cache.join("vm");
    fs::create_dir_all(&dir)?;
    let run = run_dir.file_name().map_or_else(|| std::process::id().to_string(), |n| n.to_string_lossy().into_owned());
    let img = dir.join(format!("nvme-{run}.img"));
    let file = fs::File::create(&img).with_context(|| format!("cannot create {}", img.display()))?;
    file.set_len(NVME_BYTES)?;
    drop(file);
    crate::cmd::output(Command::new("mkfs.ext4").args(["-q", "-F", "-L", "pinio-scratch"]).arg(&img))?;
    Ok(img)
}

#[cfg(test)]
mod tests {
    use super::leading_int;

    #[test]
    fn leading_int_ignores_trailing_noise() {
        assert_eq!(leading_int("0"), Some(0));
        assert_eq!(leading_int("42[   5.1]"), Some(42));
        assert_eq!(leading_int("-1"), Some(-1));
        assert_eq!(leading_int("x"), None);
    }
}
