//! The `pinio` command for the guest. The guest has no glibc loader, so the
//! host's `target/release/pinio` cannot run there: xtask builds the CLI
//! statically (like the guest test binaries, sharing their build) and puts
//! it in a directory of its own on the guest's `PATH`, so that
//! `cargo xtask vm run -- pinio echo kmod:/dev/pinio` works as written.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::paths::Paths;

/// The command's name in the guest.
pub const NAME: &str = "pinio";

/// Whether a guest command line runs the bare `pinio` command (as the
/// command, or as a word of a shell command line such as `sh -c 'pinio info'`).
pub fn wanted(cmd: &[String]) -> bool {
    cmd.iter().any(|arg| arg.split_whitespace().any(|word| word == NAME))
}

/// Readies `cmd` for the guest: a host build of the CLI named by path
/// (`target/release/pinio`, dynamically linked) is replaced by the bare
/// command, and when the command line uses `pinio`, the static build is made
/// and its directory returned for the guest's `PATH`.
pub fn prepare(paths: &Paths, cmd: &mut [String]) -> Result<Option<PathBuf>> {
    if let Some(first) = cmd.first_mut()
        && first.contains('/')
        && std::path::Path::new(first.as_str()).file_name().is_some_and(|n| n == NAME)
    {
        eprintln!("xtask: running the guest's static `{NAME}` instead of {first} (the guest has no glibc loader)");
        *first = NAME.to_string();
    }
    if !wanted(cmd) {
        return Ok(None);
    }
    build(paths).map(Some)
}

/// Builds the CLI statically (release, crt-static) and returns the directory
/// holding only it, `<target>/xtask/guest-bin`, for the guest's `PATH`.
pub fn build(paths: &Paths) -> Result<PathBuf> {
    let mut cmd = Command::new("nice");
    cmd.args(["-n", "10"]).arg(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args([
        "build",
        "--release",
        "--target",
        crate::guest_build::TARGET,
        "--message-format=json-render-diagnostics",
    ])
    .args(["-p", "pinio-cli", "--bin", NAME, "--manifest-path"])
    .arg(paths.repo.join("Cargo.toml"))
    .env("RUSTFLAGS", "-C target-feature=+crt-static");
    eprintln!("xtask: building the `{NAME}` command for the guest (static)");
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start `{}`", crate::cmd::describe(&cmd)))?;
    let mut exe = None;
    for line in BufReader::new(child.stdout.take().context("cargo stdout")?).lines() {
        let Ok(msg) = serde_json::from_str::<Value>(&line?) else { continue };
        if msg["reason"] == "compiler-artifact" && msg["target"]["name"] == NAME {
            exe = msg["executable"].as_str().map(PathBuf::from);
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("building the guest `{NAME}` command failed ({status}): `{}`", crate::cmd::describe(&cmd));
    }
    let exe = exe.with_context(|| format!("cargo built no `{NAME}` executable"))?;
    let dir = paths.xtask_out()?.join("guest-bin");
    std::fs::create_dir_all(&dir)?;
    let dest = dir.join(NAME);
    // Replace, never overwrite in place: a running guest may be executing the old file.
    let tmp = dir.join(format!(".{NAME}.{}", std::process::id()));
    std::fs::copy(&exe, &tmp).with_context(|| format!("cannot copy {} to {}", exe.display(), tmp.display()))?;
    std::fs::rename(&tmp, &dest)?;
    Ok(dir.canonicalize()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_bare_command_is_wanted() {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(wanted(&v(&["pinio", "echo", "kmod:/dev/pinio"])));
        assert!(!wanted(&v(&["target/release/pinio", "info"])));
        assert!(wanted(&v(&["sh", "-c", "pinio info; pinio echo kmod:/dev/pinio"])));
        assert!(!wanted(&v(&["env", "PINIO_GUEST=1", "/x/pinio-abc"])));
        assert!(!wanted(&[]));
    }
}
