//! A target's size after open: set the length, preallocate, grow, read it
//! again; each publishes the new size to the device's [`DeviceCore`], which
//! checks bounds against it.
//!
//! A size change is metadata that the next `fdatasync` (a queue's
//! [`FlushMode::Data`](pinio_core::FlushMode::Data) flush) makes durable,
//! since reading the data back needs it.

use crate::{FileTarget, TargetKind};
use pinio_core::{DeviceCore, Error, Result};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::MutexGuard;

/// `BLKGETSIZE64`: `_IOR(0x12, 114, size_t)` from `<linux/fs.h>`.
const BLKGETSIZE64: libc::c_ulong = 0x8008_1272;

/// The largest file size the kernel's `loff_t` holds.
const MAX_LEN: u64 = i64::MAX as u64;

impl FileTarget {
    fn lock(&self) -> MutexGuard<'_, ()> {
        // The guard protects no data, only the order of resizes.
        self.resize.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The target's size now (`fstat`, or `BLKGETSIZE64` for a block
    /// device), without publishing it.
    pub fn current_size(&self) -> Result<u64> {
        match self.kind {
            TargetKind::File => self
                .file
                .metadata()
                .map(|m| m.len())
                .map_err(|e| Error::io(format!("fstat {}", self.path.display()), e)),
            TargetKind::Block => {
                block_size64(&self.file).map_err(|e| Error::io(format!("BLKGETSIZE64 on {}", self.path.display()), e))
            }
        }
    }

    /// Reads the size again (another process may have resized the file; a
    /// block device may have been resized) and publishes it to `core`, the
    /// device of this target; returns it.
    pub fn refresh_size(&self, core: &DeviceCore) -> Result<u64> {
        let _g = self.lock();
        let size = self.current_size()?;
        core.set_size(size);
        Ok(size)
    }

    /// Sets the file's length (`ftruncate`): longer is sparse, shorter
    /// drops the tail. Publishes it to `core`; returns it.
    ///
    /// Shrinking below operations in flight is safe but loses data: a read
    /// past the new end completes short, a write extends the file again.
    /// A block device is refused with [`Error::Unsupported`], a read-only
    /// target with [`Error::ReadOnly`].
    pub fn set_len(&self, len: u64, core: &DeviceCore) -> Result<u64> {
        if self.kind == TargetKind::Block {
            return Err(block_resize(&self.path, &format!("setting its length to {len}")));
        }
        self.writable_or_refuse()?;
        let _g = self.lock();
        ftruncate(&self.file, len, &self.path)?;
        core.set_size(len);
        Ok(len)
    }

    /// Makes the file at least `min_len` bytes long (`ftruncate` when it is
    /// shorter; never shrinks). Publishes the size to `core`; returns it.
    /// A block device already that large is left alone; a larger
    /// `min_len` is refused with [`Error::Unsupported`].
    pub fn grow(&self, min_len: u64, core: &DeviceCore) -> Result<u64> {
        let _g = self.lock();
        let size = self.current_size()?;
        if size >= min_len {
            core.set_size(size);
            return Ok(size);
        }
        if self.kind == TargetKind::Block {
            return Err(block_resize(&self.path, &format!("growing it to {min_len} bytes (it has {size})")));
        }
        self.writable_or_refuse()?;
        ftruncate(&self.file, min_len, &self.path)?;
        core.set_size(min_len);
        Ok(min_len)
    }

    /// Allocates disk blocks for `[offset, offset + len)` (`fallocate`,
    /// mode 0): later writes there cannot fail for lack of space, and the
    /// file grows to cover the range if it is shorter (the new bytes read
    /// as zeros). Publishes the size to `core`; returns it.
    ///
    /// A block device's blocks all exist: a range inside it succeeds
    /// without a call, one beyond it is refused with [`Error::Unsupported`].
    /// A file system without `fallocate` is [`Error::Unsupported`] (use
    /// [`FileTarget::set_len`], which makes the file sparse).
    pub fn allocate(&self, offset: u64, len: u64, core: &DeviceCore) -> Result<u64> {
        if len == 0 {
            return Err(Error::ZeroLength { what: "allocation" });
        }
        let end = match offset.checked_add(len) {
            Some(end) if end <= MAX_LEN => end,
            _ => return Err(Error::OutOfBounds { what: "file allocation", offset, len, limit: MAX_LEN }),
        };
        let _g = self.lock();
        if self.kind == TargetKind::Block {
            let size = self.current_size()?;
            if end > size {
                return Err(block_resize(
                    &self.path,
                    &format!("allocating [{offset:#x}, +{len:#x}) beyond its {size} bytes"),
                ));
            }
            core.set_size(size);
            return Ok(size);
        }
        self.writable_or_refuse()?;
        // SAFETY: fallocate on an open descriptor; no memory is passed.
        let r = unsafe { libc::fallocate(self.file.as_raw_fd(), 0, offset as libc::off_t, len as libc::off_t) };
        if r < 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EOPNOTSUPP) {
                return Err(Error::Unsupported {
                    what: format!("preallocating {} (fallocate)", self.path.display()),
                    hint: "the file system cannot preallocate; use set_len, which makes the file sparse".into(),
                });
            }
            return Err(Error::io(format!("fallocate [{offset:#x}, +{len:#x}) of {}", self.path.display()), err));
        }
        let size = self.current_size()?;
        core.set_size(size);
        Ok(size)
    }

    fn writable_or_refuse(&self) -> Result<()> {
        if self.writable { Ok(()) } else { Err(Error::ReadOnly) }
    }
}

/// The refusal to resize a block device, naming what was asked.
pub(crate) fn block_resize(path: &Path, asked: &str) -> Error {
    Error::Unsupported {
        what: format!("resizing block device {} ({asked})", path.display()),
        hint: "a block device's size is the device's; resize the device itself".into(),
    }
}

/// `ftruncate(file, len)`.
pub(crate) fn ftruncate(file: &File, len: u64, path: &Path) -> Result<()> {
    if len > MAX_LEN {
        return Err(Error::OutOfBounds { what: "file length", offset: 0, len, limit: MAX_LEN });
    }
    // SAFETY: ftruncate on an open descriptor; no memory is passed.
    let r = unsafe { libc::ftruncate(file.as_raw_fd(), len as libc::off_t) };
    if r < 0 {
        return Err(Error::last_os(format!("ftruncate {} to {len} bytes", path.display())));
    }
    Ok(())
}

pub(crate) fn block_size64(file: &File) -> std::io::Result<u64> {
    let mut size: u64 = 0;
    // SAFETY: BLKGETSIZE64 writes one u64 through the pointer, which is valid.
    let r = unsafe { libc::ioctl(file.as_raw_fd(), BLKGETSIZE64 as _, &mut size as *mut u64) };
    if r < 0 { Err(std::io::Error::last_os_error()) } else { Ok(size) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinio_core::conformance::CountingRegistrar;
    use pinio_core::{Capabilities, CompletionMode, Persistence, RegistrationSharing};

    fn core(size: u64) -> DeviceCore {
        let caps = Capabilities {
            backend: "test",
            mem_align: 1,
            register_align: 1,
            offset_align: 1,
            len_align: 1,
            max_transfer: u64::MAX,
            max_pinned_bytes: None,
            device_size: size,
            completion: CompletionMode::Synchronous,
            cpu_copies: true,
            pins_memory: false,
            max_queue_depth: 1,
            sharing: RegistrationSharing::Domain,
            persistence: Persistence::WriteBack,
            writable: true,
            short_reads_at_end: true,
            vectored: pinio_core::VectoredIo::Native,
            max_segments: 1024,
        };
        DeviceCore::new(CountingRegistrar::domain().0, caps)
    }

    /// The block-device rule of `set_len`, on a writable target whose kind
    /// says block device (the integration tests use a real block device,
    /// read-only, for every call when the machine has one).
    #[test]
    fn a_block_device_is_never_truncated() {
        let p = std::env::temp_dir().join(format!("pinio-file-blockrule-{}", std::process::id()));
        std::fs::write(&p, vec![0u8; 8192]).unwrap();
        let mut t = FileTarget::open(&p, false, true).unwrap();
        t.kind = TargetKind::Block;
        let c = core(8192);
        let e = t.set_len(4096, &c).unwrap_err();
        assert!(
            matches!(&e, Error::Unsupported { hint, .. } if hint == "a block device's size is the device's; resize the device itself"),
            "{e}"
        );
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 8192, "nothing was truncated");
        assert_eq!(c.size(), 8192);
        std::fs::remove_file(p).unwrap();
    }
}
