//! Files and block devices as device address spaces: opening with or without
//! O_DIRECT, their size, and their direct-IO alignment.
//!
//! Shared by the `copy` and `uring` backends.
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

use pinio_core::{Error, Result};
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// `BLKGETSIZE64`: `_IOR(0x12, 114, size_t)` from `<linux/fs.h>`.
const BLKGETSIZE64: libc::c_ulong = 0x8008_1272;

/// What kind of object a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// A regular file.
    File,
    /// A block device (its `fstat` size is 0; the size comes from `BLKGETSIZE64`).
    Block,
}

/// Alignment that direct IO requires on a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DioAlign {
    /// Alignment of memory addresses.
    pub mem: u64,
    /// Alignment of file offsets and lengths.
    pub offset: u64,
}

/// An opened file or block device.
#[derive(Debug)]
pub struct FileTarget {
    /// The open file.
    pub file: File,
    /// Where it is.
    pub path: PathBuf,
    /// File or block device.
    pub kind: TargetKind,
    /// Size in bytes: the device address space.
    pub size: u64,
    /// Whether it was opened with O_DIRECT.
    pub direct: bool,
    /// The direct-IO alignment (when opened with O_DIRECT).
    pub dio: Option<DioAlign>,
}

impl FileTarget {
    /// Opens `path` read-write (or read-only), with O_DIRECT if `direct`.
    ///
    /// With O_DIRECT the alignment comes from `statx(STATX_DIOALIGN)` for
    /// files and from the logical block size for block devices; a file system
    /// without direct IO is refused with [`Error::Unsupported`] instead of
    /// silently going through the page cache.
    pub fn open(path: &Path, direct: bool, writable: bool) -> Result<FileTarget> {
        let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::InvalidTarget {
            spec: path.display().to_string(),
            reason: "path contains a NUL byte".into(),
        })?;
        let mut flags = libc::O_CLOEXEC | if writable { libc::O_RDWR } else { libc::O_RDONLY };
        if direct {
            flags |= libc::O_DIRECT;
        }
        // SAFETY: `c` is a valid NUL-terminated path; the fd is checked and
        // owned by a File right after.
        let fd = unsafe { libc::open(c.as_ptr(), flags) };
        if fd < 0 {
            let err = std::io::Error::last_os_error();
            if direct && err.raw_os_error() == Some(libc::EINVAL) {
                return Err(Error::Unsupported {
                    what: format!("O_DIRECT on {}", path.display()),
                    hint: "the file system refuses direct IO (e.g. some network or overlay file systems); put the file on ext4/xfs/btrfs or a block device, or use the copy backend".into(),
                });
            }
            return Err(Error::io(format!("open {}", path.display()), err));
        }
        // SAFETY: fd is a freshly opened descriptor that nothing else owns.
        let file = unsafe { File::from_raw_fd(fd) };
        let meta = file.metadata().map_err(|e| Error::io(format!("fstat {}", path.display()), e))?;
        let ft = meta.file_type();
        let kind = if ft.is_block_device() {
            TargetKind::Block
        } else if ft.is_file() {
            TargetKind::File
        } else {
            return Err(Error::Unsupported {
                what: format!("{} as a device (not a regular file or block device)", path.display()),
                hint: "give a regular file or a block device".into(),
            });
        };
        let size = match kind {
            TargetKind::File => meta.len(),
            TargetKind::Block => block_size64(&file).map_err(|e| Error::io(format!("BLKGETSIZE64 on {}", path.display()), e))?,
        };
        let dio = if direct { Some(dio_align(&file, kind, path)?) } else { None };
        Ok(FileTarget { file, path: path.to_path_buf(), kind, size, direct, dio })
    }
}

fn block_size64(file: &File) -> std::io::Result<u64> {
    let mut size: u64 = 0;
    // SAFETY: BLKGETSIZE64 writes one u64 through the pointer, which is valid.
    let r = unsafe { libc::ioctl(file.as_raw_fd(), BLKGETSIZE64 as _, &mut size as *mut u64) };
    if r < 0 { Err(std::io::Error::last_os_error()) } else { Ok(size) }
}

fn dio_align(file: &File, kind: TargetKind, path: &Path) -> Result<DioAlign> {
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
    let r = unsafe { libc::statx(file.as_raw_fd(), empty.as_ptr(), libc::AT_EMPTY_PATH, libc::STATX_DIOALIGN, &mut stx) };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_file_size_and_kind() {
        let dir = std::env::temp_dir().join(format!("pinio-file-test-{}", std::process::id()));
        std::fs::write(&dir, vec![1u8; 12345]).unwrap();
        let t = FileTarget::open(&dir, false, false).unwrap();
        assert_eq!((t.kind, t.size, t.dio), (TargetKind::File, 12345, None));
        std::fs::remove_file(&dir).unwrap();
    }

    #[test]
    fn missing_and_odd_targets_are_clear_errors() {
        let e = FileTarget::open(Path::new("/nonexistent/pinio"), false, false).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
        assert!(e.to_string().contains("/nonexistent/pinio"));
        let e = FileTarget::open(Path::new("/dev/null"), false, false).unwrap_err();
        assert!(matches!(e, Error::Unsupported { .. }), "{e}");
    }

    #[test]
    fn tmpfs_direct_io_is_refused_or_real() {
        // /dev/shm accepts O_DIRECT but is not direct: pinio must not pretend.
        let p = Path::new("/dev/shm").join(format!("pinio-dio-{}", std::process::id()));
        if std::fs::write(&p, vec![0u8; 4096]).is_err() {
            return; // no /dev/shm on this machine
        }
        let r = FileTarget::open(&p, true, false);
        std::fs::remove_file(&p).unwrap();
        match r {
            Err(Error::Unsupported { .. }) => {}
            Ok(t) => assert!(t.dio.unwrap().offset >= 1),
            Err(e) => panic!("unexpected error {e}"),
        }
    }
}
