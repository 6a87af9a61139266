// SPDX-License-Identifier: GPL-2.0 OR MIT OR Apache-2.0

//! The userspace ABI of `/dev/pinio`, shared verbatim by the kernel module and the userspace crate.
//!
//! This file is compiled twice: as `pinio_kmod::abi` in userspace and, through
//! `#[path = "../crates/pinio-kmod/src/abi.rs"] mod abi;`, inside the Rust kernel module. It
//! therefore uses only `core`: no `std`, no `libc`, no kernel crate.
//!
//! Every structure is `#[repr(C)]`, made of fixed-width integers only, naturally aligned and
//! without implicit padding, so its layout is the same for C, for 32-bit and 64-bit callers, and
//! both sides of the ioctl boundary. `reserved` fields must be zero on input (the module answers
//! `EINVAL` otherwise) so that they can gain a meaning in a later ABI version.
//!
//! The ioctl numbers follow the generic Linux encoding of `include/uapi/asm-generic/ioctl.h`
//! (direction in bits 30..32, argument size in bits 16..30, type in bits 8..16, number in bits
//! 0..8), computed by the `const fn`s below. docs/kmod.md documents the whole protocol.

/// Version of this ABI; reported by [`PINIO_IOC_INFO`] in [`Info::abi_version`]. Version 2 added
/// [`PINIO_IOC_REGISTER_VEC`] and [`PINIO_IOC_UNREGISTER_VEC`].
pub const ABI_VERSION: u32 = 2;

/// The ioctl type byte ("magic") of `/dev/pinio`.
pub const IOC_MAGIC: u32 = 0xB7;

/// ioctl direction: no argument is transferred.
pub const IOC_NONE: u32 = 0;
/// ioctl direction: userspace writes the argument, the kernel reads it.
pub const IOC_WRITE: u32 = 1;
/// ioctl direction: the kernel writes the argument, userspace reads it.
pub const IOC_READ: u32 = 2;

const IOC_NRBITS: u32 = 8;
const IOC_TYPEBITS: u32 = 8;
const IOC_SIZEBITS: u32 = 14;
const IOC_NRSHIFT: u32 = 0;
const IOC_TYPESHIFT: u32 = IOC_NRSHIFT + IOC_NRBITS;
const IOC_SIZESHIFT: u32 = IOC_TYPESHIFT + IOC_TYPEBITS;
const IOC_DIRSHIFT: u32 = IOC_SIZESHIFT + IOC_SIZEBITS;

/// Encodes an ioctl number like the C macro `_IOC(dir, type, nr, size)`.
///
/// Fails to compile (when used in a constant) if `size` does not fit in the 14-bit size field.
pub const fn ioc(dir: u32, ty: u32, nr: u32, size: usize) -> u32 {
    assert!(size < (1 << IOC_SIZEBITS), "ioctl argument too large");
    (dir << IOC_DIRSHIFT) | (ty << IOC_TYPESHIFT) | (nr << IOC_NRSHIFT) | ((size as u32) << IOC_SIZESHIFT)
}

/// Like `_IOR(IOC_MAGIC, nr, T)`: the kernel writes a `T`.
pub const fn ior<T>(nr: u32) -> u32 {
    ioc(IOC_READ, IOC_MAGIC, nr, core::mem::size_of::<T>())
}

/// Like `_IOW(IOC_MAGIC, nr, T)`: the kernel reads a `T`.
pub const fn iow<T>(nr: u32) -> u32 {
    ioc(IOC_WRITE, IOC_MAGIC, nr, core::mem::size_of::<T>())
}

/// Like `_IOWR(IOC_MAGIC, nr, T)`: the kernel reads a `T` and writes it back.
pub const fn iowr<T>(nr: u32) -> u32 {
    ioc(IOC_READ | IOC_WRITE, IOC_MAGIC, nr, core::mem::size_of::<T>())
}

/// `PINIO_IOC_INFO`: fills an [`Info`].
pub const PINIO_IOC_INFO: u32 = ior::<Info>(0x01);
/// `PINIO_IOC_REGISTER`: pins a buffer and returns its region id in [`RegisterArgs::region_id`].
pub const PINIO_IOC_REGISTER: u32 = iowr::<RegisterArgs>(0x02);
/// `PINIO_IOC_UNREGISTER`: unpins a region; `EBUSY` while DMA on it is in flight.
pub const PINIO_IOC_UNREGISTER: u32 = iow::<UnregisterArgs>(0x03);
/// `PINIO_IOC_SUBMIT`: queues a batch of [`Desc`]; all or nothing. Returns the count queued.
pub const PINIO_IOC_SUBMIT: u32 = iow::<SubmitArgs>(0x04);
/// `PINIO_IOC_REAP`: copies completion records out; may wait for [`ReapArgs::min`] of them.
pub const PINIO_IOC_REAP: u32 = iowr::<ReapArgs>(0x05);
/// `PINIO_IOC_REGISTER_VEC`: registers every buffer of an array of [`RegisterArgs`] in one call,
/// or none, and writes each region id into its entry. Returns the count registered.
pub const PINIO_IOC_REGISTER_VEC: u32 = iow::<VecArgs>(0x06);
/// `PINIO_IOC_UNREGISTER_VEC`: unregisters every region of an array of [`UnregisterArgs`] in one
/// call, or none. Returns the count unregistered.
pub const PINIO_IOC_UNREGISTER_VEC: u32 = iow::<VecArgs>(0x07);

/// Most entries in one [`PINIO_IOC_REGISTER_VEC`] or [`PINIO_IOC_UNREGISTER_VEC`] call.
pub const MAX_VEC: u32 = 4096;

/// [`RegisterArgs::access`] bit: the device may read the region (descriptors [`DIR_TO_DEVICE`]).
pub const ACCESS_DEVICE_READ: u32 = 1 << 0;
/// [`RegisterArgs::access`] bit: the device may write the region (descriptors
/// [`DIR_FROM_DEVICE`]); the pages are pinned with `FOLL_WRITE` and dirtied when written.
pub const ACCESS_DEVICE_WRITE: u32 = 1 << 1;
/// All access bits this ABI version knows.
pub const ACCESS_ALL: u32 = ACCESS_DEVICE_READ | ACCESS_DEVICE_WRITE;

/// [`Desc::dir`]: the device copies region bytes into its memory (memory -> device).
pub const DIR_TO_DEVICE: u32 = 1;
/// [`Desc::dir`]: the device copies its memory into the region (device -> memory).
pub const DIR_FROM_DEVICE: u32 = 2;

/// Answer of [`PINIO_IOC_INFO`]: the device and the limits of the calling open file.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Info {
    /// [`ABI_VERSION`] of the module.
    pub abi_version: u32,
    /// Page size of the kernel in bytes.
    pub page_size: u32,
    /// Size of the device memory in bytes (module parameter `mem_size`).
    pub dev_mem_size: u64,
    /// Most pages one open file may keep pinned (module parameter `max_pinned_pages`).
    pub max_pinned_pages: u64,
    /// Pages this open file has pinned now.
    pub pinned_pages: u64,
    /// Most descriptors submitted and not yet reaped per open file (module parameter
    /// `queue_depth`); also the size of the completion queue.
    pub queue_depth: u32,
    /// Most descriptors in one [`PINIO_IOC_SUBMIT`] call (equals `queue_depth`).
    pub max_batch: u32,
    /// Descriptors of this open file submitted and not yet reaped.
    pub outstanding: u32,
    /// Registered regions of this open file.
    pub regions: u32,
}

/// Argument of [`PINIO_IOC_REGISTER`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegisterArgs {
    /// User virtual address of the buffer; any alignment.
    pub addr: u64,
    /// Length in bytes; not zero.
    pub len: u64,
    /// A non-empty set of `ACCESS_*` bits.
    pub access: u32,
    /// Output: the region id (never 0).
    pub region_id: u32,
}

/// Argument of [`PINIO_IOC_UNREGISTER`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnregisterArgs {
    /// The region id returned by [`PINIO_IOC_REGISTER`].
    pub region_id: u32,
    /// Must be zero.
    pub reserved: u32,
}

/// Argument of [`PINIO_IOC_REGISTER_VEC`] and [`PINIO_IOC_UNREGISTER_VEC`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VecArgs {
    /// User address of an array of `count` [`RegisterArgs`] (REGISTER_VEC: read, and each
    /// `region_id` written) or [`UnregisterArgs`] (UNREGISTER_VEC: read).
    pub entries: u64,
    /// Number of entries, 1..=[`MAX_VEC`].
    pub count: u32,
    /// Must be zero.
    pub flags: u32,
}

/// One DMA descriptor: copy `len` bytes between a region and the device memory.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Desc {
    /// Opaque value returned in the completion record.
    pub tag: u64,
    /// Byte offset inside the region.
    pub region_offset: u64,
    /// Byte offset inside the device memory.
    pub dev_offset: u64,
    /// Number of bytes; not zero.
    pub len: u64,
    /// Region id of the calling open file.
    pub region_id: u32,
    /// [`DIR_TO_DEVICE`] or [`DIR_FROM_DEVICE`].
    pub dir: u32,
}

/// Argument of [`PINIO_IOC_SUBMIT`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SubmitArgs {
    /// User address of an array of `count` [`Desc`].
    pub descs: u64,
    /// Number of descriptors, 1..=[`Info::max_batch`].
    pub count: u32,
    /// Must be zero.
    pub flags: u32,
}

/// A completion record, one per finished descriptor, in completion order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompletionRecord {
    /// [`Desc::tag`] of the finished descriptor.
    pub tag: u64,
    /// Bytes transferred (equal to [`Desc::len`] on success).
    pub bytes: u64,
    /// 0 on success or a negative errno.
    pub status: i32,
    /// Zero.
    pub reserved: u32,
}

/// Argument of [`PINIO_IOC_REAP`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReapArgs {
    /// User address of an array of `max` [`CompletionRecord`].
    pub records: u64,
    /// Capacity of `records`; not zero.
    pub max: u32,
    /// Wait (interruptibly) until at least this many records are available, at most `max`
    /// and at most the number outstanding; 0 never waits.
    pub min: u32,
    /// Output: number of records written.
    pub count: u32,
    /// Must be zero.
    pub reserved: u32,
}
