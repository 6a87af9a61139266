//! The guest kernel: cache key, extraction, configuration and build.
//!
//! Layout (see docs/guest.md):
//! `$CACHE/kernel/linux-<ver>-<variant>-<hash>/` is an in-tree kernel build,
//! `<hash>` = first 12 hex digits of SHA-256 over `xtask/kernel/pinio.config`,
//! `xtask/kernel/<variant>.config`, `rustc: <rustc --version>\n` and
//! `linux-source: <Debian package version>\n`. Markers in that directory
//! record finished steps; `$CACHE/kernel/current-<variant>` points at the
//! last successful build.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::cli::Variant;
use crate::paths::Paths;

/// Debian's kernel source package series (`linux-source-<series>`).
pub const SERIES: &str = "7.3";

const EXTRACTED: &str = ".pinio-extracted";
const CONFIGURED: &str = ".pinio-configured";
const BUILT: &str = ".pinio-built";

/// A guest kernel build directory (built or not).
pub struct Kernel {
    pub variant: Variant,
    /// The in-tree build directory.
    pub dir: PathBuf,
    /// Upstream kernel version, e.g. `7.3.4`.
    pub version: String,
    fragments: Vec<(String, String)>,
    cache_root: PathBuf,
}

impl Kernel {
    /// Computes the build directory for `variant` without building anything.
    pub fn locate(paths: &Paths, variant: Variant) -> Result<Self> {
        let kdir = paths.repo.join("xtask/kernel");
        let mut fragments = Vec::new();
        for name in ["pinio.config".to_string(), format!("{}.config", variant.name())] {
            let path = kdir.join(&name);
            let text = fs::read_to_string(&path)
                .with_context(|| format!("cannot read kernel config fragment {}", path.display()))?;
            fragments.push((format!("xtask/kernel/{name}"), text));
        }
        let rustc = crate::cmd::output(Command::new("rustc").arg("--version"))?;
        let pkg = source_package_version()?;
        let mut hasher = Sha256::new();
        for (_, text) in &fragments {
            hasher.update(text.as_bytes());
        }
        hasher.update(format!("rustc: {}\n", rustc.trim()).as_bytes());
        hasher.update(format!("linux-source: {pkg}\n").as_bytes());
        let hash: String = hasher.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect();
        let version = pkg.split('-').next().unwrap_or(&pkg).to_string();
        let cache_root = paths.cache.join("kernel");
        let dir = cache_root.join(format!("linux-{version}-{}-{hash}", variant.name()));
        Ok(Self { variant, dir, version, fragments, cache_root })
    }

    /// The compressed kernel image QEMU boots.
    pub fn bzimage(&self) -> PathBuf {
        self.dir.join("arch/x86/boot/bzImage")
    }

    /// The image QEMU boots: the uncompressed `vmlinux` through its PVH entry
    /// point when the kernel has one (`CONFIG_PVH`: nothing to decompress,
    /// which under TCG saves seconds per boot), else the bzImage.
    pub fn boot_image(&self) -> PathBuf {
        let vmlinux = self.dir.join("vmlinux");
        let config = fs::read_to_string(self.dir.join(".config")).unwrap_or_default();
        if config.lines().any(|l| l == "CONFIG_PVH=y") && vmlinux.exists() { vmlinux } else { self.bzimage() }
    }

    /// Whether a previous build finished.
    pub fn is_built(&self) -> bool {
        self.dir.join(BUILT).exists() && self.bzimage().exists()
    }

    /// `make -C <dir>` with the environment every kernel make needs.
    pub fn make(&self) -> Result<Command> {
        let mut cmd = Command::new("nice");
        cmd.args(["-n", "5", "make", "-C"]).arg(&self.dir);
        kbuild_env(&mut cmd)?;
        Ok(cmd)
    }
}

/// Adds `LLVM=1 RUST_LIB_SRC=...` and the LLVM 19 / cargo-bin PATH to a make command.
pub fn kbuild_env(cmd: &mut Command) -> Result<()> {
    let home = std::env::var("HOME").context("HOME is not set")?;
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.env("PATH", format!("/usr/lib/llvm-19/bin:{home}/.cargo/bin:{path}"));
    cmd.arg("LLVM=1").arg(format!("RUST_LIB_SRC={}", rust_lib_src()?.display()));
    Ok(())
}

/// Debian's rust-src library for the installed rustc (they must be equal).
pub fn rust_lib_src() -> Result<PathBuf> {
    let out = crate::cmd::output(Command::new("rustc").arg("--version"))?;
    let version = out.split_whitespace().nth(1).context("cannot parse `rustc --version`")?;
    let dir = PathBuf::from(format!("/usr/src/rustc-{version}/library"));
    if !dir.is_dir() {
        bail!(
            "{} is missing: the kernel needs Debian's rust-src for rustc {version} exactly \
             (run xtask/scripts/install-deps.sh)",
            dir.display()
        );
    }
    Ok(dir)
}

fn source_package_version() -> Result<String> {
    let pkg = format!("linux-source-{SERIES}");
    let out = Command::new("dpkg-query").args(["-W", "-f=${Version}", &pkg]).output();
    match out {
        Ok(o) if o.status.success() && !o.stdout.is_empty() => {
            Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
        }
        _ => bail!("Debian package {pkg} is not installed: run `cargo xtask kernel` (it installs it)"),
    }
}

/// Builds the kernel for `variant` unless the cache already holds it.
pub fn ensure_built(paths: &Paths, variant: Variant) -> Result<Kernel> {
    let kernel = Kernel::locate(paths, variant)?;
    fs::create_dir_all(&kernel.cache_root).with_context(|| format!("cannot create {}", kernel.cache_root.display()))?;
    let lock_path = kernel.cache_root.join(format!("{}.lock", dir_name(&kernel.dir)));
    let lock = File::create(&lock_path).with_context(|| format!("cannot create {}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        eprintln!("xtask: another xtask is building {}; waiting for it", kernel.dir.display());
        lock.lock().context("waiting for the kernel build lock")?;
    }
    if kernel.is_built() {
        link_current(&kernel)?;
        return Ok(kernel);
    }
    let resuming = kernel.dir.join(CONFIGURED).exists();
    eprintln!(
        "xtask: {} the {} kernel {} in {} (a full build takes about 12 minutes on 2 quiet cores)",
        if resuming { "resuming the build of" } else { "building" },
        variant.name(),
        kernel.version,
        kernel.dir.display()
    );
    let mut timings = Timings::start();
    extract(&kernel)?;
    timings.step("extract");
    configure(&kernel)?;
    timings.step("configure");
    let log = kernel.dir.join("build.log");
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut make = kernel.make()?;
    make.arg(format!("-j{jobs}")).arg("all");
    crate::progress::run_logged(&mut make, &format!("make ({} kernel)", variant.name()), &log)?;
    if !kernel.bzimage().exists() {
        bail!("make finished but {} is missing; see {}", kernel.bzimage().display(), log.display());
    }
    timings.step("make");
    timings.write(&kernel.dir.join("timings.txt"));
    File::create(kernel.dir.join(BUILT))?;
    link_current(&kernel)?;
    prune_old_builds(&kernel);
    Ok(kernel)
}

/// Wall and CPU time of each build step, kept in the cache as `timings.txt`
/// so the build-time figures in docs/guest.md can be checked (CPU time is
/// what a 2-core machine pays; wall time depends on who else is using it).
struct Timings {
    last: (std::time::Instant, f64),
    lines: Vec<String>,
}

impl Timings {
    fn start() -> Self {
        Self { last: (std::time::Instant::now(), children_cpu_secs()), lines: Vec::new() }
    }

    fn step(&mut self, name: &str) {
        let now = (std::time::Instant::now(), children_cpu_secs());
        let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let line = format!(
            "{name}: {:.0} s wall, {:.0} s CPU (load average {})",
            now.0.duration_since(self.last.0).as_secs_f64(),
            now.1 - self.last.1,
            load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
        );
        eprintln!("xtask: {line}");
        self.lines.push(line);
        self.last = now;
    }

    fn write(&self, path: &Path) {
        let _ = fs::write(path, self.lines.join("\n") + "\n");
    }
}

/// User + system CPU seconds of this process's waited-for children:
/// `cutime` + `cstime`, fields 16 and 17 of /proc/self/stat, in clock ticks
/// (100 per second on Linux x86-64).
fn children_cpu_secs() -> f64 {
    let stat = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the parenthesised command name come fields 3.. ; field 3 (the
    // state letter) is not a number, so field N lands at index N - 4.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    (f.get(12).copied().unwrap_or(0.0) + f.get(13).copied().unwrap_or(0.0)) / 100.0
}

fn dir_name(dir: &Path) -> String {
    dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn extract(kernel: &Kernel) -> Result<()> {
    if kernel.dir.join(EXTRACTED).exists() {
        return Ok(());
    }
    let tarball = PathBuf::from(format!("/usr/src/linux-source-{SERIES}.tar.xz"));
    if !tarball.exists() {
        bail!("{} is missing: install Debian's linux-source-{SERIES}", tarball.display());
    }
    let partial = kernel.dir.with_extension("partial");
    if partial.exists() {
        fs::remove_dir_all(&partial).with_context(|| format!("cannot remove {}", partial.display()))?;
    }
    if kernel.dir.exists() {
        fs::remove_dir_all(&kernel.dir).with_context(|| format!("cannot remove {}", kernel.dir.display()))?;
    }
    fs::create_dir_all(&partial)?;
    eprintln!("xtask: extracting {} (about a minute)", tarball.display());
    crate::cmd::run(Command::new("tar").arg("-xf").arg(&tarball).arg("--strip-components=1").arg("-C").arg(&partial))?;
    File::create(partial.join(EXTRACTED))?;
    fs::rename(&partial, &kernel.dir)
        .with_context(|| format!("cannot rename {} to {}", partial.display(), kernel.dir.display()))?;
    Ok(())
}

fn configure(kernel: &Kernel) -> Result<()> {
    let requests = crate::kconfig::requests(&kernel.fragments);
    let dot_config = kernel.dir.join(".config");
    if !kernel.dir.join(CONFIGURED).exists() {
        let log = kernel.dir.join("config.log");
        let mut tiny = kernel.make()?;
        tiny.arg("tinyconfig");
        crate::progress::run_logged(&mut tiny, "make tinyconfig", &log)?;
        let mut merge = Command::new(kernel.dir.join("scripts/kconfig/merge_config.sh"));
        merge.current_dir(&kernel.dir).arg("-m").arg(".config");
        let frag_dir = kernel.dir.join(".pinio-fragments");
        fs::create_dir_all(&frag_dir)?;
        for (name, text) in &kernel.fragments {
            let copy = frag_dir.join(Path::new(name).file_name().context("fragment name")?);
            fs::write(&copy, text)?;
            merge.arg(copy);
        }
        crate::progress::run_logged(&mut merge, "merge config fragments", &log)?;
        let mut olddef = kernel.make()?;
        olddef.arg("olddefconfig");
        crate::progress::run_logged(&mut olddef, "make olddefconfig", &log)?;
        let text = fs::read_to_string(&dot_config)?;
        crate::kconfig::check(&requests, &text)?;
        File::create(kernel.dir.join(CONFIGURED))?;
    } else {
        let text = fs::read_to_string(&dot_config).with_context(|| format!("cannot read {}", dot_config.display()))?;
        crate::kconfig::check(&requests, &text)?;
    }
    eprintln!("xtask: kernel config: all {} requested options present", requests.len());
    Ok(())
}

/// Builds of one variant kept in the cache: the one just made and the newest
/// other (a branch with another configuration), ~2.5 GB each.
const KEEP_BUILDS: usize = 2;

/// Removes the oldest builds of `kernel`'s variant beyond [`KEEP_BUILDS`],
/// skipping any that another xtask holds the lock of. Failures only warn: a
/// stale build costs disk space, not correctness.
fn prune_old_builds(kernel: &Kernel) {
    // Any kernel version: a newer linux-source package leaves the old builds behind.
    let infix = format!("-{}-", kernel.variant.name());
    let same_variant = |name: &str| name.starts_with("linux-") && name.contains(&infix) && !name.ends_with(".partial");
    let Ok(entries) = fs::read_dir(&kernel.cache_root) else { return };
    let mut builds: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p != &kernel.dir && same_variant(&dir_name(p)))
        .filter_map(|p| Some((fs::metadata(&p).and_then(|m| m.modified()).ok()?, p)))
        .collect();
    builds.sort_by_key(|b| std::cmp::Reverse(b.0));
    for (_, dir) in builds.into_iter().skip(KEEP_BUILDS - 1) {
        let lock_path = kernel.cache_root.join(format!("{}.lock", dir_name(&dir)));
        let Ok(lock) = File::create(&lock_path) else { continue };
        if lock.try_lock().is_err() {
            continue;
        }
        eprintln!("xtask: removing an old kernel build {}", dir.display());
        if let Err(e) = fs::remove_dir_all(&dir) {
            eprintln!("xtask: warning: cannot remove {}: {e}", dir.display());
            continue;
        }
        let _ = fs::remove_file(&lock_path);
    }
}

fn link_current(kernel: &Kernel) -> Result<()> {
    let link = kernel.cache_root.join(format!("current-{}", kernel.variant.name()));
    let tmp = kernel.cache_root.join(format!(".current-{}.{}", kernel.variant.name(), std::process::id()));
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&kernel.dir, &tmp)?;
    fs::rename(&tmp, &link).with_context(|| format!("cannot update {}", link.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn make_dir(root: &Path, name: &str, age_secs: u64) -> PathBuf {
        let d = root.join(name);
        fs::create_dir_all(&d).unwrap();
        File::open(&d).unwrap().set_modified(SystemTime::now() - Duration::from_secs(age_secs)).unwrap();
        d
    }

    #[test]
    fn pruning_keeps_the_new_build_and_the_newest_other_of_its_variant() {
        let root = std::env::temp_dir().join(format!("pinio-prune-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        let new = make_dir(&root, "linux-7.3.4-test-aaaaaaaaaaaa", 0);
        let newest_other = make_dir(&root, "linux-7.3.4-test-bbbbbbbbbbbb", 100);
        let old = make_dir(&root, "linux-7.3.4-test-cccccccccccc", 200);
        let older = make_dir(&root, "linux-7.3.3-test-dddddddddddd", 300);
        let bench = make_dir(&root, "linux-7.3.4-bench-eeeeeeeeeeee", 400);
        let partial = make_dir(&root, "linux-7.3.4-test-ffffffffffff.partial", 500);
        // An old build whose lock another xtask holds is left alone.
        let locked = make_dir(&root, "linux-7.3.4-test-999999999999", 600);
        let held = File::create(root.join("linux-7.3.4-test-999999999999.lock")).unwrap();
        held.lock().unwrap();

        let kernel = Kernel {
            variant: Variant::Test,
            dir: new.clone(),
            version: "7.3.4".into(),
            fragments: Vec::new(),
            cache_root: root.clone(),
        };
        prune_old_builds(&kernel);

        for kept in [&new, &newest_other, &bench, &partial, &locked] {
            assert!(kept.exists(), "{} was removed", kept.display());
        }
        for gone in [&old, &older] {
            assert!(!gone.exists(), "{} was kept", gone.display());
        }
        drop(held);
        fs::remove_dir_all(&root).unwrap();
    }
}
