//! One PCI device opened through VFIO in a domain's container: its group,
//! device file, PCI config space, BAR0 and interrupts.
//!
//! The layering (Documentation/driver-api/vfio.rst): a *container*
//! (`/dev/vfio/vfio`) is one IOMMU address space; a *group*
//! (`/dev/vfio/N`) is the smallest set of devices the IOMMU can isolate; the
//! *device* file gives access to config space, BARs and interrupts. DMA
//! mappings are made on the container and apply to every device in it: the
//! container is the domain ([`crate::VfioRegistrar`]), the device is this.

use crate::bar::Bar;
use crate::pci::Sysfs;
use crate::{PciAddress, VfioError};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use vfio_bindings::bindings::vfio::{
    VFIO_PCI_BAR0_REGION_INDEX, VFIO_PCI_CONFIG_REGION_INDEX, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_PCI_REQ_IRQ_INDEX,
    VFIO_REGION_INFO_FLAG_MMAP,
};
use vfio_ioctls::{VfioContainer, VfioDevice};
use vmm_sys_util::eventfd::EventFd;

/// PCI_COMMAND (offset 4 of config space) bits, from include/uapi/linux/pci_regs.h.
pub(crate) const PCI_COMMAND: u64 = 0x04;
/// Memory space enable.
pub(crate) const PCI_COMMAND_MEMORY: u16 = 0x2;
/// Bus master enable: without it the device cannot DMA.
pub const PCI_COMMAND_MASTER: u16 = 0x4;

/// Which interrupts are routed to eventfds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Irqs {
    None,
    Msi,
    Msix,
}

/// A PCI device opened through VFIO in a domain's container.
///
/// Field order is drop order: BAR0 is unmapped before the device file is
/// closed (see [`Bar`]); closing the device file takes its group out of
/// the container when no other device of the group is open.
pub struct VfioPci {
    bar0: Bar,
    device: VfioDevice,
    bdf: PciAddress,
    irqs: Mutex<Irqs>,
    /// Whether a driver uses the device now ([`crate::DeviceClaim`]).
    claimed: AtomicBool,
}

impl VfioPci {
    /// Opens `bdf`, which must already be bound to vfio-pci, in
    /// `container` (its group joins the container unless it is there
    /// already); enables memory space and maps BAR0. Bus mastering stays as
    /// it is (vfio-pci leaves it off) until the driver has checked the
    /// device and turns it on.
    pub(crate) fn open(bdf: &PciAddress, sysfs: &Sysfs, container: Arc<VfioContainer>) -> Result<VfioPci, VfioError> {
        let group = sysfs.iommu_group(bdf)?;
        let device = VfioDevice::new(&sysfs.device_dir(bdf), container, false).map_err(|e| match e {
            vfio_ioctls::VfioError::OpenGroup(ref io, _) if io.raw_os_error() == Some(libc::EBUSY) => {
                VfioError::GroupBusy { bdf: bdf.to_string(), group }
            }
            e => VfioError::vfio(format!("opening {bdf} (IOMMU group {group}) through VFIO"), e),
        })?;
        let (flags, size) =
            (device.get_region_flags(VFIO_PCI_BAR0_REGION_INDEX), device.get_region_size(VFIO_PCI_BAR0_REGION_INDEX));
        if flags & VFIO_REGION_INFO_FLAG_MMAP == 0 || size == 0 {
            return Err(VfioError::BarNotMappable { bdf: bdf.to_string(), index: 0, size, flags });
        }
        let bar0 = Bar::map(device.as_raw_fd(), device.get_region_offset(VFIO_PCI_BAR0_REGION_INDEX), size as usize)?;
        let pci = VfioPci { bar0, device, bdf: *bdf, irqs: Mutex::new(Irqs::None), claimed: AtomicBool::new(false) };
        pci.set_command_bits(PCI_COMMAND_MEMORY, true)?;
        Ok(pci)
    }

    /// The device's PCI address.
    pub fn bdf(&self) -> &PciAddress {
        &self.bdf
    }

    /// BAR0, mapped.
    pub fn bar0(&self) -> &Bar {
        &self.bar0
    }

    fn config_offset(&self) -> u64 {
        self.device.get_region_offset(VFIO_PCI_CONFIG_REGION_INDEX)
    }

    /// Reads 16 bits of config space. Our own pread because vfio-ioctls'
    /// `region_read` only logs failures.
    pub fn config_read16(&self, off: u64) -> Result<u16, VfioError> {
        let mut b = [0u8; 2];
        // SAFETY: pread into a 2-byte buffer we own; the result is checked.
        let n = unsafe {
            libc::pread(self.device.as_raw_fd(), b.as_mut_ptr().cast(), 2, (self.config_offset() + off) as libc::off_t)
        };
        if n != 2 {
            return Err(VfioError::os(
                format!("reading config space of {} at {off:#x}", self.bdf),
                std::io::Error::last_os_error(),
            ));
        }
        Ok(u16::from_le_bytes(b))
    }

    /// Writes 16 bits of config space.
    pub fn config_write16(&self, off: u64, v: u16) -> Result<(), VfioError> {
        let b = v.to_le_bytes();
        // SAFETY: pwrite from a 2-byte buffer we own; the result is checked.
        let n = unsafe {
            libc::pwrite(self.device.as_raw_fd(), b.as_ptr().cast(), 2, (self.config_offset() + off) as libc::off_t)
        };
        if n != 2 {
            return Err(VfioError::os(
                format!("writing config space of {} at {off:#x}", self.bdf),
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// Sets or clears bits of the PCI command register.
    pub fn set_command_bits(&self, bits: u16, on: bool) -> Result<(), VfioError> {
        let cmd = self.config_read16(PCI_COMMAND)?;
        let new = if on { cmd | bits } else { cmd & !bits };
        if new != cmd {
            self.config_write16(PCI_COMMAND, new)?;
        }
        Ok(())
    }

    /// The `vfio-ioctls` device, for what this type does not wrap. Leave
    /// interrupts to [`VfioPci::enable_msi`] and [`VfioPci::enable_msix`],
    /// which [`VfioPci::quiesce`] undoes.
    pub fn vfio_device(&self) -> &VfioDevice {
        &self.device
    }

    fn irqs(&self) -> std::sync::MutexGuard<'_, Irqs> {
        self.irqs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Routes the device's first MSI vector to `fd`.
    pub fn enable_msi(&self, fd: &EventFd) -> Result<(), VfioError> {
        let mut irqs = self.irqs();
        self.device
            .enable_msi(vec![fd])
            .map_err(|e| VfioError::vfio(format!("enabling MSI of {} (VFIO_DEVICE_SET_IRQS)", self.bdf), e))?;
        *irqs = Irqs::Msi;
        Ok(())
    }

    /// How many MSI-X vectors the device has (0 without MSI-X).
    pub fn msix_vectors(&self) -> u32 {
        self.device.get_irq_info(VFIO_PCI_MSIX_IRQ_INDEX).map(|i| i.count).unwrap_or(0)
    }

    /// Routes MSI-X vector `i` to `fds[i]`.
    pub fn enable_msix(&self, fds: &[EventFd]) -> Result<(), VfioError> {
        let mut irqs = self.irqs();
        self.device.enable_msix(fds.iter().collect()).map_err(|e| {
            VfioError::vfio(format!("enabling {} MSI-X vectors of {} (VFIO_DEVICE_SET_IRQS)", fds.len(), self.bdf), e)
        })?;
        *irqs = Irqs::Msix;
        Ok(())
    }

    /// Has the kernel signal `fd` when it wants the device back (vfio-pci's
    /// device request, `VFIO_PCI_REQ_IRQ_INDEX`): when the device is being
    /// removed (hot-unplug, or `remove` in sysfs) or unbound from
    /// vfio-pci. The removal waits until the device file is closed; the
    /// kernel repeats the request every 10 s meanwhile. Closing the device
    /// file (dropping its domain) undoes this.
    pub fn watch_removal_requests(&self, fd: &EventFd) -> Result<(), VfioError> {
        self.device.enable_irq(VFIO_PCI_REQ_IRQ_INDEX, vec![fd]).map_err(|e| {
            VfioError::vfio(
                format!("asking for the device request of {} (VFIO_DEVICE_SET_IRQS, VFIO_PCI_REQ_IRQ_INDEX)", self.bdf),
                e,
            )
        })
    }

    /// Leaves the device unable to disturb anyone: interrupts disabled, bus
    /// mastering off (so it can no longer reach memory). Errors are ignored:
    /// this runs when a driver lets go of the device.
    pub fn quiesce(&self) {
        let mut irqs = self.irqs();
        let _ = match *irqs {
            Irqs::None => Ok(()),
            Irqs::Msi => self.device.disable_msi(),
            Irqs::Msix => self.device.disable_msix(),
        };
        *irqs = Irqs::None;
        let _ = self.set_command_bits(PCI_COMMAND_MASTER, false);
    }

    /// Takes the device for a driver; false when a driver has it already.
    pub(crate) fn try_claim(&self) -> bool {
        self.claimed.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Gives the device up (after [`VfioPci::quiesce`]).
    pub(crate) fn unclaim(&self) {
        self.claimed.store(false, Ordering::Release);
    }
}

impl Drop for VfioPci {
    fn drop(&mut self) {
        self.quiesce();
        // Fields drop next, BAR0 first.
    }
}
