//! [`FaultDevice`]: a device whose queues fail chosen operations.

use super::queue::FaultQueue;
use super::rules::{Fault, FaultPlan, OpKind, When};
use crate::rng::SplitMix;
use pinio_core::{Device, DeviceCore, Queue, Result};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A device that forwards operations to another, except those its
/// [`FaultPlan`] picks: they fail with `EIO` or `ENOSPC` (without reaching
/// the device), move only half their bytes, or complete late or out of
/// order. Like [`crate::RecordDevice`] it is the inner device as far as
/// regions, capabilities and statistics go (it hands out the inner
/// [`DeviceCore`]); an injected failure is counted nowhere but in
/// [`FaultDevice::injected`].
///
/// Every injected outcome keeps the queue contract: an operation fails in
/// its [`pinio_core::Completion`], which hands every slice back; a failing
/// flush returns an [`pinio_core::Error::Io`] with the errno; nothing is
/// leaked or lost in the wrapper (dropping a queue drops what it holds
/// back, after the inner queue's drop waited for the device).
pub struct FaultDevice {
    inner: Arc<dyn Device>,
    state: Arc<FaultState>,
}

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

impl std::fmt::Debug for FaultDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultDevice")
            .field("inner", &self.inner.describe())
            .field("plan", &self.state.plan.to_string())
            .finish()
    }
}

impl FaultDevice {
    /// Wraps `inner` with `plan`.
    pub fn new(inner: Box<dyn Device>, plan: FaultPlan) -> FaultDevice {
        let rng = Mutex::new(SplitMix::new(plan.seed));
        let state = FaultState {
            plan,
            reads: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            ios: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
            injected: AtomicU64::new(0),
            rng,
        };
        FaultDevice { inner: Arc::from(inner), state: Arc::new(state) }
    }

    /// How many faults were injected so far.
    pub fn injected(&self) -> u64 {
        self.state.injected.load(Ordering::Relaxed)
    }

    /// The plan.
    pub fn plan(&self) -> &FaultPlan {
        &self.state.plan
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

impl Device for FaultDevice {
    fn core(&self) -> &DeviceCore {
        self.inner.core()
    }

    fn describe(&self) -> String {
        format!("fault:{}:{}", self.state.plan, self.inner.describe())
    }

    fn queue(&self, depth: usize) -> Result<Box<dyn Queue>> {
        let inner = self.inner.queue(depth)?;
        Ok(Box::new(FaultQueue::new(inner, self.inner.clone(), self.state.clone())))
    }
}
