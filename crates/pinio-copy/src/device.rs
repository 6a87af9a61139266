//! The copy device: a file or block device reached through pread/pwrite.

use crate::domain::CopyRegistrar;
use crate::queue::CopyQueue;
use crate::shared::Shared;
use pinio_core::{
    Capabilities, CompletionMode, Device, DeviceCore, Domain, Error, Persistence, RegistrationSharing, Result,
    align_down,
};
use pinio_file::{DioAlign, FileOpen, FileTarget};
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
    /// Size of each bounce buffer (one per worker thread, one per depth-1
    /// queue); larger transfers are split. Default 1 MiB.
    pub bounce_bytes: usize,
    /// `Some(size)`: create the file if it is missing and make it at least
    /// `size` bytes long ([`FileOpen::create`]). Default `None`: the file
    /// must exist.
    pub create: Option<u64>,
    /// Enforce the alignment the `uring` backend will require of this file
    /// (O_DIRECT, its default): memory addresses, device offsets and
    /// lengths aligned as `statx(STATX_DIOALIGN)` (a block device: its
    /// logical block size) says, even when this device is not opened with
    /// O_DIRECT, plus uring's largest transfer and deepest queue. Code that
    /// runs on `copy:` in strict mode does not break on `uring:` because of
    /// alignment. A file system that reports no direct-IO alignment gets
    /// 4096 bytes for all three. Default false: any alignment (as far as
    /// `direct` allows).
    pub strict: bool,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions { direct: false, writable: true, bounce_bytes: 1 << 20, create: None, strict: false }
    }
}

/// The most operations one copy queue holds.
const MAX_QUEUE_DEPTH: usize = 1 << 16;

/// What the uring backend allows (`pinio-uring`: `MAX_RW_COUNT` from
/// `include/linux/fs.h`, and `IORING_MAX_ENTRIES`), which strict mode
/// applies too.
const URING_MAX_RW_COUNT: u64 = 0x7fff_f000;
const URING_MAX_QUEUE_DEPTH: usize = 32768;

/// The alignment strict mode enforces when the file system reports none.
const STRICT_FALLBACK: DioAlign = DioAlign { mem: 4096, offset: 4096 };

/// A file or block device driven by `pread`/`pwrite` through bounce
/// buffers, on worker threads at queue depth > 1.
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
        let how = FileOpen { direct: opts.direct, writable: opts.writable, create: opts.create };
        let target = FileTarget::open_with(path.as_ref(), &how)?;
        let align = target.dio.map_or(1, |d| d.offset);
        if opts.bounce_bytes == 0 || !(opts.bounce_bytes as u64).is_multiple_of(align) {
            return Err(Error::Misaligned {
                what: "bounce buffer size",
                value: opts.bounce_bytes as u64,
                required: align,
            });
        }
        let strict = if opts.strict {
            Some(match target.dio_align() {
                Ok(a) => a,
                Err(Error::Unsupported { .. }) => STRICT_FALLBACK,
                Err(e) => return Err(e),
            })
        } else {
            None
        };
        let (mem_align, offset_align, max_transfer, max_queue_depth) = match strict {
            Some(s) => {
                let offset = s.offset.max(align).max(1);
                (s.mem.max(1), offset, align_down(URING_MAX_RW_COUNT, offset), URING_MAX_QUEUE_DEPTH)
            }
            None => (1, align, u32::MAX as u64, MAX_QUEUE_DEPTH),
        };
        /// `IOV_MAX` (`UIO_MAXIOV`): the most iovecs `pwritev`/`preadv`
        /// and io_uring's vectored opcodes take.
        const MAX_SEGMENTS: usize = 1024;
        let caps = Capabilities {
            backend: "copy",
            mem_align,
            register_align: mem_align,
            offset_align,
            len_align: offset_align,
            max_transfer,
            max_pinned_bytes: None,
            device_size: target.size,
            // Worker threads finish operations and signal the queue's
            // eventfd (a depth-1 queue finishes them at submit).
            completion: CompletionMode::Interrupt,
            cpu_copies: true,
            pins_memory: false,
            max_queue_depth,
            sharing: RegistrationSharing::Domain,
            // The page cache (buffered) or the drive's cache (O_DIRECT): fdatasync makes it durable.
            persistence: Persistence::WriteBack,
            writable: opts.writable,
            short_reads_at_end: true,
            // Gathered into (scattered from) the bounce buffer: one
            // pwrite/pread per bounce chunk, as for one slice.
            vectored: pinio_core::VectoredIo::Native,
            // IOV_MAX, as pwritev/preadv and the uring backend take.
            max_segments: MAX_SEGMENTS,
        };
        let shared =
            Shared { core: DeviceCore::new(domain.clone(), caps), target, bounce_bytes: opts.bounce_bytes, strict };
        Ok(CopyDevice { shared: Arc::new(shared) })
    }

    /// A queue as the concrete type (for [`CopyQueue::workers`]).
    pub fn copy_queue(&self, depth: usize) -> Result<CopyQueue> {
        let depth = self.shared.core.queue_depth(depth)?;
        CopyQueue::new(self.shared.clone(), depth)
    }
}

impl pinio_file::FileDevice for CopyDevice {
    fn file_target(&self) -> &pinio_file::FileTarget {
        &self.shared.target
    }

    fn device_core(&self) -> &DeviceCore {
        &self.shared.core
    }
}

impl Device for CopyDevice {
    fn core(&self) -> &DeviceCore {
        &self.shared.core
    }

    fn describe(&self) -> String {
        let t = &self.shared.target;
        let mut parts =
            vec![if t.direct { "O_DIRECT + bounce copy".to_string() } else { "page cache + bounce copy".to_string() }];
        parts.push(format!("{} bytes", self.shared.core.size()));
        if let Some(s) = self.shared.strict {
            parts.push(format!(
                "strict: uring O_DIRECT alignment, memory {} B, offsets and lengths {} B",
                s.mem, s.offset
            ));
        }
        format!("copy:{} ({})", t.path.display(), parts.join(", "))
    }

    fn queue(&self, depth: usize) -> Result<Box<dyn pinio_core::Queue>> {
        Ok(Box::new(self.copy_queue(depth)?))
    }
}

impl std::fmt::Debug for CopyDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}
