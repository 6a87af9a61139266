//! Out-of-tree kernel modules: pinio's own (kmod/) and the platform's smoke
//! module (xtask/guest/smoke-kmod/, built in the target dir).

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

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
pub fn build_pinio(paths: &Paths, kernel: &Kernel) -> Result<Option<Module>> {
    let dir = paths.repo.join("kmod");
    if !dir.join("Kbuild").exists() {
        return Ok(None);
    }
    make_modules(paths, kernel, &dir, "kmod")?;
    let ko = dir.join("pinio.ko");
    if !ko.exists() {
        bail!("building kmod/ did not produce {}: its Kbuild must say `obj-m := pinio.o`", ko.display());
    }
    Ok(Some(Module { ko }))
}

/// Copies xtask/guest/smoke-kmod into the target dir and builds it there.
pub fn build_smoke(paths: &Paths, kernel: &Kernel) -> Result<Module> {
    let src = paths.repo.join("xtask/guest/smoke-kmod");
    let dir = paths.xtask_out()?.join(format!("smoke-kmod-{}", kernel.variant.name()));
    fs::create_dir_all(&dir)?;
    for entry in fs::read_dir(&src).with_context(|| format!("cannot read {}", src.display()))? {
        let entry = entry?;
        let dest = dir.join(entry.file_name());
        let new = fs::read(entry.path())?;
        // Rewrite only changed files so make stays incremental.
        if fs::read(&dest).ok().as_deref() != Some(&new[..]) {
            fs::write(&dest, new)?;
        }
    }
    make_modules(paths, kernel, &dir, "smoke-kmod")?;
    let ko = dir.join("pinio_smoke.ko");
    if !ko.exists() {
        bail!("smoke module build did not produce {}", ko.display());
    }
    Ok(Module { ko })
}

fn make_modules(paths: &Paths, kernel: &Kernel, dir: &Path, label: &str) -> Result<()> {
    if !kernel.is_built() {
        bail!("the {} kernel is not built: run `cargo xtask kernel --variant {}`", kernel.variant.name(), kernel.variant.name());
    }
    // One module build per directory at a time (several xtasks may share a tree).
    let out = paths.xtask_out()?;
    fs::create_dir_all(&out)?;
    let lock = File::create(out.join(format!("{label}.lock")))?;
    lock.lock().context("waiting for the module build lock")?;
    let mut make = kernel.make()?;
    make.arg(format!("M={}", dir.display())).arg("modules");
    let log = out.join(format!("{label}-{}.log", kernel.variant.name()));
    let _ = fs::remove_file(&log);
    crate::progress::run_logged(&mut make, &format!("build module in {}", dir.display()), &log)
}
