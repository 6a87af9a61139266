//! Property tests of pinio-core's arithmetic: alignment helpers, the operation checks of
//! `Capabilities::check` (and the fast admission of `DeviceCore::check`) against a reference model.

use pinio_core::conformance::CountingRegistrar;
use pinio_core::{
    Capabilities, CompletionMode, DeviceCore, DmaBuf, Error, Op, RegistrationSharing, align_down, align_up, is_aligned,
};
use proptest::prelude::*;

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
        max_queue_depth: 1024,
        sharing: RegistrationSharing::Domain,
        persistence: pinio_core::Persistence::WriteBack,
        writable: true,
        short_reads_at_end: false,
        vectored: pinio_core::VectoredIo::Native,
        max_segments: 1024,
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
        let (device, _) = CountingRegistrar::domain();
        let (other, _) = CountingRegistrar::domain();
        let owner = if foreign { &other } else { &device };
        let r = owner.register(DmaBuf::new(16384).unwrap()).unwrap();
        let s = r.slice(offset, len).unwrap();
        let addr = s.as_ptr() as u64;
        let c = caps(mem_shift, off_shift, len_shift, max_transfer, device_size);
        let op = Op::read(s, dev_offset, 0);
        let got = c.check(device.id(), &op);
        // The fast admission path of every queue agrees with the model, error for error.
        let fast = DeviceCore::new(device.clone(), c.clone()).check(&op);
        prop_assert_eq!(fast.as_ref().map_err(|e| e.to_string()), got.as_ref().map_err(|e| e.to_string()));
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
}
