//! One PCI device opened through VFIO: container, group, device file, PCI
//! config space, BAR0 and MSI.
//!
//! The layering (Documentation/driver-api/vfio.rst): a *container*
//! (`/dev/vfio/vfio`) is one IOMMU address space; a *group*
//! (`/dev/vfio/N`) is the smallest set of devices the IOMMU can isolate; the
//! *device* file gives access to config space, BARs and interrupts. DMA
//! mappings are made on the container and apply to every device in it.

use crate::bar::Bar;
use crate::iommu_info::{self, IommuInfo};
use crate::pci::{PciAddress, Sysfs};
use crate::VfioError;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use vfio_bindings::bindings::vfio::{VFIO_PCI_BAR0_REGION_INDEX, VFIO_PCI_CONFIG_REGION_INDEX, VFIO_REGION_INFO_FLAG_MMAP};
use vfio_ioctls::{VfioContainer, VfioDevice};
use vmm_sys_util::eventfd::EventFd;

/// PCI_COMMAND (offset 4 of config space) bits, from include/uapi/linux/pci_regs.h.
pub(crate) const PCI_COMMAND: u64 = 0x04;
/// Memory space enable.
pub(crate) const PCI_COMMAND_MEMORY: u16 = 0x2;
/// Bus master enable: without it the device cannot DMA.
pub const PCI_COMMAND_MASTER: u16 = 0x4;

/// An opened VFIO PCI device with its own container.
///
/// Field order is drop order: BAR0 is unmapped before the device file is
/// closed, and the device is released before the container (see [`Bar`]).
pub struct VfioPci {
    bar0: Bar,
    device: VfioDevice,
    container: Arc<VfioContainer>,
    info: IommuInfo,
    bdf: PciAddress,
    msi_on: AtomicBool,
}

impl VfioPci {
    /// Opens `bdf`, which must already be bound to vfio-pci, in a new
    /// container; enables memory space and maps BAR0. Bus mastering stays
    /// as it is (vfio-pci leaves it off) until the driver has checked the
    /// device and turns it on.
    pub fn open(bdf: &PciAddress, sysfs: &Sysfs) -> Result<VfioPci, VfioError> {
        let group = sysfs.iommu_group(bdf)?;
        let container = VfioContainer::new(None).map_err(|e| VfioError::vfio("opening the VFIO container /dev/vfio/vfio", e))?;
        let container = Arc::new(container);
        let device = VfioDevice::new(&sysfs.device_dir(bdf), container.clone(), false).map_err(|e| match e {
            vfio_ioctls::VfioError::OpenGroup(ref io, _) if io.raw_os_error() == Some(libc::EBUSY) => {
                VfioError::GroupBusy { bdf: bdf.to_string(), group }
            }
            e => VfioError::vfio(format!("opening {bdf} (IOMMU group {group}) through VFIO"), e),
        })?;
        let info = iommu_info::query(container.as_raw_fd())?;
        let (flags, size) = (device.get_region_flags(VFIO_PCI_BAR0_REGION_INDEX), device.get_region_size(VFIO_PCI_BAR0_REGION_INDEX));
        if flags & VFIO_REGION_INFO_FLAG_MMAP == 0 || size == 0 {
            return Err(VfioError::BarNotMappable { bdf: bdf.to_string(), index: 0, size, flags });
        }
        let bar0 = Bar::map(device.as_raw_fd(), device.get_region_offset(VFIO_PCI_BAR0_REGION_INDEX), size as usize)?;
        let pci = VfioPci { bar0, device, container, info, bdf: bdf.clone(), msi_on: AtomicBool::new(false) };
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

    /// The IOMMU's limits as `VFIO_IOMMU_GET_INFO` reported them at open.
    pub fn iommu(&self) -> &IommuInfo {
        &self.info
    }

    pub(crate) fn container_fd(&self) -> std::os::fd::RawFd {
        self.container.as_raw_fd()
    }

    fn config_offset(&self) -> u64 {
        self.device.get_region_offset(VFIO_PCI_CONFIG_REGION_INDEX)
    }

    /// Reads 16 bits of config space. Our own pread because vfio-ioctls'
    /// `region_read` only logs failures.
    pub fn config_read16(&self, off: u64) -> Result<u16, VfioError> {
        let mut b = [0u8; 2];
        // SAFETY: pread into a 2-byte buffer we own; the result is checked.
        let n = unsafe { libc::pread(self.device.as_raw_fd(), b.as_mut_ptr().cast(), 2, (self.config_offset() + off) as libc::off_t) };
        if n != 2 {
            return Err(VfioError::os(format!("reading config space of {} at {off:#x}", self.bdf), std::io::Error::last_os_error()));
        }
        Ok(u16::from_le_bytes(b))
    }

    /// Writes 16 bits of config space.
    pub fn config_write16(&self, off: u64, v: u16) -> Result<(), VfioError> {
        let b = v.to_le_bytes();
        // SAFETY: pwrite from a 2-byte buffer we own; the result is checked.
        let n = unsafe { libc::pwrite(self.device.as_raw_fd(), b.as_ptr().cast(), 2, (self.config_offset() + off) as libc::off_t) };
        if n != 2 {
            return Err(VfioError::os(format!("writing config space of {} at {off:#x}", self.bdf), std::io::Error::last_os_error()));
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

    /// The `vfio-ioctls` device, for interrupt set-ups this type does not
    /// wrap (MSI-X: `enable_msix`/`disable_msix`). Closing the device file
    /// (dropping this value) disables whatever interrupts were enabled.
    pub fn vfio_device(&self) -> &VfioDevice {
        &self.device
    }

    /// Routes the device's first MSI vector to `fd`.
    pub(crate) fn enable_msi(&self, fd: &EventFd) -> Result<(), VfioError> {
        self.device.enable_msi(vec![fd]).map_err(|e| VfioError::vfio(format!("enabling MSI of {} (VFIO_DEVICE_SET_IRQS)", self.bdf), e))?;
        self.msi_on.store(true, Ordering::Release);
        Ok(())
    }

    /// Maps `len` bytes at `vaddr` into the IOMMU at `iova`, readable and
    /// writable by the device.
    ///
    /// # Safety
    ///
    /// `[vaddr, vaddr + len)` must stay allocated and must not be reached
    /// through Rust references while the device may access it, until
    /// [`Self::unmap_dma`] of the same range succeeds.
    pub(crate) unsafe fn map_dma(&self, iova: u64, len: u64, vaddr: *mut u8) -> Result<(), vfio_ioctls::VfioError> {
        // SAFETY: forwarded to our caller.
        unsafe { self.container.vfio_dma_map(iova, len as usize, vaddr) }
    }

    /// Removes the mapping at `iova` of `len` bytes.
    pub(crate) fn unmap_dma(&self, iova: u64, len: u64) -> Result<(), vfio_ioctls::VfioError> {
        self.container.vfio_dma_unmap(iova, len as usize)
    }
}

impl Drop for VfioPci {
    fn drop(&mut self) {
        if self.msi_on.load(Ordering::Acquire) {
            let _ = self.device.disable_msi();
        }
        // Leave the device unable to reach memory.
        let _ = self.set_command_bits(PCI_COMMAND_MASTER, false);
        // Fields drop next, BAR0 first.
    }
}
