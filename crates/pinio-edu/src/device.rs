//! Opening edu and the [`Device`] implementation.

use crate::engine::Engine;
use crate::queue::EduQueue;
use crate::regs;
use crate::shared::EduShared;
use crate::{CompletionMode, EduOptions};
use pinio_core::{Capabilities, Device, DeviceCore, Domain, Persistence, Queue, RegistrationSharing, Result};
use pinio_vfio::{
    DeviceClaim, IommuInfo, PCI_COMMAND_MASTER, PciAddress, Sysfs, VfioDomainOptions, VfioError, VfioRegistrar,
};
use std::sync::Arc;
use vmm_sys_util::eventfd::EventFd;

/// The most operations one edu queue holds. The queue is software (edu has
/// one DMA engine and no hardware queue); the limit keeps a runaway depth
/// from growing its tables without bound.
pub const MAX_QUEUE_DEPTH: usize = 1 << 16;

/// QEMU's `edu` device driven from userspace through VFIO.
///
/// The device address space is edu's 4 KiB on-board buffer (offsets
/// 0..4096, at 0x40000 in edu's own DMA address space). A read moves bytes
/// from the buffer into a slice, a write from a slice into the buffer; both
/// run on edu's one DMA engine, which reaches host memory only through the
/// IOMMU mappings of its domain's regions.
///
/// # Domain
///
/// [`EduDevice::open`] makes a new VFIO domain (a container) for the device;
/// [`EduDevice::open_in`] opens it in an existing one, next to other PCI
/// devices (an NVMe controller): a region registered once is then reached by
/// all of them at one IOVA. Edu reaches 28-bit IOVAs, so the domain's DMA
/// limit must be 28 bits or less (the default).
///
/// # Memory safety of DMA
///
/// The IOMMU lets edu read and write a region for as long as it is
/// registered, but edu only moves bytes that this driver programs it to
/// move, and it is programmed only with slices that a queue owns (the DMA
/// ownership rule of [`pinio_core::domain`]). While a slice is in flight
/// nothing in the application can reach its bytes, so no Rust reference
/// ever aliases memory the device may be writing.
pub struct EduDevice {
    shared: Arc<EduShared>,
}

impl EduDevice {
    /// Opens the edu at `pci` in a new VFIO domain
    /// ([`VfioDomainOptions::default`]).
    pub fn open(pci: &PciAddress, opts: EduOptions) -> Result<EduDevice> {
        EduDevice::open_in(&VfioRegistrar::domain(VfioDomainOptions::default())?, pci, opts)
    }

    /// Opens the edu at `pci` in `domain`, a VFIO domain
    /// ([`pinio_core::Error::WrongDomain`] for another backend's).
    ///
    /// Binds it to vfio-pci when it has no driver (a device bound to
    /// another driver is refused unless [`EduOptions::take_from_driver`]),
    /// has its IOMMU group join the domain's container, maps BAR0, checks
    /// the identification and liveness registers, enables bus mastering,
    /// and sets up MSI in [`CompletionMode::Interrupt`].
    pub fn open_in(domain: &Domain, pci: &PciAddress, opts: EduOptions) -> Result<EduDevice> {
        let registrar = VfioRegistrar::of(domain, "vfio")?;
        registrar.check_dma_mask(pci, regs::DMA_BITS)?;
        let sysfs = Sysfs::system();
        sysfs.claim(pci, opts.take_from_driver, |sysfs, bdf| {
            let (vendor, device) = sysfs.ids(bdf)?;
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
            Ok(())
        })?;
        let claim = registrar.attach(pci, &sysfs, regs::DMA_BITS)?;
        check_identity(&claim)?;
        claim.set_command_bits(PCI_COMMAND_MASTER, true)?;
        let irq = match opts.completion {
            CompletionMode::Interrupt => {
                let fd = EventFd::new(libc::EFD_NONBLOCK | libc::EFD_CLOEXEC)
                    .map_err(|e| VfioError::Os { what: "eventfd for MSI".into(), source: e })?;
                claim.enable_msi(&fd)?;
                Some(fd)
            }
            CompletionMode::Poll => None,
        };
        let caps = Capabilities {
            backend: "vfio",
            mem_align: 1,
            register_align: pinio_core::Registrar::register_align(registrar),
            offset_align: 1,
            len_align: 1,
            max_transfer: regs::BUF_LEN,
            max_pinned_bytes: pinio_core::Registrar::max_registered_bytes(registrar),
            device_size: regs::BUF_LEN,
            completion: opts.completion.into(),
            cpu_copies: false,
            pins_memory: true,
            max_queue_depth: MAX_QUEUE_DEPTH,
            sharing: RegistrationSharing::Domain,
            // edu's 4 KiB buffer is device RAM: nothing outlives the device.
            persistence: Persistence::None,
            writable: true,
            short_reads_at_end: false,
            // edu's DMA engine moves one contiguous range per command, with
            // no scatter-gather list: a vectored operation is refused at
            // push (DeviceCore::admit).
            vectored: pinio_core::VectoredIo::Unsupported,
            max_segments: 1,
        };
        let engine = Engine::new(claim.pci().clone(), irq);
        let shared = EduShared { engine, claim, mode: opts.completion, core: DeviceCore::new(domain.clone(), caps) };
        Ok(EduDevice { shared: Arc::new(shared) })
    }

    /// The device's PCI address.
    pub fn pci_address(&self) -> &PciAddress {
        self.shared.claim.bdf()
    }

    /// The domain's VFIO registrar: its container, IOMMU limits and
    /// counters ([`VfioRegistrar::vfio_stats`]).
    pub fn registrar(&self) -> Result<&VfioRegistrar> {
        VfioRegistrar::of(self.shared.core.domain(), "vfio")
    }

    /// The IOMMU's limits as VFIO reported them when the domain's latest
    /// device joined.
    pub fn iommu_info(&self) -> Result<IommuInfo> {
        Ok(self.registrar()?.iommu_info().ok_or(VfioError::NoDevice)?)
    }

    /// Asks the IOMMU driver again (`VFIO_IOMMU_GET_INFO`): how many DMA
    /// mappings are left now, for instance.
    pub fn query_iommu(&self) -> Result<IommuInfo> {
        Ok(self.registrar()?.query_iommu()?)
    }

    /// Programs one DMA with any IOVA, bypassing regions, and waits for it.
    /// For IOMMU isolation tests: aimed at an IOVA outside every mapping,
    /// the IOMMU must block it. Returns an error if the engine is stopped.
    ///
    /// # Safety
    ///
    /// For [`pinio_core::Direction::Read`] (edu buffer to memory) the device
    /// writes whatever is mapped at `[iova, iova + len)` in the domain: no
    /// Rust reference to that memory may be live, and no region's slice
    /// may be in use.
    #[cfg(feature = "raw-dma")]
    pub unsafe fn raw_dma(&self, dir: pinio_core::Direction, iova: u64, dev_offset: u64, len: u64) -> Result<()> {
        let irq = self.shared.mode == CompletionMode::Interrupt;
        let prog = regs::DmaProgram::new(dir, iova, dev_offset, len, irq)?;
        let engine = &self.shared.engine;
        let ticket = engine.enqueue(prog, len as usize).map_err(|f| self.shared.fault_error(f))?;
        loop {
            if let Some(outcome) = engine.take(ticket) {
                return outcome.map(|_| ()).map_err(|f| self.shared.fault_error(f));
            }
            engine.wait_progress();
        }
    }

    /// Routes edu's MSI to `fd` instead of the driver's eventfd, so that
    /// every completion interrupt from now on is lost to the driver (fault
    /// injection for tests: a lost interrupt). In
    /// [`CompletionMode::Interrupt`] the driver then still finds finished
    /// transfers by reading the command register each time its wait for the
    /// interrupt times out (250 ms), so nothing hangs.
    /// [`EduDevice::restore_msi`] routes it back; in poll mode there is no
    /// MSI to move ([`pinio_core::Error::Unsupported`]).
    #[cfg(feature = "raw-dma")]
    pub fn redirect_msi(&self, fd: &EventFd) -> Result<()> {
        if self.shared.engine.irq().is_none() {
            return Err(pinio_core::Error::Unsupported {
                what: "redirecting the MSI of a polled edu".into(),
                hint: "open it with CompletionMode::Interrupt".into(),
            });
        }
        Ok(self.shared.claim.enable_msi(fd)?)
    }

    /// Routes edu's MSI back to the driver's eventfd after
    /// [`EduDevice::redirect_msi`].
    #[cfg(feature = "raw-dma")]
    pub fn restore_msi(&self) -> Result<()> {
        match self.shared.engine.irq() {
            Some(fd) => Ok(self.shared.claim.enable_msi(fd)?),
            None => Ok(()),
        }
    }
}

/// Reads the identification register and checks liveness.
fn check_identity(claim: &DeviceClaim) -> Result<(), VfioError> {
    let bar = claim.bar0();
    let bdf = claim.bdf().to_string();
    let id = bar.read32(regs::REG_ID);
    if id != regs::ID_VALUE {
        return Err(VfioError::Identity {
            bdf,
            device: "QEMU edu",
            register: "identification (0x00)",
            found: id,
            expected: regs::ID_VALUE,
        });
    }
    // A value that changes from open to open, so a stale latch cannot pass.
    let probe = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0x5a5a_1234)
        | 1;
    bar.write32(regs::REG_LIVENESS, probe);
    let back = bar.read32(regs::REG_LIVENESS);
    if !regs::alive(probe, back) {
        return Err(VfioError::Identity {
            bdf,
            device: "QEMU edu",
            register: "liveness (0x04)",
            found: back,
            expected: !probe,
        });
    }
    Ok(())
}

impl Device for EduDevice {
    fn core(&self) -> &DeviceCore {
        &self.shared.core
    }

    fn describe(&self) -> String {
        let mode = match self.shared.mode {
            CompletionMode::Interrupt => "MSI completions",
            CompletionMode::Poll => "polled completions",
        };
        let stopped = if self.shared.engine.stopped() { ", STOPPED after a DMA timeout" } else { "" };
        format!(
            "vfio:{} (QEMU edu, 4 KiB buffer, IOMMU-mapped regions of {}, {mode}{stopped})",
            self.pci_address(),
            self.domain().id()
        )
    }

    fn queue(&self, depth: usize) -> Result<Box<dyn Queue>> {
        let depth = self.shared.core.queue_depth(depth)?;
        Ok(Box::new(EduQueue::new(self.shared.clone(), depth)))
    }
}

impl std::fmt::Debug for EduDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}
