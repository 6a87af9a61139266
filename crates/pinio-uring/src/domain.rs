//! [`UringRegistrar`]: what a uring domain holds for every file opened in it
//! — one table of registered buffers, the optional arena, the registration
//! policy.

use crate::arena::Arena;
use crate::memlock;
use crate::registry::{RegisterFailure, Registry, Sharing, TableRing};
use crate::{RegistrationPolicy, UringDomainOptions};
use pinio_core::{DmaBuf, Domain, Error, RegionKey, Registrar, Registration, RegistrationSharing, Result, page_size};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the fallback warning was printed (once per process, however many
/// domains fall back).
static WARNED: AtomicBool = AtomicBool::new(false);

/// The registrar of a uring domain: one table of io_uring fixed buffers
/// that the ring of every queue (and every [`crate::net::ZcSender`]) of
/// every file opened in the domain subscribes to, so that a region
/// registered once is usable by all of them.
///
/// Made with [`UringRegistrar::domain`]; found again in a domain with
/// [`Domain::registrar`]. See the [crate docs](crate) for how the table
/// reaches every ring.
pub struct UringRegistrar {
    opts: UringDomainOptions,
    /// `None` when fixed buffers are off. Declared before `arena`, so that
    /// the table (holding the arena's slot) is dropped before the arena's
    /// memory.
    registry: Option<Arc<Registry>>,
    arena: Option<Arc<Arena>>,
    /// The locked-memory limit the table's registrations are charged
    /// against, read when the table ring was made.
    max_pinned: Option<u64>,
    /// Retries of registrations refused by a charge the kernel releases
    /// late (see [`crate::memlock`]).
    late_release: memlock::LateRelease,
}

impl UringRegistrar {
    /// A new uring domain: its buffer table (when `opts.fixed_buffers`) and
    /// its arena (when `opts.arena_bytes > 0`), registered here, so that a
    /// refused arena registration fails this call under
    /// [`RegistrationPolicy::Fail`].
    ///
    /// Every ring of the domain must be made by threads with the same
    /// `CAP_IPC_LOCK` state as this one (the kernel does not clone a buffer
    /// table between rings accounted differently).
    pub fn domain(opts: UringDomainOptions) -> Result<Domain> {
        let registry = if opts.fixed_buffers { Some(Arc::new(Registry::new()?)) } else { None };
        let max_pinned = if opts.fixed_buffers { memlock::max_pinned_bytes() } else { None };
        let mut registrar =
            UringRegistrar { opts, registry, arena: None, max_pinned, late_release: Default::default() };
        if opts.arena_bytes > 0 {
            let mut buf = DmaBuf::builder(opts.arena_bytes).populate(true).build()?;
            // the arena's memory lives inside `Arena`, owned by the
            // registrar, until after the registry (and so the slot) is gone:
            // `registry` is dropped first; pieces are handed out only as
            // regions, so devices touch it only through slices a queue owns
            // (the DMA ownership rule, pinio_core::domain).
            // SAFETY: the arena outlives its slot, and devices touch it only through slices a queue owns (argued above).
            let registration = unsafe { registrar.register_memory(buf.as_mut_ptr(), buf.len())? };
            let slot = match registration {
                Registration::Own(slot) => Some(slot as u16),
                _ => None,
            };
            registrar.arena = Some(Arc::new(Arena::new(buf, slot, page_size())));
        }
        Ok(Domain::new(registrar))
    }

    /// The options the domain was made with.
    pub fn options(&self) -> UringDomainOptions {
        self.opts
    }

    /// How far one registration reaches: [`RegistrationSharing::Domain`]
    /// when every ring receives a clone of the one table (Linux 6.13+),
    /// [`RegistrationSharing::PerQueue`] when each ring registers every
    /// region itself (older kernels, or `PINIO_URING_NO_CLONE=1`).
    pub fn sharing(&self) -> RegistrationSharing {
        match self.registry.as_ref().map(|r| r.sharing()) {
            Some(Sharing::PerRing) => RegistrationSharing::PerQueue,
            Some(Sharing::Clone) | None => RegistrationSharing::Domain,
        }
    }

    /// Bytes of the arena not handed out right now (0 without an arena).
    pub fn arena_free_bytes(&self) -> usize {
        self.arena.as_ref().map_or(0, |a| a.free_bytes())
    }

    /// The buffer table rings subscribe to (`None` without fixed buffers).
    pub(crate) fn registry(&self) -> Option<&Arc<Registry>> {
        self.registry.as_ref()
    }

    /// Gives `ring` (a ring made outside this crate, of any entry size:
    /// `pinio-nvme-uring`'s passthrough rings) the domain's buffer table
    /// and keeps it up to date until the returned [`TableSubscription`] is
    /// dropped, exactly as for this crate's own queues: a region of the
    /// domain uses buffer index `slot` of its
    /// [`Registration::Own`]/[`Registration::Piece`] key in `ring`.
    /// `Ok(None)` when the domain has no fixed buffers.
    ///
    /// The ring must be made by a thread with the same `CAP_IPC_LOCK`
    /// state as the domain's (see [`UringRegistrar::domain`]), and must not
    /// be given memory other than through slices its owner holds (the DMA
    /// ownership rule, `pinio_core::domain`).
    pub fn subscribe<R: TableRing + 'static>(&self, ring: Arc<R>) -> Result<Option<TableSubscription>> {
        let Some(registry) = &self.registry else { return Ok(None) };
        let id = registry.subscribe(ring)?;
        Ok(Some(TableSubscription { registry: Arc::clone(registry), id }))
    }

    /// Registers `len` bytes at `addr` in the table: `Own(slot)`, or
    /// `None` without fixed buffers or under the fallback policy; or the
    /// error to report. A refusal by `RLIMIT_MEMLOCK` although this
    /// domain's charge and `len` fit under it is retried for a while first
    /// ([`crate::memlock`], late release).
    ///
    /// # Safety
    ///
    /// As [`Registry::register`]: the memory stays mapped until the slot is
    /// released.
    unsafe fn register_memory(&self, addr: *mut u8, len: usize) -> Result<Registration> {
        let Some(registry) = &self.registry else { return Ok(Registration::None) };
        // SAFETY: forwarded from the caller (the DMA ownership rule,
        // pinio_core::domain); a refused attempt leaves no slot holding the
        // memory, so each retry starts from the same state.
        let attempt = || unsafe { registry.register(addr, len) };
        match self.late_release.register(len as u64, self.max_pinned, attempt) {
            Ok(slot) => Ok(Registration::Own(u64::from(slot))),
            // With CAP_IPC_LOCK there is no limit to hit: ENOMEM is real.
            Err(RegisterFailure::Memlock { .. }) if self.max_pinned.is_none() => {
                Err(Error::io(format!("registering {len} bytes"), std::io::Error::from_raw_os_error(libc::ENOMEM)))
            }
            // `locked` is what this domain has charged (once per ring in
            // per-ring mode).
            Err(RegisterFailure::Memlock { locked, rings }) => match self.opts.registration {
                RegistrationPolicy::Fail => Err(Error::MemlockLimit {
                    requested: len as u64,
                    limit: self.max_pinned.unwrap_or(0),
                    locked: locked.saturating_mul(rings),
                }),
                RegistrationPolicy::Fallback => {
                    warn_fallback(len);
                    Ok(Registration::None)
                }
            },
            Err(RegisterFailure::Other(e)) => Err(e.into()),
        }
    }
}

/// Prints the fallback warning the first time (in this process) that
/// registration is refused.
fn warn_fallback(len: usize) {
    if !WARNED.swap(true, Ordering::Relaxed) {
        let limit = match memlock::memlock_limit() {
            Some(l) => format!("{l} bytes"),
            None => "unlimited".into(),
        };
        eprintln!(
            "pinio-uring: warning: registering {len} bytes in an io_uring buffer table was refused by RLIMIT_MEMLOCK ({limit}); \
             continuing with unregistered READ/WRITE for such regions (RegistrationPolicy::Fallback; \
             counted in Stats::unregistered_fallbacks; printed once per process). \
             Raise `ulimit -l` or grant CAP_IPC_LOCK to get fixed buffers."
        );
    }
}

// SAFETY: `register` returns `Registration::Own(slot)` only after
// `Registry::register` has put exactly `buf`'s memory into `slot` of the
// table and of every subscribed ring, and `device_addr` is its user address,
// which READ_FIXED/WRITE_FIXED name; `unregister` empties that slot in the
// table and in every subscriber before returning `Ok`, so no ring of the
// domain reaches the memory afterwards. Rings are given memory only from
// slices their queue or sender owns (the DMA ownership rule,
// pinio_core::domain).
unsafe impl Registrar for UringRegistrar {
    fn backend(&self) -> &'static str {
        "uring"
    }

    fn max_registered_bytes(&self) -> Option<u64> {
        self.max_pinned
    }

    fn register(&self, buf: &mut DmaBuf) -> Result<RegionKey> {
        let addr = buf.as_mut_ptr();
        // SAFETY: pinio-core moves `buf` into the region it makes from this
        // key, which keeps it mapped until `unregister` has emptied the slot
        // (the DMA ownership rule, pinio_core::domain, rule 4).
        let registration = unsafe { self.register_memory(addr, buf.len())? };
        Ok(RegionKey { registration, device_addr: addr as u64 })
    }

    fn unregister(&self, key: RegionKey, buf: &DmaBuf) -> Result<()> {
        match (&self.registry, key.registration) {
            (Some(registry), Registration::Own(slot)) => Ok(registry.unregister(slot as u16, buf.len())?),
            // Own keys are made only by a registry; pieces and unregistered
            // regions hold no slot of their own.
            _ => Ok(()),
        }
    }

    fn alloc_piece(&self, len: usize) -> Option<Result<(DmaBuf, RegionKey)>> {
        let arena = self.arena.as_ref()?;
        let registration = arena.slot.map_or(Registration::None, |slot| Registration::Piece(u64::from(slot)));
        let piece = arena.take(len)?;
        Some(piece.map(|buf| {
            let device_addr = buf.as_ptr() as u64;
            (buf, RegionKey { registration, device_addr })
        }))
    }

    fn preregistered_bytes(&self) -> u64 {
        self.arena.as_ref().filter(|a| a.slot.is_some()).map_or(0, |a| a.len() as u64)
    }

    fn describe(&self) -> String {
        let Some(registry) = &self.registry else { return "io_uring, no fixed buffers (plain READ/WRITE)".into() };
        let how = match registry.sharing() {
            Sharing::Clone => "cloned into",
            Sharing::PerRing => "registered in each of (per-ring registration, no IORING_REGISTER_CLONE_BUFFERS)",
        };
        let rings = registry.rings();
        let mut s = format!("io_uring buffer table {how} {rings} ring{}", if rings == 1 { "" } else { "s" });
        if let Some(a) = &self.arena {
            s += &format!(", arena {} B{}", a.len(), if a.slot.is_some() { "" } else { " (unregistered)" });
        }
        s
    }
}

impl std::fmt::Debug for UringRegistrar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// A ring kept in step with a domain's buffer table
/// ([`UringRegistrar::subscribe`]); dropping it stops the updates and
/// releases the table's handle on the ring.
pub struct TableSubscription {
    registry: Arc<Registry>,
    id: u64,
}

impl Drop for TableSubscription {
    fn drop(&mut self) {
        self.registry.unsubscribe(self.id);
    }
}

impl std::fmt::Debug for TableSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableSubscription").field("id", &self.id).finish()
    }
}
