//! Out-of-tree kernel modules: pinio's own (kmod/) and the platform's smoke
//! module (xtask/guest/smoke-kmod/, built in the target dir).

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::cli::Variant;
use crate::kernel::Kernel;
use crate::paths::Paths;

/// A built module.
pub struct Module {
    /// The `.ko` file.
    pub ko: PathBuf,
}

/// Builds kmod/ (if it has a Kbuild) and the smoke module; returns the `.ko` files.
pub fn build_all(paths: &Paths, kernel: &Kernel) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    match build_pinio(paths, kernel)? {
        Some(m) => out.push(m.ko),
        None => eprintln!("xtask: kmod/ has no Kbuild yet: only the smoke module is built"),
    }
    out.push(build_smoke(paths, kernel)?.ko);
    Ok(out)
}

/// Builds the module in kmod/ if kmod/Kbuild exists.
///
/// For the `test` kernel it builds in place (`kmod/pinio.ko`). For another
/// variant it builds a copy of kmod/ in a shadow tree
/// `<target>/xtask/kmod-<variant>-tree/` whose other top-level entries are
/// symlinks to the repository's (so `#[path = "../crates/..."]` still
/// resolves): kbuild's dependency files name kernel headers by relative
/// path, so one build directory shared by two kernel trees would not be
/// rebuilt when switching trees. As a guard for kmod/ itself, a stamp records
/// which kernel tree built `kmod/pinio.ko` (and its mtime); when either
/// differs, kmod/ is cleaned first.
pub fn build_pinio(paths: &Paths, kernel: &Kernel) -> Result<Option<Module>> {
    let src = paths.repo.join("kmod");
    if !src.join("Kbuild").exists() {
        return Ok(None);
    }
    check_kernel(&src, kernel)?;
    if kernel.variant != Variant::Test {
        let dir = shadow_tree(paths, kernel)?;
        make_modules(paths, kernel, &dir, "kmod")?;
        return found(dir.join("pinio.ko"));
    }
    let ko = src.join("pinio.ko");
    let stamp = paths.xtask_out()?.join("kmod-built-for");
    let lock = lock_dir(paths, "kmod")?;
    let _ = fs::remove_file(paths.xtask_out()?.join(format!("kmod-{}.log", kernel.variant.name())));
    let current = stamp_of(kernel, &ko);
    let recorded = fs::read_to_string(&stamp).ok();
    if ko.exists() && recorded.as_deref() != current.as_deref() {
        eprintln!("xtask: kmod/ was last built against another kernel tree: cleaning it first");
        let mut clean = kernel.make()?;
        clean.arg(format!("M={}", src.display())).arg("clean");
        let log = paths.xtask_out()?.join(format!("kmod-{}.log", kernel.variant.name()));
        crate::progress::run_logged(&mut clean, "make clean in kmod/", &log)?;
    }
    make_modules_locked(paths, kernel, &src, "kmod")?;
    drop(lock);
    if let Some(s) = stamp_of(kernel, &ko) {
        fs::write(&stamp, s)?;
    }
    found(ko)
}

/// Runs kmod/check-kernel.sh (what `make -C kmod check` runs for users'
/// kernels) on the guest kernel tree, with the rustc the kernel build uses.
fn check_kernel(src: &Path, kernel: &Kernel) -> Result<()> {
    let script = src.join("check-kernel.sh");
    if !script.exists() {
        return Ok(());
    }
    let home = std::env::var("HOME").context("HOME is not set")?;
    let path = std::env::var("PATH").unwrap_or_default();
    let mut cmd = std::process::Command::new("sh");
    cmd.arg(&script).arg(&kernel.dir).arg("rustc").env("PATH", format!("{home}/.cargo/bin:{path}"));
    crate::cmd::output(&mut cmd).map(drop).context("the guest kernel tree fails kmod/check-kernel.sh")
}

fn found(ko: PathBuf) -> Result<Option<Module>> {
    if !ko.exists() {
        bail!("building kmod/ did not produce {}: its Kbuild must say `obj-m := pinio.o`", ko.display());
    }
    Ok(Some(Module { ko }))
}

/// `<target>/xtask/kmod-<variant>-tree/`: a copy of kmod/ beside symlinks to
/// the repository's other top-level entries; returns the copy's path.
fn shadow_tree(paths: &Paths, kernel: &Kernel) -> Result<PathBuf> {
    let root = paths.xtask_out()?.join(format!("kmod-{}-tree", kernel.variant.name()));
    fs::create_dir_all(&root)?;
    let repo = paths.repo.canonicalize()?;
    for entry in fs::read_dir(&repo)? {
        let name = entry?.file_name();
        let s = name.to_string_lossy();
        if s == "kmod" || s == "target" || s.starts_with('.') {
            continue;
        }
        let link = root.join(&name);
        if fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(repo.join(&name), &link)?;
        }
    }
    let dir = root.join("kmod");
    mirror_sources(&repo.join("kmod"), &dir)?;
    Ok(dir)
}

/// `"<kernel dir>\n<ko mtime>\n"`, or None when the module is not built.
fn stamp_of(kernel: &Kernel, ko: &Path) -> Option<String> {
    let mtime = fs::metadata(ko).ok()?.modified().ok()?;
    let nanos = mtime.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos();
    Some(format!("{}\n{nanos}\n", kernel.dir.display()))
}

/// Copies module sources (Kbuild, Makefile, *.rs, *.c, *.h, *.S; not hidden
/// files or build outputs) from `src` to `dest`, rewriting only changed files
/// so that make stays incremental.
fn mirror_sources(src: &Path, dest: &Path) -> Result<()> {
    fs::create_dir_all(dest)?;
    for entry in fs::read_dir(src).with_context(|| format!("cannot read {}", src.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            mirror_sources(&path, &dest.join(&name))?;
            continue;
        }
        let source = matches!(name.as_str(), "Kbuild" | "Makefile")
            || [".rs", ".c", ".h", ".S"].iter().any(|ext| name.ends_with(ext) && !name.ends_with(".mod.c"));
        if !source {
            continue;
        }
        let target = dest.join(&name);
        let new = fs::read(&path)?;
        if fs::read(&target).ok().as_deref() != Some(&new[..]) {
            fs::write(&target, new)?;
        }
    }
    Ok(())
}

/// Copies xtask/guest/smoke-kmod into the target dir and builds it there.
pub fn build_smoke(paths: &Paths, kernel: &Kernel) -> Result<Module> {
    let src = paths.repo.join("xtask/guest/smoke-kmod");
    let dir = paths.xtask_out()?.join(format!("smoke-kmod-{}", kernel.variant.name()));
    mirror_sources(&src, &dir)?;
    make_modules(paths, kernel, &dir, "smoke-kmod")?;
    let ko = dir.join("pinio_smoke.ko");
    if !ko.exists() {
        bail!("smoke module build did not produce {}", ko.display());
    }
    Ok(Module { ko })
}

fn make_modules(paths: &Paths, kernel: &Kernel, dir: &Path, label: &str) -> Result<()> {
    let _lock = lock_dir(paths, label)?;
    let _ = fs::remove_file(paths.xtask_out()?.join(format!("{label}-{}.log", kernel.variant.name())));
    make_modules_locked(paths, kernel, dir, label)
}

/// One module build per directory at a time (several xtasks may share a tree).
fn lock_dir(paths: &Paths, label: &str) -> Result<File> {
    let xtask_out = paths.xtask_out()?;
    fs::create_dir_all(&xtask_out)?;
    let lock = File::create(xtask_out.join(format!("{label}.lock")))?;
    lock.lock().context("waiting for the module build lock")?;
    Ok(lock)
}

fn make_modules_locked(paths: &Paths, kernel: &Kernel, dir: &Path, label: &str) -> Result<()> {
    if !kernel.is_built() {
        bail!(
            "the {} kernel is not built: run `cargo xtask kernel --variant {}`",
            kernel.variant.name(),
            kernel.variant.name()
        );
    }
    let mut make = kernel.make()?;
    make.arg(format!("M={}", dir.display())).arg("modules");
    let log = paths.xtask_out()?.join(format!("{label}-{}.log", kernel.variant.name()));
    crate::progress::run_logged(&mut make, &format!("build module in {}", dir.display()), &log)
}
