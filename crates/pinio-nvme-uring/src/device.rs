//! [`NvmeUringDevice`]: an NVMe namespace's generic character device
//! (`/dev/ngXnY`) opened for io_uring passthrough in a uring domain.

use crate::admin::{self, Geometry};
use crate::queue::NvmeUringQueue;
use crate::shared::Shared;
use crate::{NvmeUringError, NvmeUringOptions};
use pinio_core::{
    Capabilities, CompletionMode, Device, DeviceCore, Domain, Persistence, Queue, RegistrationSharing, Result,
    VectoredIo,
};
use pinio_uring::UringRegistrar;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

/// Deepest queue a device makes: the submission ring's limit is higher,
/// but the kernel's NVMe queues hold at most a few thousand commands and
/// further ones only wait for a tag.
pub(crate) const MAX_DEPTH: usize = 4096;

/// An NVMe namespace driven through the kernel's NVMe passthrough: every
/// read, write and flush is one NVMe command carried by an io_uring
/// `URING_CMD` (`NVME_URING_CMD_IO`, 128-byte SQEs, 32-byte CQEs) on the
/// namespace's generic character device `/dev/ngXnY`, bypassing the block
/// layer's bio path and the file system. Buffers come from the uring
/// domain's one table of fixed buffers (`IORING_URING_CMD_FIXED` with the
/// region's buffer index): a region registered once serves this device
/// and every `uring:` file of the same domain. The geometry comes from
/// Identify Controller and Identify Namespace, sent through the admin
/// passthrough ioctl on the controller node. See
/// `docs/backends/nvme-uring.md`.
///
/// ```no_run
/// use pinio_core::{Device, Queue};
/// use pinio_nvme_uring::{NvmeUringDevice, NvmeUringOptions};
/// let dev = NvmeUringDevice::open("/dev/ng0n1", NvmeUringOptions::default())?;
/// let region = dev.alloc(1 << 20)?;
/// let mut q = dev.queue(32)?;
/// let (n, slice) = q.read_at(region.slice(0, 4096)?, 0)?;
/// assert_eq!(n, 4096);
/// # Ok::<(), pinio_core::Error>(())
/// ```
pub struct NvmeUringDevice {
    shared: Arc<Shared>,
}

impl NvmeUringDevice {
    /// Opens the generic namespace device `path` in a new uring domain
    /// made with `opts`' domain-wide options.
    pub fn open(path: impl AsRef<Path>, opts: NvmeUringOptions) -> Result<NvmeUringDevice> {
        let domain = UringRegistrar::domain(opts.domain_options())?;
        NvmeUringDevice::open_in(&domain, path, opts)
    }

    /// Opens `path` in `domain`, a uring domain (of [`UringRegistrar`]):
    /// every region of the domain is accepted by this device's queues, and
    /// its regions by the domain's `uring:` files. `opts.fixed_buffers` is
    /// the domain's. A domain of another backend is refused with
    /// [`pinio_core::Error::WrongDomain`].
    pub fn open_in(domain: &Domain, path: impl AsRef<Path>, opts: NvmeUringOptions) -> Result<NvmeUringDevice> {
        let path = path.as_ref();
        let registrar = domain.require::<UringRegistrar>("nvme-uring")?;
        let opts = NvmeUringOptions { fixed_buffers: registrar.options().fixed_buffers, ..opts };
        crate::support::check(opts.fixed_buffers, opts.iopoll)?;
        let loc = admin::locate(path)?;
        let file =
            File::options().read(true).write(opts.writable).open(path).map_err(|source| NvmeUringError::Open {
                path: path.to_path_buf(),
                source,
                hint: "; NVMe passthrough needs read (and for writes, write) access to the node, usually root",
            })?;
        let nsid = admin::namespace_id(&file, path)?;
        let (geometry, ctrl) = admin::geometry(&loc, nsid)?;
        let caps = capabilities(&geometry, &opts, registrar, domain);
        let lba_shift = geometry.ns.block_size.trailing_zeros();
        let shared = Shared {
            core: DeviceCore::new(domain.clone(), caps),
            opts,
            path: path.to_path_buf(),
            file,
            ctrl,
            geometry,
            lba_shift,
        };
        Ok(NvmeUringDevice { shared: Arc::new(shared) })
    }

    /// A queue as the concrete type.
    pub fn nvme_queue(&self, depth: usize) -> Result<NvmeUringQueue> {
        NvmeUringQueue::new(Arc::clone(&self.shared), depth)
    }

    /// What Identify and the kernel said about the namespace.
    pub fn geometry(&self) -> &Geometry {
        &self.shared.geometry
    }

    /// The options in effect (`fixed_buffers` is the domain's).
    pub fn options(&self) -> &NvmeUringOptions {
        &self.shared.opts
    }

    /// Resets the controller (`NVME_IOCTL_RESET` on its node): the kernel
    /// driver disables and re-enables it. Commands in flight on any queue
    /// complete, with success if the controller finished them, else with an
    /// error (an aborted status or `EINTR`); every slice comes back.
    pub fn reset_controller(&self) -> Result<()> {
        Ok(admin::reset(&self.shared.ctrl, &self.shared.geometry.controller)?)
    }
}

/// What the namespace offers through passthrough.
fn capabilities(g: &Geometry, opts: &NvmeUringOptions, registrar: &UringRegistrar, domain: &Domain) -> Capabilities {
    let block = g.ns.block_size as u64;
    Capabilities {
        backend: "nvme-uring",
        // The kernel maps user memory straight into the command only when
        // it is dword aligned (the nvme driver's DMA alignment); otherwise
        // it would bounce through a copy, which this backend does not let
        // happen silently.
        mem_align: 4,
        register_align: 4,
        offset_align: block,
        len_align: block,
        max_transfer: g.max_transfer,
        max_pinned_bytes: domain.max_registered_bytes(),
        device_size: g.ns.bytes(),
        completion: if opts.iopoll { CompletionMode::Poll } else { CompletionMode::Interrupt },
        cpu_copies: false,
        pins_memory: opts.fixed_buffers,
        max_queue_depth: MAX_DEPTH,
        sharing: if opts.fixed_buffers { registrar.sharing() } else { RegistrationSharing::Domain },
        persistence: if g.ctrl.volatile_write_cache { Persistence::WriteBack } else { Persistence::WriteThrough },
        writable: opts.writable,
        short_reads_at_end: false,
        vectored: VectoredIo::Unsupported,
        max_segments: 1,
    }
}

impl Device for NvmeUringDevice {
    fn core(&self) -> &DeviceCore {
        &self.shared.core
    }

    fn describe(&self) -> String {
        let s = &self.shared;
        let g = &s.geometry;
        let mut parts = vec![
            format!("namespace {} of {} ({} {})", g.nsid, g.controller.display(), g.ctrl.model, g.ctrl.serial),
            format!("{} blocks of {} B", g.ns.blocks, g.ns.block_size),
            format!("max transfer {} KiB", g.max_transfer >> 10),
        ];
        parts.push(
            if s.opts.fixed_buffers { "fixed buffers (IORING_URING_CMD_FIXED)" } else { "unregistered buffers" }.into(),
        );
        if s.opts.iopoll {
            parts.push("IOPOLL".into());
        }
        if g.ctrl.volatile_write_cache {
            parts.push("volatile write cache".into());
        }
        parts.push(s.core.domain().describe());
        format!("nvme-uring:{} ({})", s.path.display(), parts.join(", "))
    }

    fn queue(&self, depth: usize) -> Result<Box<dyn Queue>> {
        Ok(Box::new(self.nvme_queue(depth)?))
    }
}

impl std::fmt::Debug for NvmeUringDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}
