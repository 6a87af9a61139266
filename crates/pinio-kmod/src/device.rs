//! The kmod device: `/dev/pinio` behind the `pinio-core` [`Device`] trait.

use crate::abi;
use crate::queue::KmodQueue;
use crate::router::Router;
use crate::sys::PinioFd;
use crate::KmodError;
use pinio_core::{
    Capabilities, CompletionMode, Device, DeviceId, DmaBuf, Error, RegisterError, Region, RegionKey, Result, Stats,
    StatsSnapshot, Unregister,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) struct Shared {
    pub(crate) fd: PinioFd,
    pub(crate) info: abi::Info,
    pub(crate) caps: Capabilities,
    pub(crate) stats: Stats,
    pub(crate) id: DeviceId,
    pub(crate) router: Router,
    pinned_bytes: AtomicU64,
    path: PathBuf,
}

/// The echo device of pinio.ko: regions are pinned in the kernel with
/// `pin_user_pages_fast(FOLL_LONGTERM)`, and its DMA engine (a kernel worker) moves bytes between
/// them and the device's on-board memory, which is the device address space.
///
/// One `KmodDevice` is one open file of `/dev/pinio` (one kernel session): its regions, its
/// limits (`max_pinned_pages`, `queue_depth`) and its completion queue, which the
/// [`KmodQueue`]s made from it share.
pub struct KmodDevice {
    shared: Arc<Shared>,
}

/// Unpins a region in the kernel when its last handle and slice are gone.
struct Unpin {
    shared: Arc<Shared>,
}

impl Unregister for Unpin {
    fn unregister(&self, key: RegionKey, buf: &DmaBuf) -> Result<()> {
        let s = &self.shared;
        match s.fd.unregister(key.id as u32) {
            Ok(()) => {
                s.stats.unpinned(buf.len() as u64);
                s.pinned_bytes.fetch_sub(buf.len() as u64, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                s.stats.unregister_failed();
                Err(backend(e))
            }
        }
    }
}

/// Wraps a module error as a `pinio-core` error.
pub(crate) fn backend(e: KmodError) -> Error {
    Error::Backend { backend: "kmod", source: Box::new(e) }
}

impl KmodDevice {
    /// Opens the device node (`/dev/pinio`).
    pub fn open(path: impl AsRef<Path>) -> Result<KmodDevice> {
        let path = path.as_ref();
        let fd = PinioFd::open(path).map_err(backend)?;
        let info = fd.info().map_err(backend)?;
        let caps = Capabilities {
            backend: "kmod",
            mem_align: 1,
            register_align: 1,
            offset_align: 1,
            len_align: 1,
            max_transfer: info.dev_mem_size,
            max_pinned_bytes: Some(info.max_pinned_pages * u64::from(info.page_size)),
            device_size: info.dev_mem_size,
            completion: CompletionMode::Interrupt,
            // The module's DMA engine moves the bytes; no CPU copy on the application's side.
            cpu_copies: false,
            pins_memory: true,
        };
        let shared = Shared {
            fd,
            info,
            caps,
            stats: Stats::default(),
            id: DeviceId::next(),
            router: Router::default(),
            pinned_bytes: AtomicU64::new(0),
            path: path.to_owned(),
        };
        Ok(KmodDevice { shared: Arc::new(shared) })
    }

    /// What the module reports for this open file (limits, pinned pages, outstanding
    /// descriptors).
    pub fn info(&self) -> Result<abi::Info> {
        self.shared.fd.info().map_err(backend)
    }

    /// The low-level client of this device's open file (the copy path `pread`/`pwrite` lives
    /// there).
    pub fn raw(&self) -> &PinioFd {
        &self.shared.fd
    }

    fn register_error(&self, e: KmodError, len: u64) -> Error {
        let pinned = self.shared.pinned_bytes.load(Ordering::Relaxed);
        match e.errno() {
            Some(libc::EINVAL) if len == 0 => Error::ZeroLength { what: "registration" },
            Some(libc::ENOSPC) => Error::PinLimit {
                what: "pinio.ko's per-open cap (module parameter max_pinned_pages)",
                requested: len,
                limit: self.shared.caps.max_pinned_bytes.unwrap_or(0),
                pinned,
            },
            Some(libc::ENOMEM) => {
                let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                // SAFETY: `lim` is a valid rlimit to fill.
                let limit = if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } == 0 { lim.rlim_cur } else { 0 };
                Error::MemlockLimit { requested: len, limit, locked: pinned }
            }
            _ => backend(e),
        }
    }
}

impl Device for KmodDevice {
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
        let i = &self.shared.info;
        format!(
            "kmod:{} (pinio.ko ABI {}, {} bytes of device memory, DMA engine: kernel worker over FOLL_LONGTERM pins)",
            self.shared.path.display(),
            i.abi_version,
            i.dev_mem_size
        )
    }

    fn register(&self, buf: DmaBuf) -> std::result::Result<Region, RegisterError> {
        let (addr, len) = (buf.as_ptr() as u64, buf.len() as u64);
        if len == 0 {
            return Err(RegisterError::new(Error::ZeroLength { what: "registration" }, buf));
        }
        let id = match self.shared.fd.register(addr, len, abi::ACCESS_ALL) {
            Ok(id) => id,
            Err(e) => {
                let error = self.register_error(e, len);
                return Err(RegisterError::new(error, buf));
            }
        };
        self.shared.stats.pinned(len);
        self.shared.pinned_bytes.fetch_add(len, Ordering::Relaxed);
        let key = RegionKey { id: u64::from(id), device_addr: addr };
        let hook = Arc::new(Unpin { shared: self.shared.clone() });
        // SAFETY: `id` is a live registration of exactly `buf`'s memory in this device's open
        // file, and `Unpin` unregisters it; the pinned pages are only touched by the module's
        // DMA engine on behalf of slices handed to a queue.
        Ok(unsafe { Region::new(self.shared.id, key, buf, hook) })
    }

    fn queue(&self, depth: usize) -> Result<Box<dyn pinio_core::Queue>> {
        if depth == 0 {
            return Err(Error::ZeroLength { what: "queue depth" });
        }
        Ok(Box::new(KmodQueue::new(self.shared.clone(), depth)))
    }
}

/// Opens the module device only to say whether it is there and speaks our ABI.
pub fn probe(path: impl AsRef<Path>) -> std::result::Result<abi::Info, KmodError> {
    PinioFd::open(path)?.info()
}

