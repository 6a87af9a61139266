//! The backend's own error type.

use std::io;

/// What went wrong inside the io_uring backend. Converted into
/// [`pinio_core::Error::Backend`] (with this value as its source) at the API
/// boundary; refusals by the locked-memory limit become
/// [`pinio_core::Error::MemlockLimit`] instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UringError {
    /// `io_uring_setup` failed.
    #[error(
        "creating an io_uring with {entries} entries failed: {source}; check /proc/sys/kernel/io_uring_disabled and that the kernel has CONFIG_IO_URING"
    )]
    Setup {
        /// Entries asked for.
        entries: u32,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Registering a buffer failed for a reason other than the memory limit.
    #[error(
        "registering a buffer of {len} bytes at {addr:#x} failed: {source}; buffers must be anonymous memory of at most 1 GiB each"
    )]
    RegisterBuffer {
        /// Its address.
        addr: u64,
        /// Its length.
        len: u64,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Releasing a buffer's table slot failed.
    #[error("releasing registered-buffer slot {slot} failed: {source}")]
    UnregisterBuffer {
        /// The slot.
        slot: u16,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Every slot of the registered-buffer table is in use.
    #[error(
        "all {slots} registered-buffer slots of the domain are in use; unregister regions, or use an arena (UringDomainOptions::arena_bytes) and Domain::alloc or Device::alloc to share one registration"
    )]
    SlotsExhausted {
        /// The table size.
        slots: u32,
    },
    /// Copying the domain's registered-buffer table into a ring failed.
    #[error(
        "cloning the registered-buffer table into a queue's ring failed: {source}; all rings of a domain must be created by threads with the same CAP_IPC_LOCK state as the one that made the domain (make domains and queues on threads that did not change capabilities)"
    )]
    CloneBuffers {
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Registering the target's file descriptor failed.
    #[error("registering the target's file descriptor with a ring failed: {source}")]
    RegisterFile {
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Making or registering the completion eventfd failed.
    #[error("setting up the completion eventfd failed: {source}")]
    EventFd {
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `io_uring_enter` failed.
    #[error("io_uring_enter failed: {source}")]
    Enter {
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A single-issuer queue ([`crate::UringOptions::single_issuer`]) was
    /// used on a thread other than the one that first entered the kernel
    /// with it (`EEXIST` from the kernel).
    #[error(
        "this queue's ring is single-issuer (UringOptions::single_issuer) and belongs to the thread that first submitted on it; use the queue on that thread only, or open the device without single_issuer to move queues between threads"
    )]
    NotOwner,
    /// Polled completions ([`crate::UringOptions::iopoll`]) were asked for
    /// a target opened without `O_DIRECT`: the kernel polls direct IO only.
    #[error(
        "{path}: IOPOLL (UringOptions::iopoll) needs O_DIRECT, the kernel polls direct IO only; open with direct: true (Builder::direct(true)), or without iopoll for buffered IO"
    )]
    IopollNeedsDirect {
        /// The target.
        path: std::path::PathBuf,
    },
    /// A zero-copy send failed.
    #[error("SEND_ZC of {len} bytes failed after {sent} bytes: {source}")]
    SendZc {
        /// Bytes asked for.
        len: usize,
        /// Bytes sent before the failure.
        sent: usize,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl From<UringError> for pinio_core::Error {
    fn from(e: UringError) -> Self {
        pinio_core::Error::Backend { backend: "uring", source: Box::new(e) }
    }
}
