//! The tree keeps the house style (`rustfmt.toml`): `cargo fmt --all --check`
//! passes, so a change that skipped `cargo fmt` fails here with the files to fix.

use std::path::Path;
use std::process::Command;

#[test]
fn tree_is_rustfmt_clean() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["fmt", "--all", "--check", "--manifest-path"])
        .arg(repo.join("Cargo.toml"))
        .output()
        .expect("run cargo fmt");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("is not installed") && !stderr.contains("no such command"),
        "rustfmt is missing: `rustup component add rustfmt`\n{stderr}"
    );
    assert!(
        out.status.success(),
        "the tree is not formatted: run `cargo fmt --all`; differences:\n{}{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
}
