//! The alignment direct IO needs on a target.

use crate::{DioAlign, FileTarget, TargetKind};
use pinio_core::{Error, Result};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

impl FileTarget {
    /// The alignment direct IO needs on this target, whether or not it was
    /// opened with O_DIRECT: what a backend opening it with O_DIRECT (uring's
    /// default) will require. [`Error::Unsupported`] when the file system
    /// reports none (it has no real direct IO).
    pub fn dio_align(&self) -> Result<DioAlign> {
        match self.dio {
            Some(d) => Ok(d),
            None => dio_align(&self.file, self.kind, &self.path),
        }
    }
}

/// `statx(STATX_DIOALIGN)` for files, the logical block size for block
/// devices.
pub(crate) fn dio_align(file: &File, kind: TargetKind, path: &Path) -> Result<DioAlign> {
    if kind == TargetKind::Block {
        let mut lbs: libc::c_int = 0;
        // SAFETY: BLKSSZGET writes one int through the pointer, which is valid.
        let r = unsafe { libc::ioctl(file.as_raw_fd(), libc::BLKSSZGET as _, &mut lbs as *mut libc::c_int) };
        if r < 0 || lbs <= 0 {
            return Err(Error::last_os(format!("BLKSSZGET on {}", path.display())));
        }
        return Ok(DioAlign { mem: lbs as u64, offset: lbs as u64 });
    }
    // SAFETY: statx is plain old data; all-zero is a valid value.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    let empty = c"";
    // SAFETY: AT_EMPTY_PATH with an empty string stats the fd itself; `stx`
    // is a valid out-pointer.
    let r =
        unsafe { libc::statx(file.as_raw_fd(), empty.as_ptr(), libc::AT_EMPTY_PATH, libc::STATX_DIOALIGN, &mut stx) };
    if r < 0 {
        return Err(Error::last_os(format!("statx {}", path.display())));
    }
    if stx.stx_mask & libc::STATX_DIOALIGN == 0 || stx.stx_dio_offset_align == 0 {
        return Err(Error::Unsupported {
            what: format!("direct IO on {}", path.display()),
            hint: "the file system reports no direct-IO alignment (tmpfs accepts O_DIRECT but copies through the page cache); use a file on ext4/xfs/btrfs, a block device, or the copy backend".into(),
        });
    }
    Ok(DioAlign { mem: stx.stx_dio_mem_align as u64, offset: stx.stx_dio_offset_align as u64 })
}
