//! The one error type of the VFIO backend.

use std::io;

/// Everything the VFIO backend can report. Each message says what was wrong
/// and what to do about it.
///
/// It reaches callers of the [`pinio_core::Device`] API inside
/// [`pinio_core::Error::Backend`]; [`VfioError::find`] digs it out again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VfioError {
    /// The string is not a PCI address.
    #[error(
        "{given:?} is not a PCI address; give DDDD:BB:DD.F (hex domain, bus, device < 0x20, function < 8), e.g. 0000:00:03.0"
    )]
    InvalidAddress {
        /// What was given.
        given: String,
    },
    /// No PCI device at that address.
    #[error(
        "no PCI device at {bdf} ({path} does not exist); list the devices with `ls /sys/bus/pci/devices` or `lspci -D`"
    )]
    DeviceAbsent {
        /// The address.
        bdf: String,
        /// The sysfs directory that was looked for.
        path: String,
    },
    /// The device is not the one this driver drives.
    #[error(
        "PCI device {bdf} is {vendor:04x}:{device:04x}, not {expected} ({want_vendor:04x}:{want_device:04x}); give the address of a {expected}"
    )]
    WrongDevice {
        /// The address.
        bdf: String,
        /// Its vendor id.
        vendor: u16,
        /// Its device id.
        device: u16,
        /// The device this driver wants, by name.
        expected: &'static str,
        /// The vendor id wanted.
        want_vendor: u16,
        /// The device id wanted.
        want_device: u16,
    },
    /// The device is bound to another kernel driver.
    #[error(
        "PCI device {bdf} is bound to the kernel driver {driver:?}; pinio will not take it silently: unbind it (echo {bdf} > /sys/bus/pci/devices/{bdf}/driver/unbind) or set VfioOptions::take_from_driver"
    )]
    BoundToOtherDriver {
        /// The address.
        bdf: String,
        /// The driver's name.
        driver: String,
    },
    /// The vfio-pci driver is not there.
    #[error(
        "the vfio-pci driver is not available ({path} is missing); load it (modprobe vfio-pci) or use a kernel with CONFIG_VFIO_PCI"
    )]
    VfioPciMissing {
        /// The sysfs path that was looked for.
        path: String,
    },
    /// Binding to vfio-pci did not take.
    #[error(
        "PCI device {bdf} did not bind to vfio-pci (its driver is now {driver}); check dmesg, and that no other driver claims it"
    )]
    BindDidNotTake {
        /// The address.
        bdf: String,
        /// The driver it has now (or "none").
        driver: String,
    },
    /// A sysfs file could not be read or written.
    #[error("{action} {path}: {source}; pinio must run as root (or with write access to sysfs) to bind devices")]
    Sysfs {
        /// What was being done ("read", "write vfio-pci to").
        action: &'static str,
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The device has no IOMMU group, so VFIO cannot isolate it.
    #[error(
        "PCI device {bdf} has no IOMMU group; enable the IOMMU (boot with intel_iommu=on; in QEMU add -device intel-iommu)"
    )]
    NoIommuGroup {
        /// The address.
        bdf: String,
    },
    /// The IOMMU group is already open (in this or another process).
    #[error(
        "IOMMU group {group} of {bdf} is already in use (by another VFIO domain of this process, or another process); close the other user first: a device stays in its domain until the domain's last device, region and handle are gone"
    )]
    GroupBusy {
        /// The address.
        bdf: String,
        /// The group number.
        group: u32,
    },
    /// A VFIO step done through the `vfio-ioctls` crate failed.
    #[error("{what}: {source}")]
    Vfio {
        /// What was being done.
        what: String,
        /// The crate's error.
        #[source]
        source: vfio_ioctls::VfioError,
    },
    /// A raw VFIO or PCI system call failed.
    #[error("{what}: {source}")]
    Os {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `VFIO_IOMMU_GET_INFO` returned something this crate cannot read.
    #[error("VFIO_IOMMU_GET_INFO returned malformed data: {reason}")]
    IommuInfo {
        /// What was wrong.
        reason: String,
    },
    /// A BAR that cannot be mapped into this process.
    #[error(
        "BAR{index} of {bdf} cannot be mmapped (size {size:#x}, flags {flags:#x}); the device or kernel does not allow direct register access"
    )]
    BarNotMappable {
        /// The address.
        bdf: String,
        /// The BAR number.
        index: u32,
        /// Its size.
        size: u64,
        /// Its VFIO region flags.
        flags: u32,
    },
    /// A register read back something the device would never return.
    #[error(
        "{bdf}: {register} register reads {found:#010x}, expected {expected:#010x}; the device is not a working {device}"
    )]
    Identity {
        /// The address.
        bdf: String,
        /// The device expected.
        device: &'static str,
        /// The register checked.
        register: &'static str,
        /// What it read.
        found: u32,
        /// What it should have read.
        expected: u32,
    },
    /// No free IOVA range is large enough.
    #[error(
        "no free IOVA range of {len:#x} bytes (aligned to {align:#x}) is left below the domain's DMA limit {limit:#x} (largest free range {largest_free:#x} bytes); register less memory or unregister regions"
    )]
    IovaExhausted {
        /// The length asked for.
        len: u64,
        /// The alignment asked for.
        align: u64,
        /// The domain's DMA address limit (exclusive).
        limit: u64,
        /// The largest free range.
        largest_free: u64,
    },
    /// The IOMMU driver refuses more mappings.
    #[error(
        "the IOMMU allows {limit} DMA mappings per container and all are in use; unregister regions, register fewer larger ones, or raise vfio_iommu_type1.dma_entry_limit"
    )]
    MappingLimit {
        /// The limit.
        limit: u64,
    },
    /// `VFIO_IOMMU_MAP_DMA` failed.
    #[error("mapping {len:#x} bytes at IOVA {iova:#x} into the IOMMU failed: {source}")]
    DmaMap {
        /// The IOVA.
        iova: u64,
        /// The length.
        len: u64,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `VFIO_IOMMU_UNMAP_DMA` failed.
    #[error("unmapping {len:#x} bytes at IOVA {iova:#x} from the IOMMU failed: {source}")]
    DmaUnmap {
        /// The IOVA.
        iova: u64,
        /// The length.
        len: u64,
        /// The crate's error.
        #[source]
        source: vfio_ioctls::VfioError,
    },
    /// The domain has no device yet, so its IOMMU address space does not
    /// exist.
    #[error(
        "this VFIO domain has no device yet: a container gets its IOMMU address space only when a device's group joins it; open a device in the domain before registering memory"
    )]
    NoDevice,
    /// The device cannot reach every IOVA the domain hands out.
    #[error(
        "PCI device {bdf} reaches only {device_bits}-bit IOVAs, but this domain hands out IOVAs below 2^{domain_bits}; open it in a domain made with VfioDomainOptions {{ dma_bits: {device_bits} }} or less"
    )]
    DmaMaskTooSmall {
        /// The address.
        bdf: String,
        /// The device's DMA address bits.
        device_bits: u32,
        /// The domain's DMA limit in bits.
        domain_bits: u32,
    },
    /// The device is already open in this domain.
    #[error(
        "PCI device {bdf} is already open in this VFIO domain; use that device (it is Send + Sync) or drop it first"
    )]
    DeviceInUse {
        /// The address.
        bdf: String,
    },
    /// A domain DMA limit that makes no sense.
    #[error("a VFIO domain's DMA limit must be 21 to 64 bits (room above the 1 MiB floor), not {bits}")]
    DmaBits {
        /// The bits asked for.
        bits: u32,
    },
    /// A DMA did not finish in time; bus mastering was switched off.
    #[error(
        "{bdf}: DMA did not complete within {ms} ms; bus mastering was switched off so the device can no longer touch memory; reopen the device"
    )]
    DmaTimeout {
        /// The address.
        bdf: String,
        /// The time waited.
        ms: u64,
    },
    /// The device stopped working earlier (after a DMA timeout).
    #[error("{bdf}: the device was stopped after an earlier DMA timeout; reopen it")]
    DeviceStopped {
        /// The address.
        bdf: String,
    },
}

impl VfioError {
    /// The VFIO error inside a pinio error, if there is one.
    pub fn find(e: &pinio_core::Error) -> Option<&VfioError> {
        match e {
            pinio_core::Error::Backend { backend: "vfio", source } => source.downcast_ref::<VfioError>(),
            _ => None,
        }
    }

    pub(crate) fn os(what: impl Into<String>, source: io::Error) -> VfioError {
        VfioError::Os { what: what.into(), source }
    }

    pub(crate) fn vfio(what: impl Into<String>, source: vfio_ioctls::VfioError) -> VfioError {
        VfioError::Vfio { what: what.into(), source }
    }
}

impl From<VfioError> for pinio_core::Error {
    fn from(e: VfioError) -> pinio_core::Error {
        pinio_core::Error::Backend { backend: "vfio", source: Box::new(e) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_and_what_to_do() {
        let e = VfioError::BoundToOtherDriver { bdf: "0000:00:04.0".into(), driver: "nvme".into() };
        let s = e.to_string();
        assert!(
            s.contains("\"nvme\"") && s.contains("take_from_driver") && s.contains("0000:00:04.0/driver/unbind"),
            "{s}"
        );
        let e = VfioError::IovaExhausted { len: 1 << 29, align: 4096, limit: 1 << 28, largest_free: 0xff0_0000 };
        let s = e.to_string();
        assert!(s.contains("0x20000000") && s.contains("0x10000000") && s.contains("unregister"), "{s}");
        let e = VfioError::Identity {
            bdf: "b".into(),
            device: "edu",
            register: "ID",
            found: 0xffff_ffff,
            expected: 0x0100_00ed,
        };
        assert!(e.to_string().contains("0x010000ed"), "{e}");
    }

    #[test]
    fn travels_inside_a_pinio_error_and_comes_back() {
        let e: pinio_core::Error = VfioError::MappingLimit { limit: 3 }.into();
        assert!(e.to_string().starts_with("vfio backend: the IOMMU allows 3"), "{e}");
        assert!(matches!(VfioError::find(&e), Some(VfioError::MappingLimit { limit: 3 })));
        assert!(std::error::Error::source(&e).is_some());
        assert!(VfioError::find(&pinio_core::Error::ZeroLength { what: "x" }).is_none());
    }

    #[test]
    fn os_errors_keep_their_source() {
        let e = VfioError::DmaMap { iova: 0x1000, len: 0x2000, source: io::Error::from_raw_os_error(libc::ENOMEM) };
        let src = std::error::Error::source(&e).unwrap().downcast_ref::<io::Error>().unwrap();
        assert_eq!(src.raw_os_error(), Some(libc::ENOMEM));
    }
}
