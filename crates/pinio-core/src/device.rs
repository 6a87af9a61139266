//! The device trait every backend implements, and [`DeviceCore`], the part
//! of every device that is the same for all backends.

use crate::caps::Admission;
use crate::{
    Capabilities, Direction, DmaBuf, Domain, DomainId, Error, Op, Queue, Region, RegisterError, Rejected, Result,
    Stats, StatsSnapshot, is_aligned,
};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Identifies one opened device for the life of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(u64);

impl DeviceId {
    fn next() -> DeviceId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        DeviceId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "device #{}", self.0)
    }
}

/// What every device has, whatever its backend: its id, its domain, its
/// capabilities, its current size, its IO counters, and the rules every
/// queue applies before an operation reaches the device (queue depth, queue
/// full, the slice's domain, alignment, transfer size, bounds).
///
/// A backend builds one when it opens a device and hands it out through
/// [`Device::core`]; its queues keep an `Arc` of the device's shared state
/// and call [`DeviceCore::admit`] in `push` and [`DeviceCore::record`] (or
/// [`Tally`]) at completion.
#[derive(Debug)]
pub struct DeviceCore {
    id: DeviceId,
    domain: Domain,
    caps: Capabilities,
    stats: Stats,
    admission: Admission,
    /// The device address space's current size: bounds are checked against
    /// it (one relaxed load per admitted operation). Starts at
    /// `caps.device_size`; [`DeviceCore::set_size`] changes it.
    size: AtomicU64,
}

impl DeviceCore {
    /// The common part of a device of `domain` with capabilities `caps`.
    pub fn new(domain: Domain, caps: Capabilities) -> DeviceCore {
        let admission = Admission::new(domain.id(), &caps);
        let size = AtomicU64::new(caps.device_size);
        DeviceCore { id: DeviceId::next(), domain, caps, stats: Stats::default(), admission, size }
    }

    /// The device's id.
    pub fn id(&self) -> DeviceId {
        self.id
    }

    /// The domain the device was opened in.
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// The id of that domain.
    pub fn domain_id(&self) -> DomainId {
        self.domain.id()
    }

    /// What the device requires and how it works.
    /// ([`Capabilities::device_size`] is the size at open; [`DeviceCore::size`]
    /// is the current one.)
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// The size of the device address space now, which bounds are checked
    /// against: [`Capabilities::device_size`] until the backend resizes the
    /// device (a file's `set_len`/`allocate`) and calls
    /// [`DeviceCore::set_size`].
    #[inline]
    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Relaxed)
    }

    /// For a backend whose device address space changed size (a file it
    /// resized, a size it refreshed): operations admitted from now on are
    /// checked against `size`. Operations already admitted are not checked
    /// again: a read of a shrunk file completes short, a write extends it
    /// again (memory safety does not depend on the size, only the data does).
    /// A backend serialises its resizes so that the last size stored is the
    /// last one it set.
    pub fn set_size(&self, size: u64) {
        self.size.store(size, Ordering::Relaxed);
    }

    /// The device's IO counters, for a backend to count what only it knows
    /// (bytes its CPU copied, fallbacks).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The device's IO counters with its domain's registration counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        self.stats.snapshot().with_registrations(&self.domain.stats())
    }

    /// Checks a queue depth asked of [`Device::queue`]: not 0, at most
    /// [`Capabilities::max_queue_depth`].
    pub fn queue_depth(&self, depth: usize) -> Result<usize> {
        if depth == 0 {
            return Err(Error::ZeroLength { what: "queue depth" });
        }
        if depth > self.caps.max_queue_depth {
            return Err(Error::QueueTooDeep { depth, max: self.caps.max_queue_depth });
        }
        Ok(depth)
    }

    /// Checks `op` against the device: the slice's domain, alignment,
    /// transfer size and bounds (of the current [`DeviceCore::size`]), with
    /// the typed error naming what is wrong.
    #[inline]
    pub fn check(&self, op: &Op) -> Result<()> {
        let size = self.size();
        if self.admission.admits(op, size) {
            return Ok(());
        }
        self.caps.check_at_size(self.domain.id(), op, size)
    }

    /// The rules of [`Queue::push`] every backend applies first: a queue
    /// holding `in_flight` of `capacity` operations is full, then
    /// [`DeviceCore::check`]. Hands `op` back to push, or refused with its
    /// reason.
    #[inline]
    pub fn admit(&self, op: Op, in_flight: usize, capacity: usize) -> Result<Op, Rejected> {
        match self.check_push(&op, in_flight, capacity) {
            Ok(()) => Ok(op),
            Err(error) => Err(Rejected { error, op }),
        }
    }

    /// [`DeviceCore::admit`] by reference: the same rules, without moving
    /// the operation in and out (for the hottest push paths, where the
    /// moves of a by-value `Op` through a `Result` cost more than the
    /// checks).
    #[inline]
    pub fn check_push(&self, op: &Op, in_flight: usize, capacity: usize) -> Result<()> {
        if in_flight >= capacity {
            return Err(Error::QueueFull { capacity });
        }
        let size = self.size();
        if self.admission.admits(op, size) {
            return Ok(());
        }
        self.caps.check_at_size(self.domain.id(), op, size)
    }

    /// The checks left for an operation re-armed in place: a slice that
    /// passed [`DeviceCore::check_push`] and moves again, in the same
    /// direction, at `dev_offset`. Its domain, address, length, transfer
    /// size, direction and segment count are those admitted before (a
    /// slice's region, offset and length never change while the queue
    /// holds it); what is new is the device offset, checked for alignment
    /// and against the device's current size, with the errors of
    /// [`DeviceCore::check`].
    #[inline]
    pub fn check_rearm(&self, dir: Direction, len: u64, dev_offset: u64) -> Result<()> {
        let size = self.size();
        if self.admission.admits_range(len, dev_offset, size) {
            return Ok(());
        }
        self.caps.check_device_range(dir, len, dev_offset, size)
    }

    /// Counts one finished operation in the device's statistics.
    #[inline]
    pub fn record(&self, dir: Direction, result: &Result<usize>) {
        match (result, dir) {
            (Ok(n), Direction::Read) => self.stats.read(*n as u64),
            (Ok(n), Direction::Write) => self.stats.written(*n as u64),
            (Err(_), _) => self.stats.failed(),
        }
    }

    /// Registers `buf` in the device's domain, after checking the address
    /// alignment this device needs of registered memory.
    pub fn register(&self, buf: DmaBuf) -> Result<Region, RegisterError> {
        let (addr, required) = (buf.as_ptr() as u64, self.caps.register_align);
        if !is_aligned(addr, required) {
            return Err(RegisterError::new(Error::Misaligned { what: "buffer address", value: addr, required }, buf));
        }
        self.domain.register(buf)
    }
}

/// Per-direction totals of a batch of completions, counted in plain
/// integers and folded into a device's statistics once per batch.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    reads: u64,
    read_bytes: u64,
    writes: u64,
    written_bytes: u64,
    failures: u64,
}

impl Tally {
    /// Counts one finished operation.
    #[inline]
    pub fn add(&mut self, dir: Direction, result: &Result<usize>) {
        match (result, dir) {
            (Ok(n), Direction::Read) => (self.reads, self.read_bytes) = (self.reads + 1, self.read_bytes + *n as u64),
            (Ok(n), Direction::Write) => {
                (self.writes, self.written_bytes) = (self.writes + 1, self.written_bytes + *n as u64)
            }
            (Err(_), _) => self.failures += 1,
        }
    }

    /// Counts one finished operation by its raw outcome: `Ok` with the
    /// bytes moved, or `Err` for a failure whose error is not built (yet).
    #[inline]
    pub fn add_raw(&mut self, dir: Direction, result: Result<usize, ()>) {
        match (result, dir) {
            (Ok(n), Direction::Read) => (self.reads, self.read_bytes) = (self.reads + 1, self.read_bytes + n as u64),
            (Ok(n), Direction::Write) => {
                (self.writes, self.written_bytes) = (self.writes + 1, self.written_bytes + n as u64)
            }
            (Err(()), _) => self.failures += 1,
        }
    }

    /// Bytes moved by the successful operations counted.
    pub fn bytes(&self) -> u64 {
        self.read_bytes + self.written_bytes
    }

    /// Adds the totals to `stats`, as one call per operation would.
    #[inline]
    pub fn fold_into(&self, stats: &Stats) {
        if self.reads > 0 {
            stats.read_many(self.reads, self.read_bytes);
        }
        if self.writes > 0 {
            stats.written_many(self.writes, self.written_bytes);
        }
        if self.failures > 0 {
            stats.failed_many(self.failures);
        }
    }
}

/// One opened device: a linear `u64` address space (a file, a block device,
/// an echo device's memory, a PCI device's buffer, an NVMe namespace) in a
/// [`Domain`] whose regions it accepts.
///
/// A device is shared between threads (`Send + Sync`); each thread doing IO
/// makes its own [`Queue`]. A backend implements the three required methods;
/// the rest comes from its [`DeviceCore`].
pub trait Device: Send + Sync {
    /// The part every device shares.
    fn core(&self) -> &DeviceCore;

    /// A one-line description (`uring:/var/tmp/f (O_DIRECT, fixed buffers)`).
    fn describe(&self) -> String;

    /// Makes a queue that holds up to `depth` operations in flight
    /// (checked with [`DeviceCore::queue_depth`]).
    fn queue(&self, depth: usize) -> Result<Box<dyn Queue>>;

    /// This device's id.
    fn id(&self) -> DeviceId {
        self.core().id()
    }

    /// The domain this device was opened in: register once there, use the
    /// region on every device of the domain.
    fn domain(&self) -> &Domain {
        self.core().domain()
    }

    /// What the device requires and how it works
    /// ([`Capabilities::device_size`] is the size at open).
    fn capabilities(&self) -> &Capabilities {
        self.core().capabilities()
    }

    /// The size of the device address space now: the size at open, until a
    /// backend that can resize its target (a file's `set_len`, `allocate`)
    /// changes it. Bounds are checked against this size.
    fn size(&self) -> u64 {
        self.core().size()
    }

    /// This device's IO counters, with its domain's registration counters
    /// (which every device of the domain reports alike).
    fn stats(&self) -> StatsSnapshot {
        self.core().snapshot()
    }

    /// Registers (pins) `buf` in this device's domain. On failure the buffer
    /// comes back inside the error, unchanged.
    fn register(&self, buf: DmaBuf) -> Result<Region, RegisterError> {
        self.core().register(buf)
    }

    /// Allocates and registers a region of at least `len` bytes in this
    /// device's domain ([`Domain::alloc`]).
    fn alloc(&self, len: usize) -> Result<Region> {
        self.domain().alloc(len)
    }
}
