//! How a [`crate::UringDevice`] is opened.

/// What to do when the kernel refuses to register a buffer because of the
/// locked-memory limit (`ENOMEM` under `RLIMIT_MEMLOCK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RegistrationPolicy {
    /// Return [`pinio_core::Error::MemlockLimit`] naming the limit and the
    /// bytes asked for.
    #[default]
    Fail,
    /// Hand out the region anyway, unregistered: its operations run as plain
    /// `READ`/`WRITE` (the kernel pins the pages per operation). A warning is
    /// printed once on stderr and every such operation is counted in
    /// [`pinio_core::StatsSnapshot::unregistered_fallbacks`].
    Fallback,
}

/// Options of [`crate::UringDevice::open`].
///
/// The default is the fast path: O_DIRECT, fixed buffers, registration
/// failures reported as errors, no arena, 128 ring entries, no SQPOLL,
/// opened read-write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UringOptions {
    /// Open the target with `O_DIRECT` (DMA straight into registered
    /// memory). Without it the kernel copies through the page cache, which
    /// [`pinio_core::Capabilities::cpu_copies`] and the statistics report.
    pub direct: bool,
    /// Register regions as io_uring fixed buffers and use `READ_FIXED` /
    /// `WRITE_FIXED`. `false` uses plain `READ` / `WRITE` with no
    /// registration at all, for comparisons.
    pub fixed_buffers: bool,
    /// What to do when registration is refused by `RLIMIT_MEMLOCK`.
    pub registration: RegistrationPolicy,
    /// When above 0, one arena of this many bytes is registered at open and
    /// [`pinio_core::Device::alloc`] hands out pieces of it (one
    /// registration, no per-region pinning). Requests the arena cannot serve
    /// get a buffer of their own.
    pub arena_bytes: usize,
    /// Submission-queue entries of each queue's ring (raised to the queue's
    /// depth when smaller; rounded up to a power of two).
    pub ring_entries: u32,
    /// Use a kernel submission-polling thread per queue that sleeps after this
    /// many idle milliseconds. Off by default: on a machine with few CPUs the
    /// polling thread competes with the application and loses throughput.
    pub sqpoll: Option<u32>,
    /// Open the target read-write (`false`: read-only, writes fail with `EBADF`).
    pub writable: bool,
}

impl Default for UringOptions {
    fn default() -> Self {
        UringOptions {
            direct: true,
            fixed_buffers: true,
            registration: RegistrationPolicy::Fail,
            arena_bytes: 0,
            ring_entries: 128,
            sqpoll: None,
            writable: true,
        }
    }
}
