//! The `kvlog` example's command-line contract, run as outside tests run it:
//! load and verify on uring and copy, crash recovery after `kill -9` at
//! random points, corruption reported as corruption, torn or stale tails
//! dropped, and usage errors.
//!
//! Scratch files live in /var/tmp (O_DIRECT needs a real file system, not
//! tmpfs) and are removed however a test ends. `KVLOG_TEST_SEED` picks the
//! kill points (default: a fixed seed, printed with every failure).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

mod support;
use support::{Scratch, text};

/// The built `kvlog` example.
fn kvlog() -> PathBuf {
    support::example("kvlog")
}

fn run(args: &[&str]) -> Output {
    support::run("kvlog", args)
}

fn stdout_lines(o: &Output) -> Vec<String> {
    support::stdout_lines(o)
}

fn recovered(o: &Output) -> u64 {
    stdout_lines(o)
        .iter()
        .find_map(|l| l.strip_prefix("recovered ").and_then(|n| n.parse().ok()))
        .unwrap_or_else(|| panic!("no `recovered n` line:\n{}", text(o)))
}

fn load(spec: &str, keys: u64, value_size: u64, batch: u64) -> Output {
    let o = run(&[
        "load",
        spec,
        "--keys",
        &keys.to_string(),
        "--value-size",
        &value_size.to_string(),
        "--batch",
        &batch.to_string(),
    ]);
    assert!(o.status.success(), "load {spec}:\n{}", text(&o));
    o
}

fn verify(spec: &str) -> Output {
    run(&["verify", spec])
}

/// splitmix64: the seeded generator of kill points.
struct Rng(u64);

impl Rng {
    fn seeded() -> (Rng, u64) {
        let seed = std::env::var("KVLOG_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x6b76_6c6f_6700_0001);
        (Rng(seed), seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[test]
fn load_then_verify_on_uring_and_copy() {
    for backend in ["uring", "copy"] {
        let f = Scratch::new("kvlog-test", &format!("basic-{backend}"));
        let spec = f.spec(backend);
        let o = load(&spec, 2000, 100, 50);
        let durable: Vec<u64> =
            stdout_lines(&o).iter().filter_map(|l| l.strip_prefix("durable ")?.parse().ok()).collect();
        let expected: Vec<u64> = (1..=40).map(|b| b * 50 - 1).collect();
        assert_eq!(durable, expected, "one `durable` line per batch of 50, the last one 1999:\n{}", text(&o));
        let v = verify(&spec);
        assert!(v.status.success(), "verify {spec}:\n{}", text(&v));
        assert_eq!(recovered(&v), 2000, "{}", text(&v));
    }
}

/// Starts `load`, kills it with SIGKILL when it has printed its
/// `kill_after`-th `durable` line (plus a random few hundred microseconds,
/// to land inside a batch), and returns the last `durable` key it printed.
fn load_and_kill(spec: &str, keys: u64, batch: u64, kill_after: u64, rng: &mut Rng) -> (Option<u64>, bool) {
    let mut child = Command::new(kvlog())
        .args(["load", spec, "--keys", &keys.to_string(), "--value-size", "100", "--batch", &batch.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting kvlog load");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let mut last = None;
    let mut seen = 0;
    let mut killed = false;
    while let Some(Ok(line)) = lines.next() {
        if let Some(k) = line.strip_prefix("durable ") {
            last = Some(k.parse::<u64>().unwrap_or_else(|_| panic!("bad durable line {line:?}")));
            seen += 1;
            if seen == kill_after {
                std::thread::sleep(Duration::from_micros(rng.below(2000)));
                killed = child.kill().is_ok();
                break;
            }
        }
    }
    // Everything it printed before it died is still in the pipe.
    for line in lines.map_while(Result::ok) {
        if let Some(k) = line.strip_prefix("durable ") {
            last = Some(k.parse().expect("a key"));
        }
    }
    let status = child.wait().expect("waiting for load");
    (last, killed && !status.success())
}

fn crash_rounds(backend: &str, rounds: u32) {
    let (mut rng, seed) = Rng::seeded();
    rng.0 ^= backend.len() as u64; // other kill points on each backend
    let (keys, batch) = (40_000u64, 50u64);
    let batches = keys / batch;
    let mut killed_mid_load = 0;
    for round in 0..rounds {
        let f = Scratch::new("kvlog-test", &format!("crash-{backend}-{round}"));
        let spec = f.spec(backend);
        let kill_after = 1 + rng.below(batches * 3 / 4);
        let (last, killed) = load_and_kill(&spec, keys, batch, kill_after, &mut rng);
        let last = last.unwrap_or_else(|| panic!("seed {seed}, round {round}: no durable line before the kill"));
        killed_mid_load += killed as u32;
        let v = verify(&spec);
        let n = recovered(&v);
        assert!(
            v.status.success(),
            "seed {seed}, {backend} round {round} (killed after durable line {kill_after}, last durable {last}):\n{}",
            text(&v)
        );
        assert!(
            n > last,
            "seed {seed}, {backend} round {round}: recovered {n} keys but key {last} was reported durable:\n{}",
            text(&v)
        );
        assert!(n <= keys, "{}", text(&v));
        eprintln!(
            "{backend} round {round}: killed after durable line {kill_after} (last durable key {last}); recovered {n}"
        );
    }
    assert!(killed_mid_load > 0, "seed {seed}: no round killed the load before it finished");
}

#[test]
fn crash_recovery_keeps_every_durable_key_on_uring() {
    crash_rounds("uring", 5);
}

#[test]
fn crash_recovery_keeps_every_durable_key_on_copy() {
    crash_rounds("copy", 5);
}

/// Offsets of `needle` in `hay`.
fn find_all(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    hay.windows(needle.len()).enumerate().filter(|(_, w)| *w == needle).map(|(i, _)| i).collect()
}

#[test]
fn a_damaged_record_before_the_tail_is_reported_as_corruption() {
    let f = Scratch::new("kvlog-test", "corrupt-record");
    let spec = f.spec("copy");
    load(&spec, 2000, 100, 50);
    let mut bytes = std::fs::read(&f.0).unwrap();
    // The first record ("KVR1", 32-byte header, key "0", then the value).
    let first = find_all(&bytes, b"KVR1")[0];
    bytes[first + 32 + 1 + 40] ^= 0x5a;
    std::fs::write(&f.0, &bytes).unwrap();
    let v = verify(&spec);
    assert_eq!(v.status.code(), Some(1), "a checksum failure followed by intact batches is corruption:\n{}", text(&v));
    assert!(stdout_lines(&v).iter().any(|l| l == "bad 0"), "verify must name key 0:\n{}", text(&v));
    assert!(String::from_utf8_lossy(&v.stderr).contains("key \"0\""), "{}", text(&v));
    assert!(recovered(&v) < 2000, "{}", text(&v));
}

#[test]
fn a_damaged_batch_header_before_the_tail_is_reported_as_corruption() {
    let f = Scratch::new("kvlog-test", "corrupt-header");
    let spec = f.spec("uring");
    load(&spec, 2000, 100, 50);
    let mut bytes = std::fs::read(&f.0).unwrap();
    let headers: Vec<usize> = find_all(&bytes, b"KVB1").into_iter().filter(|o| o % 4096 == 0).collect();
    assert!(headers.len() > 10, "expected a header per batch, found {}", headers.len());
    bytes[headers[5] + 20] ^= 1; // batch 5's sequence number: its checksum fails
    std::fs::write(&f.0, &bytes).unwrap();
    let v = verify(&spec);
    assert_eq!(v.status.code(), Some(1), "a broken chain followed by intact batches is corruption:\n{}", text(&v));
    assert_eq!(recovered(&v), 250, "batches 0..5 (50 keys each) are intact:\n{}", text(&v));
    assert!(stdout_lines(&v).iter().any(|l| l.starts_with("bad ")), "{}", text(&v));
}

#[test]
fn a_garbage_tail_is_dropped_not_reported() {
    let f = Scratch::new("kvlog-test", "garbage-tail");
    let spec = f.spec("copy");
    load(&spec, 2000, 100, 50);
    let mut bytes = std::fs::read(&f.0).unwrap();
    let (mut rng, _) = Rng::seeded();
    let cut = bytes.len() * 2 / 3 + 100;
    for b in &mut bytes[cut..] {
        *b = rng.next() as u8;
    }
    std::fs::write(&f.0, &bytes).unwrap();
    let v = verify(&spec);
    assert!(v.status.success(), "a torn tail is the end of the log, not corruption:\n{}", text(&v));
    let n = recovered(&v);
    assert!(n > 1000 && n < 2000, "recovered {n}:\n{}", text(&v));
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// The byte ranges of the batches of a store file, in order, read from the
/// documented format: block size at superblock byte 12, each batch header
/// at the start of its first block with its length in blocks at byte 36.
fn batch_ranges(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    assert_eq!(&bytes[..8], b"PINIOKVL");
    let block = u32_at(bytes, 12) as usize;
    let mut at = block;
    let mut out = Vec::new();
    while at + block <= bytes.len() && &bytes[at..at + 4] == b"KVB1" {
        let len = u32_at(bytes, at + 36) as usize * block;
        out.push(at..at + len);
        at += len;
    }
    out
}

/// Power loss, simulated on the file of a finished load: the last completed
/// flush is that of a random batch j; of batch j+1's writes any subset of
/// 512-byte sectors reached the disk (the rest still holds what the file
/// held before: zeros); nothing later was ever written.
#[test]
fn power_loss_after_any_flush_keeps_every_flushed_key() {
    let (keys, batch) = (3000u64, 40u64);
    let f = Scratch::new("kvlog-test", "power-loss");
    let spec = f.spec("copy");
    load(&spec, keys, 100, batch);
    let full = std::fs::read(&f.0).unwrap();
    let batches = batch_ranges(&full);
    assert_eq!(batches.len() as u64, keys / batch + 1, "data batches and the closing batch");
    let (mut rng, seed) = Rng::seeded();
    let rounds = 30;
    for round in 0..rounds {
        let j = rng.below(batches.len() as u64 - 1) as usize;
        let mut crashed = full[..batches[j].end].to_vec();
        crashed.resize(full.len(), 0);
        let next = batches[j + 1].clone();
        let keep_one_in = 1 + rng.below(4); // sometimes most sectors landed, sometimes few
        for s in (next.start..next.end).step_by(512) {
            if rng.below(keep_one_in) == 0 {
                crashed[s..s + 512].copy_from_slice(&full[s..s + 512]);
            }
        }
        std::fs::write(&f.0, &crashed).unwrap();
        let v = verify(&spec);
        let durable = (j as u64 + 1) * batch; // keys 0..durable were flushed
        assert!(v.status.success(), "seed {seed}, round {round} (flushed through batch {j}):\n{}", text(&v));
        let n = recovered(&v);
        assert!(
            n >= durable && n <= durable + batch,
            "seed {seed}, round {round}: recovered {n}, flushed {durable}:\n{}",
            text(&v)
        );
    }
}

/// The file's bytes once writes of a killed process's ring stopped landing.
/// The kernel tears a dead process's io_uring down after the process is
/// reaped, and writes it had in flight may land later still (on a loaded
/// machine, later than any fixed pause): read until three reads 100 ms
/// apart agree (at most 10 s).
fn settled(path: &std::path::Path) -> Vec<u8> {
    let mut last = std::fs::read(path).unwrap();
    let mut same = 0;
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(100));
        let now = std::fs::read(path).unwrap();
        same = if now == last { same + 1 } else { 0 };
        last = now;
        if same == 2 {
            break;
        }
    }
    last
}

#[test]
fn records_of_a_previous_store_on_the_same_file_are_not_recovered() {
    let (keys, batch) = (6000u64, 50u64);
    let f = Scratch::new("kvlog-test", "stale");
    let snapshot = Scratch::new("kvlog-test", "stale-new");
    let spec = f.spec("uring");
    // The previous store: every key, same geometry, so its records sit where
    // the new store's would.
    load(&spec, keys, 100, batch);
    let old = std::fs::read(&f.0).unwrap();
    // The new store, killed early.
    let (mut rng, seed) = Rng::seeded();
    let (last, _) = load_and_kill(&spec, keys, batch, 1 + rng.below(20), &mut rng);
    let last = last.expect("a durable line");
    let new = settled(&f.0);
    assert_eq!(new.len(), old.len());
    std::fs::write(&snapshot.0, &new).unwrap();
    let n_new = recovered(&verify(&snapshot.spec("copy")));
    // Where the new store stopped writing, put back the old store's blocks.
    let written = new.chunks(4096).rposition(|b| b.iter().any(|&x| x != 0)).map_or(0, |i| i + 1) * 4096;
    let mut mixed = new[..written].to_vec();
    mixed.extend_from_slice(&old[written..]);
    std::fs::write(&f.0, &mixed).unwrap();
    let v = verify(&spec);
    assert!(v.status.success(), "seed {seed}:\n{}", text(&v));
    let n = recovered(&v);
    assert!(n > last, "seed {seed}: key {last} was durable:\n{}", text(&v));
    // Old blocks put back after what the new store wrote never add a record
    // of the old store (another epoch): every record whose header lies there
    // is refused. One record can straddle that point: its header (epoch,
    // sequence number, checksum) written by the new store, the rest of its
    // bytes in a block the kill left unwritten. The old store wrote the same
    // key with the same value at the same place (same geometry, values
    // derived from the key), so the old block can complete it with exactly
    // the bytes the new store would have written, and its checksum matches
    // (seen: 830 > 829, 680 > 679). That record is the new store's own, not
    // the old one's: at most one more than the snapshot alone gave.
    assert!(
        n <= n_new + 1,
        "seed {seed}: the old store's records (another epoch) must not extend the new one ({n} > {n_new} + 1):\n{}",
        text(&v)
    );
    assert!(n < keys, "{}", text(&v));
}

#[test]
fn usage_errors_exit_2_and_other_failures_are_clear() {
    let f = Scratch::new("kvlog-test", "usage");
    let spec = f.spec("copy");
    let cases: &[&[&str]] = &[
        &[],
        &["frobnicate", "copy:/var/tmp/x"],
        &["load", "floppy:/dev/fd0", "--keys", "1", "--value-size", "1", "--batch", "1"],
        &["load", &spec, "--keys", "10"],
        &["load", &spec, "--keys", "ten", "--value-size", "1", "--batch", "1"],
        &["load", &spec, "--keys", "0", "--value-size", "1", "--batch", "1"],
        &["load", &spec, "--keys", "10", "--value-size", "1", "--batch", "0"],
        &["load", &spec, "--keys", "10", "--value-size", "1", "--batch", "1", "--depth", "4"],
        &["verify"],
        &["verify", &spec, "--keys", "10"],
        &["bench", "nospec"],
    ];
    for args in cases {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "kvlog {args:?}:\n{}", text(&o));
        assert!(String::from_utf8_lossy(&o.stderr).starts_with("kvlog: "), "a one-line reason first:\n{}", text(&o));
        assert!(!f.0.exists(), "a usage error must not create the store ({args:?})");
    }
    // Not a store: exit 1, saying so.
    std::fs::write(&f.0, vec![7u8; 64 << 10]).unwrap();
    let o = verify(&spec);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no kvlog store"), "{}", text(&o));
    // A missing file: a device error, exit 3.
    let o = verify("copy:/var/tmp/pinio-kvlog-test-does-not-exist.dat");
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
}

#[test]
fn bench_reports_puts_and_flushes_per_second() {
    let f = Scratch::new("kvlog-test", "bench");
    let o = run(&["bench", &f.spec("uring"), "--keys", "3000", "--value-size", "64", "--batch", "100"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.lines().any(|l| l.starts_with("puts/s ")) && out.lines().any(|l| l.starts_with("flushes/s ")), "{out}");
    assert!(out.contains("3000 keys"), "{out}");
}
