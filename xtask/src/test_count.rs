//! Runs `cargo test`, passing its output through, and counts the tests that
//! passed and failed from its `test result:` lines (for the summary line).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

/// Tests counted over every test binary of one `cargo test` run.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub passed: u64,
    pub failed: u64,
    /// Whether cargo exited with 0 (a build failure counts no tests but fails).
    pub ok: bool,
}

/// Runs `cmd` with its standard output passed through line by line.
pub fn run_counting(cmd: &mut Command) -> Result<Counts> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start `{}`", crate::cmd::describe(cmd)))?;
    let mut counts = Counts::default();
    let stdout = std::io::stdout();
    for line in BufReader::new(child.stdout.take().context("cargo test stdout")?).lines() {
        let line = line?;
        let _ = writeln!(stdout.lock(), "{line}");
        if let Some((p, f)) = parse_result(&line) {
            counts.passed += p;
            counts.failed += f;
        }
    }
    counts.ok = child.wait()?.success();
    Ok(counts)
}

/// `test result: ok. 12 passed; 0 failed; 1 ignored; ...` -> (12, 0).
fn parse_result(line: &str) -> Option<(u64, u64)> {
    let rest = line.trim_start().strip_prefix("test result: ")?;
    let field = |name: &str| -> Option<u64> {
        rest.split(['.', ';']).map(str::trim).find_map(|part| part.strip_suffix(name)?.trim().parse().ok())
    };
    Some((field("passed")?, field("failed")?))
}

#[cfg(test)]
mod tests {
    use super::parse_result;

    #[test]
    fn parses_ok_and_failed_results() {
        assert_eq!(
            parse_result(
                "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.2s"
            ),
            Some((12, 0))
        );
        assert_eq!(parse_result("test result: FAILED. 3 passed; 2 failed; 0 ignored"), Some((3, 2)));
        assert_eq!(parse_result("running 3 tests"), None);
    }
}
