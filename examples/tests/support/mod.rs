//! What the example tests share: the built example binaries, scratch files in
//! `/var/tmp` (O_DIRECT needs a real file system), and readable output.

// Each test binary includes this module and uses a part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The built example `name`, next to this test's own `deps/` directory
/// (cargo builds the examples before it runs the tests).
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target profile directory");
    dir.join("examples").join(name)
}

/// Runs example `name` with `args` to its end.
pub fn run(name: &str, args: &[&str]) -> Output {
    Command::new(example(name)).args(args).output().unwrap_or_else(|e| panic!("starting {name} {args:?}: {e}"))
}

/// An output's status, standard output and standard error, for a failed assertion.
pub fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// An output's standard output, line by line.
pub fn stdout_lines(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect()
}

/// A scratch file `/var/tmp/pinio-<test>-<pid>-<name>.dat`, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// The scratch file `name` of the test file `test`.
    pub fn new(test: &str, name: &str) -> Scratch {
        Scratch(PathBuf::from(format!("/var/tmp/pinio-{test}-{}-{name}.dat", std::process::id())))
    }

    /// The selection string of this file on `backend`.
    pub fn spec(&self, backend: &str) -> String {
        format!("{backend}:{}", self.0.display())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
