//! The kmod device: one channel of `/dev/pinio`'s echo device behind the `pinio-core`
//! [`Device`] trait.

use crate::abi;
use crate::channel::{Channel, Window};
use crate::error::{KmodError, backend};
use crate::queue::KmodQueue;
use crate::session::KmodRegistrar;
use crate::shared::Shared;
use crate::sys::PinioFd;
use pinio_core::{Capabilities, CompletionMode, Device, DeviceCore, Domain, Persistence, RegistrationSharing, Result};
use std::path::Path;
use std::sync::Arc;

/// One channel of the echo device of pinio.ko: a window of its on-board memory, in a kernel
/// session (a [`KmodRegistrar`] domain).
///
/// Regions are pinned in the kernel with `pin_user_pages_fast(FOLL_LONGTERM)` by the session,
/// once for every channel of it; the module's DMA engine (a kernel worker) moves bytes between
/// them and the device memory. A channel's device address space is `0..len`, translated to
/// `base..base + len` of the memory; channels of one session never overlap while open.
/// [`KmodDevice::open`] opens a new session; [`KmodDevice::open_in`] another channel of an
/// existing one, which accepts the same regions.
///
/// ```no_run
/// use pinio_core::{Device, Queue};
/// use pinio_kmod::KmodDevice;
/// let low = KmodDevice::open("/dev/pinio#0/2")?; // a new session, first half of the memory
/// let high = KmodDevice::open_in(low.domain(), "/dev/pinio#1/2")?; // same session, second half
/// let region = low.alloc(4096)?; // pinned once, for both
/// let mut q = high.queue(8)?;
/// let (n, _) = q.write_at(region.slice(0, 4096)?, 0)?; // lands at 8 MiB of a 16 MiB memory
/// assert_eq!(n, 4096);
/// # Ok::<(), pinio_core::Error>(())
/// ```
pub struct KmodDevice {
    shared: Arc<Shared>,
}

impl KmodDevice {
    /// Opens `location` (`/dev/pinio`, `/dev/pinio@BASE+LEN`, `/dev/pinio#INDEX/COUNT`; see
    /// [`Channel`]) in a new session: `/dev/pinio` alone is the whole device memory.
    pub fn open(location: impl AsRef<str>) -> Result<KmodDevice> {
        let channel = Channel::parse(location.as_ref())?;
        let domain = KmodRegistrar::open(&channel.path)?;
        KmodDevice::open_channel(&domain, &channel)
    }

    /// Opens the channel `location` in `domain`, a kmod session opened on the same device
    /// node: regions of the domain are accepted by every channel of it.
    pub fn open_in(domain: &Domain, location: impl AsRef<str>) -> Result<KmodDevice> {
        KmodDevice::open_channel(domain, &Channel::parse(location.as_ref())?)
    }

    /// Opens `channel` in `domain`. Refused: a domain of another backend
    /// ([`pinio_core::Error::WrongDomain`]), a channel of another device node than the
    /// session's ([`KmodError::OtherNode`]), an empty one
    /// ([`pinio_core::Error::ZeroLength`]), one reaching past the device memory
    /// ([`pinio_core::Error::OutOfBounds`]), one overlapping a channel open in the session
    /// ([`KmodError::ChannelOverlap`]).
    pub fn open_channel(domain: &Domain, channel: &Channel) -> Result<KmodDevice> {
        let session = domain.require::<KmodRegistrar>("kmod")?.session().clone();
        session.same_node(&channel.path)?;
        let info = session.info;
        let window = channel.window(info.dev_mem_size)?;
        session.claim(window)?;
        let caps = Capabilities {
            backend: "kmod",
            mem_align: 1,
            register_align: 1,
            offset_align: 1,
            len_align: 1,
            max_transfer: window.len,
            max_pinned_bytes: Some(session.max_pinned_bytes()),
            device_size: window.len,
            completion: CompletionMode::Interrupt,
            // The module's DMA engine moves the bytes; no CPU copy on the application's side.
            cpu_copies: false,
            pins_memory: true,
            // The session holds at most `queue_depth` descriptors submitted and not reaped, for
            // all its queues together: a deeper queue could never have more in the kernel.
            max_queue_depth: (info.queue_depth as usize).max(1),
            sharing: RegistrationSharing::Domain,
            // The echo device's memory lives in the module: nothing outlives it.
            persistence: Persistence::None,
            writable: true,
            short_reads_at_end: false,
            // A descriptor of the /dev/pinio ABI (abi::Desc) names one range
            // of one region and the ABI has no descriptor chain: a vectored
            // operation is refused at push (DeviceCore::admit).
            vectored: pinio_core::VectoredIo::Unsupported,
            max_segments: 1,
        };
        let core = DeviceCore::new(domain.clone(), caps);
        let shared = Shared { core, session, channel: channel.clone(), window };
        Ok(KmodDevice { shared: Arc::new(shared) })
    }

    /// The channel this device is.
    pub fn channel(&self) -> &Channel {
        &self.shared.channel
    }

    /// The channel's window of device memory.
    pub fn window(&self) -> Window {
        self.shared.window
    }

    /// What the module reports for this device's session (limits, pinned pages, outstanding
    /// descriptors).
    pub fn info(&self) -> Result<abi::Info> {
        self.shared.session.fd.info().map_err(backend)
    }

    /// The low-level client of the session's open file (the copy path `pread`/`pwrite` lives
    /// there, at offsets of the whole device memory).
    pub fn raw(&self) -> &PinioFd {
        &self.shared.session.fd
    }
}

impl Device for KmodDevice {
    fn core(&self) -> &DeviceCore {
        &self.shared.core
    }

    fn describe(&self) -> String {
        let s = &self.shared;
        format!(
            "kmod:{} (pinio.ko ABI {}, bytes {} of {} of device memory, DMA engine: kernel worker over FOLL_LONGTERM pins)",
            s.channel, s.session.info.abi_version, s.window, s.session.info.dev_mem_size
        )
    }

    fn queue(&self, depth: usize) -> Result<Box<dyn pinio_core::Queue>> {
        let depth = self.shared.core.queue_depth(depth)?;
        Ok(Box::new(KmodQueue::new(self.shared.clone(), depth)?))
    }
}

/// Opens the module device only to say whether it is there and speaks our ABI.
pub fn probe(path: impl AsRef<Path>) -> std::result::Result<abi::Info, KmodError> {
    PinioFd::open(path)?.info()
}
