//! `pinio crash-test` as outside users run it: a small history recorded
//! through `record:<log>:copy:<file>`, then the command with checks that
//! must pass on every state, that must fail (and name the state, its seed
//! and a shrunk reproduction), and a reproduction of one state.

use pinio::{FlushMode, Op};
use std::path::PathBuf;
use std::process::{Command, Output};

const BLOCK: usize = 4096;

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let d = PathBuf::from(format!("/var/tmp/pinio-cli-crash-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Block 0 = 'A', flushed; blocks 1 ('B') and 2 ('C') in flight together,
/// flushed; block 3 ('D') never flushed.
fn record(s: &Scratch) -> PathBuf {
    let (log, dat) = (s.0.join("h.log"), s.0.join("h.dat"));
    std::fs::write(&dat, vec![0u8; 8 * BLOCK]).unwrap();
    let dev = pinio::open(&format!("record:{}:copy:{}", log.display(), dat.display())).unwrap();
    let region = dev.alloc(4 * BLOCK).unwrap();
    let mut q = dev.queue(4).unwrap();
    let fill = |i: usize, b: u8| {
        let mut sl = region.slice(i * BLOCK, BLOCK).unwrap();
        sl.fill(b);
        sl
    };
    q.write_at(fill(0, b'A'), 0).unwrap();
    q.flush(FlushMode::Data).unwrap();
    q.push(Op::write(fill(1, b'B'), BLOCK as u64, 1)).unwrap();
    q.push(Op::write(fill(2, b'C'), 2 * BLOCK as u64, 2)).unwrap();
    let mut out = Vec::new();
    while out.len() < 2 {
        q.wait(2 - out.len(), &mut out).unwrap();
    }
    drop(out);
    q.flush(FlushMode::Data).unwrap();
    q.write_at(fill(3, b'D'), 3 * BLOCK as u64).unwrap();
    log
}

fn pinio(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pinio")).args(args).output().expect("running pinio")
}

fn text(o: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A shell check that block `n` of the image is all `c`.
fn block_is(n: usize, c: char) -> String {
    format!("[ \"$(dd if={{image}} bs={BLOCK} skip={n} count=1 2>/dev/null | tr -d {c} | wc -c)\" -eq 0 ]")
}

#[test]
fn every_state_keeps_what_a_flush_made_durable() {
    let s = Scratch::new("pass");
    let log = record(&s);
    let dir = s.0.display().to_string();
    let o = pinio(&[
        "crash-test",
        "--log",
        &log.display().to_string(),
        "--check",
        &block_is(0, 'A'),
        "--states",
        "60",
        "--seed",
        "5",
        "--dir",
        &dir,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("60 states, 60 passed, 0 failed"), "{}", text(&o));
    assert!(out.contains("4 writes, 2 flushes (2 completed)"), "{}", text(&o));
}

#[test]
fn a_check_that_wants_unflushed_data_fails_names_the_state_and_shrinks() {
    let s = Scratch::new("fail");
    let log = record(&s).display().to_string();
    let dir = s.0.display().to_string();
    // 'C' without 'B': possible, since both were in flight together.
    let check = format!("! {{ {} && ! {}; }}", block_is(2, 'C'), block_is(1, 'B'));
    let o = pinio(&["crash-test", "--log", &log, "--check", &check, "--states", "80", "--seed", "9", "--dir", &dir]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let first = out
        .lines()
        .find_map(|l| l.strip_prefix("FAIL state "))
        .unwrap_or_else(|| panic!("no failing state named:\n{}", text(&o)));
    assert!(first.contains("(seed 9)") && first.contains("after the 1st completed flush"), "{first}");
    assert!(out.contains("shrunk to 1 of its"), "{}", text(&o));
    assert!(out.contains(&format!("[{:#x}, +{:#x})", 2 * BLOCK, BLOCK)), "the shrunk write is C's:\n{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("crash states failed"), "{}", text(&o));
    // The reproduction line runs exactly that state, which fails again.
    let index: String = first.chars().take_while(char::is_ascii_digit).collect();
    let o = pinio(&["crash-test", "--log", &log, "--check", &check, "--seed", "9", "--state", &index, "--dir", &dir]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("1 states, 0 passed, 1 failed"), "{}", text(&o));
    // Unflushed 'D' is missing from the durable images: the shrinker says
    // the durable image alone fails.
    let o = pinio(&["crash-test", "--log", &log, "--check", &block_is(3, 'D'), "--states", "10", "--dir", &dir]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("none: the durable image alone fails"), "{}", text(&o));
}

#[test]
fn bad_arguments_are_refused_with_reasons() {
    let s = Scratch::new("args");
    let log = record(&s).display().to_string();
    let o = pinio(&["crash-test", "--log", &log, "--check", "true"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("{image}"), "{}", text(&o));
    let o = pinio(&["crash-test", "--log", "/nonexistent/log", "--check", "true {image}"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("reading the crash log"), "{}", text(&o));
    let o = pinio(&["crash-test", "--log", &log, "--check", "true {image}", "--sector", "1000"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("power of two"), "{}", text(&o));
}
