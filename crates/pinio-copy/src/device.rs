//! The copy device: a file or block device reached through pread/pwrite.

use crate::queue::CopyQueue;
use pinio_core::file::FileTarget;
use pinio_core::{
    Capabilities, CompletionMode, Device, DeviceId, DmaBuf, Error, RegisterError, Region, RegionKey, Result, Stats,
    StatsSnapshot, Unregister,
};
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

pub(crate) struct Shared {
    pub(crate) target: FileTarget,
    pub(crate) stats: Stats,
    pub(crate) caps: Capabilities,
    pub(crate) bounce_bytes: usize,
    pub(crate) id: DeviceId,
}

/// A file or block device driven by `pread`/`pwrite` through a bounce buffer.
pub struct CopyDevice {
    shared: Arc<Shared>,
}

/// The copy backend pins nothing, so releasing a region releases nothing.
struct NothingPinned;

impl Unregister for NothingPinned {
    fn unregister(&self, _key: RegionKey, _buf: &DmaBuf) -> Result<()> {
        Ok(())
    }
}

impl CopyDevice {
    /// Opens `path` (a regular file or a block device).
    pub fn open(path: impl AsRef<Path>, opts: CopyOptions) -> Result<CopyDevice> {
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
        };
        let shared = Shared { target, stats: Stats::default(), caps, bounce_bytes: opts.bounce_bytes, id: DeviceId::next() };
        Ok(CopyDevice { shared: Arc::new(shared) })
    }
}

impl Device for CopyDevice {
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
        let t = &self.shared.target;
        format!("copy:{} ({}, {} bytes)", t.path.display(), if t.direct { "O_DIRECT + bounce copy" } else { "page cache + bounce copy" }, t.size)
    }

    fn register(&self, buf: DmaBuf) -> std::result::Result<Region, RegisterError> {
        let key = RegionKey { id: 0, device_addr: buf.as_ptr() as u64 };
        let hook = Arc::new(NothingPinned);
        // SAFETY: the copy backend's "registration" is the region itself:
        // nothing outside pinio refers to the buffer, and the hook releases
        // nothing because nothing was pinned.
        Ok(unsafe { Region::new(self.shared.id, key, buf, hook) })
    }

    fn queue(&self, depth: usize) -> Result<Box<dyn pinio_core::Queue>> {
        Ok(Box::new(CopyQueue::new(self.shared.clone(), depth)?))
    }
}
