//! The kmod domain: one kernel session, i.e. one open file of `/dev/pinio`, with its regions
//! (pinned by the module with `pin_user_pages_fast(FOLL_LONGTERM)`), its completion queue, the
//! userspace [`Router`] that sorts completions into per-queue mailboxes, and the channels open
//! in it.

use crate::abi;
use crate::channel::{ChannelTable, Window};
use crate::error::{KmodError, backend};
use crate::router::Router;
use crate::sys::PinioFd;
use pinio_core::{DmaBuf, Domain, Error, RegionKey, Registrar, Registration, Result};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// What the registrar, the channels (devices) and their queues share: the open file and what
/// userspace keeps about it.
pub(crate) struct Session {
    pub(crate) fd: PinioFd,
    /// `PINIO_IOC_INFO` at open: the limits, which never change for a loaded module.
    pub(crate) info: abi::Info,
    /// Per-queue mailboxes of the session's completion records, for the queues of every channel.
    pub(crate) router: Router,
    pinned_bytes: AtomicU64,
    path: PathBuf,
    /// The node's identity: `(st_dev, st_ino, st_rdev)` of the open file.
    node: (u64, u64, Option<u64>),
    channels: Mutex<ChannelTable>,
}

/// `(st_dev, st_ino, st_rdev)` of a file: `st_rdev` only for a character device.
fn identity(m: &std::fs::Metadata) -> (u64, u64, Option<u64>) {
    (m.dev(), m.ino(), m.file_type().is_char_device().then(|| m.rdev()))
}

impl Session {
    fn open(path: &Path) -> Result<Session> {
        let fd = PinioFd::open(path).map_err(backend)?;
        let info = fd.info().map_err(backend)?;
        let node = identity(&fd.metadata().map_err(backend)?);
        let s = Session {
            fd,
            info,
            router: Router::default(),
            pinned_bytes: AtomicU64::new(0),
            path: path.to_owned(),
            node,
            channels: Mutex::default(),
        };
        Ok(s)
    }

    /// The device node the session was opened on.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Checks that `path` names the session's device node: the same file, or another node of
    /// the same character device.
    pub(crate) fn same_node(&self, path: &Path) -> Result<()> {
        let m = std::fs::metadata(path).map_err(|e| backend(KmodError::open(path, e)))?;
        let (dev, ino, rdev) = identity(&m);
        let (sdev, sino, srdev) = self.node;
        if (dev, ino) == (sdev, sino) || (rdev.is_some() && rdev == srdev) {
            return Ok(());
        }
        Err(backend(KmodError::OtherNode { session: self.path.clone(), asked: path.to_owned() }))
    }

    fn channels(&self) -> MutexGuard<'_, ChannelTable> {
        self.channels.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Claims `w` of the device memory for a channel until [`Session::release`].
    pub(crate) fn claim(&self, w: Window) -> Result<()> {
        self.channels().claim(w).map_err(|open| backend(KmodError::ChannelOverlap { asked: w, open }))
    }

    /// Frees a channel's window.
    pub(crate) fn release(&self, w: Window) {
        self.channels().release(w);
    }

    /// The session's cap on pinned memory (`max_pinned_pages` pages).
    pub(crate) fn max_pinned_bytes(&self) -> u64 {
        self.info.max_pinned_pages.saturating_mul(u64::from(self.info.page_size))
    }

    /// The typed error of a refused `PINIO_IOC_REGISTER` of `len` bytes.
    fn register_error(&self, e: KmodError, len: u64) -> Error {
        let pinned = self.pinned_bytes.load(Ordering::Relaxed);
        match e.errno() {
            Some(libc::EINVAL) if len == 0 => Error::ZeroLength { what: "registration" },
            Some(libc::ENOSPC) => Error::PinLimit {
                what: "pinio.ko's per-open cap (module parameter max_pinned_pages)",
                requested: len,
                limit: self.max_pinned_bytes(),
                pinned,
            },
            Some(libc::ENOMEM) => {
                let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                // SAFETY: `lim` is a valid rlimit for getrlimit to fill.
                let limit =
                    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } == 0 { lim.rlim_cur } else { 0 };
                Error::MemlockLimit { requested: len, limit, locked: pinned }
            }
            _ => backend(e),
        }
    }
}

/// The registrar of a kmod domain: one kernel session, i.e. one open file of `/dev/pinio`.
///
/// A registration is one `PINIO_IOC_REGISTER` (device reads and writes allowed) of the region's
/// bytes in the session: the module pins them with `pin_user_pages_fast(FOLL_LONGTERM)` and
/// charges them to `RLIMIT_MEMLOCK`; the region id it returns is the key
/// ([`Registration::Own`]). Every channel of the session (every [`crate::KmodDevice`] of the
/// domain) uses the same registrations: region ids are per open file, not per channel.
pub struct KmodRegistrar {
    session: Arc<Session>,
}

impl KmodRegistrar {
    /// Opens a new session of the device node `path` (`/dev/pinio`), as a domain.
    pub fn open(path: impl AsRef<Path>) -> Result<Domain> {
        let session = Session::open(path.as_ref())?;
        Ok(Domain::new(KmodRegistrar { session: Arc::new(session) }))
    }

    pub(crate) fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// The device node of the session.
    pub fn path(&self) -> &Path {
        self.session.path()
    }

    /// What the module reports for the session now (limits, pinned pages, outstanding
    /// descriptors, regions).
    pub fn info(&self) -> Result<abi::Info> {
        self.session.fd.info().map_err(backend)
    }

    /// The session's open file, for the raw ioctls of [`crate::sys`].
    pub fn raw(&self) -> &PinioFd {
        &self.session.fd
    }
}

// SAFETY: `register` returns Own(id) only after PINIO_IOC_REGISTER pinned exactly `buf`'s bytes
// in this session, and `device_addr` is their user address, which is how descriptors name them
// (region id + offset); `unregister` is PINIO_IOC_UNREGISTER of that id, after which the module
// holds no pin and no job on it. The module's DMA engine touches a region only for descriptors
// the queues submit from operations they own (the DMA ownership rule, pinio_core::domain).
unsafe impl Registrar for KmodRegistrar {
    fn backend(&self) -> &'static str {
        "kmod"
    }

    fn max_registered_bytes(&self) -> Option<u64> {
        Some(self.session.max_pinned_bytes())
    }

    fn register(&self, buf: &mut DmaBuf) -> Result<RegionKey> {
        let s = &self.session;
        let (addr, len) = (buf.as_mut_ptr() as u64, buf.len() as u64);
        // The module pins `[addr, addr + len)` long-term: `buf` stays mapped until pinio-core
        // calls `unregister` after its region's last slice and handle are gone, and the DMA
        // engine writes those pages only for operations a queue owns (the DMA ownership rule,
        // pinio_core::domain).
        let id = s.fd.register(addr, len, abi::ACCESS_ALL).map_err(|e| s.register_error(e, len))?;
        s.pinned_bytes.fetch_add(len, Ordering::Relaxed);
        Ok(RegionKey { registration: Registration::Own(u64::from(id)), device_addr: addr })
    }

    fn unregister(&self, key: RegionKey, buf: &DmaBuf) -> Result<()> {
        let Registration::Own(id) = key.registration else {
            return Ok(());
        };
        let s = &self.session;
        // Region ids are u32 in the ABI; a key this registrar made always fits.
        let id =
            u32::try_from(id).map_err(|_| backend(KmodError::from_errno(crate::Call::Unregister, libc::ENOENT)))?;
        s.fd.unregister(id).map_err(backend)?;
        s.pinned_bytes.fetch_sub(buf.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn describe(&self) -> String {
        let s = &self.session;
        format!(
            "pinio.ko session of {}: {} channel(s) open, {} of {} bytes pinned",
            s.path.display(),
            s.channels().len(),
            s.pinned_bytes.load(Ordering::Relaxed),
            s.max_pinned_bytes()
        )
    }
}
