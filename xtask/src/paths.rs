//! Where things live: the repository, the build cache, cargo's target dir.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Locations every task needs.
pub struct Paths {
    /// The workspace root (this crate's parent directory).
    pub repo: PathBuf,
    /// `${PINIO_CACHE:-$HOME/.cache/pinio}`: kernels, initramfs, scratch disks.
    pub cache: PathBuf,
}

impl Paths {
    /// Finds the repository from this crate's location and the cache from the
    /// environment.
    pub fn discover() -> Result<Self> {
        let repo =
            Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("xtask has no parent directory")?.to_path_buf();
        let cache = match std::env::var_os("PINIO_CACHE") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => {
                let home = std::env::var_os("HOME")
                    .context("neither PINIO_CACHE nor HOME is set: set PINIO_CACHE to a cache directory")?;
                PathBuf::from(home).join(".cache/pinio")
            }
        };
        if !cache.is_absolute() {
            bail!("the cache directory {} must be an absolute path", cache.display());
        }
        Ok(Self { repo, cache })
    }

    /// Cargo's target directory, as `cargo metadata` reports it.
    pub fn target_dir(&self) -> Result<PathBuf> {
        let meta = crate::guest_build::metadata(self)?;
        let dir = meta["target_directory"].as_str().context("cargo metadata has no target_directory")?;
        Ok(PathBuf::from(dir))
    }

    /// A directory for xtask's own outputs inside the target dir.
    pub fn xtask_out(&self) -> Result<PathBuf> {
        Ok(self.target_dir()?.join("xtask"))
    }
}

/// `cargo`, as cargo itself told us, or from PATH.
pub fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    Command::new(cargo)
}
