//! Files and block devices as device address spaces: opening (and creating)
//! with or without O_DIRECT, their size and its lifecycle (set length,
//! preallocate, grow, refresh), and their direct-IO alignment.
//!
//! Shared by the `copy` and `uring` backends.
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod device;
mod dio;
mod lifecycle;
mod open;
mod reopen;

pub use device::FileDevice;

use std::fs::File;
use std::path::PathBuf;
use std::sync::Mutex;

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

/// How to open a target ([`FileTarget::open_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileOpen {
    /// Open with `O_DIRECT`.
    pub direct: bool,
    /// Open read-write (`false`: read-only).
    pub writable: bool,
    /// `Some(size)`: create the file if it is missing, and make it at least
    /// `size` bytes long (a larger file is left as it is; `Some(0)` only
    /// creates). A block device is never resized: a size beyond it is
    /// refused. Needs `writable`.
    pub create: Option<u64>,
}

impl Default for FileOpen {
    /// Read-write, buffered, the file must exist.
    fn default() -> Self {
        FileOpen { direct: false, writable: true, create: None }
    }
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
    /// Size in bytes when opened (after creating or growing it): the device
    /// address space at open. [`FileTarget::current_size`] reads it again.
    pub size: u64,
    /// Whether it was opened with O_DIRECT.
    pub direct: bool,
    /// The direct-IO alignment (when opened with O_DIRECT).
    pub dio: Option<DioAlign>,
    /// Whether it was opened read-write.
    pub writable: bool,
    /// Whether opening it created it.
    pub created: bool,
    /// Serialises resizes with the publication of the new size, so that the
    /// size a device checks bounds against is the last one set.
    resize: Mutex<()>,
}
