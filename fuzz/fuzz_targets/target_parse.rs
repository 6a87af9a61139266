//! libFuzzer target: `pinio_core::Target::parse` on arbitrary bytes.
//!
//! Properties checked on every input: parsing never panics; an accepted string round-trips
//! through `Display` to an equal `Target`; the location is never empty and has no NUL; a VFIO or
//! NVMe location is a canonical PCI address; a refusal names the input and says why.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pinio_core::{BackendKind, Target};

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = std::str::from_utf8(data) else { return };
    match Target::parse(spec) {
        Ok(t) => {
            assert!(!t.location.is_empty() && !t.location.contains('\0'), "{spec:?} -> {t:?}");
            assert_eq!(t.to_string(), spec, "accepted strings print back unchanged");
            assert_eq!(Target::parse(&t.to_string()).ok(), Some(t.clone()), "round trip of {spec:?}");
            if matches!(t.backend, BackendKind::Vfio | BackendKind::Nvme) {
                assert!(is_pci_address(&t.location), "{spec:?}: {:?}", t.location);
            }
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.is_empty(), "{spec:?}: empty error");
        }
    }
});

/// Reference model of a PCI address `DDDD:BB:DD.F` (hex; device < 0x20, function < 8), written
/// independently of the parser's own check.
fn is_pci_address(s: &str) -> bool {
    let parts: Vec<&str> = s.split([':', '.']).collect();
    let hex = |p: &str, n: usize| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit());
    s.len() == 12
        && parts.len() == 4
        && &s[4..5] == ":"
        && &s[7..8] == ":"
        && &s[10..11] == "."
        && hex(parts[0], 4)
        && hex(parts[1], 2)
        && hex(parts[2], 2)
        && hex(parts[3], 1)
        && u8::from_str_radix(parts[2], 16).is_ok_and(|d| d < 0x20)
        && u8::from_str_radix(parts[3], 16).is_ok_and(|f| f < 8)
}
