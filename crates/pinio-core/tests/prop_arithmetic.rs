//! Property tests of pinio-core's arithmetic: alignment helpers, the operation checks of
//! `Capabilities::check` against a reference model, and PCI addresses in selection strings.

use pinio_core::{
    BackendKind, Capabilities, CompletionMode, DeviceId, DmaBuf, Error, Op, Region, RegionKey, Target, Unregister,
    align_down, align_up, is_aligned,
};
use proptest::prelude::*;
use std::sync::Arc;

struct Nothing;

impl Unregister for Nothing {
    fn unregister(&self, _key: RegionKey, _buf: &DmaBuf) -> pinio_core::Result<()> {
        Ok(())
    }
}

proptest! {
    #[test]
    fn align_up_is_the_least_aligned_value_not_below(v in any::<u64>(), shift in 0u32..63) {
        let a = 1u64 << shift;
        match align_up(v, a) {
            Some(up) => {
                prop_assert!(is_aligned(up, a) && up >= v && up - v < a);
                prop_assert_eq!(align_up(up, a), Some(up), "idempotent");
            }
            None => prop_assert!(v > u64::MAX - (a - 1), "None only on overflow"),
        }
        let down = align_down(v, a);
        prop_assert!(is_aligned(down, a) && down <= v && v - down < a);
        prop_assert_eq!(align_down(down, a), down);
        prop_assert_eq!(is_aligned(v, a), v.is_multiple_of(a));
    }

    #[test]
    fn alignment_zero_and_one_accept_everything(v in any::<u64>(), a in 0u64..2) {
        prop_assert!(is_aligned(v, a));
        prop_assert_eq!(align_up(v, a), Some(v));
        prop_assert_eq!(align_down(v, a), v);
    }
}

fn caps(mem_shift: u32, off_shift: u32, len_shift: u32, max_transfer: u64, device_size: u64) -> Capabilities {
    Capabilities {
        backend: "model",
        mem_align: 1 << mem_shift,
        register_align: 4096,
        offset_align: 1 << off_shift,
        len_align: 1 << len_shift,
        max_transfer,
        max_pinned_bytes: None,
        device_size,
        completion: CompletionMode::Synchronous,
        cpu_copies: true,
        pins_memory: false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// `Capabilities::check` answers exactly what the documented order of checks says.
    #[test]
    fn capability_check_matches_the_model(
        mem_shift in 0u32..13, off_shift in 0u32..13, len_shift in 0u32..13,
        max_transfer in 1u64..100_000, device_size in prop_oneof![1u64..1_000_000, Just(u64::MAX)],
        offset in 0usize..8192, len in 1usize..8192,
        dev_offset in prop_oneof![0u64..2_000_000, (u64::MAX - 10_000)..=u64::MAX],
        foreign in prop::bool::weighted(0.1),
    ) {
        let device = DeviceId::next();
        let owner = if foreign { DeviceId::next() } else { device };
        let buf = DmaBuf::new(16384).unwrap();
        // SAFETY: nothing is registered for real; no device touches the memory.
        let r = unsafe { Region::new(owner, RegionKey { id: 0, device_addr: 0 }, buf, Arc::new(Nothing)) };
        let s = r.slice(offset, len).unwrap();
        let addr = s.as_ptr() as u64;
        let c = caps(mem_shift, off_shift, len_shift, max_transfer, device_size);
        let got = c.check(device, &Op::read(s, dev_offset, 0));
        let l = len as u64;
        let want = if foreign {
            "ForeignRegion"
        } else if !addr.is_multiple_of(c.mem_align) {
            "Misaligned buffer address"
        } else if !dev_offset.is_multiple_of(c.offset_align) {
            "Misaligned device offset"
        } else if !l.is_multiple_of(c.len_align) {
            "Misaligned length"
        } else if l > max_transfer {
            "TooLarge"
        } else if dev_offset.checked_add(l).is_none_or(|e| e > device_size) {
            "OutOfBounds"
        } else {
            "Ok"
        };
        let kind = match &got {
            Ok(()) => "Ok",
            Err(Error::ForeignRegion { .. }) => "ForeignRegion",
            Err(Error::Misaligned { what: "buffer address", .. }) => "Misaligned buffer address",
            Err(Error::Misaligned { what: "device offset", .. }) => "Misaligned device offset",
            Err(Error::Misaligned { what: "length", .. }) => "Misaligned length",
            Err(Error::TooLarge { .. }) => "TooLarge",
            Err(Error::OutOfBounds { .. }) => "OutOfBounds",
            Err(_) => "other",
        };
        prop_assert_eq!(kind, want, "{:?}", got);
    }

    /// A PCI address built from components parses iff device < 0x20 and function < 8, and a
    /// `vfio:`/`nvme:` selection string with it round-trips.
    #[test]
    fn pci_addresses_in_selection_strings(domain in 0u32..0x10000, bus in 0u32..0x100, dev in 0u32..0x40, func in 0u32..0x10, upper in any::<bool>()) {
        let mut addr = format!("{domain:04x}:{bus:02x}:{dev:02x}.{func:x}");
        if upper {
            addr = addr.to_uppercase();
        }
        let valid = dev < 0x20 && func < 8;
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
