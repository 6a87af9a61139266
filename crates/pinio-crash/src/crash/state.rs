//! Crash states: which writes are on the device after a crash, and how.

use super::history::History;
use super::pieces::pieces;
use crate::rng::SplitMix;
use std::fmt;

/// A write that landed in a crash state beyond the durable image.
#[derive(Debug, Clone, PartialEq)]
pub struct Extra {
    /// The write (index in [`History::writes`]).
    pub write: usize,
    /// When it landed, in event indices: between its push and its
    /// completion (or the crash); later writes overwrite earlier ones.
    pub time: f64,
    /// `None`: all of it; else which of its atomic pieces (sectors)
    /// persisted.
    pub torn: Option<Vec<bool>>,
}

/// How a state was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateKind {
    /// Exactly what the epoch's flushes made durable.
    Durable,
    /// Every write of the epoch's window landed whole, in completion order.
    AllLanded,
    /// A random subset of the window, in a random order its completions
    /// allow, some torn.
    Sampled,
    /// Chosen by the shrinker: a subset of a failing state's writes.
    Shrunk,
}

/// One crash state: the durable image of an epoch plus the writes that
/// landed on top.
#[derive(Debug, Clone, PartialEq)]
pub struct CrashState {
    /// Its index in the run (with the seed, it reproduces the state).
    pub index: u64,
    /// The epoch whose durable image it starts from.
    pub epoch: usize,
    /// How it was chosen.
    pub kind: StateKind,
    /// The writes that landed beyond the durable image.
    pub extra: Vec<Extra>,
}

/// Chooses crash states of a history: deterministic from the seed, and
/// state `i` depends only on `(seed, i)`.
///
/// The epochs are those from the first completed flush on (before it the
/// application was promised nothing; [`Generator::from_start`] adds epoch
/// 0). States `0..E` (E epochs) are each epoch's durable image alone; the
/// next ones go round the epochs whose window is not empty, first with every
/// window write landed whole, then sampled: each write of the window lands
/// with a probability drawn per state, each landed write of more than one
/// sector is torn with probability 1/4 (a random subset of its sectors
/// persists), and each lands at a random time between its push and its
/// completion (or the crash), which orders overlapping writes.
#[derive(Debug)]
pub struct Generator<'h> {
    h: &'h History,
    seed: u64,
    sector: u64,
    epochs: Vec<usize>,
    busy: Vec<usize>,
}

impl<'h> Generator<'h> {
    /// A generator over `h` with `seed`, tearing at `sector` bytes.
    /// A log without any completed flush has only epoch 0, which is then
    /// used.
    pub fn new(h: &'h History, seed: u64, sector: u64) -> Generator<'h> {
        let first = if h.epochs.len() > 1 { 1 } else { 0 };
        Generator::with_epochs(h, seed, sector, first)
    }

    /// Like [`Generator::new`], with the states before the first completed
    /// flush too.
    pub fn from_start(h: &'h History, seed: u64, sector: u64) -> Generator<'h> {
        Generator::with_epochs(h, seed, sector, 0)
    }

    fn with_epochs(h: &'h History, seed: u64, sector: u64, first: usize) -> Generator<'h> {
        let epochs: Vec<usize> = (first..h.epochs.len()).collect();
        let busy = epochs.iter().copied().filter(|&k| !h.epochs[k].window.is_empty()).collect();
        Generator { h, seed, sector, epochs, busy }
    }

    /// Distinct deterministic states before the sampled ones.
    pub fn fixed_states(&self) -> u64 {
        (self.epochs.len() + self.busy.len()) as u64
    }

    /// The epochs states are drawn from.
    pub fn epochs(&self) -> &[usize] {
        &self.epochs
    }

    /// State `i`.
    pub fn state(&self, i: u64) -> CrashState {
        let e = self.epochs.len() as u64;
        if i < e || self.busy.is_empty() {
            let epoch = self.epochs.get((i % e.max(1)) as usize).copied().unwrap_or(0);
            return CrashState { index: i, epoch, kind: StateKind::Durable, extra: Vec::new() };
        }
        let j = i - e;
        let b = self.busy.len() as u64;
        let k = self.busy[(j % b) as usize];
        let window = &self.h.epochs[k].window;
        if j < b {
            let extra =
                window.iter().map(|&w| Extra { write: w, time: self.h.latest_time(w, k), torn: None }).collect();
            return CrashState { index: i, epoch: k, kind: StateKind::AllLanded, extra };
        }
        let mut rng = SplitMix::for_item(self.seed, i);
        let p = rng.unit();
        let mut chosen: Vec<usize> = window.iter().copied().filter(|_| rng.chance(p)).collect();
        if chosen.is_empty() {
            chosen.push(window[rng.below(window.len() as u64) as usize]);
        }
        let extra = chosen
            .into_iter()
            .map(|w| {
                let wr = &self.h.writes[w];
                let lo = wr.pushed as f64;
                let hi = self.h.latest_time(w, k).max(lo);
                let time = lo + (hi - lo) * rng.unit();
                let n = pieces(wr.offset, wr.data.len() as u64, self.sector).count();
                let torn = (n > 1 && rng.below(4) == 0).then(|| {
                    let mut keep: Vec<bool> = (0..n).map(|_| rng.chance(0.5)).collect();
                    if keep.iter().all(|&x| x) || keep.iter().all(|&x| !x) {
                        let at = rng.below(n as u64) as usize;
                        keep[at] = !keep[at];
                    }
                    keep
                });
                Extra { write: w, time, torn }
            })
            .collect();
        CrashState { index: i, epoch: k, kind: StateKind::Sampled, extra }
    }
}

/// A state described for a report.
pub struct Describe<'a>(pub &'a History, pub &'a CrashState);

impl fmt::Display for Describe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, s) = (self.0, self.1);
        let ep = &h.epochs[s.epoch];
        match ep.flush {
            None => write!(f, "before any completed flush")?,
            Some(fl) => write!(f, "after the {} completed flush (log id {})", ordinal(s.epoch), h.flushes[fl].id)?,
        }
        let torn = s.extra.iter().filter(|x| x.torn.is_some()).count();
        let durable = h.durable_count(s.epoch);
        let plural = if durable == 1 { "" } else { "s" };
        write!(
            f,
            ", {durable} write{plural} durable, {} of the {} later writes landed",
            s.extra.len(),
            ep.window.len()
        )?;
        if torn > 0 {
            write!(f, " ({torn} torn)")?;
        }
        Ok(())
    }
}

fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, r) if r != 11 => "st",
        (2, r) if r != 12 => "nd",
        (3, r) if r != 13 => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// One landed write described: id, range, and what persisted of it.
pub struct DescribeExtra<'a>(pub &'a History, pub &'a Extra, pub u64);

impl fmt::Display for DescribeExtra<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, x, sector) = (self.0, self.1, self.2);
        let w = &h.writes[x.write];
        let status = match w.done {
            None => "never completed".to_string(),
            Some((_, n)) if n >= 0 => format!("completed {n} B"),
            Some((_, n)) => format!("failed ({n})"),
        };
        write!(f, "write id {} [{:#x}, +{:#x}) on queue {} ({status})", w.id, w.offset, w.data.len(), w.queue)?;
        if let Some(keep) = &x.torn {
            let kept: Vec<String> = keep.iter().enumerate().filter(|(_, k)| **k).map(|(i, _)| i.to_string()).collect();
            write!(f, " torn: only {}-byte sectors {} of {} persisted", sector, kept.join(","), keep.len())?;
        }
        Ok(())
    }
}
