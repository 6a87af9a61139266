//! `kvlog_async load` (many tasks, group commit through AsyncQueue futures
//! on tokio) writes kvlog's own format: the synchronous `kvlog verify`
//! recovers every key, and a damaged byte is found.

use std::process::{Command, Output};

mod support;
use support::{Scratch, example, run, text};

fn durable(o: &Output) -> Vec<u64> {
    String::from_utf8_lossy(&o.stdout).lines().filter_map(|l| l.strip_prefix("durable ")?.parse().ok()).collect()
}

#[test]
fn async_load_then_sync_verify_on_uring_and_copy() {
    for backend in ["uring", "copy"] {
        let f = Scratch::new("kvlog-async-test", backend);
        let spec = format!("{backend}:{}", f.0.display());
        let o = run(
            "kvlog_async",
            &["load", &spec, "--keys", "3000", "--value-size", "100", "--batch", "50", "--tasks", "64"],
        );
        assert!(o.status.success(), "{}", text(&o));
        // 64 tasks fill batches of 50: one flush acknowledges 50 puts.
        let expected: Vec<u64> = (1..=60).map(|b| b * 50 - 1).collect();
        assert_eq!(durable(&o), expected, "{}", text(&o));
        let v = run("kvlog", &["verify", &spec]);
        assert!(v.status.success(), "kvlog verify of an async load:\n{}", text(&v));
        assert!(String::from_utf8_lossy(&v.stdout).lines().any(|l| l == "recovered 3000"), "{}", text(&v));
    }
}

#[test]
fn fewer_tasks_than_the_batch_make_batches_of_the_tasks() {
    let f = Scratch::new("kvlog-async-test", "few-tasks");
    let spec = format!("uring:{}", f.0.display());
    let o =
        run("kvlog_async", &["load", &spec, "--keys", "100", "--value-size", "300", "--batch", "64", "--tasks", "8"]);
    assert!(o.status.success(), "{}", text(&o));
    let expected: Vec<u64> = (1..=13).map(|b| (b * 8).min(100) - 1).collect();
    assert_eq!(durable(&o), expected, "{}", text(&o));
    let v = run("kvlog", &["verify", &spec]);
    assert!(v.status.success(), "{}", text(&v));
}

/// A byte of one value flipped in an early batch: verify must fail with
/// exit status 1 and name the key (a real check, not a formality).
#[test]
fn a_corrupted_byte_of_an_async_load_fails_verify() {
    let f = Scratch::new("kvlog-async-test", "corrupt");
    let spec = format!("uring:{}", f.0.display());
    let o = run("kvlog_async", &["load", &spec, "--keys", "2000", "--value-size", "100", "--batch", "40"]);
    assert!(o.status.success(), "{}", text(&o));
    let mut bytes = std::fs::read(&f.0).unwrap();
    let at = bytes.windows(4).position(|w| w == b"KVR1").expect("a record") + 32 + 4;
    bytes[at] ^= 0x40;
    std::fs::write(&f.0, &bytes).unwrap();
    let v = run("kvlog", &["verify", &spec]);
    assert_eq!(v.status.code(), Some(1), "a damaged record followed by intact batches:\n{}", text(&v));
    assert!(String::from_utf8_lossy(&v.stdout).lines().any(|l| l.starts_with("bad ")), "{}", text(&v));
}

#[test]
fn bad_options_are_usage_errors_and_other_commands_are_kvlogs() {
    let o = run(
        "kvlog_async",
        &["load", "uring:/var/tmp/x", "--keys", "10", "--value-size", "1", "--batch", "2", "--tasks", "0"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--tasks"), "{}", text(&o));
    let o = run("kvlog_async", &["verify", "uring:/var/tmp/x", "--tasks", "3"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = run("kvlog_async", &["--help"]);
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("kvlog verify"), "{}", text(&o));
}

/// `kvlog_async load` killed with SIGKILL after its `durable` line number
/// `after`: verify must recover every key up to the last `durable` key
/// (the committer writes keys in order, so what survives is a prefix).
fn killed_load_keeps_every_durable_key(backend: &str, after: usize) {
    use std::io::{BufRead, BufReader};
    let f = Scratch::new("kvlog-async-test", &format!("kill-{backend}-{after}"));
    let spec = format!("{backend}:{}", f.0.display());
    let mut child = Command::new(example("kvlog_async"))
        .args(["load", &spec, "--keys", "40000", "--value-size", "100", "--batch", "50"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starting kvlog_async load");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let mut last = None;
    let mut seen = 0;
    while let Some(Ok(line)) = lines.next() {
        if let Some(k) = line.strip_prefix("durable ") {
            last = Some(k.parse::<u64>().expect("a key"));
            seen += 1;
            if seen == after {
                child.kill().expect("SIGKILL");
                break;
            }
        }
    }
    let _ = child.wait();
    let last = last.expect("at least one durable line before the kill");
    let v = run("kvlog", &["verify", &spec]);
    assert!(v.status.success(), "verify after a SIGKILL at durable {last}:\n{}", text(&v));
    let n: u64 = String::from_utf8_lossy(&v.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("recovered ")?.parse().ok())
        .expect("recovered n");
    assert!(n > last, "durable {last} printed, but only {n} keys recovered:\n{}", text(&v));
}

#[test]
fn a_killed_async_load_keeps_every_durable_key() {
    for (backend, after) in [("uring", 3), ("uring", 40), ("copy", 17)] {
        killed_load_keeps_every_durable_key(backend, after);
    }
}
