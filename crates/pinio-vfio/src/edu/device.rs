//! Opening edu and the [`Device`] implementation.

use super::engine::Engine;
use super::queue::EduQueue;
use super::regs;
use crate::mapper::DmaMapper;
use crate::pci::{Binding, PciAddress, Sysfs};
use crate::vfio_pci::{PCI_COMMAND_MASTER, VfioPci};
use crate::{CompletionMode, VfioError, VfioOptions};
use pinio_core::{Capabilities, Device, DeviceId, DmaBuf, Error, Queue, RegisterError, Region, Result, Stats, StatsSnapshot};
use std::sync::Arc;
use vmm_sys_util::eventfd::EventFd;

pub(crate) struct EduShared {
    pub(crate) id: DeviceId,
    pub(crate) caps: Capabilities,
    pub(crate) stats: Arc<Stats>,
    pub(crate) engine: Engine,
    pub(crate) mapper: Arc<DmaMapper>,
    pub(crate) pci: Arc<VfioPci>,
    pub(crate) mode: CompletionMode,
}

/// QEMU's `edu` device driven from userspace through VFIO.
///
/// The device address space is edu's 4 KiB on-board buffer (offsets
/// 0..4096, at 0x40000 in edu's own DMA address space). A read moves bytes
/// from the buffer into a slice, a write from a slice into the buffer; both
/// run on edu's one DMA engine, which reaches host memory only through the
/// IOMMU mappings that [`Device::register`] makes.
///
/// # Lifetimes
///
/// Regions and queues keep the VFIO device open: the IOMMU group is
/// released (and the device can be opened again) when the `EduDevice`, its
/// queues and every region registered with it are gone.
///
/// # Memory safety of DMA
///
/// The IOMMU lets edu read and write a region for as long as it is
/// registered, but edu only moves bytes that this driver programs it to
/// move, and it is programmed only with slices that a queue owns. While a
/// slice is in flight nothing in the application can reach its bytes (the
/// queue holds it; the region's lease table keeps other slices from
/// overlapping it), so no Rust reference ever aliases memory the device may
/// be writing. Registered memory is unmapped only when the last slice and
/// handle of its region are gone, so no transfer can be in flight then.
pub struct EduDevice {
    shared: Arc<EduShared>,
}

impl EduDevice {
    /// Opens the edu at `pci_addr` (`0000:00:03.0` or `vfio:0000:00:03.0`).
    ///
    /// Binds it to vfio-pci when it has no driver (a device bound to
    /// another driver is refused unless [`VfioOptions::take_from_driver`]),
    /// opens a VFIO container and the device's IOMMU group, maps BAR0,
    /// checks the identification and liveness registers, enables bus
    /// mastering, and sets up MSI in [`CompletionMode::Interrupt`].
    pub fn open(pci_addr: &str, opts: VfioOptions) -> Result<EduDevice> {
        let bdf = PciAddress::parse(pci_addr)?;
        let sysfs = Sysfs::system();
        sysfs.require_present(&bdf)?;
        let (vendor, device) = sysfs.ids(&bdf)?;
        // The driver check comes first: a device in use by another driver
        // is reported as such, whatever it is.
        if let Binding::Other(driver) = sysfs.binding(&bdf)
            && !opts.take_from_driver
        {
            return Err(VfioError::BoundToOtherDriver { bdf: bdf.to_string(), driver }.into());
        }
        if (vendor, device) != (regs::VENDOR, regs::DEVICE) {
            let e = VfioError::WrongDevice {
                bdf: bdf.to_string(),
                vendor,
                device,
                expected: "QEMU edu",
                want_vendor: regs::VENDOR,
                want_device: regs::DEVICE,
            };
            return Err(e.into());
        }
        sysfs.bind_vfio_pci(&bdf, opts.take_from_driver)?;
        let pci = Arc::new(VfioPci::open(&bdf, &sysfs)?);
        check_identity(&pci)?;
        pci.set_command_bits(PCI_COMMAND_MASTER, true)?;
        let irq = match opts.completion {
            CompletionMode::Interrupt => {
                let fd = EventFd::new(libc::EFD_NONBLOCK | libc::EFD_CLOEXEC).map_err(|e| VfioError::os("eventfd for MSI", e))?;
                pci.enable_msi(&fd)?;
                Some(fd)
            }
            CompletionMode::Poll => None,
        };
        let id = DeviceId::next();
        let stats = Arc::new(Stats::default());
        let mapper = Arc::new(DmaMapper::new(pci.clone(), stats.clone(), id, regs::DMA_BITS));
        let caps = Capabilities {
            backend: "vfio",
            mem_align: 1,
            register_align: mapper.page(),
            offset_align: 1,
            len_align: 1,
            max_transfer: regs::BUF_LEN,
            max_pinned_bytes: Some(mapper.iova_space()),
            device_size: regs::BUF_LEN,
            completion: opts.completion.into(),
            cpu_copies: false,
            pins_memory: true,
        };
        let engine = Engine::new(pci.clone(), irq);
        let shared = EduShared { id, caps, stats, engine, mapper, pci, mode: opts.completion };
        Ok(EduDevice { shared: Arc::new(shared) })
    }

    /// The device's PCI address.
    pub fn pci_address(&self) -> &PciAddress {
        self.shared.pci.bdf()
    }

    /// The IOMMU's limits as VFIO reported them at open.
    pub fn iommu_info(&self) -> &crate::IommuInfo {
        self.shared.pci.iommu()
    }

    /// Asks the IOMMU driver again (`VFIO_IOMMU_GET_INFO`): how many DMA
    /// mappings are left now, for instance.
    pub fn query_iommu(&self) -> Result<crate::IommuInfo> {
        Ok(crate::iommu_info::query(self.shared.pci.container_fd())?)
    }

    /// Programs one DMA with any IOVA, bypassing regions, and waits for it.
    /// For IOMMU isolation tests: aimed at an IOVA outside every mapping,
    /// the IOMMU must block it. Returns an error if the engine is stopped.
    ///
    /// # Safety
    ///
    /// For [`pinio_core::Direction::Read`] (edu buffer to memory) the device
    /// writes whatever is mapped at `[iova, iova + len)`: no Rust reference
    /// to that memory may be live, and no region's slice may be in use.
    #[cfg(feature = "raw-dma")]
    pub unsafe fn raw_dma(&self, dir: pinio_core::Direction, iova: u64, dev_offset: u64, len: u64) -> Result<()> {
        let irq = self.shared.mode == CompletionMode::Interrupt;
        let prog = regs::DmaProgram::new(dir, iova, dev_offset, len, irq)?;
        let ticket = self.shared.engine.enqueue(prog, len as usize).map_err(|f| super::queue::fault_error(&self.shared, f))?;
        loop {
            if let Some(outcome) = self.shared.engine.take(ticket) {
                return outcome.map(|_| ()).map_err(|f| super::queue::fault_error(&self.shared, f));
            }
            self.shared.engine.wait_progress();
        }
    }

    /// The VFIO container's file descriptor, for benchmarks that compare
    /// pinio's registration with raw `VFIO_IOMMU_MAP_DMA` calls on the same
    /// container. Mappings made through it are invisible to pinio's IOVA
    /// allocator: use IOVAs pinio does not hand out (at or above
    /// [`EduDevice::raw_iova_floor`]) and unmap them before dropping.
    #[cfg(feature = "raw-dma")]
    pub fn container_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        // SAFETY: the container stays open as long as `self.shared.pci`,
        // which outlives the returned borrow of `self`.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(self.shared.pci.container_fd()) }
    }

    /// The lowest IOVA pinio's allocator never uses (the device's DMA
    /// limit); raw mappings above it do not collide with regions.
    #[cfg(feature = "raw-dma")]
    pub fn raw_iova_floor(&self) -> u64 {
        1 << regs::DMA_BITS
    }
}

/// Reads the identification register and checks liveness.
fn check_identity(pci: &VfioPci) -> Result<(), VfioError> {
    let bar = pci.bar0();
    let bdf = pci.bdf().to_string();
    let id = bar.read32(regs::REG_ID);
    if id != regs::ID_VALUE {
        return Err(VfioError::Identity { bdf, device: "QEMU edu", register: "identification (0x00)", found: id, expected: regs::ID_VALUE });
    }
    // A value that changes from open to open, so a stale latch cannot pass.
    let probe = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0x5a5a_1234) | 1;
    bar.write32(regs::REG_LIVENESS, probe);
    let back = bar.read32(regs::REG_LIVENESS);
    if !regs::alive(probe, back) {
        return Err(VfioError::Identity { bdf, device: "QEMU edu", register: "liveness (0x04)", found: back, expected: !probe });
    }
    Ok(())
}

impl Device for EduDevice {
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
        let mode = match self.shared.mode {
            CompletionMode::Interrupt => "MSI completions",
            CompletionMode::Poll => "polled completions",
        };
        let stopped = if self.shared.engine.stopped() { ", STOPPED after a DMA timeout" } else { "" };
        format!("vfio:{} (QEMU edu, 4 KiB buffer, IOMMU-mapped regions below 256 MiB IOVA, {mode}{stopped})", self.shared.pci.bdf())
    }

    fn register(&self, mut buf: DmaBuf) -> Result<Region, RegisterError> {
        match self.shared.mapper.map(&mut buf) {
            Ok(key) => {
                let hook: Arc<dyn pinio_core::Unregister> = self.shared.mapper.clone();
                // SAFETY: `key` is the live IOMMU mapping of exactly `buf`
                // made just above; the mapper's `unregister` unmaps it; from
                // here on only the region's slices touch the memory.
                Ok(unsafe { Region::new(self.shared.mapper.device(), key, buf, hook) })
            }
            Err(e) => Err(RegisterError::new(e, buf)),
        }
    }

    fn queue(&self, depth: usize) -> Result<Box<dyn Queue>> {
        if depth == 0 {
            return Err(Error::ZeroLength { what: "queue depth" });
        }
        Ok(Box::new(EduQueue::new(self.shared.clone(), depth)))
    }
}

impl std::fmt::Debug for EduDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}
