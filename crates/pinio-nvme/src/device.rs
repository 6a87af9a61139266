//! Opening a controller and the [`Device`] implementation.

use crate::cmd::{Sqe, cns};
use crate::controller::Controller;
use crate::error::NvmeError;
use crate::identify::{ControllerInfo, NamespaceInfo};
use crate::queue::NvmeQueue;
use crate::shared::{NSID, Shared};
use crate::{CompletionMode, DoorbellCounts, DoorbellMode, NvmeOptions, prp};
use pinio_core::{
    Capabilities, Device, DeviceCore, Domain, FlushMode, Persistence, Queue, Registrar, RegistrationSharing, Result,
};
use pinio_vfio::{PCI_COMMAND_MASTER, PciAddress, Sysfs, VfioDomainOptions, VfioError, VfioRegistrar};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vmm_sys_util::eventfd::EventFd;

/// PCI class code of an NVMe controller (mass storage, NVM, NVMe).
const NVME_CLASS: u32 = 0x01_08_02;
/// IOVA bits an NVMe controller reaches: PRP entries are 64-bit addresses.
/// (The domain's DMA limit and the IOMMU's reported ranges bound what is
/// handed out.)
pub const DMA_BITS: u32 = 64;

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
/// # Domain
///
/// [`NvmeDevice::open`] makes a new VFIO domain (a container);
/// [`NvmeDevice::open_in`] opens the controller in an existing one, next to
/// other PCI devices (edu): a region registered once is reached by all of
/// them at one IOVA, so a block read from the disk can be handed to another
/// device with no CPU copy and no second mapping.
///
/// # Memory safety of DMA
///
/// Registered regions are mapped into the IOMMU; the controller reaches
/// them only through the PRP entries of commands this driver builds from
/// slices that a queue owns (the DMA ownership rule of
/// [`pinio_core::domain`]), so no Rust reference aliases memory the
/// controller writes. Queue rings and PRP list pages are the driver's own
/// mapped memory, touched only with volatile accesses.
///
/// # Lifetimes
///
/// Dropping the device (after its queues, which keep it alive) shuts the
/// controller down (CC.SHN normal, then disabled), unmaps the driver's
/// memory and switches bus mastering off. The VFIO device stays open in its
/// domain until the domain is gone (its last device, region and handle);
/// the controller stays bound to vfio-pci until [`release_to_kernel`].
pub struct NvmeDevice {
    shared: Arc<Shared>,
}

impl NvmeDevice {
    /// Opens the NVMe controller at `pci` in a new VFIO domain
    /// ([`VfioDomainOptions::default`]) and brings it up.
    pub fn open(pci: &PciAddress, opts: NvmeOptions) -> Result<NvmeDevice> {
        NvmeDevice::open_in(&VfioRegistrar::domain(VfioDomainOptions::default())?, pci, opts)
    }

    /// Opens the NVMe controller at `pci` in `domain`, a VFIO domain
    /// ([`pinio_core::Error::WrongDomain`] for another backend's), and
    /// brings it up.
    ///
    /// A controller bound to another kernel driver (normally `nvme`) is
    /// refused unless [`NvmeOptions::take_from_driver`]. Then: bind to
    /// vfio-pci, have its IOMMU group join the domain's container, map
    /// BAR0, enable bus mastering and MSI-X, reset the controller, set up
    /// the admin queues, enable, Identify the controller and namespace 1,
    /// and ask for [`NvmeOptions::io_queues`] I/O queue pairs.
    pub fn open_in(domain: &Domain, pci: &PciAddress, opts: NvmeOptions) -> Result<NvmeDevice> {
        Ok(NvmeDevice { shared: Arc::new(open_shared(domain, pci, opts)?) })
    }

    /// The controller's PCI address.
    pub fn pci_address(&self) -> &PciAddress {
        self.shared.claim.bdf()
    }

    /// The domain's VFIO registrar: its container, IOMMU limits and
    /// counters ([`VfioRegistrar::vfio_stats`]).
    pub fn registrar(&self) -> Result<&VfioRegistrar> {
        VfioRegistrar::of(self.shared.core.domain(), "nvme")
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

    /// Doorbell writes of this controller's I/O queues since it was opened
    /// (the admin queue's are not counted).
    pub fn doorbells(&self) -> DoorbellCounts {
        self.shared.doorbells.snapshot()
    }

    /// The decoded CAP register.
    pub fn cap(&self) -> crate::regs::Cap {
        self.shared.ctrl.cap()
    }

    /// A queue of the concrete type.
    pub fn nvme_queue(&self, depth: usize) -> Result<NvmeQueue> {
        if self.shared.removal_requested() {
            return Err(self.shared.removed_error().into());
        }
        let depth = self.shared.core.queue_depth(depth)?;
        NvmeQueue::new(self.shared.clone(), depth)
    }

    /// Flushes the volatile write cache of namespace 1, on a queue pair of
    /// its own: every write completed before the call (on any queue) is
    /// durable when it returns `Ok`. See [`Queue::flush`] for writes still
    /// in flight.
    pub fn flush(&self) -> Result<()> {
        self.nvme_queue(1)?.flush(FlushMode::Data)
    }

    /// Resets the controller (CC.EN 1 → 0 → 1) and sets its admin queues
    /// up again. Refused while any queue exists, since a reset destroys
    /// every I/O queue pair. Data written before stays on the namespace.
    pub fn reset(&self) -> Result<()> {
        let _busy = self.shared.lifecycle();
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

impl NvmeDevice {
    /// Resets the controller now, with I/O in flight on any queue (what a
    /// driver does when a command times out or the controller reports a
    /// fatal status, and what Linux's `reset_controller` does): CC.EN = 0,
    /// and once CSTS.RDY = 0 the controller has deleted every I/O queue
    /// pair and stopped every command, so it no longer touches their
    /// memory; then it is enabled again with fresh admin queues and the
    /// same number of I/O queue pairs.
    ///
    /// Queues made before the reset hand back every command still in
    /// flight as a completion with [`NvmeError::Reset`] (those the
    /// controller completed before it stopped keep their real result),
    /// within one wait for an interrupt (100 ms) of their next `poll`,
    /// `wait` or `flush`; they refuse new operations with the same error
    /// and are to be dropped; new queues work at once. If the controller
    /// does not stop within CAP.TO, the error says so and queues keep
    /// their commands (the memory may still be written) until their own
    /// timeout.
    pub fn reset_controller(&self) -> Result<()> {
        let s = &self.shared;
        if s.removal_requested() {
            return Err(s.removed_error().into());
        }
        let _busy = s.lifecycle();
        s.ctrl.disable()?;
        // The controller is stopped: queues may now hand their commands back.
        s.resets.fetch_add(1, Ordering::AcqRel);
        s.ctrl.reset()?;
        set_queue_count(&s.ctrl, s.granted)?;
        Ok(())
    }

    /// Whether the kernel has asked for the controller back (it is being
    /// removed or unbound). Then the controller is stopped, every command
    /// comes back with [`NvmeError::Removed`], no queue can be made, and
    /// the removal waits until the device, its queues and its domain's
    /// regions are dropped. Queues notice it by themselves while they wait
    /// for completions.
    pub fn removal_requested(&self) -> bool {
        self.shared.removal_requested()
    }

    /// Controller resets since the device was opened
    /// ([`NvmeDevice::reset_controller`]).
    pub fn resets(&self) -> u64 {
        self.shared.resets.load(Ordering::Acquire)
    }
}

fn open_shared(domain: &Domain, bdf: &PciAddress, opts: NvmeOptions) -> Result<Shared> {
    let registrar = VfioRegistrar::of(domain, "nvme")?;
    registrar.check_dma_mask(bdf, DMA_BITS)?;
    let sysfs = Sysfs::system();
    sysfs.claim(bdf, opts.take_from_driver, |sysfs, bdf| {
        let class = sysfs.class(bdf)?;
        if class != NVME_CLASS {
            return Err(NvmeError::NotNvme { bdf: bdf.to_string(), class }.into());
        }
        Ok(())
    })?;
    let claim = registrar.attach(bdf, &sysfs, DMA_BITS)?;
    claim.set_command_bits(PCI_COMMAND_MASTER, true)?;
    let page = registrar.register_align().max(pinio_core::page_size() as u64);

    // MSI-X before the controller is enabled: the admin completion queue
    // always interrupts (vector 0), and with MSI-X on, nothing is raised
    // on the INTx line.
    let table = claim.msix_vectors();
    if table == 0 {
        return Err(
            NvmeError::Unsupported { bdf: bdf.to_string(), what: "the device has no MSI-X capability".into() }.into()
        );
    }
    let want = match opts.completion {
        CompletionMode::Interrupt => (opts.io_queues.max(1) as u32 + 1).min(table),
        CompletionMode::Poll => 1,
    };
    let irqs = (0..want)
        .map(|_| {
            EventFd::new(libc::EFD_NONBLOCK | libc::EFD_CLOEXEC)
                .map_err(|e| VfioError::Os { what: "eventfd for MSI-X".into(), source: e })
        })
        .collect::<Result<Vec<_>, _>>()?;
    claim.enable_msix(&irqs)?;
    // Told when the kernel wants the device back (removal, unbind); a
    // kernel that cannot say leaves the driver without the warning.
    let removal =
        EventFd::new(libc::EFD_NONBLOCK | libc::EFD_CLOEXEC).ok().filter(|fd| claim.watch_removal_requests(fd).is_ok());

    let ctrl = Controller::bring_up(claim.pci().clone(), domain, page, Duration::from_millis(opts.admin_timeout_ms))?;
    let info = ControllerInfo::parse(&ctrl.identify(cns::CONTROLLER, 0)?)?;
    if info.namespaces < NSID {
        return Err(NvmeError::Identify { what: "controller", reason: "it reports no namespaces".into() }.into());
    }
    let ns = NamespaceInfo::parse(&ctrl.identify(cns::NAMESPACE, NSID)?)?;
    if ns.metadata != 0 {
        let what = format!(
            "namespace {NSID} is formatted with {} metadata bytes per block (extended LBAs); reformat it without metadata",
            ns.metadata
        );
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
        return Err(NvmeError::Unsupported {
            bdf: bdf.to_string(),
            what: "the controller granted no I/O queue pair".into(),
        }
        .into());
    }
    let bs = ns.block_size as u64;
    let mdts = info.max_transfer(ctrl.cap().min_page).unwrap_or(u64::MAX);
    let max_transfer = pinio_core::align_down(mdts.min(prp::max_transfer(page)).min(65536 * bs), bs);
    let caps = Capabilities {
        backend: "nvme",
        mem_align: 4,
        register_align: registrar.register_align(),
        offset_align: bs,
        len_align: bs,
        max_transfer,
        max_pinned_bytes: registrar.max_registered_bytes(),
        device_size: ns.bytes(),
        completion: opts.completion.into(),
        cpu_copies: false,
        pins_memory: true,
        max_queue_depth: crate::queue::max_depth(ctrl.cap()),
        sharing: RegistrationSharing::Domain,
        persistence: if info.volatile_write_cache { Persistence::WriteBack } else { Persistence::WriteThrough },
        writable: true,
        short_reads_at_end: false,
        // One command with one PRP list across the slices, when every
        // boundary between them is on a memory page (prp_chain); others
        // are refused at push with Error::Misaligned naming the boundary.
        vectored: pinio_core::VectoredIo::Native,
        // Every slice but the first and last spans at least one list entry.
        max_segments: (page / 8) as usize,
    };
    Ok(Shared {
        ctrl,
        claim,
        irqs,
        mode: opts.completion,
        doorbell_mode: opts.doorbells,
        doorbells: Default::default(),
        ns,
        info,
        free_qids: Mutex::new((1..=granted).rev().collect()),
        granted,
        live_queues: AtomicUsize::new(0),
        resets: std::sync::atomic::AtomicU64::new(0),
        removal,
        removed: std::sync::atomic::AtomicBool::new(false),
        lifecycle: Mutex::new(()),
        core: DeviceCore::new(domain.clone(), caps),
    })
}

/// Set Features / Number of Queues; returns the pairs granted.
fn set_queue_count(ctrl: &Controller, n: u16) -> Result<u16, NvmeError> {
    let cqe = ctrl.admin_cmd(Sqe::set_number_of_queues(0, n), || format!("Set Features (Number of Queues = {n})"))?;
    let (nsqa, ncqa) = ((cqe.result & 0xffff) as u16, (cqe.result >> 16) as u16);
    Ok(nsqa.min(ncqa).saturating_add(1))
}

/// Hands the controller at `pci` back to the kernel: clears its
/// `driver_override`, unbinds it from vfio-pci and asks the kernel to probe
/// it again, so its own driver (`nvme`) takes it. No VFIO domain may hold
/// it any more (every [`NvmeDevice`] of it, and its domain's regions and
/// other devices, dropped): the unbind waits for that.
pub fn release_to_kernel(pci: &PciAddress) -> Result<()> {
    Ok(Sysfs::system().release_to_kernel(pci)?)
}

impl Device for NvmeDevice {
    fn core(&self) -> &DeviceCore {
        &self.shared.core
    }

    fn describe(&self) -> String {
        let s = &self.shared;
        let mode = match s.mode {
            CompletionMode::Interrupt => "MSI-X completions",
            CompletionMode::Poll => "polled completions",
        };
        let bells = match s.doorbell_mode {
            DoorbellMode::PerBatch => "doorbells per batch",
            DoorbellMode::PerCommand => "doorbells per command",
        };
        let rung = s.doorbells.snapshot();
        let (maj, min, ter) = s.ctrl.version();
        format!(
            "nvme:{} ({} {}, NVMe {maj}.{min}.{ter}, namespace {NSID}: {} blocks of {} B, max transfer {} KiB, {} I/O queue pairs, {mode}, {bells} (doorbells_sq {}, doorbells_cq {}), {})",
            self.pci_address(),
            s.info.model,
            s.info.serial,
            s.ns.blocks,
            s.ns.block_size,
            s.core.capabilities().max_transfer / 1024,
            s.granted,
            rung.sq,
            rung.cq,
            s.core.domain().id()
        )
    }

    fn queue(&self, depth: usize) -> Result<Box<dyn Queue>> {
        Ok(Box::new(self.nvme_queue(depth)?))
    }
}

impl std::fmt::Debug for NvmeDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}
