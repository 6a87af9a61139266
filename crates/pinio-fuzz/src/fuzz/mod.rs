//! The interface fuzzer of `/dev/pinio`.
//!
//! A run is a sequence of calls chosen by a seeded [`Rng`]: each call draws its own child
//! generator, so the sequence of decisions is a function of the seed. The kernel's answers are
//! checked against a model of the module (the private `model` module): errnos follow the order of checks the ABI
//! documents, pin counts reported by INFO must equal the model's, completion records must come
//! back in submission order with status 0 and the full length, and a dedicated echo session
//! checks the bytes the DMA engine moves. The only answers that depend on timing (UNREGISTER of a
//! region whose descriptors may still be in flight, REAP of records not yet completed) accept
//! each possible outcome; replays of a seed can therefore diverge after such a call, and the
//! trace printed with a failure shows the calls that led to it.
//!
//! Phase two ([`race`]) runs threads that race SUBMIT, UNREGISTER/REGISTER, REAP (with waits),
//! `close` and `MAP_FIXED` on one open file.
//!
//! Configuration (environment): `PINIO_FUZZ_SEED` (decimal or `0x` hex), `PINIO_FUZZ_CALLS`
//! (calls of phase one, default [`DEFAULT_CALLS`]), `PINIO_FUZZ_RACE_ROUNDS` (default
//! [`DEFAULT_RACE_ROUNDS`]), `PINIO_FUZZ_LONG=1` (10x both).

mod arena;
mod expect;
mod model;
mod ops_copy;
mod ops_dma;
mod ops_register;
mod ops_register_vec;
mod ops_session;
pub mod race;
mod wild;

use crate::FuzzError;
use crate::kmsg::KernelLog;
use crate::raw::Answer;
use crate::rng::Rng;
use arena::{Arena, Scratch};
use expect::{Expect, show};
use model::{Limits, SessionM};
use std::collections::{BTreeMap, VecDeque};
use std::ffi::CString;
use std::time::{Duration, Instant};

/// Calls of phase one in `cargo xtask test`.
pub const DEFAULT_CALLS: u64 = 100_000;
/// Rounds of phase two in `cargo xtask test` (more are run until the run has made
/// [`MIN_TOTAL_CALLS`]).
pub const DEFAULT_RACE_ROUNDS: u64 = 30;
/// Phase two keeps adding rounds (up to ten times [`Config::race_rounds`]) until both phases
/// together made this many calls.
pub const MIN_TOTAL_CALLS: u64 = 100_000;
/// Most open files of `/dev/pinio` the fuzzer keeps at once (besides the echo session).
const MAX_SESSIONS: usize = 6;
/// Calls kept for the trace printed with a failure.
const TRACE_LEN: usize = 40;

/// What a run does.
#[derive(Debug, Clone)]
pub struct Config {
    /// The seed of every decision.
    pub seed: u64,
    /// Calls of phase one.
    pub calls: u64,
    /// Rounds of phase two (threads racing on one open file).
    pub race_rounds: u64,
    /// The device node.
    pub device: CString,
}

fn env_u64(name: &'static str) -> Result<Option<u64>, FuzzError> {
    let Ok(v) = std::env::var(name) else {
        return Ok(None);
    };
    parse_u64(name, &v).map(Some)
}

/// Parses a decimal or `0x`-hexadecimal `u64` (underscores allowed), naming `name` on error.
fn parse_u64(name: &'static str, v: &str) -> Result<u64, FuzzError> {
    let t = v.trim().replace('_', "");
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse(),
    };
    parsed.map_err(|_| FuzzError::Config { name, value: v.to_string(), why: "a decimal or 0x-hexadecimal u64" })
}

impl Config {
    /// Reads `PINIO_FUZZ_SEED`, `PINIO_FUZZ_CALLS`, `PINIO_FUZZ_RACE_ROUNDS`, `PINIO_FUZZ_LONG`.
    pub fn from_env() -> Result<Config, FuzzError> {
        let long = std::env::var("PINIO_FUZZ_LONG").is_ok_and(|v| v == "1");
        let scale = if long { 10 } else { 1 };
        Ok(Config {
            seed: env_u64("PINIO_FUZZ_SEED")?.unwrap_or_else(Rng::fresh_seed),
            calls: env_u64("PINIO_FUZZ_CALLS")?.unwrap_or(DEFAULT_CALLS * scale),
            race_rounds: env_u64("PINIO_FUZZ_RACE_ROUNDS")?.unwrap_or(DEFAULT_RACE_ROUNDS * scale),
            device: c"/dev/pinio".to_owned(),
        })
    }
}

/// Counts of a finished run.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Calls into the module's interface (open, ioctl, read/write family, poll, mmap, dup, close).
    pub calls: u64,
    /// Changes of the fuzzer's own address space under registrations (not counted in `calls`).
    pub address_space_changes: u64,
    /// Per operation: calls, and answers by errno name ("ok" for success).
    pub by_op: BTreeMap<&'static str, BTreeMap<String, u64>>,
    /// Bytes the echo session moved through the DMA engine and compared.
    pub echo_bytes_checked: u64,
    /// Most pages pinned at once by the fuzzer's sessions.
    pub max_pinned_pages: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl Report {
    fn record(&mut self, op: &'static str, got: &Answer) {
        self.calls += 1;
        let key = match got {
            Ok(_) => "ok".to_string(),
            Err(e) => e.name(),
        };
        *self.by_op.entry(op).or_default().entry(key).or_default() += 1;
    }

    /// Adds another report's counts (phase two into phase one).
    pub fn merge(&mut self, other: &Report) {
        self.calls += other.calls;
        self.address_space_changes += other.address_space_changes;
        for (op, m) in &other.by_op {
            let e = self.by_op.entry(op).or_default();
            for (k, v) in m {
                *e.entry(k.clone()).or_default() += v;
            }
        }
        self.echo_bytes_checked += other.echo_bytes_checked;
        self.max_pinned_pages = self.max_pinned_pages.max(other.max_pinned_pages);
    }

    /// One line per operation: `REGISTER 12345: ok 9000, EFAULT 1200, ...`.
    pub fn table(&self) -> String {
        let mut s = String::new();
        for (op, m) in &self.by_op {
            let total: u64 = m.values().sum();
            let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k} {v}")).collect();
            s.push_str(&format!("  {op:<12} {total:>8}: {}\n", parts.join(", ")));
        }
        s
    }
}

/// The state of phase one.
pub(crate) struct Fuzzer {
    seed: u64,
    device: CString,
    lim: Limits,
    sessions: Vec<SessionM>,
    arena: Arena,
    scratch: Scratch,
    echo: ops_dma::Echo,
    next_tag: u64,
    index: u64,
    trace: VecDeque<String>,
    report: Report,
}

impl Fuzzer {
    /// Checks `got` against `expect`, records it, and fails with the trace if it does not fit.
    pub(crate) fn check(
        &mut self,
        op: &'static str,
        call: String,
        expect: &Expect,
        got: Answer,
    ) -> Result<Answer, FuzzError> {
        self.report.record(op, &got);
        let line = format!("#{} {call} -> {}", self.index, show(&got));
        if self.trace.len() == TRACE_LEN {
            self.trace.pop_front();
        }
        self.trace.push_back(line);
        if !expect.admits(&got) {
            return Err(self.oracle(call, expect.to_string(), show(&got)));
        }
        Ok(got)
    }

    /// [`Fuzzer::check`] for calls whose answer is not needed further.
    pub(crate) fn verify(
        &mut self,
        op: &'static str,
        call: String,
        expect: &Expect,
        got: Answer,
    ) -> Result<(), FuzzError> {
        self.check(op, call, expect, got).map(|_| ())
    }

    /// An oracle failure at the current call.
    pub(crate) fn oracle(&self, call: String, expected: String, got: String) -> FuzzError {
        FuzzError::Oracle {
            seed: self.seed,
            index: self.index,
            call,
            expected,
            got,
            trace: self.trace.iter().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n"),
        }
    }

    fn pinned_now(&self) -> u64 {
        self.sessions.iter().map(|s| s.pinned).sum()
    }

    /// One call, chosen by `rng`.
    fn step(&mut self, rng: &mut Rng) -> Result<(), FuzzError> {
        if self.sessions.is_empty() {
            return self.open(rng);
        }
        let roll = rng.below(100);
        match roll {
            0..=2 => self.open(rng),
            3..=4 => self.close(rng),
            5 => self.dup(rng),
            6..=9 => self.info(rng),
            10..=25 => self.register(rng),
            26..=29 if rng.chance(1, 50) => self.register_vec_memlock(rng),
            26..=29 => self.register_vec(rng),
            30..=36 => self.unregister(rng),
            37..=39 => self.unregister_vec(rng),
            40..=59 => self.submit(rng),
            60..=71 => self.reap(rng),
            72..=75 => self.poll(rng),
            76..=84 => self.copy_path(rng),
            85 => self.mmap_device(rng),
            86..=87 => self.bad_ioctl(rng),
            88..=92 => self.echo(rng),
            _ => {
                let what = self.arena.mutate(rng)?;
                self.report.address_space_changes += 1;
                if self.trace.len() == TRACE_LEN {
                    self.trace.pop_front();
                }
                self.trace.push_back(format!("   (address space: {what})"));
                Ok(())
            }
        }
    }
}

/// Runs phase one and phase two with `cfg`; prints progress to stdout.
pub fn run(cfg: &Config) -> Result<Report, FuzzError> {
    let started = Instant::now();
    let mut log = KernelLog::start()?;
    let mut rng = Rng::new(cfg.seed);
    let mut fz = Fuzzer::new(cfg, &mut rng)?;
    let every = (cfg.calls / 10).max(1);
    let mut next_progress = every;
    while fz.report.calls < cfg.calls {
        fz.index += 1;
        let mut call_rng = rng.fork();
        fz.step(&mut call_rng)?;
        fz.report.max_pinned_pages = fz.report.max_pinned_pages.max(fz.pinned_now());
        if fz.index % 2000 == 0 {
            let at = fz.index;
            log.check(|| {
                format!(
                    " during calls up to #{at} of seed {:#x} (replay with PINIO_FUZZ_SEED={:#x})",
                    cfg.seed, cfg.seed
                )
            })?;
        }
        if fz.report.calls >= next_progress {
            println!(
                "fuzz: {} calls, {} sessions, {} pages pinned, {:.1} s",
                fz.report.calls,
                fz.sessions.len(),
                fz.pinned_now(),
                started.elapsed().as_secs_f64()
            );
            next_progress += every;
        }
    }
    fz.shutdown()?;
    let mut report = std::mem::take(&mut fz.report);
    drop(fz);
    log.check(|| format!(" in phase one of seed {:#x}", cfg.seed))?;
    println!("fuzz: phase one done: {} calls in {:.1} s", report.calls, started.elapsed().as_secs_f64());

    let raced = race::run(cfg, report.calls, &mut rng.fork())?;
    report.merge(&raced);
    log.check(|| format!(" in phase two (races) of seed {:#x}", cfg.seed))?;
    report.elapsed = started.elapsed();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_parse_as_printed() {
        assert_eq!(parse_u64("S", "0xc97f01089657b5d5").unwrap(), 0xc97f_0108_9657_b5d5);
        assert_eq!(parse_u64("S", " 100_000 ").unwrap(), 100_000);
        assert_eq!(parse_u64("S", "0XfF").unwrap(), 255);
        let e = parse_u64("PINIO_FUZZ_CALLS", "lots").unwrap_err().to_string();
        assert!(e.contains("PINIO_FUZZ_CALLS") && e.contains("lots"), "{e}");
        assert!(parse_u64("S", "0x1_0000_0000_0000_0000").is_err(), "overflow is refused");
    }
}
