//! The sysfs side of VFIO: identifying a device, finding its IOMMU group,
//! and binding it to `vfio-pci`.
//!
//! Binding uses the kernel's documented sysfs interface
//! (Documentation/ABI/testing/sysfs-bus-pci): write the driver's name to
//! `devices/BDF/driver_override`, then the address to `drivers_probe`.

use crate::{PciAddress, VfioError};
use std::path::{Path, PathBuf};

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
        self.root.join("bus/pci/devices").join(bdf.to_string())
    }

    fn read(&self, path: &Path) -> Result<String, VfioError> {
        std::fs::read_to_string(path).map_err(|source| VfioError::Sysfs {
            action: "read",
            path: path.display().to_string(),
            source,
        })
    }

    fn write(&self, path: &Path, value: &str, action: &'static str) -> Result<(), VfioError> {
        std::fs::write(path, value).map_err(|source| VfioError::Sysfs {
            action,
            path: path.display().to_string(),
            source,
        })
    }

    /// The first PCI function (in address order) whose sysfs attribute
    /// `attr` reads `value`, e.g. `("class", "0x010802")` for an NVMe
    /// controller or `("device", "0x11e8")` for QEMU's edu; `None` when no
    /// function matches or the bus cannot be listed.
    pub fn first_with(&self, attr: &str, value: &str) -> Option<PciAddress> {
        self.functions()
            .ok()?
            .into_iter()
            .find(|bdf| std::fs::read_to_string(self.device_dir(bdf).join(attr)).is_ok_and(|v| v.trim() == value))
    }

    /// The first PCI function (in address order) with these vendor and
    /// device ids, e.g. `(0x1234, 0x11e8)` for QEMU's edu; `None` when none
    /// has them or the bus cannot be listed.
    pub fn first_with_ids(&self, vendor: u16, device: u16) -> Option<PciAddress> {
        self.functions().ok()?.into_iter().find(|bdf| self.ids(bdf).is_ok_and(|ids| ids == (vendor, device)))
    }

    /// Every PCI function on the bus (`/sys/bus/pci/devices`), in address
    /// order. Listed with `getdents64` into a buffer written just before
    /// each call, so the kernel's readdir takes no page fault: safe while
    /// VFIO is in use in other threads of the process, where a
    /// `std::fs::read_dir` of sysfs completes a lock cycle lockdep reports
    /// (`sysfs_dir.rs`, docs/reliability.md).
    pub fn functions(&self) -> Result<Vec<PciAddress>, VfioError> {
        let devices = self.root.join("bus/pci/devices");
        let names = crate::sysfs_dir::names(&devices).map_err(|source| VfioError::Sysfs {
            action: "list",
            path: devices.display().to_string(),
            source,
        })?;
        let mut found: Vec<PciAddress> = names.iter().filter_map(|n| n.to_str()?.parse().ok()).collect();
        found.sort_by_key(|a| a.to_string());
        Ok(found)
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

    /// The PCI class code (`0x010802` for an NVMe controller).
    pub fn class(&self, bdf: &PciAddress) -> Result<u32, VfioError> {
        let path = self.device_dir(bdf).join("class");
        let text = self.read(&path)?;
        let t = text.trim();
        u32::from_str_radix(t.strip_prefix("0x").unwrap_or(t), 16).map_err(|_| VfioError::Sysfs {
            action: "parse",
            path: path.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not a class code: {t:?}")),
        })
    }

    /// The steps every driver takes before opening a device through VFIO:
    /// the device must exist; a device bound to another kernel driver is
    /// refused ([`VfioError::BoundToOtherDriver`]) unless `take`; then
    /// `is_mine` checks that it is the driver's kind of device (ids, class)
    /// *before* anything is unbound, so a disk is never taken by mistake;
    /// finally it is bound to vfio-pci.
    pub fn claim(
        &self,
        bdf: &PciAddress,
        take: bool,
        is_mine: impl FnOnce(&Sysfs, &PciAddress) -> pinio_core::Result<()>,
    ) -> pinio_core::Result<()> {
        self.require_present(bdf)?;
        // A device in use by another driver is reported as such, whatever it is.
        if let Binding::Other(driver) = self.binding(bdf)
            && !take
        {
            return Err(VfioError::BoundToOtherDriver { bdf: bdf.to_string(), driver }.into());
        }
        is_mine(self, bdf)?;
        self.bind_vfio_pci(bdf, take)?;
        Ok(())
    }

    /// Hands the device back to the kernel: clears its `driver_override`,
    /// unbinds it from vfio-pci and asks the kernel to probe it again, so
    /// its own driver takes it. Nothing may have it open through VFIO (the
    /// unbind waits for that).
    pub fn release_to_kernel(&self, bdf: &PciAddress) -> Result<(), VfioError> {
        self.require_present(bdf)?;
        let dir = self.device_dir(bdf);
        self.write(&dir.join("driver_override"), "\n", "clear")?;
        if self.binding(bdf) == Binding::VfioPci {
            self.write(&dir.join("driver/unbind"), &bdf.to_string(), "write the address to")?;
        }
        self.write(&self.root.join("bus/pci/drivers_probe"), &bdf.to_string(), "write the address to")
    }

    /// Makes sure the device is bound to vfio-pci: binds it when unbound,
    /// unbinds it from another driver only when `take` is set.
    pub fn bind_vfio_pci(&self, bdf: &PciAddress, take: bool) -> Result<(), VfioError> {
        match self.binding(bdf) {
            Binding::VfioPci => return Ok(()),
            Binding::Other(driver) if !take => {
                return Err(VfioError::BoundToOtherDriver { bdf: bdf.to_string(), driver });
            }
            Binding::Other(_) => {
                let unbind = self.device_dir(bdf).join("driver/unbind");
                self.write(&unbind, &bdf.to_string(), "write the address to")?;
            }
            Binding::Unbound => {}
        }
        let drv = self.root.join("bus/pci/drivers/vfio-pci");
        if !drv.exists() {
            return Err(VfioError::VfioPciMissing { path: drv.display().to_string() });
        }
        self.write(&self.device_dir(bdf).join("driver_override"), "vfio-pci", "write vfio-pci to")?;
        self.write(&self.root.join("bus/pci/drivers_probe"), &bdf.to_string(), "write the address to")?;
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
    fn sysfs_ids_parse_like_the_kernel_prints_them() {
        assert_eq!(parse_id("0x1234\n"), Some(0x1234));
        assert_eq!(parse_id("0x11e8"), Some(0x11e8));
        assert_eq!(parse_id("zz"), None);
        assert_eq!(parse_id("0x12345"), None);
    }

    #[test]
    fn first_with_and_functions_go_in_address_order() {
        let root = std::env::temp_dir().join(format!("pinio-sysfs-{}", std::process::id()));
        for (bdf, class) in [("0000:00:05.0", "0x010802"), ("0000:00:02.0", "0x010802"), ("0000:00:01.0", "0x018000")] {
            let dir = root.join("bus/pci/devices").join(bdf);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("class"), format!("{class}\n")).unwrap();
        }
        let sys = Sysfs { root: root.clone() };
        assert_eq!(sys.first_with("class", "0x010802").map(|a| a.to_string()).as_deref(), Some("0000:00:02.0"));
        assert!(sys.first_with("class", "0x0c0330").is_none());
        assert!(Sysfs { root: root.join("absent") }.first_with("class", "0x010802").is_none());
        for (bdf, device) in [("0000:00:05.0", "0x11e8"), ("0000:00:02.0", "0x0010")] {
            let dir = root.join("bus/pci/devices").join(bdf);
            std::fs::write(dir.join("vendor"), "0x1234\n").unwrap();
            std::fs::write(dir.join("device"), format!("{device}\n")).unwrap();
        }
        assert_eq!(sys.first_with_ids(0x1234, 0x11e8).map(|a| a.to_string()).as_deref(), Some("0000:00:05.0"));
        assert!(sys.first_with_ids(0x1b36, 0x11e8).is_none());
        std::fs::create_dir_all(root.join("bus/pci/devices/not-an-address")).unwrap();
        let all: Vec<String> = sys.functions().unwrap().iter().map(|a| a.to_string()).collect();
        assert_eq!(all, ["0000:00:01.0", "0000:00:02.0", "0000:00:05.0"], "in address order, addresses only");
        let e = Sysfs { root: root.join("absent") }.functions().unwrap_err();
        assert!(e.to_string().contains("absent/bus/pci/devices"), "{e}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn an_absent_device_is_named_with_its_path() {
        let sys = Sysfs::system();
        let bdf: PciAddress = "0000:fe:1f.7".parse().unwrap();
        let e = sys.require_present(&bdf).unwrap_err();
        assert!(matches!(e, VfioError::DeviceAbsent { .. }));
        assert!(e.to_string().contains("/sys/bus/pci/devices/0000:fe:1f.7"), "{e}");
        assert_eq!(sys.binding(&bdf), Binding::Unbound);
        assert!(matches!(sys.iommu_group(&bdf), Err(VfioError::NoIommuGroup { .. })));
        let e = sys.claim(&bdf, false, |_, _| Ok(())).unwrap_err();
        assert!(matches!(VfioError::find(&e), Some(VfioError::DeviceAbsent { .. })), "{e}");
    }
}
