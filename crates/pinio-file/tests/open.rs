//! Opening and creating targets.

use pinio_core::Error;
use pinio_file::{FileOpen, FileTarget, TargetKind};
use std::path::{Path, PathBuf};

fn scratch(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("pinio-file-{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

#[test]
fn regular_file_size_and_kind() {
    let p = scratch("kind");
    std::fs::write(&p, vec![1u8; 12345]).unwrap();
    let t = FileTarget::open(&p, false, false).unwrap();
    assert_eq!((t.kind, t.size, t.dio, t.created, t.writable), (TargetKind::File, 12345, None, false, false));
    std::fs::remove_file(&p).unwrap();
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

#[test]
fn create_makes_a_missing_file_of_the_size_asked() {
    let p = scratch("create");
    let t = FileTarget::open_with(&p, &FileOpen { create: Some(1 << 20), ..FileOpen::default() }).unwrap();
    assert!(t.created);
    assert_eq!((t.size, std::fs::metadata(&p).unwrap().len()), (1 << 20, 1 << 20));
    drop(t);
    // Existing and larger: left as it is (never shrunk), not "created".
    let t = FileTarget::open_with(&p, &FileOpen { create: Some(4096), ..FileOpen::default() }).unwrap();
    assert_eq!((t.created, t.size), (false, 1 << 20));
    drop(t);
    // Existing and shorter: grown, with the old bytes kept.
    std::fs::write(&p, b"hello").unwrap();
    let t = FileTarget::open_with(&p, &FileOpen { create: Some(8192), direct: true, ..FileOpen::default() }).unwrap();
    assert_eq!((t.created, t.size, t.direct), (false, 8192, true));
    let bytes = std::fs::read(&p).unwrap();
    assert_eq!((&bytes[..5], bytes.len()), (&b"hello"[..], 8192));
    assert!(bytes[5..].iter().all(|&b| b == 0));
    drop(t);
    // Some(0): create only.
    std::fs::remove_file(&p).unwrap();
    let t = FileTarget::open_with(&p, &FileOpen { create: Some(0), ..FileOpen::default() }).unwrap();
    assert_eq!((t.created, t.size), (true, 0));
    std::fs::remove_file(&p).unwrap();
}

#[test]
fn create_needs_a_writable_open_and_an_existing_directory() {
    let p = scratch("create-ro");
    let e = FileTarget::open_with(&p, &FileOpen { create: Some(4096), writable: false, ..FileOpen::default() })
        .unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }) && e.to_string().contains("read-only"), "{e}");
    assert!(!p.exists(), "nothing was created");
    let e =
        FileTarget::open_with(Path::new("/nonexistent/dir/f"), &FileOpen { create: Some(1), ..FileOpen::default() })
            .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "{e}");
}

#[test]
fn without_create_a_missing_file_is_not_made() {
    let p = scratch("nocreate");
    let e = FileTarget::open_with(&p, &FileOpen::default()).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    assert!(!p.exists());
}

#[test]
fn dio_alignment_is_known_without_o_direct() {
    let p = scratch("dio");
    std::fs::write(&p, vec![0u8; 4096]).unwrap();
    let buffered = FileTarget::open(&p, false, false).unwrap();
    let direct =
        FileTarget::open(&p, true, false).expect("the cargo target dir must be on a file system with O_DIRECT");
    assert_eq!(buffered.dio, None);
    assert_eq!(buffered.dio_align().unwrap(), direct.dio.unwrap());
    std::fs::remove_file(&p).unwrap();
}
