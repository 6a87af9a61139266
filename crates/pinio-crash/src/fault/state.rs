//! The plan and the counters a fault device shares with its queues, and
//! the decision for each operation.

use super::rules::{Fault, FaultPlan, OpKind, When};
use crate::rng::SplitMix;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The plan and the counters, shared by a device's queues.
pub(crate) struct FaultState {
    pub(crate) plan: FaultPlan,
    reads: AtomicU64,
    writes: AtomicU64,
    ios: AtomicU64,
    flushes: AtomicU64,
    injected: AtomicU64,
    rng: Mutex<SplitMix>,
}

impl FaultState {
    /// A fresh state for `plan`: no operation counted yet.
    pub(crate) fn new(plan: FaultPlan) -> FaultState {
        let rng = Mutex::new(SplitMix::new(plan.seed));
        FaultState {
            plan,
            reads: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            ios: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
            injected: AtomicU64::new(0),
            rng,
        }
    }

    /// How many faults were injected so far.
    pub(crate) fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }
}

/// What the plan decided for one operation: the fault, and a description
/// naming the rule and the operation's number.
pub(crate) type Decision = Option<(Fault, String)>;

impl FaultState {
    /// Counts one operation of `dir` (or a flush when `None`) and decides.
    pub(crate) fn decide(&self, dir: Option<pinio_core::Direction>) -> Decision {
        use pinio_core::Direction;
        let (kind_n, io_n) = match dir {
            Some(Direction::Read) => {
                (self.reads.fetch_add(1, Ordering::Relaxed) + 1, Some(self.ios.fetch_add(1, Ordering::Relaxed) + 1))
            }
            Some(Direction::Write) => {
                (self.writes.fetch_add(1, Ordering::Relaxed) + 1, Some(self.ios.fetch_add(1, Ordering::Relaxed) + 1))
            }
            None => (self.flushes.fetch_add(1, Ordering::Relaxed) + 1, None),
        };
        for rule in &self.plan.rules {
            let n = match (rule.kind, dir) {
                (OpKind::Read, Some(Direction::Read))
                | (OpKind::Write, Some(Direction::Write))
                | (OpKind::Flush, None) => kind_n,
                (OpKind::Io, Some(_)) => io_n.unwrap_or(0),
                _ => continue,
            };
            let hit = match rule.when {
                When::Range(a, b) => (a..=b).contains(&n),
                When::Chance(p) => self.rng.lock().unwrap_or_else(|e| e.into_inner()).chance(p),
            };
            if hit {
                self.injected.fetch_add(1, Ordering::Relaxed);
                let what = match rule.kind {
                    OpKind::Io => format!("io #{n}"),
                    k => format!("{k:?} #{n}").to_lowercase(),
                };
                return Some((rule.fault, format!("injected fault {rule} on {what}")));
            }
        }
        None
    }
}
