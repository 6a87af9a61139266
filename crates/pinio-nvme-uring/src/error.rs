//! The error type of the NVMe passthrough backend.

use pinio_nvme::Status;
use std::io;
use std::path::PathBuf;

/// Everything the passthrough backend can report. Each message says what
/// was wrong and what to do about it.
///
/// It reaches callers of the [`pinio_core::Device`] API inside
/// [`pinio_core::Error::Backend`] (backend `"nvme-uring"`);
/// [`NvmeUringError::find`] digs it out again and [`NvmeUringError::status`]
/// gives the NVMe status of a failed command.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NvmeUringError {
    /// The path is not an NVMe generic (namespace) character device.
    #[error(
        "{path} is not an NVMe generic character device ({why}); give a namespace's /dev/ngXnY (ls /dev/ng*), which the kernel's nvme driver creates for every namespace"
    )]
    NotGeneric {
        /// The path given.
        path: PathBuf,
        /// What it is instead.
        why: String,
    },
    /// Opening a device node failed.
    #[error("opening {path}: {source}{hint}")]
    Open {
        /// The node.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
        /// What to do.
        hint: &'static str,
    },
    /// An ioctl on a device node failed.
    #[error("{what} on {path}: {source}")]
    Ioctl {
        /// Which ioctl, with its parameters.
        what: String,
        /// The node.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A command completed with an NVMe error status.
    #[error("{command} failed: {status}")]
    Command {
        /// The command, with its parameters.
        command: String,
        /// The NVMe status the controller returned.
        status: Status,
    },
    /// The namespace cannot be used by this backend.
    #[error("namespace {nsid} of {path}: {what}")]
    Namespace {
        /// The node.
        path: PathBuf,
        /// The namespace id.
        nsid: u32,
        /// What is wrong.
        what: String,
    },
    /// The kernel refused to make a passthrough ring.
    #[error(
        "io_uring_setup with {entries} 128-byte SQEs and 32-byte CQEs{polled}: {source}; NVMe passthrough needs Linux 5.19+ (fixed buffers 6.1+)"
    )]
    Setup {
        /// Entries asked for.
        entries: u32,
        /// ", IOPOLL" when polled completions were asked for.
        polled: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// `io_uring_enter` failed.
    #[error("io_uring_enter: {source}")]
    Enter {
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Registering the namespace device as the ring's fixed file failed.
    #[error("registering the namespace device as fixed file 0: {source}")]
    RegisterFile {
        /// The error.
        #[source]
        source: io::Error,
    },
}

impl NvmeUringError {
    /// The passthrough error inside a pinio error, if there is one.
    pub fn find(e: &pinio_core::Error) -> Option<&NvmeUringError> {
        match e {
            pinio_core::Error::Backend { backend: "nvme-uring", source } => source.downcast_ref::<NvmeUringError>(),
            _ => None,
        }
    }

    /// The NVMe status of a command that failed, if `e` is one.
    pub fn status(e: &pinio_core::Error) -> Option<Status> {
        match NvmeUringError::find(e) {
            Some(NvmeUringError::Command { status, .. }) => Some(*status),
            _ => None,
        }
    }
}

impl From<NvmeUringError> for pinio_core::Error {
    fn from(e: NvmeUringError) -> pinio_core::Error {
        pinio_core::Error::Backend { backend: "nvme-uring", source: Box::new(e) }
    }
}

/// The NVMe status of a passthrough completion's positive result: the
/// status field as the kernel hands it back (`nvme_req(req)->status`, the
/// completion's status without the phase bit: code in bits 7:0, type in
/// 10:8, More in 13, Do Not Retry in 14). `None` for success.
pub(crate) fn status_of(field: u32) -> Option<Status> {
    Status::from_dw3((field & 0x7fff) << 17)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_status_fields_decode_to_nvme_statuses() {
        // LBA Out of Range with Do Not Retry, as nvme_req(req)->status holds it.
        let s = status_of(0x4080).unwrap();
        assert_eq!((s.sct, s.sc, s.dnr, s.name()), (0, 0x80, true, "LBA Out of Range"));
        let s = status_of(0x0102).unwrap();
        assert_eq!((s.sct, s.sc), (1, 0x02));
        assert!(status_of(0).is_none());
    }

    #[test]
    fn command_errors_come_back_with_their_status() {
        let status = status_of(0x80).unwrap();
        let e: pinio_core::Error =
            NvmeUringError::Command { command: "Read of 8 blocks at LBA 0x10".into(), status }.into();
        let s = e.to_string();
        assert!(s.starts_with("nvme-uring backend: Read of 8 blocks") && s.contains("LBA Out of Range"), "{s}");
        assert_eq!(NvmeUringError::status(&e).map(|s| s.sc), Some(0x80));
        assert!(NvmeUringError::status(&pinio_core::Error::ReadOnly).is_none());
    }
}
