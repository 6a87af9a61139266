//! `FileTarget::reopen`: the same inode, its own open file description, the
//! same access and O_DIRECT flag, even after the path is gone.

use pinio_file::FileTarget;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;

fn scratch(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("pinio-reopen-{name}-{}", std::process::id()));
    std::fs::write(&p, vec![7u8; 8192]).unwrap();
    p
}

fn status_flags(f: &impl AsRawFd) -> i32 {
    // SAFETY: F_GETFL on a descriptor the caller keeps open reads its flags and changes nothing.
    unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETFL) }
}

#[test]
fn reopen_is_the_same_file_with_an_offset_of_its_own() {
    let path = scratch("offset");
    let t = FileTarget::open(&path, false, true).unwrap();
    let mut again = t.reopen().unwrap();
    let (a, b) = (t.file.metadata().unwrap(), again.metadata().unwrap());
    assert_eq!((a.dev(), a.ino()), (b.dev(), b.ino()), "same inode");
    // Separate descriptions: moving one offset leaves the other where it was.
    (&t.file).seek(SeekFrom::Start(4096)).unwrap();
    assert_eq!(again.stream_position().unwrap(), 0);
    // Read-write like the first open, and it reaches the same bytes.
    again.write_all(b"hello").unwrap();
    let mut buf = [0u8; 5];
    (&t.file).seek(SeekFrom::Start(0)).unwrap();
    (&t.file).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello");
    assert_eq!(status_flags(&again) & libc::O_ACCMODE, libc::O_RDWR);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn reopen_keeps_read_only_and_works_after_unlink() {
    let path = scratch("ro");
    let t = FileTarget::open(&path, false, false).unwrap();
    std::fs::remove_file(&path).unwrap();
    let mut again = t.reopen().expect("an unlinked file is reopened through /proc/self/fd");
    assert_eq!(status_flags(&again) & libc::O_ACCMODE, libc::O_RDONLY);
    assert!(again.write_all(b"x").is_err(), "read-only stays read-only");
    let mut buf = [0u8; 4];
    again.read_exact(&mut buf).unwrap();
    assert_eq!(buf, [7; 4]);
}

#[test]
fn reopen_keeps_o_direct() {
    // /var/tmp: a real file system (tmpfs has no direct IO).
    let path = std::path::PathBuf::from(format!("/var/tmp/pinio-reopen-direct-{}", std::process::id()));
    std::fs::write(&path, vec![0u8; 8192]).unwrap();
    let t = match FileTarget::open(&path, true, true) {
        Ok(t) => t,
        Err(e) => {
            std::fs::remove_file(&path).unwrap();
            eprintln!("skipped: /var/tmp has no direct IO here ({e})");
            return;
        }
    };
    let again = t.reopen().unwrap();
    assert_ne!(status_flags(&again) & libc::O_DIRECT, 0);
    std::fs::remove_file(&path).unwrap();
}
