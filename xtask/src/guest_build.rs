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
            .filter(|t| t["required-features"].as_array().is_some_and(|f| f.iter().any(|f| f == feature)))
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

/// Builds the named test or bench targets of every listed package statically
/// in release mode, each package with its `feature` on, in one cargo
/// invocation (shared crates are built once, with one feature set, and cargo
/// runs the packages' builds side by side), returning the executables in the
/// order the packages and targets are listed.
pub fn build_rust(paths: &Paths, packages: &[(String, Vec<String>)], feature: &str, kind: &str) -> Result<Vec<Binary>> {
    if packages.is_empty() {
        return Ok(Vec::new());
    }
    let mut cmd = Command::new("nice");
    cmd.arg("-n").arg("10");
    cmd.arg(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args([kind, "--no-run", "--target", TARGET, "--message-format=json-render-diagnostics"]);
    if kind == "test" {
        // `cargo bench` always uses the optimised bench profile.
        cmd.arg("--release");
    }
    let features: Vec<String> = packages.iter().map(|(p, _)| format!("{p}/{feature}")).collect();
    cmd.arg("--features").arg(features.join(","));
    for (package, _) in packages {
        cmd.args(["-p", package]);
    }
    cmd.arg("--manifest-path").arg(paths.repo.join("Cargo.toml"));
    let flag = if kind == "test" { "--test" } else { "--bench" };
    let mut names: Vec<&String> = packages.iter().flat_map(|(_, t)| t).collect();
    names.sort();
    names.dedup();
    for t in names {
        cmd.args([flag, t]);
    }
    cmd.env("RUSTFLAGS", "-C target-feature=+crt-static");
    let list: Vec<&str> = packages.iter().map(|(p, _)| p.as_str()).collect();
    eprintln!("xtask: building guest {kind} binaries of {} (static, one cargo run)", list.join(", "));
    let manifests = manifest_names(paths)?;
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
        let Some(package) = msg["manifest_path"].as_str().and_then(|m| manifests.get(m)) else { continue };
        // Only the targets asked of this package (`--test NAME` selects NAME in every package that has it).
        let Some(rank) = rank(packages, package, tname) else { continue };
        bins.push((rank, Binary { name: format!("{package}/{tname}"), path: PathBuf::from(exe) }));
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("building the guest {kind} binaries failed ({status}): `{}`", crate::cmd::describe(&cmd));
    }
    bins.sort_by_key(|(rank, _)| *rank);
    Ok(bins.into_iter().map(|(_, b)| b).collect())
}

/// Where `target` of `package` stands in the list: (package index, target index).
fn rank(packages: &[(String, Vec<String>)], package: &str, target: &str) -> Option<(usize, usize)> {
    packages.iter().enumerate().find_map(|(i, (p, targets))| {
        (p == package).then(|| targets.iter().position(|t| t == target).map(|j| (i, j))).flatten()
    })
}

/// Workspace packages by manifest path (cargo's messages name the manifest).
fn manifest_names(paths: &Paths) -> Result<std::collections::HashMap<String, String>> {
    let meta = metadata(paths)?;
    Ok(meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["manifest_path"].as_str()?.to_string(), p["name"].as_str()?.to_string())))
        .collect())
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

#[cfg(test)]
mod tests {
    use super::rank;

    #[test]
    fn binaries_keep_the_order_of_the_list_and_only_asked_targets() {
        let v = |p: &str, t: &[&str]| (p.to_string(), t.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let list = vec![v("pinio-kmod", &["guest_abi", "guest_async"]), v("pinio-edu", &["guest_edu", "guest_async"])];
        assert_eq!(rank(&list, "pinio-kmod", "guest_async"), Some((0, 1)));
        assert_eq!(rank(&list, "pinio-edu", "guest_async"), Some((1, 1)));
        assert_eq!(rank(&list, "pinio-edu", "guest_abi"), None); // asked of another package only
        assert_eq!(rank(&list, "pinio-nvme", "guest_async"), None);
    }
}
