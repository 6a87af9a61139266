//! The guest's initramfs: busybox-static plus xtask/guest/init.sh, cached by content.

use std::fs;
use std::io::BufWriter;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::cpio::{Kind, Writer};
use crate::paths::Paths;

const BUSYBOX: &str = "/bin/busybox";

/// Returns the path of the initramfs (an uncompressed newc cpio), building it if needed.
pub fn ensure(paths: &Paths) -> Result<PathBuf> {
    let init_path = paths.repo.join("xtask/guest/init.sh");
    let init = fs::read(&init_path).with_context(|| format!("cannot read {}", init_path.display()))?;
    let busybox =
        fs::read(BUSYBOX).with_context(|| format!("cannot read {BUSYBOX}: install Debian's busybox-static"))?;
    let mut hasher = Sha256::new();
    // Bump when the archive's layout changes (not only its inputs).
    hasher.update(b"pinio-initramfs-v2\n");
    hasher.update(&init);
    hasher.update(&busybox);
    let hash: String = hasher.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect();
    let dir = paths.cache.join("initramfs");
    let out = dir.join(format!("initramfs-{hash}.cpio"));
    if out.exists() {
        return Ok(out);
    }
    fs::create_dir_all(&dir)?;
    let tmp = dir.join(format!(".initramfs-{hash}.{}", std::process::id()));
    let file = fs::File::create(&tmp)?;
    let mut w = Writer::new(BufWriter::new(file));
    for d in
        ["bin", "sbin", "dev", "etc", "mnt", "proc", "root", "run", "sys", "tmp", "usr", "usr/bin", "usr/sbin", "work"]
    {
        w.add(d, 0o755, Kind::Dir)?;
    }
    w.add("dev/console", 0o600, Kind::CharDev { major: 5, minor: 1 })?;
    w.add("dev/null", 0o666, Kind::CharDev { major: 1, minor: 3 })?;
    w.add("bin/busybox", 0o755, Kind::File(&busybox))?;
    // The applet links, made here rather than by `busybox --install` at every boot.
    for applet in applets()? {
        if applet != "bin/busybox" {
            w.add(&applet, 0o777, Kind::Symlink("/bin/busybox"))?;
        }
    }
    w.add("init", 0o755, Kind::File(&init))?;
    let buf = w.finish()?;
    buf.into_inner().context("flushing the initramfs")?.sync_all()?;
    fs::rename(&tmp, &out)?;
    Ok(out)
}

/// Busybox's applets with their install paths (`bin/sh`, `usr/bin/[`...).
fn applets() -> Result<Vec<String>> {
    let list = crate::cmd::output(Command::new(BUSYBOX).arg("--list-full"))?;
    Ok(list.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect())
}
