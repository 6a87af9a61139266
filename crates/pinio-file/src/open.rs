//! Opening (and creating) a target.

use crate::{FileOpen, FileTarget, TargetKind, dio, lifecycle};
use pinio_core::{Error, Result};
use std::ffi::{CStr, CString};
use std::fs::File;
use std::os::fd::FromRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::sync::Mutex;

impl FileTarget {
    /// Opens an existing `path` read-write (or read-only), with O_DIRECT if
    /// `direct`; [`FileTarget::open_with`] with `create: None`.
    pub fn open(path: &Path, direct: bool, writable: bool) -> Result<FileTarget> {
        FileTarget::open_with(path, &FileOpen { direct, writable, create: None })
    }

    /// Opens `path` as `how` says.
    ///
    /// With O_DIRECT the alignment comes from `statx(STATX_DIOALIGN)` for
    /// files and from the logical block size for block devices; a file system
    /// without direct IO is refused with [`Error::Unsupported`] instead of
    /// silently going through the page cache.
    ///
    /// With `create: Some(size)` a missing file is created (mode 0666 less
    /// the umask) and a file shorter than `size` is extended (sparse, with
    /// `ftruncate`); a file that was created or extended is `fdatasync`ed,
    /// and a created file's directory `fsync`ed, so that the file and its
    /// size survive a crash once this returns. A block device smaller than
    /// `size` is refused with [`Error::Unsupported`]: its size is the
    /// device's.
    pub fn open_with(path: &Path, how: &FileOpen) -> Result<FileTarget> {
        let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::InvalidTarget {
            spec: path.display().to_string(),
            reason: "path contains a NUL byte".into(),
        })?;
        if how.create.is_some() && !how.writable {
            return Err(Error::Unsupported {
                what: format!("creating or sizing {} opened read-only", path.display()),
                hint: "open it writable to create it, or open an existing file without create".into(),
            });
        }
        let (file, created) = open_fd(&c, path, how)?;
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
        let mut size = match kind {
            TargetKind::File => meta.len(),
            TargetKind::Block => lifecycle::block_size64(&file)
                .map_err(|e| Error::io(format!("BLKGETSIZE64 on {}", path.display()), e))?,
        };
        let mut grown = false;
        match (how.create, kind) {
            (Some(want), TargetKind::Block) if want > size => {
                return Err(lifecycle::block_resize(path, &format!("making it {want} bytes (it has {size})")));
            }
            (Some(want), TargetKind::File) if want > size => {
                lifecycle::ftruncate(&file, want, path)?;
                (size, grown) = (want, true);
            }
            _ => {}
        }
        if created || grown {
            file.sync_data()
                .map_err(|e| Error::io(format!("fdatasync {} after creating or sizing it", path.display()), e))?;
        }
        if created {
            sync_parent(path)?;
        }
        let dio = if how.direct { Some(dio::dio_align(&file, kind, path)?) } else { None };
        Ok(FileTarget {
            file,
            path: path.to_path_buf(),
            kind,
            size,
            direct: how.direct,
            dio,
            writable: how.writable,
            created,
            resize: Mutex::new(()),
        })
    }
}

/// Opens `c`, creating it first when `how.create` asks and it is missing;
/// returns the file and whether this call created it.
fn open_fd(c: &CStr, path: &Path, how: &FileOpen) -> Result<(File, bool)> {
    let mut flags = libc::O_CLOEXEC | if how.writable { libc::O_RDWR } else { libc::O_RDONLY };
    if how.direct {
        flags |= libc::O_DIRECT;
    }
    // Create exclusively, to know whether this call created it; a file that
    // exists is opened as it is. Three rounds absorb another process
    // removing and re-creating it meanwhile.
    for _ in 0..3 {
        if how.create.is_some() {
            match raw_open(c, flags | libc::O_CREAT | libc::O_EXCL) {
                Ok(f) => return Ok((f, true)),
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                Err(e) => return Err(open_error(path, how.direct, e)),
            }
        }
        match raw_open(c, flags) {
            Ok(f) => return Ok((f, false)),
            Err(e) if how.create.is_some() && e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(open_error(path, how.direct, e)),
        }
    }
    Err(Error::io(
        format!("open {} (removed and re-created while opening)", path.display()),
        std::io::Error::from_raw_os_error(libc::ENOENT),
    ))
}

fn raw_open(c: &CStr, flags: libc::c_int) -> std::io::Result<File> {
    // SAFETY: `c` is a valid NUL-terminated path; the mode argument is read
    // only with O_CREAT; the fd is checked and owned by a File right after.
    let fd = unsafe { libc::open(c.as_ptr(), flags, 0o666 as libc::c_uint) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a freshly opened descriptor that nothing else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

fn open_error(path: &Path, direct: bool, err: std::io::Error) -> Error {
    if direct && err.raw_os_error() == Some(libc::EINVAL) {
        return Error::Unsupported {
            what: format!("O_DIRECT on {}", path.display()),
            hint: "the file system refuses direct IO (e.g. some network or overlay file systems); put the file on ext4/xfs/btrfs or a block device, or use the copy backend".into(),
        };
    }
    Error::io(format!("open {}", path.display()), err)
}

/// `fsync` of the directory holding `path`, which makes a new entry in it
/// durable.
fn sync_parent(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let d = File::open(dir)
        .map_err(|e| Error::io(format!("open directory {} to fsync the new entry", dir.display()), e))?;
    d.sync_all().map_err(|e| Error::io(format!("fsync directory {}", dir.display()), e))
}
