//! Installs the host packages the guest platform needs (xtask/scripts/install-deps.sh).

use std::process::Command;

use anyhow::Result;

/// Runs `xtask/scripts/install-deps.sh`; a no-op check when all is present.
pub fn ensure() -> Result<()> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/install-deps.sh");
    crate::cmd::run(Command::new("bash").arg(script))
}
