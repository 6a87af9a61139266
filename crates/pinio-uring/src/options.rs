//! How a uring domain is made ([`UringDomainOptions`]) and how a target is
//! opened in it ([`UringOptions`]).

/// What to do when the kernel refuses to register a buffer because of the
/// locked-memory limit (`ENOMEM` under `RLIMIT_MEMLOCK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RegistrationPolicy {
    /// Return [`pinio_core::Error::MemlockLimit`] naming the limit and the
    /// bytes asked for.
    #[default]
    Fail,
    /// Hand out the region anyway, unregistered
    /// ([`pinio_core::Registration::None`]): its operations run as plain
    /// `READ`/`WRITE` (the kernel pins the pages per operation). A warning is
    /// printed once per process on stderr and every such operation is
    /// counted in [`pinio_core::StatsSnapshot::unregistered_fallbacks`].
    Fallback,
}

/// Options of a uring domain ([`crate::UringRegistrar::domain`]): what is
/// shared by every file opened in it.
///
/// The default: fixed buffers, registration failures reported as errors,
/// no arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UringDomainOptions {
    /// Register regions as io_uring fixed buffers in the domain's buffer
    /// table and use `READ_FIXED` / `WRITE_FIXED`. `false` uses plain
    /// `READ` / `WRITE` with no registration at all, for comparisons.
    pub fixed_buffers: bool,
    /// What to do when registration is refused by `RLIMIT_MEMLOCK`.
    pub registration: RegistrationPolicy,
    /// When above 0, one arena of this many bytes is registered when the
    /// domain is made and [`pinio_core::Domain::alloc`] (and so
    /// [`pinio_core::Device::alloc`]) hands out page-aligned pieces of it
    /// (one registration, no per-region pinning). Requests the arena cannot
    /// serve get a buffer of their own.
    pub arena_bytes: usize,
}

impl Default for UringDomainOptions {
    fn default() -> Self {
        UringDomainOptions { fixed_buffers: true, registration: RegistrationPolicy::Fail, arena_bytes: 0 }
    }
}

/// Options of [`crate::UringDevice::open`] and
/// [`crate::UringDevice::open_in`].
///
/// `direct`, `writable`, `create`, `ring_entries`, `sqpoll` and `iopoll`
/// are the target's own.
/// `fixed_buffers`, `registration` and `arena_bytes` are domain-wide (they
/// are [`UringDomainOptions`]): [`crate::UringDevice::open`] makes a fresh
/// domain with them ([`UringOptions::domain_options`]), while
/// [`crate::UringDevice::open_in`] ignores them and uses the domain's
/// ([`crate::UringDevice::options`] reports the ones in effect).
///
/// The default is the fast path: O_DIRECT, fixed buffers, registration
/// failures reported as errors, no arena, 128 ring entries, no SQPOLL, no
/// IOPOLL, cooperative task running, not single-issuer, opened read-write,
/// the file must exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UringOptions {
    /// Open the target with `O_DIRECT` (DMA straight into registered
    /// memory). Without it the kernel copies through the page cache, which
    /// [`pinio_core::Capabilities::cpu_copies`] and the statistics report.
    pub direct: bool,
    /// Domain-wide: [`UringDomainOptions::fixed_buffers`].
    pub fixed_buffers: bool,
    /// Domain-wide: [`UringDomainOptions::registration`].
    pub registration: RegistrationPolicy,
    /// Domain-wide: [`UringDomainOptions::arena_bytes`].
    pub arena_bytes: usize,
    /// Submission-queue entries of each queue's ring (raised to the queue's
    /// depth when smaller; rounded up to a power of two, at most 32768).
    pub ring_entries: u32,
    /// Use a kernel submission-polling thread per queue that sleeps after this
    /// many idle milliseconds. Off by default: on a machine with few CPUs the
    /// polling thread competes with the application and loses throughput.
    pub sqpoll: Option<u32>,
    /// Open the target read-write (`false`: read-only, writes fail with `EBADF`).
    pub writable: bool,
    /// Polled completions (`IORING_SETUP_IOPOLL`, off by default): reads and
    /// writes are issued as polled block IO (on the driver's poll queues
    /// where it has some, e.g. the nvme driver with `nvme.poll_queues=N`;
    /// elsewhere the block layer completes them by interrupt), and nothing
    /// is posted to the completion ring until the queue polls for it:
    /// [`pinio_core::Queue::poll`] and [`pinio_core::Queue::wait`] always
    /// enter the kernel (`IORING_ENTER_GETEVENTS`), which spins on the
    /// device. Needs `direct` (the kernel polls only direct IO; buffered
    /// is refused at open with [`crate::UringError::IopollNeedsDirect`]).
    /// A file whose file system cannot poll fails each operation with
    /// `EOPNOTSUPP` (an [`pinio_core::Error::Io`] naming the option).
    /// `IORING_OP_FSYNC` cannot run on such a ring: [`pinio_core::Queue::flush`]
    /// waits for every operation pushed to the queue, then calls
    /// `fdatasync`/`fsync` (same contract, blocking;
    /// [`pinio_core::Queue::start_flush`] does the same and reports it done).
    /// The queue has no event fd ([`pinio_core::Queue::event_fd`] is `None`):
    /// completions appear only when it is polled.
    pub iopoll: bool,
    /// `IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG` (on by
    /// default): to post a completion the kernel does not interrupt the
    /// submitting thread while it runs in user space (a sleeping one is
    /// still woken); it flags the ring and posts the completion at the
    /// thread's next system call, which [`pinio_core::Queue::poll`] makes
    /// when the flag is up. Off: an inter-processor interrupt when the
    /// thread is running. Measured in `docs/benchmarks.md`; the trade-off:
    /// a thread that submitted and then computes for long without a system
    /// call delays the completions another thread waits for (on the
    /// queue's event fd).
    pub coop_taskrun: bool,
    /// `IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN` (off by
    /// default): each queue's ring accepts submissions from one thread
    /// only, and completions are posted only when that thread waits or
    /// polls, in one batch. The ring is created disabled and enabled by the
    /// first call that enters the kernel, on whichever thread makes it; from
    /// then on the queue must be used (pushed, submitted, polled, waited,
    /// flushed, dropped) on that thread, elsewhere it fails with
    /// [`crate::UringError::NotOwner`]. Such a queue takes new buffer-table
    /// slots of its domain when it next enters the kernel (not when they
    /// are registered), so memory unregistered meanwhile stays pinned until
    /// then. Needs Linux 6.1 and a domain sharing one table
    /// (`IORING_REGISTER_CLONE_BUFFERS`); elsewhere it is ignored.
    pub single_issuer: bool,
    /// Run a vectored operation as one `IORING_OP_READV_FIXED` /
    /// `WRITEV_FIXED` SQE (Linux 6.15+) when the kernel has them and its
    /// slices lie in one registered buffer (on by default). Off, or on an
    /// older kernel, every vectored operation is split into one
    /// `READ_FIXED`/`WRITE_FIXED` SQE per slice completing as one
    /// ([`pinio_core::VectoredIo::Emulated`]), for comparisons and tests of
    /// that path. See `docs/vectored.md`.
    pub vectored_fixed: bool,
    /// `Some(size)`: create the file if it is missing and make it at least
    /// `size` bytes long ([`pinio_file::FileOpen::create`]). `None` (the
    /// default): the file must exist.
    pub create: Option<u64>,
}

impl UringOptions {
    /// The domain-wide part: what [`crate::UringDevice::open`] makes its
    /// domain with.
    pub fn domain_options(&self) -> UringDomainOptions {
        UringDomainOptions {
            fixed_buffers: self.fixed_buffers,
            registration: self.registration,
            arena_bytes: self.arena_bytes,
        }
    }

    /// These options with the domain-wide part replaced by `domain`.
    pub fn with_domain_options(self, domain: UringDomainOptions) -> UringOptions {
        UringOptions {
            fixed_buffers: domain.fixed_buffers,
            registration: domain.registration,
            arena_bytes: domain.arena_bytes,
            ..self
        }
    }
}

impl Default for UringOptions {
    fn default() -> Self {
        let d = UringDomainOptions::default();
        UringOptions {
            direct: true,
            fixed_buffers: d.fixed_buffers,
            registration: d.registration,
            arena_bytes: d.arena_bytes,
            ring_entries: 128,
            sqpoll: None,
            iopoll: false,
            coop_taskrun: true,
            single_issuer: false,
            writable: true,
            vectored_fixed: true,
            create: None,
        }
    }
}
