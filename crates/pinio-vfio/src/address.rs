//! [`PciAddress`]: the one typed PCI address of pinio.

use crate::VfioError;
use std::fmt;
use std::str::FromStr;

/// A full PCI address `DDDD:BB:DD.F`: domain, bus, device (< 0x20) and
/// function (< 8). Displayed in the lower-case form sysfs uses.
///
/// Parsing takes the bare address; a selection string's `vfio:`/`nvme:`
/// prefix is the caller's to strip.
///
/// ```
/// use pinio_vfio::PciAddress;
/// let a: PciAddress = "0000:00:0A.0".parse()?;
/// assert_eq!((a.bus(), a.device(), a.function()), (0, 0x0a, 0));
/// assert_eq!(a.to_string(), "0000:00:0a.0");
/// assert!("00:03.0".parse::<PciAddress>().is_err());
/// assert!("vfio:0000:00:03.0".parse::<PciAddress>().is_err());
/// # Ok::<(), pinio_vfio::VfioError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PciAddress {
    domain: u16,
    bus: u8,
    device: u8,
    function: u8,
}

impl PciAddress {
    /// The address of `domain:bus:device.function`; `None` when the device
    /// is 0x20 or more or the function 8 or more.
    pub fn new(domain: u16, bus: u8, device: u8, function: u8) -> Option<PciAddress> {
        (device < 0x20 && function < 8).then_some(PciAddress { domain, bus, device, function })
    }

    /// The PCI domain (segment).
    pub fn domain(&self) -> u16 {
        self.domain
    }

    /// The bus number.
    pub fn bus(&self) -> u8 {
        self.bus
    }

    /// The device number (< 0x20).
    pub fn device(&self) -> u8 {
        self.device
    }

    /// The function number (< 8).
    pub fn function(&self) -> u8 {
        self.function
    }
}

/// `s` as exactly `n` hex digits.
fn hex(s: &str, n: usize) -> Option<u32> {
    if s.len() != n || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

impl FromStr for PciAddress {
    type Err = VfioError;

    fn from_str(s: &str) -> Result<PciAddress, VfioError> {
        let invalid = || VfioError::InvalidAddress { given: s.to_string() };
        let b = s.as_bytes();
        if b.len() != 12 || b[4] != b':' || b[7] != b':' || b[10] != b'.' {
            return Err(invalid());
        }
        let field = |r: std::ops::Range<usize>| s.get(r.clone()).and_then(|t| hex(t, r.len()));
        match (field(0..4), field(5..7), field(8..10), field(11..12)) {
            (Some(d), Some(b), Some(dev), Some(f)) => {
                PciAddress::new(d as u16, b as u8, dev as u8, f as u8).ok_or_else(invalid)
            }
            _ => Err(invalid()),
        }
    }
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:02x}:{:02x}.{:x}", self.domain, self.bus, self.device, self.function)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_normalises_and_refuses() {
        assert_eq!("0000:00:03.0".parse::<PciAddress>().unwrap().to_string(), "0000:00:03.0");
        assert_eq!("0000:AB:1f.7".parse::<PciAddress>().unwrap().to_string(), "0000:ab:1f.7");
        assert_eq!("ffff:ff:1f.7".parse::<PciAddress>().unwrap(), PciAddress::new(0xffff, 0xff, 0x1f, 7).unwrap());
        for bad in [
            "",
            "vfio:",
            "00:03.0",
            "0000:00:20.0",
            "0000:00:03.8",
            "0000:0g:03.0",
            "vfio:0000:00:03.0",
            "nvme:0000:00:03.0",
            " 0000:00:03.0",
            "0000:00:03.0 ",
            "0000:00:3.0",
            "+000:00:03.0",
            "0000:00:03.+",
            "0000:00:03.0\0",
            "0000:00:03.é",
        ] {
            let e = bad.parse::<PciAddress>().unwrap_err();
            assert!(matches!(e, VfioError::InvalidAddress { ref given } if given == bad), "{bad:?}: {e}");
            assert!(e.to_string().contains("DDDD:BB:DD.F"));
        }
        assert!(PciAddress::new(0, 0, 0x20, 0).is_none() && PciAddress::new(0, 0, 0, 8).is_none());
    }

    proptest! {
        /// Every address built from components parses back iff device < 0x20
        /// and function < 8, in either case, and prints in lower case.
        #[test]
        fn round_trips(domain in 0u32..0x10000, bus in 0u32..0x100, dev in 0u32..0x40, func in 0u32..0x10, upper in any::<bool>()) {
            let mut s = format!("{domain:04x}:{bus:02x}:{dev:02x}.{func:x}");
            let lower = s.clone();
            if upper {
                s = s.to_uppercase();
            }
            match s.parse::<PciAddress>() {
                Ok(a) => {
                    prop_assert!(dev < 0x20 && func < 8);
                    prop_assert_eq!(a.to_string(), lower);
                }
                Err(_) => prop_assert!(dev >= 0x20 || func >= 8),
            }
        }

        /// Arbitrary strings never panic the parser.
        #[test]
        fn never_panics(s in "\\PC{0,16}") {
            let _ = s.parse::<PciAddress>();
        }
    }
}
