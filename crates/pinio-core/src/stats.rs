//! Counters every backend keeps: how much was pinned, moved and copied.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Live counters of one device (IO) or one domain (registrations), updated
/// by pinio-core and the backend. Cheap to bump from
/// any thread; read a consistent-enough copy with [`Stats::snapshot`].
#[derive(Debug, Default)]
pub struct Stats {
    pins: AtomicU64,
    unpins: AtomicU64,
    bytes_pinned: AtomicU64,
    ops: AtomicU64,
    errors: AtomicU64,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
    bytes_copied: AtomicU64,
    unregistered_fallbacks: AtomicU64,
    unregister_failures: AtomicU64,
}

impl Stats {
    /// Records a registration of `bytes`.
    pub fn pinned(&self, bytes: u64) {
        self.pins.fetch_add(1, Relaxed);
        self.bytes_pinned.fetch_add(bytes, Relaxed);
    }

    /// Records the release of a registration of `bytes`.
    pub fn unpinned(&self, bytes: u64) {
        self.unpins.fetch_add(1, Relaxed);
        self.bytes_pinned.fetch_sub(bytes, Relaxed);
    }

    /// Records a completed read (device to memory) of `bytes`.
    pub fn read(&self, bytes: u64) {
        self.ops.fetch_add(1, Relaxed);
        self.bytes_read.fetch_add(bytes, Relaxed);
    }

    /// Records a completed write (memory to device) of `bytes`.
    pub fn written(&self, bytes: u64) {
        self.ops.fetch_add(1, Relaxed);
        self.bytes_written.fetch_add(bytes, Relaxed);
    }

    /// Records a failed operation.
    pub fn failed(&self) {
        self.ops.fetch_add(1, Relaxed);
        self.errors.fetch_add(1, Relaxed);
    }

    /// Records `ops` completed reads moving `bytes` in total, as `ops` calls
    /// of [`Stats::read`] would, in two atomic additions: for a backend that
    /// counts a batch of completions in plain integers and folds them in
    /// before handing the batch to its caller.
    pub fn read_many(&self, ops: u64, bytes: u64) {
        self.ops.fetch_add(ops, Relaxed);
        self.bytes_read.fetch_add(bytes, Relaxed);
    }

    /// Records `ops` completed writes moving `bytes` in total, as `ops`
    /// calls of [`Stats::written`] would.
    pub fn written_many(&self, ops: u64, bytes: u64) {
        self.ops.fetch_add(ops, Relaxed);
        self.bytes_written.fetch_add(bytes, Relaxed);
    }

    /// Records `ops` failed operations, as `ops` calls of [`Stats::failed`]
    /// would.
    pub fn failed_many(&self, ops: u64) {
        self.ops.fetch_add(ops, Relaxed);
        self.errors.fetch_add(ops, Relaxed);
    }

    /// Records `bytes` of payload copied by the CPU.
    pub fn copied(&self, bytes: u64) {
        self.bytes_copied.fetch_add(bytes, Relaxed);
    }

    /// Records an operation that ran without registration because
    /// registration was refused and the fallback policy was chosen.
    pub fn unregistered_fallback(&self) {
        self.unregistered_fallbacks.fetch_add(1, Relaxed);
    }

    /// Records an unregistration that failed where it could not be reported
    /// (in a `Drop`).
    pub fn unregister_failed(&self) {
        self.unregister_failures.fetch_add(1, Relaxed);
    }

    /// A copy of every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            pins: self.pins.load(Relaxed),
            unpins: self.unpins.load(Relaxed),
            bytes_pinned: self.bytes_pinned.load(Relaxed),
            ops: self.ops.load(Relaxed),
            errors: self.errors.load(Relaxed),
            bytes_read: self.bytes_read.load(Relaxed),
            bytes_written: self.bytes_written.load(Relaxed),
            bytes_copied: self.bytes_copied.load(Relaxed),
            unregistered_fallbacks: self.unregistered_fallbacks.load(Relaxed),
            unregister_failures: self.unregister_failures.load(Relaxed),
        }
    }
}

/// A point-in-time copy of a device's [`Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Registrations made.
    pub pins: u64,
    /// Registrations released.
    pub unpins: u64,
    /// Bytes registered right now.
    pub bytes_pinned: u64,
    /// Operations completed (successfully or not).
    pub ops: u64,
    /// Operations that failed.
    pub errors: u64,
    /// Bytes moved from the device into memory.
    pub bytes_read: u64,
    /// Bytes moved from memory to the device.
    pub bytes_written: u64,
    /// Payload bytes the CPU copied (0 on a zero-copy path).
    pub bytes_copied: u64,
    /// Operations that ran unregistered after registration was refused.
    pub unregistered_fallbacks: u64,
    /// Unregistrations that failed inside a `Drop`.
    pub unregister_failures: u64,
}

impl StatsSnapshot {
    /// These IO counters with the registration counters (pins, unpins,
    /// bytes pinned, failed releases) of `domain`.
    pub fn with_registrations(self, domain: &StatsSnapshot) -> StatsSnapshot {
        StatsSnapshot {
            pins: domain.pins,
            unpins: domain.unpins,
            bytes_pinned: domain.bytes_pinned,
            unregister_failures: domain.unregister_failures,
            ..self
        }
    }

    /// Bytes moved in either direction.
    pub fn bytes_moved(&self) -> u64 {
        self.bytes_read + self.bytes_written
    }

    /// The counters accumulated since `earlier` (`bytes_pinned` stays absolute).
    pub fn since(&self, earlier: &StatsSnapshot) -> StatsSnapshot {
        StatsSnapshot {
            pins: self.pins - earlier.pins,
            unpins: self.unpins - earlier.unpins,
            bytes_pinned: self.bytes_pinned,
            ops: self.ops - earlier.ops,
            errors: self.errors - earlier.errors,
            bytes_read: self.bytes_read - earlier.bytes_read,
            bytes_written: self.bytes_written - earlier.bytes_written,
            bytes_copied: self.bytes_copied - earlier.bytes_copied,
            unregistered_fallbacks: self.unregistered_fallbacks - earlier.unregistered_fallbacks,
            unregister_failures: self.unregister_failures - earlier.unregister_failures,
        }
    }
}

impl fmt::Display for StatsSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pins {} (unpins {}, {} B pinned now), ops {} ({} failed), read {} B, written {} B, CPU-copied {} B",
            self.pins,
            self.unpins,
            self.bytes_pinned,
            self.ops,
            self.errors,
            self.bytes_read,
            self.bytes_written,
            self.bytes_copied
        )?;
        if self.unregistered_fallbacks > 0 {
            write!(f, ", {} ops unregistered (fallback)", self.unregistered_fallbacks)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_count_as_the_single_calls_they_stand_for() {
        let (one, many) = (Stats::default(), Stats::default());
        for n in [512u64, 4096, 0] {
            one.read(n);
        }
        for n in [8192u64, 1] {
            one.written(n);
        }
        one.failed();
        one.failed();
        many.read_many(3, 512 + 4096);
        many.written_many(2, 8192 + 1);
        many.failed_many(2);
        assert_eq!(one.snapshot(), many.snapshot());
        let s = many.snapshot();
        assert_eq!((s.ops, s.errors, s.bytes_read, s.bytes_written), (7, 2, 4608, 8193));
    }
}
