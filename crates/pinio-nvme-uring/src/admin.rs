//! Finding a namespace's controller and asking it: the namespace id
//! (`NVME_IOCTL_ID`), Identify Controller and Identify Namespace through the
//! admin passthrough ioctl (`NVME_IOCTL_ADMIN_CMD` on `/dev/nvmeX`), and a
//! controller reset (`NVME_IOCTL_RESET`).

use crate::NvmeUringError;
use crate::error::status_of;
use crate::sys::{self, PassthruCmd};
use pinio_core::DmaBuf;
use pinio_nvme::{ControllerInfo, NamespaceInfo};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where a generic namespace device sits: its controller's device node
/// and the sysfs directory of its block twin.
#[derive(Debug, Clone)]
pub(crate) struct Location {
    /// `/dev/nvmeX`.
    pub(crate) controller: PathBuf,
    /// `nvmeXnY`, the block device of the same namespace (queue limits).
    pub(crate) block_name: String,
}

/// Checks that `path` is a generic NVMe namespace character device and
/// finds its controller through sysfs.
pub(crate) fn locate(path: &Path) -> Result<Location, NvmeUringError> {
    let not = |why: String| NvmeUringError::NotGeneric { path: path.to_path_buf(), why };
    let meta = std::fs::metadata(path).map_err(|e| not(e.to_string()))?;
    if !meta.file_type().is_char_device() {
        let what = if meta.file_type().is_block_device() {
            "a block device: use uring: for it"
        } else {
            "not a character device"
        };
        return Err(not(what.into()));
    }
    let rdev = meta.rdev();
    let (major, minor) = (libc::major(rdev), libc::minor(rdev));
    let node = PathBuf::from(format!("/sys/dev/char/{major}:{minor}"));
    let class = std::fs::canonicalize(&node).map_err(|e| not(format!("{}: {e}", node.display())))?;
    let subsystem = std::fs::read_link(node.join("subsystem"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    if subsystem.as_deref() != Some("nvme-generic") {
        return Err(not(format!(
            "its sysfs node {} is of class {}, not nvme-generic",
            class.display(),
            subsystem.as_deref().unwrap_or("(none)")
        )));
    }
    let name = class.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // The namespace's class device sits below its controller's.
    let ctrl = class.parent().map(Path::to_path_buf).ok_or_else(|| not("no parent device in sysfs".into()))?;
    let ctrl_name = ctrl.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if !ctrl_name.starts_with("nvme") {
        return Err(not(format!("its parent {} is not an NVMe controller", ctrl.display())));
    }
    let block_name = name.strip_prefix("ng").map(|rest| format!("nvme{rest}")).unwrap_or_default();
    Ok(Location { controller: PathBuf::from("/dev").join(ctrl_name), block_name })
}

/// The namespace id of the namespace device `file`.
pub(crate) fn namespace_id(file: &File, path: &Path) -> Result<u32, NvmeUringError> {
    // SAFETY: NVME_IOCTL_ID takes no argument and returns the id.
    let r = unsafe { libc::ioctl(file.as_raw_fd(), sys::NVME_IOCTL_ID as _) };
    if r <= 0 {
        let source = if r < 0 { std::io::Error::last_os_error() } else { std::io::Error::other("namespace id 0") };
        return Err(NvmeUringError::Ioctl { what: "NVME_IOCTL_ID".into(), path: path.to_path_buf(), source });
    }
    Ok(r as u32)
}

/// One Identify (CNS `cns`, namespace `nsid`) through `NVME_IOCTL_ADMIN_CMD`
/// on the controller node `ctrl`; returns the 4096-byte structure.
pub(crate) fn identify(ctrl: &File, path: &Path, cns: u32, nsid: u32) -> Result<Vec<u8>, NvmeUringError> {
    let mut buf = DmaBuf::builder(4096).build().map_err(|e| NvmeUringError::Ioctl {
        what: "allocating the Identify buffer".into(),
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let mut cmd = PassthruCmd {
        opcode: sys::OP_IDENTIFY,
        nsid,
        addr: buf.as_mut_ptr() as u64,
        data_len: 4096,
        cdw10: cns,
        timeout_ms: 30_000,
        ..Default::default()
    };
    let what = format!("Identify (CNS {cns}, namespace {nsid})");
    // SAFETY: `cmd` is a valid nvme_passthru_cmd whose data buffer is the
    // 4096 bytes of `buf`, alive and not otherwise used until the ioctl
    // (synchronous) returns.
    let r = unsafe { libc::ioctl(ctrl.as_raw_fd(), sys::NVME_IOCTL_ADMIN_CMD as _, &mut cmd as *mut PassthruCmd) };
    if r < 0 {
        return Err(NvmeUringError::Ioctl {
            what: format!("NVME_IOCTL_ADMIN_CMD {what}"),
            path: path.to_path_buf(),
            source: std::io::Error::last_os_error(),
        });
    }
    if let Some(status) = status_of(r as u32) {
        return Err(NvmeUringError::Command { command: what, status });
    }
    Ok(buf.to_vec())
}

/// What Identify and the kernel's queue limits say about one namespace.
#[derive(Debug, Clone)]
pub struct Geometry {
    /// The namespace id.
    pub nsid: u32,
    /// The controller's device node (`/dev/nvme0`).
    pub controller: PathBuf,
    /// Identify Controller.
    pub ctrl: ControllerInfo,
    /// Identify Namespace.
    pub ns: NamespaceInfo,
    /// Largest transfer of one command in bytes: the kernel's limit for
    /// the namespace (`max_hw_sectors_kb`, which already honours MDTS with
    /// the controller's real page size), else MDTS in 4 KiB pages, else
    /// 128 KiB.
    pub max_transfer: u64,
}

/// Opens the controller node of `loc` and reads the geometry of `nsid`.
pub(crate) fn geometry(loc: &Location, nsid: u32) -> Result<(Geometry, File), NvmeUringError> {
    let ctrl_file =
        File::options().read(true).write(true).open(&loc.controller).map_err(|source| NvmeUringError::Open {
            path: loc.controller.clone(),
            source,
            hint: "; the admin passthrough ioctl needs the controller node and CAP_SYS_ADMIN (run as root)",
        })?;
    let raw_ctrl = identify(&ctrl_file, &loc.controller, 1, 0)?;
    let ctrl = ControllerInfo::parse(&raw_ctrl).map_err(|e| bad(loc, nsid, e.to_string()))?;
    let raw_ns = identify(&ctrl_file, &loc.controller, 0, nsid)?;
    let ns = NamespaceInfo::parse(&raw_ns).map_err(|e| bad(loc, nsid, e.to_string()))?;
    if ns.metadata != 0 {
        return Err(bad(
            loc,
            nsid,
            format!(
                "its format has {} metadata bytes per block; this backend needs a format without metadata",
                ns.metadata
            ),
        ));
    }
    let sysfs = PathBuf::from("/sys/block").join(&loc.block_name).join("queue/max_hw_sectors_kb");
    let kernel_limit =
        std::fs::read_to_string(sysfs).ok().and_then(|s| s.trim().parse::<u64>().ok()).map(|kb| kb * 1024);
    let max_transfer = kernel_limit.or_else(|| ctrl.max_transfer(4096)).unwrap_or(128 << 10);
    // Whole blocks only.
    let max_transfer = max_transfer / ns.block_size as u64 * ns.block_size as u64;
    Ok((Geometry { nsid, controller: loc.controller.clone(), ctrl, ns, max_transfer }, ctrl_file))
}

fn bad(loc: &Location, nsid: u32, what: String) -> NvmeUringError {
    NvmeUringError::Namespace { path: loc.controller.clone(), nsid, what }
}

/// `NVME_IOCTL_RESET` on the controller node: the kernel resets the
/// controller; commands in flight are aborted or retried by the driver.
pub(crate) fn reset(ctrl: &File, path: &Path) -> Result<(), NvmeUringError> {
    // SAFETY: NVME_IOCTL_RESET takes no argument.
    let r = unsafe { libc::ioctl(ctrl.as_raw_fd(), sys::NVME_IOCTL_RESET as _) };
    if r < 0 {
        return Err(NvmeUringError::Ioctl {
            what: "NVME_IOCTL_RESET".into(),
            path: path.to_path_buf(),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}
