//! Pins the layout and the ioctl numbers of the `/dev/pinio` ABI.
//!
//! A change here is an ABI break: bump `ABI_VERSION` and update docs/kmod.md.

use core::mem::{align_of, offset_of, size_of};
use pinio_kmod::abi::*;

#[test]
fn struct_sizes_and_alignment() {
    assert_eq!((size_of::<Info>(), align_of::<Info>()), (48, 8));
    assert_eq!((size_of::<RegisterArgs>(), align_of::<RegisterArgs>()), (24, 8));
    assert_eq!((size_of::<UnregisterArgs>(), align_of::<UnregisterArgs>()), (8, 4));
    assert_eq!((size_of::<VecArgs>(), align_of::<VecArgs>()), (16, 8));
    assert_eq!((size_of::<Desc>(), align_of::<Desc>()), (40, 8));
    assert_eq!((size_of::<SubmitArgs>(), align_of::<SubmitArgs>()), (16, 8));
    assert_eq!((size_of::<CompletionRecord>(), align_of::<CompletionRecord>()), (24, 8));
    assert_eq!((size_of::<ReapArgs>(), align_of::<ReapArgs>()), (24, 8));
}

#[test]
fn field_offsets() {
    assert_eq!(
        [
            offset_of!(Info, abi_version),
            offset_of!(Info, page_size),
            offset_of!(Info, dev_mem_size),
            offset_of!(Info, max_pinned_pages),
            offset_of!(Info, pinned_pages),
            offset_of!(Info, queue_depth),
            offset_of!(Info, max_batch),
            offset_of!(Info, outstanding),
            offset_of!(Info, regions),
        ],
        [0, 4, 8, 16, 24, 32, 36, 40, 44]
    );
    assert_eq!(
        [
            offset_of!(RegisterArgs, addr),
            offset_of!(RegisterArgs, len),
            offset_of!(RegisterArgs, access),
            offset_of!(RegisterArgs, region_id),
        ],
        [0, 8, 16, 20]
    );
    assert_eq!([offset_of!(UnregisterArgs, region_id), offset_of!(UnregisterArgs, reserved)], [0, 4]);
    assert_eq!([offset_of!(VecArgs, entries), offset_of!(VecArgs, count), offset_of!(VecArgs, flags)], [0, 8, 12]);
    assert_eq!(
        [
            offset_of!(Desc, tag),
            offset_of!(Desc, region_offset),
            offset_of!(Desc, dev_offset),
            offset_of!(Desc, len),
            offset_of!(Desc, region_id),
            offset_of!(Desc, dir),
        ],
        [0, 8, 16, 24, 32, 36]
    );
    assert_eq!(
        [offset_of!(SubmitArgs, descs), offset_of!(SubmitArgs, count), offset_of!(SubmitArgs, flags)],
        [0, 8, 12]
    );
    assert_eq!(
        [
            offset_of!(CompletionRecord, tag),
            offset_of!(CompletionRecord, bytes),
            offset_of!(CompletionRecord, status),
            offset_of!(CompletionRecord, reserved),
        ],
        [0, 8, 16, 20]
    );
    assert_eq!(
        [
            offset_of!(ReapArgs, records),
            offset_of!(ReapArgs, max),
            offset_of!(ReapArgs, min),
            offset_of!(ReapArgs, count),
            offset_of!(ReapArgs, reserved),
        ],
        [0, 8, 12, 16, 20]
    );
}

/// The numbers a C client gets from `_IOR(0xB7, 1, struct pinio_info)` and friends.
#[test]
fn ioctl_numbers() {
    assert_eq!(PINIO_IOC_INFO, 0x8030_B701);
    assert_eq!(PINIO_IOC_REGISTER, 0xC018_B702);
    assert_eq!(PINIO_IOC_UNREGISTER, 0x4008_B703);
    assert_eq!(PINIO_IOC_SUBMIT, 0x4010_B704);
    assert_eq!(PINIO_IOC_REAP, 0xC018_B705);
    assert_eq!(PINIO_IOC_REGISTER_VEC, 0x4010_B706);
    assert_eq!(PINIO_IOC_UNREGISTER_VEC, 0x4010_B707);
}

/// The const fns reproduce well-known numbers of the kernel's own ioctls.
#[test]
fn encoding_matches_generic_linux() {
    // BLKGETSIZE64 = _IOR(0x12, 114, size_t) = 0x80081272 on 64-bit.
    assert_eq!(ioc(IOC_READ, 0x12, 114, 8), 0x8008_1272);
    // FS_IOC_GETFLAGS = _IOR('f', 1, long) = 0x80086601 on 64-bit.
    assert_eq!(ioc(IOC_READ, b'f' as u32, 1, 8), 0x8008_6601);
    assert_eq!(ioc(IOC_NONE, 0, 0, 0), 0);
}

#[test]
fn access_and_direction_values_are_distinct() {
    assert_eq!(ACCESS_ALL, 3);
    assert_ne!(DIR_TO_DEVICE, DIR_FROM_DEVICE);
    assert_eq!(ABI_VERSION, 2);
    assert_eq!(MAX_VEC, 4096);
}
