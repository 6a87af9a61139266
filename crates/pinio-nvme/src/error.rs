//! The one error type of the NVMe backend.

use crate::Status;
use pinio_vfio::VfioError;

/// Everything the NVMe backend can report. Each message says what was
/// wrong and what to do about it.
///
/// It reaches callers of the [`pinio_core::Device`] API inside
/// [`pinio_core::Error::Backend`] (backend `"nvme"`); [`NvmeError::find`]
/// digs it out again, and [`NvmeError::status`] gives the NVMe status of a
/// failed command.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NvmeError {
    /// A VFIO step (binding, container, group, BAR, IOMMU mapping) failed.
    #[error(transparent)]
    Vfio(#[from] VfioError),
    /// The PCI device is not an NVMe controller.
    #[error(
        "PCI device {bdf} has class {class:#08x}, not an NVMe controller (0x010802); give the address of an NVMe controller (lspci -D -d ::0108)"
    )]
    NotNvme {
        /// The address.
        bdf: String,
        /// Its PCI class code.
        class: u32,
    },
    /// The controller does not support something this driver needs.
    #[error("{bdf}: {what}; this driver cannot use the controller")]
    Unsupported {
        /// The address.
        bdf: String,
        /// What is missing.
        what: String,
    },
    /// The controller did not reach a state in time.
    #[error(
        "{bdf}: the controller did not {what} within {ms} ms (CSTS = {csts:#x}); it may be hung: check dmesg, reset the device (echo 1 > /sys/bus/pci/devices/{bdf}/reset) and reopen"
    )]
    Timeout {
        /// The address.
        bdf: String,
        /// What it was to do ("become ready", "shut down").
        what: &'static str,
        /// The time waited.
        ms: u64,
        /// The status register when giving up.
        csts: u32,
    },
    /// The controller reported a fatal error (CSTS.CFS).
    #[error(
        "{bdf}: the controller reports a fatal status (CSTS.CFS set, CSTS = {csts:#x}); reset it by reopening the device"
    )]
    Fatal {
        /// The address.
        bdf: String,
        /// The status register.
        csts: u32,
    },
    /// An admin command did not complete in time.
    #[error(
        "{bdf}: admin command {command} did not complete within {ms} ms; the controller may be hung: reopen the device"
    )]
    AdminTimeout {
        /// The address.
        bdf: String,
        /// The command.
        command: &'static str,
        /// The time waited.
        ms: u64,
    },
    /// A command completed with an error status.
    #[error("{command} failed: {status}")]
    Command {
        /// The command, with its parameters.
        command: String,
        /// The NVMe status.
        status: Status,
    },
    /// An Identify data structure that makes no sense.
    #[error("Identify {what} returned unusable data: {reason}")]
    Identify {
        /// Which structure.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Every I/O queue pair the controller granted is in use.
    #[error(
        "all {granted} I/O queue pairs the controller granted are in use by other pinio queues; drop a queue first"
    )]
    NoQueuePair {
        /// How many the controller granted.
        granted: u16,
    },
    /// A reset was asked for while queues exist.
    #[error("cannot reset the controller while {queues} I/O queue(s) exist; drop every queue first")]
    QueuesAlive {
        /// The queues alive.
        queues: usize,
    },
    /// The controller was stopped after an earlier failure.
    #[error("{bdf}: the controller was stopped after an earlier failure ({reason}); reopen the device")]
    Stopped {
        /// The address.
        bdf: String,
        /// The earlier failure.
        reason: String,
    },
    /// The controller was reset ([`crate::NvmeDevice::reset_controller`])
    /// while the command was in flight, or the queue was made before the
    /// reset: the reset deleted the queue's queue pair and aborted its
    /// commands. The slice comes back with this error.
    #[error(
        "{bdf}: the controller was reset (reset number {reset}) while this queue's commands were in flight: they were aborted (a read's buffer holds undefined bytes; a write may or may not have reached the medium) and the queue's queue pair is gone; drop this queue and make a new one"
    )]
    Reset {
        /// The address.
        bdf: String,
        /// How many resets the device has had since it was opened.
        reset: u64,
    },
    /// The kernel asked for the controller back (vfio-pci's device
    /// request: the device is being removed or unbound): the driver stopped
    /// it and aborted every command; the slice comes back with this error.
    #[error(
        "{bdf}: the kernel asked for the controller back (the device is being removed or unbound): pinio stopped it and aborted every command (a read's buffer holds undefined bytes; a write may or may not have reached the medium); drop every queue, region and the device so that the removal can complete"
    )]
    Removed {
        /// The address.
        bdf: String,
    },
    /// The driver's own DMA memory (queues, PRP lists) could not be
    /// allocated or mapped.
    #[error("allocating the driver's DMA memory (queues, PRP lists): {source}")]
    DriverMemory {
        /// The allocation or mapping error.
        #[source]
        source: pinio_core::Error,
    },
}

impl NvmeError {
    /// The NVMe error inside a pinio error, if there is one.
    pub fn find(e: &pinio_core::Error) -> Option<&NvmeError> {
        match e {
            pinio_core::Error::Backend { backend: "nvme", source } => source.downcast_ref::<NvmeError>(),
            _ => None,
        }
    }

    /// The NVMe status of a command that failed, if `e` is one.
    pub fn status(e: &pinio_core::Error) -> Option<Status> {
        match NvmeError::find(e) {
            Some(NvmeError::Command { status, .. }) => Some(*status),
            _ => None,
        }
    }
}

impl From<NvmeError> for pinio_core::Error {
    fn from(e: NvmeError) -> pinio_core::Error {
        match e {
            // VFIO errors keep their own backend name so VfioError::find works.
            NvmeError::Vfio(v) => v.into(),
            e => pinio_core::Error::Backend { backend: "nvme", source: Box::new(e) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_errors_name_the_status_and_come_back() {
        let status = Status::from_dw3(0x80 << 17).unwrap();
        let e: pinio_core::Error =
            NvmeError::Command { command: "read of 8 blocks at LBA 0x100000".into(), status }.into();
        let s = e.to_string();
        assert!(s.starts_with("nvme backend: read of 8 blocks") && s.contains("LBA Out of Range"), "{s}");
        assert_eq!(NvmeError::status(&e).map(|s| s.sc), Some(0x80));
        assert!(NvmeError::status(&pinio_core::Error::ZeroLength { what: "x" }).is_none());
    }

    #[test]
    fn timeouts_say_what_and_how_long() {
        let e = NvmeError::Timeout { bdf: "0000:00:04.0".into(), what: "become ready", ms: 7500, csts: 0 };
        let s = e.to_string();
        assert!(s.contains("become ready") && s.contains("7500 ms") && s.contains("reset"), "{s}");
    }

    #[test]
    fn vfio_errors_stay_vfio_errors() {
        let e: pinio_core::Error = NvmeError::from(VfioError::MappingLimit { limit: 1 }).into();
        assert!(VfioError::find(&e).is_some());
        assert!(NvmeError::find(&e).is_none());
    }
}
