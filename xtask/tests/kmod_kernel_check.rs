//! `make -C kmod KDIR=... check` (kmod/check-kernel.sh) refuses a kernel tree
//! pinio.ko cannot be built against and names what is missing. Fed fake
//! trees: a top Makefile with VERSION/PATCHLEVEL, a configuration, and a
//! fake rustc printing a chosen version.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

const KMOD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../kmod");

/// The configuration of the kernel pinio's guest runs (rustc 1.95.0).
const RUST_CONFIG: &str = "CONFIG_CC_IS_CLANG=y\nCONFIG_RUST=y\nCONFIG_RUSTC_VERSION=109500\n\
     CONFIG_RUSTC_VERSION_TEXT=\"rustc 1.95.0 (59807616e 2026-04-14)\"\nCONFIG_BINDGEN_VERSION_TEXT=\"bindgen 0.73.2\"\n";

fn scratch() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "pinio-kmod-check-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A fake kernel tree: `version` as "7.3" (None: no Makefile), `config` at
/// `config_path` relative to the tree (None: unconfigured).
fn tree(dir: &Path, version: Option<&str>, config: Option<(&str, &str)>) -> PathBuf {
    let kdir = dir.join("kdir");
    std::fs::create_dir_all(&kdir).unwrap();
    if let Some(v) = version {
        let (major, minor) = v.split_once('.').unwrap();
        std::fs::write(
            kdir.join("Makefile"),
            format!("# SPDX\nVERSION = {major}\nPATCHLEVEL = {minor}\nSUBLEVEL = 4\nEXTRAVERSION =\n"),
        )
        .unwrap();
    }
    if let Some((path, text)) = config {
        let p = kdir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    kdir
}

/// A fake rustc printing `rustc VERSION (...)`.
fn rustc(dir: &Path, version: &str) -> PathBuf {
    let p = dir.join("rustc");
    std::fs::write(&p, format!("#!/bin/sh\necho 'rustc {version} (0000000 2026-01-01)'\n")).unwrap();
    Command::new("chmod").arg("+x").arg(&p).status().unwrap();
    p
}

fn check(kdir: &Path, rustc: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("make");
    cmd.args(["-s", "-C", KMOD])
        .arg(format!("KDIR={}", kdir.display()))
        .arg(format!("RUSTC={}", rustc.display()))
        .arg("check");
    cmd.env_remove("PINIO_ANY_KERNEL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Runs the check, asserts it failed, and returns its stderr.
fn refused(kdir: &Path, rustc: &Path) -> String {
    let out = check(kdir, rustc, &[]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "accepted an unsuitable tree: {err}");
    assert!(err.contains("Building against your own kernel"), "no pointer to the docs: {err}");
    err
}

#[test]
fn a_suitable_tree_passes() {
    for config in ["include/config/auto.conf", ".config"] {
        let dir = scratch();
        let kdir = tree(&dir, Some("7.3"), Some((config, RUST_CONFIG)));
        let out = check(&kdir, &rustc(&dir, "1.95.0"), &[]);
        assert!(out.status.success(), "{config}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn not_a_kernel_tree() {
    let dir = scratch();
    let kdir = tree(&dir, None, None);
    let err = refused(&kdir, &rustc(&dir, "1.95.0"));
    assert!(err.contains("not a kernel build tree") && err.contains("linux-headers"), "{err}");
}

#[test]
fn unconfigured_tree() {
    let dir = scratch();
    let kdir = tree(&dir, Some("7.3"), None);
    let err = refused(&kdir, &rustc(&dir, "1.95.0"));
    assert!(err.contains("not configured") && err.contains("auto.conf"), "{err}");
}

#[test]
fn no_config_rust() {
    let dir = scratch();
    let config = "CONFIG_CC_IS_GCC=y\n# CONFIG_RUST is not set\n";
    let kdir = tree(&dir, Some("7.3"), Some(("include/config/auto.conf", config)));
    let err = refused(&kdir, &rustc(&dir, "1.95.0"));
    assert!(err.contains("CONFIG_RUST is not set") && err.contains("CONFIG_RUST=y"), "{err}");
}

#[test]
fn kernel_version_outside_the_range() {
    for version in ["6.12", "7.2", "7.4", "8.0"] {
        let dir = scratch();
        let kdir = tree(&dir, Some(version), Some((".config", RUST_CONFIG)));
        let err = refused(&kdir, &rustc(&dir, "1.95.0"));
        assert!(
            err.contains(&format!("kernel {version} is outside the range")) && err.contains("7.3 to 7.3"),
            "{version}: {err}"
        );
        // PINIO_ANY_KERNEL=1 lets a user try, with a warning.
        let out = check(&kdir, &rustc(&dir, "1.95.0"), &[("PINIO_ANY_KERNEL", "1")]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && err.contains("warning") && err.contains("trying anyway"), "{version}: {err}");
    }
}

#[test]
fn rustc_mismatch() {
    let dir = scratch();
    let kdir = tree(&dir, Some("7.3"), Some((".config", RUST_CONFIG)));
    let err = refused(&kdir, &rustc(&dir, "1.94.1"));
    assert!(err.contains("rustc mismatch") && err.contains("rustc 1.95.0") && err.contains("1.94.1"), "{err}");
    assert!(err.contains("CONFIG_RUSTC_VERSION=109500") && err.contains("RUSTC="), "{err}");
}

#[test]
fn rustc_missing() {
    let dir = scratch();
    let kdir = tree(&dir, Some("7.3"), Some((".config", RUST_CONFIG)));
    let err = refused(&kdir, &dir.join("no-such-rustc"));
    assert!(err.contains("cannot run") && err.contains("rustc 1.95.0"), "{err}");
}
