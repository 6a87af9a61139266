//! PCI addresses and the sysfs side of VFIO: identifying a device, finding
//! its IOMMU group, and binding it to `vfio-pci`.
//!
//! Binding uses the kernel's documented sysfs interface
//! (Documentation/ABI/testing/sysfs-bus-pci): write the driver's name to
//! `devices/BDF/driver_override`, then the address to `drivers_probe`.

use crate::VfioError;
use std::fmt;
use std::path::{Path, PathBuf};

/// A full PCI address `DDDD:BB:DD.F`, in the lower-case form sysfs uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PciAddress(String);

impl PciAddress {
    /// Parses `DDDD:BB:DD.F` or `vfio:DDDD:BB:DD.F`.
    ///
    /// ```
    /// use pinio_vfio::PciAddress;
    /// assert_eq!(PciAddress::parse("vfio:0000:00:0A.0")?.as_str(), "0000:00:0a.0");
    /// assert!(PciAddress::parse("00:03.0").is_err());
    /// # Ok::<(), pinio_vfio::VfioError>(())
    /// ```
    pub fn parse(s: &str) -> Result<PciAddress, VfioError> {
        let bare = s.strip_prefix("vfio:").unwrap_or(s);
        let invalid = || VfioError::InvalidAddress { given: s.to_string() };
        // The core's target parser owns the address grammar.
        let t = pinio_core::Target::parse(&format!("vfio:{bare}")).map_err(|_| invalid())?;
        if t.location != bare {
            return Err(invalid());
        }
        Ok(PciAddress(bare.to_ascii_lowercase()))
    }

    /// The address as sysfs spells it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which driver a device is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// No driver.
    Unbound,
    /// vfio-pci already.
    VfioPci,
    /// Another driver, by name.
    Other(String),
}

/// The PCI part of sysfs, rooted at `root` (`/sys` on a real system).
#[derive(Debug, Clone)]
pub struct Sysfs {
    root: PathBuf,
}

fn parse_id(text: &str) -> Option<u16> {
    let t = text.trim();
    u16::from_str_radix(t.strip_prefix("0x").unwrap_or(t), 16).ok()
}

impl Sysfs {
    /// The system's sysfs at `/sys`.
    pub fn system() -> Sysfs {
        Sysfs { root: PathBuf::from("/sys") }
    }

    /// `/sys/bus/pci/devices/BDF`.
    pub fn device_dir(&self, bdf: &PciAddress) -> PathBuf {
        self.root.join("bus/pci/devices").join(bdf.as_str())
    }

    fn read(&self, path: &Path) -> Result<String, VfioError> {
        std::fs::read_to_string(path).map_err(|source| VfioError::Sysfs { action: "read", path: path.display().to_string(), source })
    }

    fn write(&self, path: &Path, value: &str, action: &'static str) -> Result<(), VfioError> {
        std::fs::write(path, value).map_err(|source| VfioError::Sysfs { action, path: path.display().to_string(), source })
    }

    /// Fails with [`VfioError::DeviceAbsent`] unless the device exists.
    pub fn require_present(&self, bdf: &PciAddress) -> Result<(), VfioError> {
        let dir = self.device_dir(bdf);
        if dir.exists() {
            Ok(())
        } else {
            Err(VfioError::DeviceAbsent { bdf: bdf.to_string(), path: dir.display().to_string() })
        }
    }

    /// `(vendor, device)` ids.
    pub fn ids(&self, bdf: &PciAddress) -> Result<(u16, u16), VfioError> {
        let dir = self.device_dir(bdf);
        let mut ids = [0u16; 2];
        for (slot, name) in ids.iter_mut().zip(["vendor", "device"]) {
            let path = dir.join(name);
            let text = self.read(&path)?;
            *slot = parse_id(&text).ok_or_else(|| VfioError::Sysfs {
                action: "parse",
                path: path.display().to_string(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not a hex id: {text:?}")),
            })?;
        }
        Ok((ids[0], ids[1]))
    }

    /// The driver the device is bound to now.
    pub fn binding(&self, bdf: &PciAddress) -> Binding {
        match std::fs::read_link(self.device_dir(bdf).join("driver")) {
            Err(_) => Binding::Unbound,
            Ok(target) => match target.file_name().and_then(|n| n.to_str()) {
                Some("vfio-pci") => Binding::VfioPci,
                Some(name) => Binding::Other(name.to_string()),
                None => Binding::Unbound,
            },
        }
    }

    /// The device's IOMMU group number.
    pub fn iommu_group(&self, bdf: &PciAddress) -> Result<u32, VfioError> {
        std::fs::read_link(self.device_dir(bdf).join("iommu_group"))
            .ok()
            .and_then(|t| t.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse().ok()))
            .ok_or_else(|| VfioError::NoIommuGroup { bdf: bdf.to_string() })
    }

    /// Makes sure the device is bound to vfio-pci: binds it when unbound,
    /// unbinds it from another driver only when `take` is set.
    pub fn bind_vfio_pci(&self, bdf: &PciAddress, take: bool) -> Result<(), VfioError> {
        match self.binding(bdf) {
            Binding::VfioPci => return Ok(()),
            Binding::Other(driver) if !take => return Err(VfioError::BoundToOtherDriver { bdf: bdf.to_string(), driver }),
            Binding::Other(_) => {
                let unbind = self.device_dir(bdf).join("driver/unbind");
                self.write(&unbind, bdf.as_str(), "write the address to")?;
            }
            Binding::Unbound => {}
        }
        let drv = self.root.join("bus/pci/drivers/vfio-pci");
        if !drv.exists() {
            return Err(VfioError::VfioPciMissing { path: drv.display().to_string() });
        }
        self.write(&self.device_dir(bdf).join("driver_override"), "vfio-pci", "write vfio-pci to")?;
        self.write(&self.root.join("bus/pci/drivers_probe"), bdf.as_str(), "write the address to")?;
        match self.binding(bdf) {
            Binding::VfioPci => Ok(()),
            Binding::Unbound => Err(VfioError::BindDidNotTake { bdf: bdf.to_string(), driver: "none".into() }),
            Binding::Other(d) => Err(VfioError::BindDidNotTake { bdf: bdf.to_string(), driver: d }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_normalise_and_refuse() {
        assert_eq!(PciAddress::parse("0000:00:03.0").unwrap().as_str(), "0000:00:03.0");
        assert_eq!(PciAddress::parse("vfio:0000:AB:1f.7").unwrap().to_string(), "0000:ab:1f.7");
        for bad in ["", "vfio:", "00:03.0", "0000:00:20.0", "0000:00:03.8", "0000:0g:03.0", "nvme:0000:00:03.0", "vfio:vfio:0000:00:03.0", " 0000:00:03.0"] {
            let e = PciAddress::parse(bad).unwrap_err();
            assert!(matches!(e, VfioError::InvalidAddress { ref given } if given == bad), "{bad:?}: {e}");
            assert!(e.to_string().contains("DDDD:BB:DD.F"));
        }
    }

    #[test]
    fn sysfs_ids_parse_like_the_kernel_prints_them() {
        assert_eq!(parse_id("0x1234\n"), Some(0x1234));
        assert_eq!(parse_id("0x11e8"), Some(0x11e8));
        assert_eq!(parse_id("zz"), None);
        assert_eq!(parse_id("0x12345"), None);
    }

    #[test]
    fn an_absent_device_is_named_with_its_path() {
        let sys = Sysfs::system();
        let bdf = PciAddress::parse("0000:fe:1f.7").unwrap();
        let e = sys.require_present(&bdf).unwrap_err();
        assert!(matches!(e, VfioError::DeviceAbsent { .. }));
        assert!(e.to_string().contains("/sys/bus/pci/devices/0000:fe:1f.7"), "{e}");
        assert_eq!(sys.binding(&bdf), Binding::Unbound);
        assert!(matches!(sys.iommu_group(&bdf), Err(VfioError::NoIommuGroup { .. })));
    }
}
