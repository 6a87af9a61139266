//! The copy device: a file or block device reached through pread/pwrite.

use crate::domain::CopyRegistrar;
use crate::queue::CopyQueue;
use pinio_core::{Capabilities, CompletionMode, Device, DeviceCore, Domain, Error, Persistence, RegistrationSharing, Result};
use pinio_file::FileTarget;
use std::path::Path;
use std::sync::Arc;

/// How to open a [`CopyDevice`].
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Open with `O_DIRECT`: the kernel skips the page cache, so only
    /// pinio's bounce copy remains. Default: false (buffered, the classic path).
    pub direct: bool,
    /// Open read-write (default) or read-only.
    pub writable: bool,
    /// Size of each queue's bounce buffer; larger transfers are split.
    /// Default 1 MiB.
    pub bounce_bytes: usize,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions { direct: false, writable: true, bounce_bytes: 1 << 20 }
    }
}

/// The most operations one copy queue holds.
const MAX_QUEUE_DEPTH: usize = 1 << 16;

pub(crate) struct Shared {
    pub(crate) core: DeviceCore,
    pub(crate) target: FileTarget,
    pub(crate) bounce_bytes: usize,
}

/// A file or block device driven by `pread`/`pwrite` through a bounce buffer.
pub struct CopyDevice {
    shared: Arc<Shared>,
}

impl CopyDevice {
    /// Opens `path` (a regular file or a block device) in a new domain.
    pub fn open(path: impl AsRef<Path>, opts: CopyOptions) -> Result<CopyDevice> {
        CopyDevice::open_in(&CopyRegistrar::domain(), path, opts)
    }

    /// Opens `path` in `domain`, a copy domain: its regions are accepted by
    /// every device of the domain.
    pub fn open_in(domain: &Domain, path: impl AsRef<Path>, opts: CopyOptions) -> Result<CopyDevice> {
        domain.require::<CopyRegistrar>("copy")?;
        let target = FileTarget::open(path.as_ref(), opts.direct, opts.writable)?;
        let align = target.dio.map_or(1, |d| d.offset);
        if opts.bounce_bytes == 0 || !(opts.bounce_bytes as u64).is_multiple_of(align) {
            return Err(Error::Misaligned { what: "bounce buffer size", value: opts.bounce_bytes as u64, required: align });
        }
        let caps = Capabilities {
            backend: "copy",
            mem_align: 1,
            register_align: 1,
            offset_align: align,
            len_align: align,
            max_transfer: u32::MAX as u64,
            max_pinned_bytes: None,
            device_size: target.size,
            completion: CompletionMode::Synchronous,
            cpu_copies: true,
            pins_memory: false,
            max_queue_depth: MAX_QUEUE_DEPTH,
            sharing: RegistrationSharing::Domain,
            // The page cache (buffered) or the drive's cache (O_DIRECT): fdatasync makes it durable.
            persistence: Persistence::WriteBack,
            writable: opts.writable,
            short_reads_at_end: true,
        };
        let shared = Shared { core: DeviceCore::new(domain.clone(), caps), target, bounce_bytes: opts.bounce_bytes };
        Ok(CopyDevice { shared: Arc::new(shared) })
    }
}

impl Device for CopyDevice {
    fn core(&self) -> &DeviceCore {
        &self.shared.core
    }

    fn describe(&self) -> String {
        let t = &self.shared.target;
        format!("copy:{} ({}, {} bytes)", t.path.display(), if t.direct { "O_DIRECT + bounce copy" } else { "page cache + bounce copy" }, t.size)
    }

    fn queue(&self, depth: usize) -> Result<Box<dyn pinio_core::Queue>> {
        let depth = self.shared.core.queue_depth(depth)?;
        Ok(Box::new(CopyQueue::new(self.shared.clone(), depth)?))
    }
}
