//! [`UringDevice`]: a file or block device opened for io_uring IO.

use crate::arena::Arena;
use crate::memlock;
use crate::queue::UringQueue;
use crate::registry::{RegisterFailure, Registry, Sharing};
use crate::{RegistrationPolicy, UringOptions};
use pinio_core::file::FileTarget;
use pinio_core::{
    Capabilities, CompletionMode, Device, DeviceId, DmaBuf, Error, Queue, RegisterError, Region, RegionKey, Result,
    Stats, StatsSnapshot, Unregister, align_down, is_aligned, page_size,
};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// [`RegionKey::id`] of a region that is not in the registered-buffer table
/// (fixed buffers off, or registration refused under
/// [`RegistrationPolicy::Fallback`]). Other ids are table slots.
pub const UNREGISTERED: u64 = u64::MAX;

/// The largest transfer one read or write may move (`MAX_RW_COUNT` in
/// `include/linux/fs.h`: `INT_MAX & PAGE_MASK`).
const MAX_RW_COUNT: u64 = 0x7fff_f000;

/// What a device, its queues and its regions share.
pub(crate) struct Shared {
    pub(crate) id: DeviceId,
    pub(crate) opts: UringOptions,
    pub(crate) caps: Capabilities,
    pub(crate) stats: Stats,
    pub(crate) target: FileTarget,
    /// `None` when fixed buffers are off. Shared by devices opened with
    /// [`UringDevice::open_sharing`].
    pub(crate) registry: Option<Arc<Registry>>,
    pub(crate) arena: Option<Arc<Arena>>,
}

/// Whether the fallback warning was printed (once per process, however many
/// devices fall back).
static WARNED: AtomicBool = AtomicBool::new(false);

impl Shared {
    /// Prints the fallback warning the first time (in this process) that
    /// registration is refused.
    fn warn_fallback(&self, len: usize) {
        if !WARNED.swap(true, Ordering::Relaxed) {
            eprintln!(
                "pinio-uring: warning: registering {len} bytes with {} was refused by RLIMIT_MEMLOCK ({}); \
                 continuing with unregistered READ/WRITE for such regions (RegistrationPolicy::Fallback; \
                 counted in Stats::unregistered_fallbacks; printed once per process). \
                 Raise `ulimit -l` or grant CAP_IPC_LOCK to get fixed buffers.",
                self.target.path.display(),
                limit_text(),
            );
        }
    }

    /// Registers `len` bytes at `addr`: `Ok(slot)`, `Ok(UNREGISTERED)` under
    /// the fallback policy, or the error to report.
    ///
    /// # Safety
    ///
    /// As [`Registry::register`]: the memory stays mapped until the slot is
    /// released.
    unsafe fn register_memory(&self, addr: *mut u8, len: usize) -> Result<u64> {
        let Some(registry) = &self.registry else { return Ok(UNREGISTERED) };
        // SAFETY: forwarded from the caller.
        match unsafe { registry.register(addr, len) } {
            Ok(slot) => {
                self.stats.pinned(len as u64);
                Ok(slot as u64)
            }
            // With CAP_IPC_LOCK there is no limit to hit: ENOMEM is real.
            Err(RegisterFailure::Memlock { .. }) if self.caps.max_pinned_bytes.is_none() => Err(Error::io(
                format!("registering {len} bytes"),
                std::io::Error::from_raw_os_error(libc::ENOMEM),
            )),
            Err(RegisterFailure::Memlock { locked }) => match self.opts.registration {
                RegistrationPolicy::Fail => Err(Error::MemlockLimit {
                    requested: len as u64,
                    limit: self.caps.max_pinned_bytes.unwrap_or(0),
                    locked,
                }),
                RegistrationPolicy::Fallback => {
                    self.warn_fallback(len);
                    Ok(UNREGISTERED)
                }
            },
            Err(RegisterFailure::Other(e)) => Err(e.into()),
        }
    }
}

/// What a target opened with `opts` offers.
fn capabilities(target: &FileTarget, opts: &UringOptions) -> Capabilities {
    let (mem_align, offset_align) = target.dio.map(|d| (d.mem.max(1), d.offset.max(1))).unwrap_or((1, 1));
    Capabilities {
        backend: "uring",
        mem_align,
        register_align: mem_align,
        offset_align,
        len_align: offset_align,
        max_transfer: align_down(MAX_RW_COUNT, offset_align),
        max_pinned_bytes: if opts.fixed_buffers { memlock::max_pinned_bytes() } else { None },
        device_size: target.size,
        completion: CompletionMode::Interrupt,
        cpu_copies: !opts.direct,
        pins_memory: opts.fixed_buffers,
    }
}

fn limit_text() -> String {
    match memlock::memlock_limit() {
        Some(l) => format!("{l} bytes"),
        None => "unlimited".into(),
    }
}

impl Unregister for Shared {
    fn unregister(&self, key: RegionKey, buf: &DmaBuf) -> Result<()> {
        let arena_slot = self.arena.as_ref().and_then(|a| a.slot).map(u64::from);
        if key.id == UNREGISTERED || Some(key.id) == arena_slot {
            // Arena pieces go back to the free list when their DmaBuf drops.
            return Ok(());
        }
        let registry = self.registry.as_ref().expect("slot ids exist only with a registry");
        match registry.unregister(key.id as u16, buf.len()) {
            Ok(()) => {
                self.stats.unpinned(buf.len() as u64);
                Ok(())
            }
            Err(e) => {
                self.stats.unregister_failed();
                Err(e.into())
            }
        }
    }
}

/// A file or block device opened for io_uring IO: the `uring` backend.
///
/// Regions are registered once in a device-wide table of io_uring fixed
/// buffers and are usable from every queue; each [`Device::queue`] has its
/// own ring. See `docs/backends/uring.md` for the design.
///
/// ```no_run
/// use pinio_core::{Device, Queue};
/// use pinio_uring::{UringDevice, UringOptions};
/// let dev = UringDevice::open("/var/tmp/data", UringOptions::default())?;
/// let region = dev.alloc(4096)?;
/// let mut q = dev.queue(32)?;
/// let (n, slice) = q.read_at(region.slice(0, 4096)?, 0)?;
/// assert_eq!(n, slice.len());
/// # Ok::<(), pinio_core::Error>(())
/// ```
pub struct UringDevice {
    shared: Arc<Shared>,
}

impl UringDevice {
    /// Opens `path` (a regular file or a block device).
    ///
    /// With `opts.direct` the target must support real direct IO; a file
    /// system that only pretends (tmpfs) is refused with
    /// [`Error::Unsupported`]. With `opts.arena_bytes > 0` the arena is
    /// registered here, so a refused registration fails the open under
    /// [`RegistrationPolicy::Fail`].
    pub fn open(path: impl AsRef<Path>, opts: UringOptions) -> Result<UringDevice> {
        let target = FileTarget::open(path.as_ref(), opts.direct, opts.writable)?;
        let caps = capabilities(&target, &opts);
        let registry = if opts.fixed_buffers { Some(Arc::new(Registry::new()?)) } else { None };
        let mut shared = Shared {
            id: DeviceId::next(),
            opts,
            caps,
            stats: Stats::default(),
            target,
            registry,
            arena: None,
        };
        if shared.opts.arena_bytes > 0 {
            let mut buf = DmaBuf::builder(shared.opts.arena_bytes).populate(true).build()?;
            // SAFETY: the arena's memory lives inside `Arena` (owned by
            // `Shared`) until after the registry, and so its slot, is gone.
            let key = unsafe { shared.register_memory(buf.as_mut_ptr(), buf.len())? };
            let slot = (key != UNREGISTERED).then_some(key as u16);
            let align = page_size().max(shared.caps.mem_align as usize);
            shared.arena = Some(Arc::new(Arena::new(buf, slot, align)));
        }
        Ok(UringDevice { shared: Arc::new(shared) })
    }

    /// Opens another target that shares `other`'s registered buffers, so that
    /// the same regions can be read from one target and written to the
    /// other (copying a file through registered memory, for example).
    ///
    /// The new device has its own target, capabilities, statistics and
    /// queues, but the same [`DeviceId`], registration table and arena as
    /// `other`: a region of either is accepted by the queues of both.
    /// `opts.fixed_buffers`, `opts.registration` and `opts.arena_bytes` are
    /// taken from `other`.
    pub fn open_sharing(path: impl AsRef<Path>, opts: UringOptions, other: &UringDevice) -> Result<UringDevice> {
        let o = &other.shared;
        let opts = UringOptions {
            fixed_buffers: o.opts.fixed_buffers,
            registration: o.opts.registration,
            arena_bytes: o.opts.arena_bytes,
            ..opts
        };
        let target = FileTarget::open(path.as_ref(), opts.direct, opts.writable)?;
        let caps = Capabilities { max_pinned_bytes: o.caps.max_pinned_bytes, ..capabilities(&target, &opts) };
        let shared = Shared {
            id: o.id,
            opts,
            caps,
            stats: Stats::default(),
            target,
            registry: o.registry.clone(),
            arena: o.arena.clone(),
        };
        Ok(UringDevice { shared: Arc::new(shared) })
    }

    /// A queue with its own ring, as the concrete type (for
    /// [`UringQueue::ring_fd`] and statistics of stray completions).
    pub fn uring_queue(&self, depth: usize) -> Result<UringQueue> {
        UringQueue::new(Arc::clone(&self.shared), depth)
    }

    /// The options the device was opened with.
    pub fn options(&self) -> &UringOptions {
        &self.shared.opts
    }

    /// Bytes of the arena not handed out right now (0 without an arena).
    pub fn arena_free_bytes(&self) -> usize {
        self.shared.arena.as_ref().map_or(0, |a| a.free_bytes())
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    fn make_region(&self, mut buf: DmaBuf) -> Result<Region, RegisterError> {
        let addr = buf.as_mut_ptr();
        // SAFETY: `buf` moves into the region below, which keeps it mapped
        // until its unregistration hook (Shared::unregister) frees the slot.
        let id = match unsafe { self.shared.register_memory(addr, buf.len()) } {
            Ok(id) => id,
            Err(e) => return Err(RegisterError::new(e, buf)),
        };
        let key = RegionKey { id, device_addr: addr as u64 };
        let hook: Arc<dyn Unregister> = self.shared.clone();
        // SAFETY: `key` names the registration of exactly `buf` just made
        // (or UNREGISTERED), and `Shared::unregister` releases it.
        Ok(unsafe { Region::new(self.shared.id, key, buf, hook) })
    }
}

impl Device for UringDevice {
    fn id(&self) -> DeviceId {
        self.shared.id
    }

    fn capabilities(&self) -> &Capabilities {
        &self.shared.caps
    }

    fn stats(&self) -> StatsSnapshot {
        self.shared.stats.snapshot()
    }

    fn describe(&self) -> String {
        let o = &self.shared.opts;
        let mut parts = vec![if o.direct { "O_DIRECT" } else { "buffered" }.to_string()];
        parts.push(if o.fixed_buffers { "fixed buffers" } else { "unregistered buffers" }.into());
        if let Some(a) = &self.shared.arena {
            parts.push(format!("arena {} B{}", a.len(), if a.slot.is_some() { "" } else { " (unregistered)" }));
        }
        if let Some(idle) = o.sqpoll {
            parts.push(format!("SQPOLL {idle} ms"));
        }
        if self.shared.registry.as_ref().is_some_and(|r| r.sharing() == Sharing::PerRing) {
            parts.push("per-ring registration (no IORING_REGISTER_CLONE_BUFFERS)".into());
        }
        format!("uring:{} ({})", self.shared.target.path.display(), parts.join(", "))
    }

    fn register(&self, buf: DmaBuf) -> Result<Region, RegisterError> {
        let addr = buf.as_ptr() as u64;
        let required = self.shared.caps.register_align;
        if !is_aligned(addr, required) {
            return Err(RegisterError::new(Error::Misaligned { what: "buffer address", value: addr, required }, buf));
        }
        self.make_region(buf)
    }

    fn alloc(&self, len: usize) -> Result<Region> {
        let Some(arena) = &self.shared.arena else { return Ok(self.register(DmaBuf::new(len)?)?) };
        if len == 0 {
            return Err(Error::ZeroLength { what: "region" });
        }
        match arena.take(len) {
            Some(piece) => {
                let buf = piece?;
                let id = arena.slot.map_or(UNREGISTERED, u64::from);
                let key = RegionKey { id, device_addr: buf.as_ptr() as u64 };
                let hook: Arc<dyn Unregister> = self.shared.clone();
                // SAFETY: the piece lies inside the arena, registered in slot
                // `id` (or unregistered) for the device's whole life; the
                // hook leaves that registration alone for arena pieces.
                Ok(unsafe { Region::new(self.shared.id, key, buf, hook) })
            }
            None => Ok(self.register(DmaBuf::new(len)?)?),
        }
    }

    fn queue(&self, depth: usize) -> Result<Box<dyn Queue>> {
        Ok(Box::new(self.uring_queue(depth)?))
    }
}

impl std::fmt::Debug for UringDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}
