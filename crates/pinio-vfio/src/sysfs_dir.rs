//! Listing a sysfs directory without a page fault inside the kernel's readdir.
//!
//! `kernfs_fop_readdir` holds `kernfs_rwsem` while it copies entries to the
//! caller's buffer; a fault on that buffer takes `mmap_lock` under it. vfio-pci
//! takes `kernfs_rwsem` under its `memory_lock` when it enables MSI (the
//! sysfs `msi_irqs` group) and `memory_lock` under `mmap_lock` on a fault on a
//! BAR mapping: a cycle lockdep reports, and a possible deadlock, in any
//! process that lists sysfs while VFIO is in use (docs/reliability.md, "What
//! the soak found"). `std::fs::read_dir` hands the kernel a freshly allocated
//! buffer, whose pages fault on first touch; here every page of the buffer is
//! written just before each `getdents64`, so the kernel's copy finds them
//! present and takes no fault.

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

/// Bytes asked per `getdents64` (a PCI bus directory of a few hundred
/// functions fits in one or two calls).
const BUF: usize = 32 << 10;

/// The names in `dir`, without `.` and `..`, in the kernel's order.
pub(crate) fn names(dir: &Path) -> std::io::Result<Vec<OsString>> {
    let path = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    // SAFETY: `path` is a NUL-terminated string that lives through the call; the result is checked.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut buf = vec![0u8; BUF];
    let mut out = Vec::new();
    loop {
        // Written, so that every page is present and writable when the kernel copies into it.
        buf.fill(0);
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call and `fd` is
        // an open directory; the kernel writes at most that many bytes and returns how many.
        let n = unsafe { libc::syscall(libc::SYS_getdents64, fd.as_raw_fd(), buf.as_mut_ptr(), buf.len()) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if n == 0 {
            return Ok(out);
        }
        parse(&buf[..n as usize], &mut out)?;
    }
}

/// Appends the names of the `linux_dirent64` records in `records`
/// (`d_ino` u64, `d_off` i64, `d_reclen` u16, `d_type` u8, then the name,
/// NUL-terminated).
fn parse(mut records: &[u8], out: &mut Vec<OsString>) -> std::io::Result<()> {
    const NAME: usize = 19;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "getdents64 returned a malformed record");
    while !records.is_empty() {
        let reclen = records.get(16..18).map(|b| u16::from_ne_bytes([b[0], b[1]]) as usize).ok_or_else(bad)?;
        let rec = records.get(..reclen).filter(|_| reclen > NAME).ok_or_else(bad)?;
        let name = &rec[NAME..];
        let name = &name[..name.iter().position(|&c| c == 0).ok_or_else(bad)?];
        if name != b"." && name != b".." {
            out.push(OsString::from_vec(name.to_vec()));
        }
        records = &records[reclen..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_what_read_dir_lists() {
        let dir = std::env::temp_dir().join(format!("pinio-sysfs-dir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let want: Vec<String> = (0..1500).map(|i| format!("0000:00:{i:04x}.0")).collect();
        for n in &want {
            std::fs::write(dir.join(n), b"").unwrap();
        }
        let mut got: Vec<String> = names(&dir).unwrap().into_iter().map(|n| n.into_string().unwrap()).collect();
        got.sort();
        assert_eq!(got, want, "1500 names take more than one getdents64 call");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(names(&dir).is_err(), "a missing directory is an error");
    }

    #[test]
    fn malformed_records_are_errors_not_panics() {
        let mut out = Vec::new();
        assert!(parse(&[0u8; 10], &mut out).is_err());
        let mut rec = vec![0u8; 24];
        rec[16..18].copy_from_slice(&24u16.to_ne_bytes());
        rec[19..23].copy_from_slice(b"abcd"); // no NUL before the end
        rec[23] = b'e';
        assert!(parse(&rec, &mut out).is_err());
        rec[23] = 0;
        parse(&rec, &mut out).unwrap();
        assert_eq!(out, [OsString::from("abcd")]);
    }
}
