//! Kernel ABI values the io-uring crate does not export, from
//! `include/uapi/linux/io_uring.h` and `include/uapi/linux/capability.h`.

/// `IORING_SEND_ZC_REPORT_USAGE`: ask the notification CQE to say whether the
/// kernel fell back to copying (`io_uring.h`, since 6.2).
pub(crate) const IORING_SEND_ZC_REPORT_USAGE: u16 = 1 << 3;
/// `IORING_NOTIF_USAGE_ZC_COPIED`: set in a notification CQE's `res` when the
/// data was copied after all.
pub(crate) const IORING_NOTIF_USAGE_ZC_COPIED: i32 = 1 << 31;

/// `_LINUX_CAPABILITY_VERSION_3`.
pub(crate) const CAPABILITY_VERSION_3: u32 = 0x2008_0522;
/// `CAP_IPC_LOCK`: lock memory beyond `RLIMIT_MEMLOCK`.
pub(crate) const CAP_IPC_LOCK: u32 = 14;

/// `struct __user_cap_header_struct`.
#[repr(C)]
pub(crate) struct CapHeader {
    pub version: u32,
    pub pid: libc::c_int,
}

/// `struct __user_cap_data_struct`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct CapData {
    pub effective: u32,
    pub permitted: u32,
    pub inheritable: u32,
}

/// `IORING_ENTER_GETEVENTS`: wait for (on an IOPOLL ring: poll for)
/// completions.
pub(crate) const IORING_ENTER_GETEVENTS: u32 = 1 << 0;
