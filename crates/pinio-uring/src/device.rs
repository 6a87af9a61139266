//! [`UringDevice`]: a file or block device opened for io_uring IO in a
//! uring domain.

use crate::queue::UringQueue;
use crate::ring::MAX_ENTRIES;
use crate::shared::Shared;
use crate::{UringOptions, UringRegistrar};
use pinio_core::{
    Capabilities, CompletionMode, Device, DeviceCore, Domain, Persistence, Queue, RegistrationSharing, Result,
    align_down,
};
use pinio_file::{FileOpen, FileTarget};
use std::path::Path;
use std::sync::Arc;

/// The largest transfer one read or write may move (`MAX_RW_COUNT` in
/// `include/linux/fs.h`: `INT_MAX & PAGE_MASK`).
const MAX_RW_COUNT: u64 = 0x7fff_f000;

/// What `target`, opened with `opts` in the domain of `registrar`, offers.
fn capabilities(target: &FileTarget, opts: &UringOptions, registrar: &UringRegistrar, domain: &Domain) -> Capabilities {
    let (mem_align, offset_align) = target.dio.map(|d| (d.mem.max(1), d.offset.max(1))).unwrap_or((1, 1));
    let fixed = registrar.options().fixed_buffers;
    Capabilities {
        backend: "uring",
        mem_align,
        register_align: mem_align,
        offset_align,
        len_align: offset_align,
        max_transfer: align_down(MAX_RW_COUNT, offset_align),
        max_pinned_bytes: domain.max_registered_bytes(),
        device_size: target.size,
        completion: if opts.iopoll { CompletionMode::Poll } else { CompletionMode::Interrupt },
        cpu_copies: !opts.direct,
        pins_memory: fixed,
        max_queue_depth: MAX_ENTRIES as usize,
        sharing: registrar.sharing(),
        // The page cache (buffered) or the drive's cache (O_DIRECT): IORING_OP_FSYNC makes it durable.
        persistence: Persistence::WriteBack,
        writable: opts.writable,
        short_reads_at_end: true,
        vectored: crate::queue::vectored_mode(fixed, opts.vectored_fixed),
        // UIO_MAXIOV: the most iovecs READV(_FIXED)/WRITEV(_FIXED) take.
        max_segments: 1024,
    }
}

/// A file or block device opened for io_uring IO: the `uring` backend.
///
/// Every device lives in a uring [`Domain`]: one table of io_uring fixed
/// buffers (and optionally one pre-registered arena) that the rings of
/// every file opened in the domain subscribe to. A region registered once
/// in the domain — through any of its devices, or the domain itself — is
/// accepted by every queue of every one of those files: read a block from
/// one file into a region and write the same bytes to another, with no CPU
/// copy and no second registration. Each [`Device::queue`] has its own
/// ring. See `docs/backends/uring.md` for the design.
///
/// ```no_run
/// use pinio_core::{Device, Queue};
/// use pinio_uring::{UringDevice, UringOptions};
/// let src = UringDevice::open("/var/tmp/a", UringOptions::default())?;
/// let dst = UringDevice::open_in(src.domain(), "/var/tmp/b", UringOptions::default())?;
/// let region = src.alloc(4096)?; // registered once, in the domain
/// let (mut qa, mut qb) = (src.queue(32)?, dst.queue(32)?);
/// let (n, slice) = qa.read_at(region.slice(0, 4096)?, 0)?;
/// let (m, _slice) = qb.write_at(slice, 0)?;
/// assert_eq!(n, m);
/// # Ok::<(), pinio_core::Error>(())
/// ```
pub struct UringDevice {
    shared: Arc<Shared>,
}

impl UringDevice {
    /// Opens `path` (a regular file or a block device) in a new domain made
    /// with `opts`' domain-wide options ([`UringOptions::domain_options`]).
    ///
    /// With `opts.direct` the target must support real direct IO; a file
    /// system that only pretends (tmpfs) is refused with
    /// [`pinio_core::Error::Unsupported`]. With `opts.arena_bytes > 0` the
    /// arena is registered here, so a refused registration fails the open
    /// under [`crate::RegistrationPolicy::Fail`].
    pub fn open(path: impl AsRef<Path>, opts: UringOptions) -> Result<UringDevice> {
        let domain = UringRegistrar::domain(opts.domain_options())?;
        UringDevice::open_in(&domain, path, opts)
    }

    /// Opens `path` in `domain`, a uring domain
    /// ([`UringRegistrar::domain`], or the [`Device::domain`] of another
    /// uring device): the new device's queues subscribe to the domain's
    /// buffer table, so every region of the domain is accepted by them.
    ///
    /// The target's own options (`direct`, `writable`, `ring_entries`,
    /// `sqpoll`, `iopoll`) come from `opts`; the domain-wide ones (`fixed_buffers`,
    /// `registration`, `arena_bytes`) are the domain's, and `opts`' are
    /// ignored. A domain of another backend is refused with
    /// [`pinio_core::Error::WrongDomain`]; `iopoll` without `direct` with
    /// [`crate::UringError::IopollNeedsDirect`].
    pub fn open_in(domain: &Domain, path: impl AsRef<Path>, opts: UringOptions) -> Result<UringDevice> {
        let registrar = domain.require::<UringRegistrar>("uring")?;
        if opts.iopoll && !opts.direct {
            return Err(crate::UringError::IopollNeedsDirect { path: path.as_ref().to_path_buf() }.into());
        }
        let how = FileOpen { direct: opts.direct, writable: opts.writable, create: opts.create };
        let target = FileTarget::open_with(path.as_ref(), &how)?;
        let opts = opts.with_domain_options(registrar.options());
        let caps = capabilities(&target, &opts, registrar, domain);
        let registry = registrar.registry().cloned();
        let shared = Shared { core: DeviceCore::new(domain.clone(), caps), opts, target, registry };
        Ok(UringDevice { shared: Arc::new(shared) })
    }

    /// A queue with its own ring, as the concrete type (for
    /// [`UringQueue::ring_fd`] and statistics of stray completions).
    pub fn uring_queue(&self, depth: usize) -> Result<UringQueue> {
        UringQueue::new(Arc::clone(&self.shared), depth)
    }

    /// The options in effect: the target's own as given, and the domain's
    /// domain-wide options.
    pub fn options(&self) -> &UringOptions {
        &self.shared.opts
    }

    /// Bytes of the domain's arena not handed out right now (0 without an
    /// arena); [`UringRegistrar::arena_free_bytes`].
    pub fn arena_free_bytes(&self) -> usize {
        self.shared.core.domain().registrar::<UringRegistrar>().map_or(0, UringRegistrar::arena_free_bytes)
    }
}

impl pinio_file::FileDevice for UringDevice {
    fn file_target(&self) -> &pinio_file::FileTarget {
        &self.shared.target
    }

    fn device_core(&self) -> &DeviceCore {
        &self.shared.core
    }
}

impl Device for UringDevice {
    fn core(&self) -> &DeviceCore {
        &self.shared.core
    }

    fn describe(&self) -> String {
        let o = &self.shared.opts;
        let mut parts = vec![if o.direct { "O_DIRECT" } else { "buffered" }.to_string()];
        parts.push(if o.fixed_buffers { "fixed buffers" } else { "unregistered buffers" }.into());
        if let Some(idle) = o.sqpoll {
            parts.push(format!("SQPOLL {idle} ms"));
        }
        if o.iopoll {
            parts.push("IOPOLL".into());
        }
        if self.shared.core.capabilities().sharing == RegistrationSharing::PerQueue {
            parts.push("per-ring registration (no IORING_REGISTER_CLONE_BUFFERS)".into());
        }
        parts.push(self.shared.core.domain().describe());
        format!("uring:{} ({})", self.shared.target.path.display(), parts.join(", "))
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
