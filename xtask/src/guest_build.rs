//! Building static guest binaries on the host: Rust test and bench targets of
//! workspace crates that opt in through a cargo feature, and C programs.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::paths::Paths;

/// The host target triple; guest binaries are built for it with crt-static.
pub const TARGET: &str = "x86_64-unknown-linux-gnu";

/// A built guest binary.
pub struct Binary {
    /// `<crate>/<target name>` or `c/<file stem>`.
    pub name: String,
    pub path: PathBuf,
}

/// `cargo metadata --no-deps` for the workspace.
pub fn metadata(paths: &Paths) -> Result<Value> {
    let out = crate::cmd::output(
        crate::paths::cargo()
            .args(["metadata", "--no-deps", "--format-version", "1", "--manifest-path"])
            .arg(paths.repo.join("Cargo.toml")),
    )?;
    serde_json::from_str(&out).context("cannot parse cargo metadata output")
}

/// Workspace packages declaring `feature`, with their targets of `kind`
/// ("test" or "bench") that require it.
pub fn opted_in(paths: &Paths, feature: &str, kind: &str) -> Result<Vec<(String, Vec<String>)>> {
    let meta = metadata(paths)?;
    let mut out = Vec::new();
    for pkg in meta["packages"].as_array().into_iter().flatten() {
        if pkg["features"].get(feature).is_none() {
            continue;
        }
        let name = pkg["name"].as_str().context("package without name")?.to_string();
        let targets: Vec<String> = pkg["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == kind)))
            .filter(|t| {
                t["required-features"].as_array().is_some_and(|f| f.iter().any(|f| f == feature))
            })
            .filter_map(|t| t["name"].as_str().map(str::to_string))
            .collect();
        if targets.is_empty() {
            eprintln!("xtask: warning: {name} has feature `{feature}` but no [[{kind}]] requiring it");
            continue;
        }
        out.push((name, targets));
    }
    Ok(out)
}

/// Builds the named test or bench targets of `package` statically in release
/// mode with `feature` on, returning the executables.
pub fn build_rust(paths: &Paths, package: &str, feature: &str, kind: &str, targets: &[String]) -> Result<Vec<Binary>> {
    let mut cmd = Command::new("nice");
    cmd.arg("-n").arg("10");
    cmd.arg(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args([kind, "--no-run", "--target", TARGET, "--message-format=json-render-diagnostics"]);
    if kind == "test" {
        // `cargo bench` always uses the optimised bench profile.
        cmd.arg("--release");
    }
    cmd
        .args(["--features", feature, "-p", package])
        .arg("--manifest-path")
        .arg(paths.repo.join("Cargo.toml"));
    let flag = if kind == "test" { "--test" } else { "--bench" };
    for t in targets {
        cmd.args([flag, t]);
    }
    cmd.env("RUSTFLAGS", "-C target-feature=+crt-static");
    eprintln!("xtask: building guest {kind} binaries of {package} (static)");
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start `{}`", crate::cmd::describe(&cmd)))?;
    let mut bins = Vec::new();
    for line in BufReader::new(child.stdout.take().context("cargo stdout")?).lines() {
        let line = line?;
        let Ok(msg) = serde_json::from_str::<Value>(&line) else { continue };
        if msg["reason"] != "compiler-artifact" || !msg["profile"]["test"].as_bool().unwrap_or(false) {
            continue;
        }
        let (Some(exe), Some(tname)) = (msg["executable"].as_str(), msg["target"]["name"].as_str()) else { continue };
        if targets.iter().any(|t| t == tname) {
            bins.push(Binary { name: format!("{package}/{tname}"), path: PathBuf::from(exe) });
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("building the guest {kind} binaries of {package} failed ({status}): `{}`", crate::cmd::describe(&cmd));
    }
    Ok(bins)
}

/// C programs that run in the guest: kmod/tests/*.c and examples/c/*.c.
pub fn c_sources(paths: &Paths) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for dir in ["kmod/tests", "examples/c"] {
        let dir = paths.repo.join(dir);
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "c") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Compiles one C program statically into `out_dir`.
pub fn build_c(paths: &Paths, src: &Path, out_dir: &Path) -> Result<Binary> {
    std::fs::create_dir_all(out_dir)?;
    let stem = src.file_stem().context("C source without a name")?.to_string_lossy().into_owned();
    let exe = out_dir.join(&stem);
    let includes: Vec<PathBuf> =
        ["kmod/include", "kmod", "include"].iter().map(|d| paths.repo.join(d)).filter(|d| d.is_dir()).collect();
    let rel = src.strip_prefix(&paths.repo).unwrap_or(src);
    let binary = Binary { name: format!("c/{}", rel.display()), path: exe.clone() };
    if up_to_date(&exe, src, &includes) {
        return Ok(binary);
    }
    let mut cmd = Command::new("gcc");
    cmd.args(["-static", "-O2", "-g", "-Wall", "-Wextra", "-D_GNU_SOURCE"]);
    for d in &includes {
        cmd.arg("-I").arg(d);
    }
    cmd.arg("-o").arg(&exe).arg(src).arg("-lpthread");
    crate::cmd::run(&mut cmd).with_context(|| format!("compiling guest C program {}", src.display()))?;
    Ok(binary)
}

/// Whether `exe` is newer than `src`, every header beside it and every header
/// in `includes` (the headers a guest C program can include), so that a warm
/// `cargo xtask test` does not recompile it.
fn up_to_date(exe: &Path, src: &Path, includes: &[PathBuf]) -> bool {
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let Some(built) = mtime(exe) else { return false };
    let mut inputs = vec![src.to_path_buf()];
    for dir in includes.iter().map(PathBuf::as_path).chain(src.parent()) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.path().extension().is_some_and(|x| x == "h") {
                inputs.push(e.path());
            }
        }
    }
    inputs.iter().all(|p| mtime(p).is_some_and(|t| t < built))
}
