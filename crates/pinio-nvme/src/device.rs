//! Opening a controller and the [`Device`] implementation.

use crate::cmd::{Sqe, cns};
use crate::controller::Controller;
use crate::error::NvmeError;
use crate::identify::{ControllerInfo, NamespaceInfo};
use crate::queue::NvmeQueue;
use crate::{CompletionMode, NvmeOptions, prp};
use pinio_core::{Capabilities, Device, DeviceId, DmaBuf, Error, Queue, RegisterError, Region, Result, Stats, StatsSnapshot};
use pinio_vfio::{Binding, DmaMapper, PCI_COMMAND_MASTER, PciAddress, Sysfs, VfioError, VfioPci};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use vmm_sys_util::eventfd::EventFd;

/// The namespace this driver uses.
pub(crate) const NSID: u32 = 1;
/// PCI class code of an NVMe controller (mass storage, NVM, NVMe).
const NVME_CLASS: u32 = 0x01_08_02;
/// VFIO_PCI_MSIX_IRQ_INDEX (include/uapi/linux/vfio.h).
const MSIX_INDEX: u32 = 2;
/// IOVA bits: QEMU's VT-d emulation translates 39-bit IOVAs (the
/// allocator hands out low addresses first anyway).
const DMA_BITS: u32 = 39;

pub(crate) struct Shared {
    pub(crate) id: DeviceId,
    pub(crate) caps: Capabilities,
    pub(crate) stats: Arc<Stats>,
    pub(crate) mode: CompletionMode,
    pub(crate) ns: NamespaceInfo,
    pub(crate) info: ControllerInfo,
    /// Queue pair ids not in use.
    free_qids: Mutex<Vec<u16>>,
    pub(crate) granted: u16,
    pub(crate) live_queues: AtomicUsize,
    /// Held while a queue pair is created and while the controller is
    /// reset, so that a reset never races a queue being made.
    pub(crate) lifecycle: Mutex<()>,
    /// MSI-X eventfds by vector (vector `q` serves queue pair `q`).
    pub(crate) irqs: Vec<EventFd>,
    // Drop order: the controller shuts down while its memory is mapped;
    // the mapper (and with it the VFIO device) goes last.
    pub(crate) ctrl: Controller,
    pub(crate) mapper: Arc<DmaMapper>,
}

impl Shared {
    fn free_qids(&self) -> MutexGuard<'_, Vec<u16>> {
        self.free_qids.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn take_qid(&self) -> Result<u16, NvmeError> {
        self.free_qids().pop().ok_or(NvmeError::NoQueuePair { granted: self.granted })
    }

    pub(crate) fn return_qid(&self, qid: u16) {
        self.free_qids().push(qid);
    }
}

/// An NVMe controller driven from userspace through VFIO: namespace 1 as a
/// pinio device.
///
/// The device address space is namespace 1 in bytes (logical block `n`
/// at offset `n * block_size`); offsets and lengths must be multiples of
/// the block size and memory addresses multiples of 4 (the PRP rule).
/// Each [`Queue`] is one NVMe I/O submission/completion queue pair, made
/// with Create I/O Completion/Submission Queue when the queue is made and
/// deleted when it is dropped; the controller grants a fixed number of
/// pairs at open ([`NvmeDevice::queue_pairs`]).
///
/// # Memory safety of DMA
///
/// Registered regions are mapped into the IOMMU; the controller reaches
/// them only through the PRP entries of commands this driver builds from
/// slices that a queue owns, so no Rust reference aliases memory the
/// controller writes. A region is unmapped only when its last slice and
/// handle are gone. Queue rings and PRP list pages are the driver's own
/// mapped memory, touched only with volatile accesses.
///
/// # Lifetimes
///
/// Dropping the device (after its queues and regions, which keep it alive)
/// shuts the controller down (CC.SHN normal, then disabled), unmaps the
/// driver's memory and closes the VFIO device. The controller stays bound
/// to vfio-pci; [`release_to_kernel`] hands it back to the kernel's driver.
pub struct NvmeDevice {
    shared: Arc<Shared>,
}

impl NvmeDevice {
    /// Opens the NVMe controller at `pci_addr` (`0000:00:02.0`, or with a
    /// `nvme:` or `vfio:` prefix) and brings it up.
    ///
    /// A controller bound to another kernel driver (normally `nvme`) is
    /// refused unless [`NvmeOptions::take_from_driver`]. Then: bind to
    /// vfio-pci, open the IOMMU group in a new container, map BAR0, enable
    /// bus mastering and MSI-X, reset the controller, set up the admin
    /// queues, enable, Identify the controller and namespace 1, and ask
    /// for [`NvmeOptions::io_queues`] I/O queue pairs.
    pub fn open(pci_addr: &str, opts: NvmeOptions) -> Result<NvmeDevice> {
        Ok(NvmeDevice { shared: Arc::new(open_shared(pci_addr, opts)?) })
    }

    /// The controller's PCI address.
    pub fn pci_address(&self) -> &str {
        self.shared.ctrl.bdf()
    }

    /// What Identify Controller reported.
    pub fn controller_info(&self) -> &ControllerInfo {
        &self.shared.info
    }

    /// What Identify Namespace reported for namespace 1.
    pub fn namespace_info(&self) -> NamespaceInfo {
        self.shared.ns
    }

    /// The logical block size in bytes.
    pub fn block_size(&self) -> u32 {
        self.shared.ns.block_size
    }

    /// How many I/O queue pairs the controller granted (the most pinio
    /// queues that can exist at once).
    pub fn queue_pairs(&self) -> u16 {
        self.shared.granted
    }

    /// The controller's NVMe version as `(major, minor, tertiary)`.
    pub fn version(&self) -> (u16, u8, u8) {
        self.shared.ctrl.version()
    }

    /// The decoded CAP register.
    pub fn cap(&self) -> crate::regs::Cap {
        self.shared.ctrl.cap()
    }

    /// A queue of the concrete type, which also offers
    /// [`NvmeQueue::flush`].
    pub fn nvme_queue(&self, depth: usize) -> Result<NvmeQueue> {
        NvmeQueue::new(self.shared.clone(), depth)
    }

    /// Flushes the volatile write cache of namespace 1 (on a queue pair
    /// of its own).
    pub fn flush(&self) -> Result<()> {
        self.nvme_queue(1)?.flush()
    }

    /// Resets the controller (CC.EN 1 → 0 → 1) and sets its admin queues
    /// up again. Refused while any queue exists, since a reset destroys
    /// every I/O queue pair. Data written before stays on the namespace.
    pub fn reset(&self) -> Result<()> {
        let _busy = self.shared.lifecycle.lock().unwrap_or_else(|p| p.into_inner());
        let queues = self.shared.live_queues.load(Ordering::Acquire);
        if queues != 0 {
            return Err(NvmeError::QueuesAlive { queues }.into());
        }
        self.shared.ctrl.reset()?;
        // The number of queues is set once per reset.
        set_queue_count(&self.shared.ctrl, self.shared.granted)?;
        Ok(())
    }
}

fn open_shared(pci_addr: &str, opts: NvmeOptions) -> Result<Shared> {
    let bare = pci_addr.strip_prefix("nvme:").unwrap_or(pci_addr);
    let bdf = PciAddress::parse(bare)?;
    let sysfs = Sysfs::system();
    sysfs.require_present(&bdf)?;
    // A device in use by another driver is reported as such, whatever it is.
    if let Binding::Other(driver) = sysfs.binding(&bdf)
        && !opts.take_from_driver
    {
        return Err(VfioError::BoundToOtherDriver { bdf: bdf.to_string(), driver }.into());
    }
    let class = read_class(&sysfs, &bdf)?;
    if class != NVME_CLASS {
        return Err(NvmeError::NotNvme { bdf: bdf.to_string(), class }.into());
    }
    sysfs.bind_vfio_pci(&bdf, opts.take_from_driver)?;
    let pci = Arc::new(VfioPci::open(&bdf, &sysfs)?);
    pci.set_command_bits(PCI_COMMAND_MASTER, true)?;
    let id = DeviceId::next();
    let stats = Arc::new(Stats::default());
    let mapper = Arc::new(DmaMapper::new(pci.clone(), stats.clone(), id, DMA_BITS));
    let page = mapper.page().max(pinio_core::page_size() as u64);

    // MSI-X before the controller is enabled: the admin completion queue
    // always interrupts (vector 0), and with MSI-X on, nothing is raised
    // on the INTx line.
    let table = pci.vfio_device().get_irq_info(MSIX_INDEX).map(|i| i.count).unwrap_or(0);
    if table == 0 {
        return Err(NvmeError::Unsupported { bdf: bdf.to_string(), what: "the device has no MSI-X capability".into() }.into());
    }
    let want = match opts.completion {
        CompletionMode::Interrupt => (opts.io_queues.max(1) as u32 + 1).min(table),
        CompletionMode::Poll => 1,
    };
    let irqs = (0..want)
        .map(|_| EventFd::new(libc::EFD_NONBLOCK | libc::EFD_CLOEXEC).map_err(|e| VfioError::Os { what: "eventfd for MSI-X".into(), source: e }))
        .collect::<Result<Vec<_>, _>>()?;
    pci.vfio_device()
        .enable_msix(irqs.iter().collect())
        .map_err(|e| VfioError::Vfio { what: format!("enabling {want} MSI-X vectors of {bdf} (VFIO_DEVICE_SET_IRQS)"), source: e })?;

    let ctrl = Controller::bring_up(pci, &mapper, page, Duration::from_millis(opts.admin_timeout_ms))?;
    let info = ControllerInfo::parse(&ctrl.identify(cns::CONTROLLER, 0)?)?;
    if info.namespaces < NSID {
        return Err(NvmeError::Identify { what: "controller", reason: "it reports no namespaces".into() }.into());
    }
    let ns = NamespaceInfo::parse(&ctrl.identify(cns::NAMESPACE, NSID)?)?;
    if ns.metadata != 0 {
        let what = format!("namespace {NSID} is formatted with {} metadata bytes per block (extended LBAs); reformat it without metadata", ns.metadata);
        return Err(NvmeError::Unsupported { bdf: bdf.to_string(), what }.into());
    }
    let mut ask = opts.io_queues.max(1);
    if opts.completion == CompletionMode::Interrupt {
        ask = ask.min((want - 1) as u16);
    }
    let mut granted = set_queue_count(&ctrl, ask)?.min(ask);
    while granted > 0 && !ctrl.has_doorbells(granted) {
        granted -= 1;
    }
    if granted == 0 {
        return Err(NvmeError::Unsupported { bdf: bdf.to_string(), what: "the controller granted no I/O queue pair".into() }.into());
    }
    let bs = ns.block_size as u64;
    let mdts = info.max_transfer(ctrl.cap().min_page).unwrap_or(u64::MAX);
    let max_transfer = pinio_core::align_down(mdts.min(prp::max_transfer(page)).min(65536 * bs), bs);
    let caps = Capabilities {
        backend: "nvme",
        mem_align: 4,
        register_align: mapper.page(),
        offset_align: bs,
        len_align: bs,
        max_transfer,
        max_pinned_bytes: Some(mapper.iova_space()),
        device_size: ns.bytes(),
        completion: opts.completion.into(),
        cpu_copies: false,
        pins_memory: true,
    };
    Ok(Shared {
        id,
        caps,
        stats,
        mode: opts.completion,
        ns,
        info,
        free_qids: Mutex::new((1..=granted).rev().collect()),
        granted,
        live_queues: AtomicUsize::new(0),
        lifecycle: Mutex::new(()),
        irqs,
        ctrl,
        mapper,
    })
}

/// Set Features / Number of Queues; returns the pairs granted.
fn set_queue_count(ctrl: &Controller, n: u16) -> Result<u16, NvmeError> {
    let cqe = ctrl.admin_cmd(Sqe::set_number_of_queues(0, n), || format!("Set Features (Number of Queues = {n})"))?;
    let (nsqa, ncqa) = ((cqe.result & 0xffff) as u16, (cqe.result >> 16) as u16);
    Ok(nsqa.min(ncqa).saturating_add(1))
}

fn read_class(sysfs: &Sysfs, bdf: &PciAddress) -> Result<u32, NvmeError> {
    let path = sysfs.device_dir(bdf).join("class");
    let text = std::fs::read_to_string(&path).map_err(|source| NvmeError::Sysfs { action: "read", path: path.display().to_string(), source })?;
    let t = text.trim();
    u32::from_str_radix(t.strip_prefix("0x").unwrap_or(t), 16).map_err(|_| NvmeError::Sysfs {
        action: "parse",
        path: path.display().to_string(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not a class code: {t:?}")),
    })
}

/// Hands the controller at `pci_addr` back to the kernel: clears its
/// `driver_override`, unbinds it from vfio-pci and asks the kernel to probe
/// it again, so its own driver (`nvme`) takes it. No [`NvmeDevice`] of it
/// may be open.
pub fn release_to_kernel(pci_addr: &str) -> Result<()> {
    let bdf = PciAddress::parse(pci_addr.strip_prefix("nvme:").unwrap_or(pci_addr))?;
    let sysfs = Sysfs::system();
    sysfs.require_present(&bdf)?;
    let dir = sysfs.device_dir(&bdf);
    let write = |path: std::path::PathBuf, value: &str, action: &'static str| {
        std::fs::write(&path, value).map_err(|source| NvmeError::Sysfs { action, path: path.display().to_string(), source })
    };
    write(dir.join("driver_override"), "\n", "clear")?;
    if sysfs.binding(&bdf) == Binding::VfioPci {
        write(dir.join("driver/unbind"), bdf.as_str(), "write the address to")?;
    }
    write("/sys/bus/pci/drivers_probe".into(), bdf.as_str(), "write the address to")?;
    Ok(())
}

impl Device for NvmeDevice {
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
        let s = &self.shared;
        let mode = match s.mode {
            CompletionMode::Interrupt => "MSI-X completions",
            CompletionMode::Poll => "polled completions",
        };
        let (maj, min, ter) = s.ctrl.version();
        format!(
            "nvme:{} ({} {}, NVMe {maj}.{min}.{ter}, namespace {NSID}: {} blocks of {} B, max transfer {} KiB, {} I/O queue pairs, {mode})",
            s.ctrl.bdf(),
            s.info.model,
            s.info.serial,
            s.ns.blocks,
            s.ns.block_size,
            s.caps.max_transfer / 1024,
            s.granted
        )
    }

    fn register(&self, mut buf: DmaBuf) -> Result<Region, RegisterError> {
        match self.shared.mapper.map(&mut buf) {
            Ok(key) => {
                let hook: Arc<dyn pinio_core::Unregister> = self.shared.mapper.clone();
                // SAFETY: `key` is the live IOMMU mapping of exactly `buf`
                // made just above; the mapper's `unregister` removes it;
                // from here on only the region's slices touch the memory.
                Ok(unsafe { Region::new(self.shared.id, key, buf, hook) })
            }
            Err(e) => Err(RegisterError::new(e, buf)),
        }
    }

    fn queue(&self, depth: usize) -> Result<Box<dyn Queue>> {
        if depth == 0 {
            return Err(Error::ZeroLength { what: "queue depth" });
        }
        Ok(Box::new(self.nvme_queue(depth)?))
    }
}

impl std::fmt::Debug for NvmeDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}
