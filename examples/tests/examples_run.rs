//! The examples are documentation, so they must run: each is started here as
//! a user would start it (cargo builds examples before running tests).

use std::process::Command;

mod support;
use support::example;

/// Runs an example to its end; returns its standard output and its pid.
fn run(name: &str, args: &[&str]) -> (String, u32) {
    let child = Command::new(example(name))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting example {name}: {e}"));
    let pid = child.id();
    let out = child.wait_with_output().expect("waiting for the example");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "example {name} {args:?} failed ({}):\n{stdout}\n{stderr}", out.status);
    (stdout.into_owned(), pid)
}

#[test]
fn mirror_writes_one_registration_to_two_files_with_no_cpu_copy() {
    let (out, pid) = run("mirror", &[]);
    assert!(out.contains("both files verified"), "{out}");
    assert!(out.lines().any(|l| l == "bytes_copied 0"), "the default (uring, O_DIRECT) path must be zero-copy:\n{out}");
    assert!(out.contains("1 pins in the domain") || out.contains("2 pins in the domain"), "{out}");
    let prefix = format!("pinio-mirror-{pid}-");
    let leftovers: Vec<_> = std::fs::read_dir("/var/tmp")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .collect();
    assert!(leftovers.is_empty(), "scratch files left behind: {leftovers:?}");
}

#[test]
fn mirror_runs_on_the_copy_baseline_and_counts_its_copies() {
    let (out, _) = run("mirror", &["copy"]);
    assert!(out.contains("both files verified"), "{out}");
    let copied: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("bytes_copied "))
        .and_then(|v| v.parse().ok())
        .expect("a bytes_copied line");
    assert!(copied > 0, "the copy backend copies every byte:\n{out}");
}

#[test]
fn block_server_serves_pooled_blocks_with_send_zc_and_the_client_checks_every_byte() {
    let (out, pid) = run("block_server", &[]);
    let summary = out.lines().find(|l| l.starts_with("blocks ")).unwrap_or_else(|| panic!("no summary line:\n{out}"));
    let blocks: u64 =
        summary.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{summary}"));
    assert_eq!(blocks, 8 * 32, "every request of 8 connections x 32 verified:\n{out}");
    assert!(summary.contains("verified") && summary.ends_with("bytes_copied 0"), "no CPU copy in pinio's path:\n{out}");
    // Every block went out with SEND_ZC from the registered buffer, and each
    // send's notification was waited for before its slice went back.
    let zc = out.lines().find(|l| l.starts_with("send_zc:")).unwrap_or_else(|| panic!("no send_zc line:\n{out}"));
    let field = |name: &str| -> u64 {
        let words: Vec<&str> = zc.split_whitespace().collect();
        let i = words.iter().position(|w| *w == name).unwrap_or_else(|| panic!("no {name} in {zc}"));
        words[i + 1].parse().unwrap_or_else(|_| panic!("{name} in {zc}"))
    };
    assert!(field("sends") >= blocks, "{zc}");
    assert_eq!(field("fixed_sends"), field("sends"), "{zc}");
    assert_eq!(field("notifications"), field("sends"), "{zc}");
    assert!(out.contains("pool slices back 4/4"), "{out}");
    assert!(out.contains("requests refused 16"), "two bad requests per connection, refused:\n{out}");
    assert!(
        !std::path::Path::new(&format!("/var/tmp/pinio-block-server-{pid}.dat")).exists(),
        "scratch file left behind"
    );
}
