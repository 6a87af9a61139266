//! The one error type of the `/dev/pinio` client: which call failed, its errno, and what that
//! errno means for that call (the table of docs/kmod.md).

use crate::channel::Window;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A call into the module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `open("/dev/pinio")`.
    Open,
    /// `PINIO_IOC_INFO`.
    Info,
    /// `PINIO_IOC_REGISTER`.
    Register,
    /// `PINIO_IOC_UNREGISTER`.
    Unregister,
    /// `PINIO_IOC_SUBMIT`.
    Submit,
    /// `PINIO_IOC_REAP`.
    Reap,
    /// `PINIO_IOC_REGISTER_VEC`.
    RegisterVec,
    /// `PINIO_IOC_UNREGISTER_VEC`.
    UnregisterVec,
    /// `pread` (copy path).
    Pread,
    /// `pwrite` (copy path).
    Pwrite,
    /// `poll`.
    Poll,
    /// `fstat` of the open file.
    Stat,
    /// Another ioctl.
    Other,
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Call::Open => "open",
            Call::Info => "PINIO_IOC_INFO",
            Call::Register => "PINIO_IOC_REGISTER",
            Call::Unregister => "PINIO_IOC_UNREGISTER",
            Call::Submit => "PINIO_IOC_SUBMIT",
            Call::Reap => "PINIO_IOC_REAP",
            Call::RegisterVec => "PINIO_IOC_REGISTER_VEC",
            Call::UnregisterVec => "PINIO_IOC_UNREGISTER_VEC",
            Call::Pread => "pread",
            Call::Pwrite => "pwrite",
            Call::Poll => "poll",
            Call::Stat => "fstat",
            Call::Other => "ioctl",
        })
    }
}

/// Why a call into `/dev/pinio` failed, or a channel could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KmodError {
    /// The device node could not be opened.
    #[error("cannot open {path}: {source}; is pinio.ko loaded (insmod kmod/pinio.ko) and are you root?")]
    Open {
        /// The path tried.
        path: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The module speaks another ABI version than this crate.
    #[error(
        "pinio.ko speaks ABI version {kernel}, this crate version {user}; rebuild the module and the crate from the same tree"
    )]
    AbiMismatch {
        /// The module's version.
        kernel: u32,
        /// This crate's version.
        user: u32,
    },
    /// A channel overlapping a channel already open in the same session.
    #[error(
        "channel {asked} of device memory overlaps channel {open}, open in the same session; channels of one session are disjoint: drop that device or pick another window"
    )]
    ChannelOverlap {
        /// The window asked for.
        asked: Window,
        /// The open window it overlaps.
        open: Window,
    },
    /// A channel of another device node than its session's.
    #[error(
        "a channel of {asked} was asked of a session of {session}; a session's channels are windows of its own device: open {asked} in a new session instead"
    )]
    OtherNode {
        /// The session's device node.
        session: PathBuf,
        /// The node the channel named.
        asked: PathBuf,
    },
    /// A call failed with an errno.
    #[error("{call} failed: {meaning} ({source})")]
    Errno {
        /// The call.
        call: Call,
        /// What the errno means for this call.
        meaning: &'static str,
        /// The OS error, with its errno.
        #[source]
        source: io::Error,
    },
}

impl KmodError {
    /// The failure of `open(path)`.
    pub fn open(path: &Path, source: io::Error) -> Self {
        KmodError::Open { path: path.display().to_string(), source }
    }

    /// The failure of `call` with the calling thread's errno.
    pub fn last(call: Call) -> Self {
        Self::io(call, io::Error::last_os_error())
    }

    /// The failure of `call` with `errno`.
    pub fn from_errno(call: Call, errno: i32) -> Self {
        Self::io(call, io::Error::from_raw_os_error(errno))
    }

    /// The failure of `call` with an OS error.
    pub fn io(call: Call, source: io::Error) -> Self {
        let meaning = meaning(call, source.raw_os_error().unwrap_or(0));
        KmodError::Errno { call, meaning, source }
    }

    /// The errno, if the failure has one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            KmodError::Open { source, .. } | KmodError::Errno { source, .. } => source.raw_os_error(),
            KmodError::AbiMismatch { .. } | KmodError::ChannelOverlap { .. } | KmodError::OtherNode { .. } => None,
        }
    }

    /// The `KmodError` inside a `pinio-core` error of this backend, if it holds one.
    pub fn of(e: &pinio_core::Error) -> Option<&KmodError> {
        match e {
            pinio_core::Error::Backend { source, .. } => source.downcast_ref::<KmodError>(),
            _ => None,
        }
    }
}

/// Wraps a module error as a `pinio-core` error.
pub(crate) fn backend(e: KmodError) -> pinio_core::Error {
    pinio_core::Error::Backend { backend: "kmod", source: Box::new(e) }
}

/// What `errno` means for `call` (docs/kmod.md, "Errors").
fn meaning(call: Call, errno: i32) -> &'static str {
    use Call::*;
    match (call, errno) {
        (Register, libc::EINVAL) => "zero length or unknown access bits",
        (Register, libc::EOVERFLOW) => "address + length wraps around",
        (Register, libc::EFAULT) => "the range is not mapped, or is read-only while device writes were asked for",
        (Register, libc::ENOSPC) => {
            "the per-open cap of pinned pages (module parameter max_pinned_pages) would be exceeded; unregister something"
        }
        (Register, libc::ENOMEM) => {
            "RLIMIT_MEMLOCK would be exceeded (raise ulimit -l or grant CAP_IPC_LOCK), or the kernel is out of memory"
        }
        (RegisterVec, libc::EINVAL) => {
            "flags not zero, count 0 or above MAX_VEC, or an entry with zero length or unknown access bits"
        }
        (RegisterVec, libc::EOVERFLOW) => "an entry's address + length wraps around",
        (RegisterVec, libc::EFAULT) => {
            "the entry array is not readable or writable, or an entry's range is not mapped or is read-only while device writes were asked for"
        }
        (RegisterVec, libc::ENOSPC) => {
            "the entries together exceed the per-open cap of pinned pages (module parameter max_pinned_pages), or region ids ran out"
        }
        (RegisterVec, libc::ENOMEM) => {
            "the entries together exceed RLIMIT_MEMLOCK (raise ulimit -l or grant CAP_IPC_LOCK), or the kernel is out of memory"
        }
        (UnregisterVec, libc::EINVAL) => {
            "flags not zero, count 0 or above MAX_VEC, a reserved field not zero, or an id twice"
        }
        (UnregisterVec, libc::ENOENT) => "an entry names no region of this open file",
        (UnregisterVec, libc::EBUSY) => "DMA on one of the regions is in flight; reap its completions first",
        (UnregisterVec, libc::EFAULT) => "the entry array is not readable",
        (Unregister, libc::ENOENT) => "no region with this id in this open file",
        (Unregister, libc::EBUSY) => "DMA on this region is in flight; reap its completions first",
        (Unregister, libc::EINVAL) => "reserved field not zero",
        (Submit, libc::EINVAL) => "flags not zero, count 0 or above max_batch, unknown direction or zero length",
        (Submit, libc::EAGAIN) => "the queue is full (queue_depth descriptors outstanding); reap completions first",
        (Submit, libc::ENOENT) => "a descriptor names an unknown region id",
        (Submit, libc::EACCES) => "a descriptor's direction is not allowed by its region's access bits",
        (Submit, libc::ERANGE) => "a descriptor reaches outside its region or outside device memory",
        (Submit, libc::EFAULT) => "the descriptor array is not readable",
        (Reap, libc::EINVAL) => "max is 0 or a reserved field is not zero",
        (Reap, libc::EFAULT) => "the record array is not writable",
        (Reap, libc::EINTR) => "interrupted by a signal while waiting",
        (Pwrite, libc::ENOSPC) => "offset at or past the end of device memory",
        (_, libc::ENOTTY) => "the module does not know this ioctl",
        (_, libc::EFAULT) => "a user address is not accessible",
        _ => "see docs/kmod.md",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_the_errno_means_for_the_call() {
        let e = KmodError::from_errno(Call::Unregister, libc::EBUSY);
        assert_eq!(e.errno(), Some(libc::EBUSY));
        let s = e.to_string();
        assert!(s.contains("PINIO_IOC_UNREGISTER") && s.contains("in flight"), "{s}");
        let s = KmodError::from_errno(Call::Register, libc::ENOSPC).to_string();
        assert!(s.contains("max_pinned_pages"), "{s}");
    }
}
