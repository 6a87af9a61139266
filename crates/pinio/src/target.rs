//! Backend selection strings: `uring:/path`, `copy:/path`, `kmod:/dev/pinio`,
//! `vfio:0000:00:03.0`, `nvme:0000:01:00.0`, `nvme-uring:/dev/ng0n1`.
//! Backend naming lives here, in
//! the facade, not in the model.

use pinio_core::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// The backends pinio knows.
///
/// # Example
///
/// ```
/// use pinio::BackendKind;
/// for kind in BackendKind::ALL {
///     let built = pinio::available_backends().contains(&kind);
///     println!("{kind:<6} {}  location: {}", if built { "built in" } else { "not built" }, kind.location_hint());
/// }
/// assert_eq!(BackendKind::Uring.name(), "uring");
/// assert_eq!(pinio::Target::parse("copy:/x")?.backend, BackendKind::Copy);
/// # Ok::<(), pinio::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// pread/pwrite through a bounce buffer: the baseline.
    Copy,
    /// io_uring with registered (fixed) buffers and O_DIRECT.
    Uring,
    /// pinio's kernel module: pin_user_pages and an echo DMA engine.
    Kmod,
    /// VFIO with an IOMMU: a userspace driver for QEMU's `edu` device.
    Vfio,
    /// VFIO with an IOMMU: a userspace NVMe driver.
    Nvme,
    /// NVMe commands through io_uring passthrough on a namespace's generic
    /// character device, with fixed buffers.
    NvmeUring,
}

impl BackendKind {
    /// Every backend, in the order `pinio info` lists them.
    pub const ALL: [BackendKind; 6] = [
        BackendKind::Copy,
        BackendKind::Uring,
        BackendKind::Kmod,
        BackendKind::Vfio,
        BackendKind::Nvme,
        BackendKind::NvmeUring,
    ];

    /// The prefix used in selection strings.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Copy => "copy",
            BackendKind::Uring => "uring",
            BackendKind::Kmod => "kmod",
            BackendKind::Vfio => "vfio",
            BackendKind::Nvme => "nvme",
            BackendKind::NvmeUring => "nvme-uring",
        }
    }

    /// What the location part names for this backend.
    pub fn location_hint(self) -> &'static str {
        match self {
            BackendKind::Copy | BackendKind::Uring => "a file or block device path",
            BackendKind::Kmod => "the device node, e.g. /dev/pinio",
            BackendKind::Vfio | BackendKind::Nvme => "a PCI address DDDD:BB:DD.F, e.g. 0000:00:03.0",
            BackendKind::NvmeUring => "an NVMe namespace's generic character device, e.g. /dev/ng0n1",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed selection string: which backend, and what it opens.
///
/// # Example
///
/// ```
/// use pinio::{BackendKind, Target};
/// let t: Target = "uring:/var/tmp/data".parse()?;
/// assert_eq!((t.backend, t.location.as_str()), (BackendKind::Uring, "/var/tmp/data"));
/// assert_eq!(t.to_string(), "uring:/var/tmp/data");
/// let err = Target::parse("disk:/dev/sda").unwrap_err(); // names the backends it knows
/// assert!(err.to_string().contains("copy, uring"), "{err}");
/// # Ok::<(), pinio::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The backend.
    pub backend: BackendKind,
    /// The path or PCI address.
    pub location: String,
    /// Wrappers around the device, outermost first (empty for a plain
    /// `BACKEND:LOCATION`): `record:<log>:`, `fault:<rules>:`.
    pub wrappers: Vec<crate::Wrapper>,
}

impl Target {
    /// Parses `BACKEND:LOCATION`.
    ///
    /// ```
    /// use pinio::{BackendKind, Target};
    /// let t: Target = "vfio:0000:00:03.0".parse()?;
    /// assert_eq!((t.backend, t.location.as_str()), (BackendKind::Vfio, "0000:00:03.0"));
    /// assert!("floppy:/dev/fd0".parse::<Target>().is_err());
    /// # Ok::<(), pinio::Error>(())
    /// ```
    pub fn parse(spec: &str) -> Result<Target> {
        let (wrappers, inner) = crate::wrappers::split(spec)?;
        let bad = |reason: String| Error::InvalidTarget { spec: spec.to_string(), reason };
        let (name, location) =
            inner.split_once(':').ok_or_else(|| bad("no ':' separates backend and location".into()))?;
        let backend = BackendKind::ALL.into_iter().find(|b| b.name() == name).ok_or_else(|| {
            bad(format!("unknown backend {name:?} (known: copy, uring, kmod, vfio, nvme, nvme-uring)"))
        })?;
        if location.is_empty() {
            return Err(bad(format!("empty location; {} needs {}", backend, backend.location_hint())));
        }
        if location.contains('\0') {
            return Err(bad("location contains a NUL byte".into()));
        }
        match backend {
            BackendKind::Copy | BackendKind::Uring | BackendKind::Kmod | BackendKind::NvmeUring => {}
            BackendKind::Vfio | BackendKind::Nvme => {
                if let Err(why) = check_pci_address(location) {
                    return Err(bad(format!("{location:?} is not {} ({why})", backend.location_hint())));
                }
            }
        }
        Ok(Target { backend, location: location.to_string(), wrappers })
    }
}

/// Checks a PCI address of a `vfio:`/`nvme:` selection string with the one
/// typed parser, [`pinio_vfio::PciAddress`] (without the VFIO backends in
/// this build, opening says so instead).
#[cfg(feature = "vfio")]
fn check_pci_address(location: &str) -> std::result::Result<(), String> {
    location.parse::<pinio_vfio::PciAddress>().map(drop).map_err(|e| e.to_string())
}

#[cfg(not(feature = "vfio"))]
fn check_pci_address(_location: &str) -> std::result::Result<(), String> {
    Ok(())
}

impl FromStr for Target {
    type Err = Error;
    fn from_str(s: &str) -> Result<Target> {
        Target::parse(s)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for w in &self.wrappers {
            write!(f, "{w}:")?;
        }
        write!(f, "{}:{}", self.backend, self.location)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_every_backend() {
        for (s, b, l) in [
            ("copy:/tmp/x", BackendKind::Copy, "/tmp/x"),
            ("uring:relative/path", BackendKind::Uring, "relative/path"),
            ("kmod:/dev/pinio", BackendKind::Kmod, "/dev/pinio"),
            ("nvme:0000:00:04.0", BackendKind::Nvme, "0000:00:04.0"),
            ("nvme-uring:/dev/ng0n1", BackendKind::NvmeUring, "/dev/ng0n1"),
            ("uring:/a:b", BackendKind::Uring, "/a:b"),
        ] {
            let t = Target::parse(s).unwrap();
            assert_eq!((t.backend, t.location.as_str()), (b, l));
            assert_eq!(t.to_string(), s);
        }
    }

    #[test]
    fn rejects_with_reasons() {
        for (s, why) in
            [("", "no ':'"), ("uring", "no ':'"), ("uring:", "empty location"), ("tape:/dev/st0", "unknown backend")]
                .into_iter()
                .chain(BAD_PCI.map(|s| (s, "not a PCI address")).into_iter().filter(|_| cfg!(feature = "vfio")))
        {
            let e = Target::parse(s).unwrap_err().to_string();
            assert!(e.contains(why.split(' ').next_back().unwrap()) || e.contains(why), "{s}: {e}");
        }
    }

    const BAD_PCI: [&str; 4] = ["vfio:00:03.0", "vfio:0000:00:20.0", "vfio:0000:00:03.8", "vfio:0000:0g:03.0"];

    /// Without the VFIO backends the PCI address is not checked at parse
    /// time: opening the target says the backend is not in this build.
    #[cfg(not(feature = "vfio"))]
    #[test]
    fn pci_addresses_are_left_to_open_without_vfio() {
        for s in BAD_PCI {
            assert_eq!(Target::parse(s).unwrap().backend, BackendKind::Vfio, "{s}");
        }
    }

    proptest! {
        #[test]
        fn never_panics_and_round_trips(s in ".{0,40}") {
            if let Ok(t) = Target::parse(&s) {
                prop_assert_eq!(Target::parse(&t.to_string()).unwrap(), t);
            }
        }
    }
}
