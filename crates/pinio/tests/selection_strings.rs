//! Property tests of selection strings: PCI addresses in `vfio:`/`nvme:` strings, and path
//! backends taking the rest of the string.

use pinio::{BackendKind, Target};
use proptest::prelude::*;

proptest! {
    /// A PCI address built from components parses iff device < 0x20 and function < 8, and a
    /// `vfio:`/`nvme:` selection string with it round-trips. (Without the `vfio` feature the
    /// address is left to opening, which says the backend is not in the build.)
    #[test]
    fn pci_addresses_in_selection_strings(domain in 0u32..0x10000, bus in 0u32..0x100, dev in 0u32..0x40, func in 0u32..0x10, upper in any::<bool>()) {
        let mut addr = format!("{domain:04x}:{bus:02x}:{dev:02x}.{func:x}");
        if upper {
            addr = addr.to_uppercase();
        }
        let valid = (dev < 0x20 && func < 8) || !cfg!(feature = "vfio");
        for kind in [BackendKind::Vfio, BackendKind::Nvme] {
            let spec = format!("{kind}:{addr}");
            match Target::parse(&spec) {
                Ok(t) => {
                    prop_assert!(valid, "{} accepted", spec);
                    prop_assert_eq!(t.backend, kind);
                    prop_assert_eq!(t.to_string(), spec);
                }
                Err(e) => {
                    prop_assert!(!valid, "{} refused: {}", spec, e);
                    prop_assert!(e.to_string().contains("PCI address"), "{}", e);
                }
            }
        }
    }

    /// Path backends accept any non-empty location without NUL, including ones with ':'.
    #[test]
    fn path_backends_take_the_rest_of_the_string(loc in "[^\u{0}]{1,40}") {
        for kind in [BackendKind::Copy, BackendKind::Uring, BackendKind::Kmod] {
            let t = Target::parse(&format!("{kind}:{loc}")).unwrap();
            prop_assert_eq!((t.backend, t.location.as_str()), (kind, loc.as_str()));
        }
    }
}
