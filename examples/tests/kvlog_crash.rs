//! Crash consistency of kvlog: several workloads are recorded through
//! `record:<log>:<selection>` and every crash state the flush contract
//! allows (sampled, over 1,000 in all) must pass `kvlog verify`; two
//! deliberately broken kvlogs (`KVLOG_BROKEN`, see examples/kvlog.rs) must
//! be caught, which proves the generator can fail.
//!
//! The states are checked by `pinio::crash::CrashTest`, which is what
//! `pinio crash-test` runs (the command is a parser over it; its own test,
//! crates/pinio-cli/tests/crash_test.rs, runs the binary). This package
//! cannot run the `pinio` binary (cargo builds another package's binaries
//! only for that package's tests), so it calls the library with the exact
//! check string the command takes.

use pinio::crash::CrashTest;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The built `kvlog` example, next to this test's own `deps/` directory.
fn kvlog() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target profile directory");
    dir.join("examples").join("kvlog")
}

/// Scratch files in /var/tmp (O_DIRECT needs a real file system), removed on drop.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = PathBuf::from(format!("/var/tmp/pinio-kvlog-crash-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        Scratch { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Loads a store through `record:` and returns the log's path and the
/// number of `durable` lines (acknowledged batches).
fn record_load(
    s: &Scratch,
    backend: &str,
    keys: u64,
    value: u64,
    batch: u64,
    broken: Option<&str>,
) -> (PathBuf, usize) {
    let (log, dat) = (s.path("kv.log"), s.path("kv.dat"));
    let spec = format!("record:{}:{backend}:{}", log.display(), dat.display());
    let mut cmd = Command::new(kvlog());
    cmd.args([
        "load",
        &spec,
        "--keys",
        &keys.to_string(),
        "--value-size",
        &value.to_string(),
        "--batch",
        &batch.to_string(),
    ]);
    if let Some(b) = broken {
        cmd.env("KVLOG_BROKEN", b);
    }
    let o = cmd.output().expect("running kvlog load");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "kvlog load {spec}: {}\n{out}\n{}", o.status, String::from_utf8_lossy(&o.stderr));
    let acked = out.lines().filter(|l| l.starts_with("durable ")).count();
    assert_eq!(acked as u64, keys.div_ceil(batch));
    // The recorded store itself verifies.
    let v = Command::new(kvlog()).args(["verify", &format!("copy:{}", dat.display())]).output().unwrap();
    assert!(v.status.success(), "verify of the recorded store: {}", String::from_utf8_lossy(&v.stderr));
    (log, acked)
}

fn crash_test(
    s: &Scratch,
    log: &Path,
    check: String,
    states: u64,
    seed: u64,
    sector: u64,
) -> (pinio::crash::Report, String) {
    let t = CrashTest {
        log: log.to_path_buf(),
        check,
        states,
        seed,
        only: None,
        sector,
        jobs: 2,
        dir: s.dir.clone(),
        shrink: 1,
        timeout: Duration::from_secs(60),
        from_start: false,
    };
    let mut out = Vec::new();
    let r = t.run(&mut out).unwrap_or_else(|e| panic!("crash-test on {}: {e}", log.display()));
    (r, String::from_utf8_lossy(&out).into_owned())
}

fn verify_check() -> String {
    format!("{} verify copy:{{image}}", kvlog().display())
}

/// (backend, keys, value size, batch, states, seed, atomic unit): small
/// batches (one write each), multi-block batches in several writes in
/// flight, and values larger than a block, torn at 512 B and at 4 KiB.
const WORKLOADS: &[(&str, u64, u64, u64, u64, u64, u64)] =
    &[("copy", 150, 100, 7, 350, 1, 512), ("uring", 60, 1500, 6, 350, 2, 4096), ("copy", 40, 9000, 8, 350, 3, 512)];

#[test]
fn every_crash_state_of_several_workloads_passes_kvlog_verify() {
    let (mut total, mut several) = (0, false);
    for (i, &(backend, keys, value, batch, states, seed, sector)) in WORKLOADS.iter().enumerate() {
        let s = Scratch::new(&format!("ok{i}"));
        let (log, acked) = record_load(&s, backend, keys, value, batch, None);
        let (r, out) = crash_test(&s, &log, verify_check(), states, seed, sector);
        eprintln!("{out}");
        assert!(r.failures.is_empty(), "workload {i} ({backend}, {keys} keys of {value} B, batch {batch}):\n{out}");
        assert_eq!(r.checked, states);
        // One epoch per completed flush: the superblock's, each batch's, the close.
        assert_eq!(r.history.epochs.len(), 1 + 1 + acked + 1, "{out}");
        several |= r.history.epochs.iter().skip(1).any(|e| e.window.len() > 1);
        total += r.checked;
    }
    assert!(several, "some epoch has several writes not yet durable (a batch in several writes)");
    assert!(total >= 1000, "{total} states");
}

#[test]
fn acknowledging_before_the_flush_is_caught() {
    let s = Scratch::new("ack");
    let (log, _) = record_load(&s, "copy", 80, 200, 4, Some("ack-before-flush"));
    let started = std::time::Instant::now();
    let (r, out) = crash_test(&s, &log, verify_check(), 200, 7, 512);
    assert!(!r.failures.is_empty(), "the broken kvlog passed every state:\n{out}");
    assert!(started.elapsed() < Duration::from_secs(60), "caught, but only after {:?}", started.elapsed());
    let first = &r.failures[0];
    assert!(out.contains(&format!("FAIL state {} (seed 7)", first.state.index)), "{out}");
    assert!(out.contains("reproduce: pinio crash-test --log") && out.contains("shrunk to"), "{out}");
    // Shrunk to a handful of writes (a batch's header without an earlier batch's blocks).
    let shrunk = first.shrunk.as_ref().expect("the first failure is shrunk");
    assert!(!shrunk.extra.is_empty() && shrunk.extra.len() <= 4, "{out}");
    assert!(first.image.as_ref().is_some_and(|p| p.exists()));
}

#[test]
fn trusting_an_unchecksummed_tail_is_caught() {
    let s = Scratch::new("tail");
    let (log, _) = record_load(&s, "copy", 60, 3000, 6, None);
    let check = format!("KVLOG_BROKEN=trust-tail {}", verify_check());
    let (r, out) = crash_test(&s, &log, check, 300, 11, 512);
    assert!(!r.failures.is_empty(), "recovery without checksums passed every state:\n{out}");
    assert!(out.contains("bad "), "kvlog names the bad key:\n{out}");
    // The same states pass with the checksum: the failures are the hook's.
    let (r, out) = crash_test(&s, &log, verify_check(), 300, 11, 512);
    assert!(r.failures.is_empty(), "{out}");
}
