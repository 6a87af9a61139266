//! The one error type of the model, shared by every backend.

use crate::{DmaBuf, DomainId};
use std::io;

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in pinio's model. Each message says what was
/// wrong and what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An address, offset or length is not a multiple of what the device needs.
    #[error(
        "{what} {value:#x} is not aligned to {required} bytes, which this device requires; align it (DmaBuf memory is page-aligned, see Capabilities)"
    )]
    Misaligned {
        /// What was misaligned ("buffer address", "device offset", "length").
        what: &'static str,
        /// The offending value.
        value: u64,
        /// The alignment the device requires.
        required: u64,
    },
    /// A range does not fit where it was asked to go.
    #[error("{what} [{offset:#x}, +{len:#x}) is outside [0, {limit:#x}); keep offset + len within the limit")]
    OutOfBounds {
        /// What the range addresses ("region", "device address space").
        what: &'static str,
        /// Start of the range.
        offset: u64,
        /// Length of the range.
        len: u64,
        /// The exclusive upper bound it had to fit under.
        limit: u64,
    },
    /// A zero-length buffer, slice or transfer.
    #[error("{what} has length 0; every transfer and registration moves at least one byte")]
    ZeroLength {
        /// What was empty.
        what: &'static str,
    },
    /// A transfer longer than the device can move in one operation.
    #[error("transfer of {len} bytes exceeds this device's maximum of {max} bytes per operation; split it")]
    TooLarge {
        /// The requested length.
        len: u64,
        /// The device's limit (`Capabilities::max_transfer`).
        max: u64,
    },
    /// A vectored operation with more segments than the device takes at once.
    #[error(
        "vectored operation of {count} slices exceeds this device's maximum of {max} per operation (Capabilities::max_segments); split it into several operations"
    )]
    TooManySegments {
        /// Segments in the operation.
        count: usize,
        /// The device's limit.
        max: usize,
    },
    /// A slice of a region registered in another domain.
    #[error(
        "slice belongs to a region of {region_domain}, but this device is in {domain}; register the buffer in this device's domain, or open the device in the region's domain (pinio::open_in)"
    )]
    ForeignRegion {
        /// The domain the slice's region is registered in.
        region_domain: DomainId,
        /// The domain of the device it was handed to.
        domain: DomainId,
    },
    /// A device opened in a domain of another backend.
    #[error(
        "a {device_backend} device cannot be opened in a {domain_backend} domain: its registrations are not reachable by a {device_backend} device; open it in a {device_backend} domain (pinio::open makes one)"
    )]
    WrongDomain {
        /// The backend of the device being opened.
        device_backend: &'static str,
        /// The backend of the domain it was asked to join.
        domain_backend: &'static str,
    },
    /// A write to a device opened read-only.
    #[error("write to a device opened read-only; open it writable (Builder::writable(true), the default) to write")]
    ReadOnly,
    /// A queue deeper than the device can hold.
    #[error(
        "queue depth {depth} exceeds this device's maximum of {max}; ask for at most {max} (Capabilities::max_queue_depth)"
    )]
    QueueTooDeep {
        /// The depth asked for.
        depth: usize,
        /// The device's limit.
        max: usize,
    },
    /// A slice that would overlap a live slice of the same region.
    #[error(
        "slice [{offset:#x}, +{len:#x}) overlaps a live slice of the same region; drop or wait for the other slice first"
    )]
    SliceOverlap {
        /// Start of the rejected slice within the region.
        offset: usize,
        /// Its length.
        len: usize,
    },
    /// A region that still has live slices (in the application or in flight).
    #[error(
        "region still has {outstanding} live slice(s), some possibly in flight; wait for their completions and drop them before unregistering"
    )]
    RegionBusy {
        /// How many slices are still alive.
        outstanding: usize,
    },
    /// The queue already holds as many operations as it can.
    #[error("queue is full ({capacity} operations in flight); wait for completions before pushing more")]
    QueueFull {
        /// The queue's capacity.
        capacity: usize,
    },
    /// Registration refused by the locked-memory limit. When `locked +
    /// requested` fits under `limit`, the message says where the rest of
    /// the limit went (charges of the same user elsewhere, such as a
    /// process that just exited, whose io_uring charge the kernel releases
    /// late).
    #[error("registering {requested} bytes would exceed RLIMIT_MEMLOCK ({limit} bytes, {locked} already locked by this device){}; raise the limit (ulimit -l, limits.conf), grant CAP_IPC_LOCK, register less, or choose the fallback registration policy", memlock_note(*.requested, *.limit, *.locked))]
    MemlockLimit {
        /// Bytes asked for.
        requested: u64,
        /// The soft RLIMIT_MEMLOCK in bytes.
        limit: u64,
        /// Bytes this device already had registered.
        locked: u64,
    },
    /// A cap on pinned memory set by the backend (module parameter, IOMMU limit).
    #[error(
        "registering {requested} bytes exceeds {what} of {limit} bytes ({pinned} already pinned); unregister something or raise the limit"
    )]
    PinLimit {
        /// Which limit.
        what: &'static str,
        /// Bytes asked for.
        requested: u64,
        /// The limit.
        limit: u64,
        /// Bytes already pinned under it.
        pinned: u64,
    },
    /// The target cannot do what was asked (for example O_DIRECT on a file system without it).
    #[error("{what} is not supported: {hint}")]
    Unsupported {
        /// What is not supported.
        what: String,
        /// What to do instead.
        hint: String,
    },
    /// A backend selection string that does not parse.
    #[error(
        "invalid target {spec:?}: {reason}; expected BACKEND:LOCATION, e.g. uring:/var/tmp/data or copy:/dev/loop0"
    )]
    InvalidTarget {
        /// The string given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What pinio was doing.
        context: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A backend-specific failure; downcast `source` to the backend's error type.
    #[error("{backend} backend: {source}")]
    Backend {
        /// The backend's name.
        backend: &'static str,
        /// The backend's own error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

/// What [`Error::MemlockLimit`] adds when the device's own registrations
/// and the request fit under the limit: the rest of it is charged elsewhere.
fn memlock_note(requested: u64, limit: u64, locked: u64) -> &'static str {
    match locked.checked_add(requested) {
        Some(total) if total <= limit => {
            " although this device's registrations and these bytes fit under it: the rest of the limit is charged elsewhere. \
             io_uring charges RLIMIT_MEMLOCK per user, so registrations of this user's other processes count, \
             and so does a process of this user that has just exited: the kernel releases its rings' charge asynchronously, \
             after the exit (io_ring_exit_work, then io_ring_ctx_free); the uring backend waited up to 200 ms for such a release. \
             Find the other holder, or retry later"
        }
        _ => "",
    }
}

impl Error {
    /// An [`Error::Io`] from `errno` with a description of what was being done.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }

    /// An [`Error::Io`] from the calling thread's last OS error.
    pub fn last_os(context: impl Into<String>) -> Self {
        Self::io(context, io::Error::last_os_error())
    }

    /// The OS error number behind this error, if there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// A refused registration. The buffer comes back so that no data is lost.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct RegisterError {
    /// Why registration failed.
    #[source]
    pub error: Error,
    /// The buffer that was not registered, unchanged.
    pub buf: DmaBuf,
}

impl RegisterError {
    /// Pairs an error with the buffer it refused.
    pub fn new(error: Error, buf: DmaBuf) -> Self {
        RegisterError { error, buf }
    }
}

impl From<RegisterError> for Error {
    fn from(e: RegisterError) -> Self {
        e.error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_values_and_the_remedy() {
        let e = Error::Misaligned { what: "device offset", value: 0x1001, required: 512 };
        let s = e.to_string();
        assert!(s.contains("0x1001") && s.contains("512"), "{s}");
        let e = Error::MemlockLimit { requested: 64 << 20, limit: 8 << 20, locked: 0 };
        let s = e.to_string();
        assert!(s.contains("67108864") && s.contains("8388608") && s.contains("CAP_IPC_LOCK"), "{s}");
        assert!(!s.contains("charged elsewhere"), "over the limit on its own: no note: {s}");
    }

    #[test]
    fn a_memlock_refusal_that_should_have_fit_says_where_the_limit_went() {
        let e = Error::MemlockLimit { requested: 6 << 20, limit: 8 << 20, locked: 1 << 20 };
        let s = e.to_string();
        assert!(s.contains("charged elsewhere") && s.contains("just exited") && s.contains("io_ring_exit_work"), "{s}");
        assert!(s.contains("6291456") && s.contains("CAP_IPC_LOCK"), "{s}");
        let e = Error::MemlockLimit { requested: u64::MAX, limit: 8 << 20, locked: 1 };
        assert!(!e.to_string().contains("charged elsewhere"));
    }

    #[test]
    fn io_errors_keep_errno() {
        let e = Error::io("open", io::Error::from_raw_os_error(libc::ENOENT));
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
        assert!(std::error::Error::source(&e).is_some());
    }
}
