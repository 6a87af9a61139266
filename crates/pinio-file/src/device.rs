//! [`FileDevice`]: the file lifecycle on every device whose address space is
//! a file, written once for the backends that have one.

use crate::FileTarget;
use pinio_core::{DeviceCore, Result};

/// A device whose address space is a [`FileTarget`] (the copy and uring
/// backends): its length can be set, grown, preallocated and read again,
/// and the device's bounds follow.
pub trait FileDevice {
    /// The device's file.
    fn file_target(&self) -> &FileTarget;

    /// The device's common part, whose size the lifecycle updates.
    fn device_core(&self) -> &DeviceCore;

    /// Sets the file's length (`ftruncate`; longer is sparse) and the
    /// device size with it; returns the new size. Shrinking below
    /// operations in flight is safe but loses their data (a read completes
    /// short, a write extends the file again). A block device is refused
    /// with [`pinio_core::Error::Unsupported`], a read-only device with
    /// [`pinio_core::Error::ReadOnly`]. The next flush makes the new size
    /// durable.
    fn set_len(&self, len: u64) -> Result<u64> {
        self.file_target().set_len(len, self.device_core())
    }

    /// Makes the file at least `min_len` bytes long (never shrinks);
    /// returns the device size.
    fn grow(&self, min_len: u64) -> Result<u64> {
        self.file_target().grow(min_len, self.device_core())
    }

    /// Preallocates disk blocks for `[offset, offset + len)` (`fallocate`
    /// mode 0: the file grows to cover the range, reading zeros); returns
    /// the device size.
    fn allocate(&self, offset: u64, len: u64) -> Result<u64> {
        self.file_target().allocate(offset, len, self.device_core())
    }

    /// Reads the file's size again (another process may have resized it)
    /// and makes it the device size; returns it.
    fn refresh_size(&self) -> Result<u64> {
        self.file_target().refresh_size(self.device_core())
    }

    /// Whether opening the device created its file.
    fn created(&self) -> bool {
        self.file_target().created
    }
}
