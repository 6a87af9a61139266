//! Setting the length, preallocating, growing and refreshing the size of a
//! target, and the device core following every change.

use pinio_core::conformance::CountingRegistrar;
use pinio_core::{Capabilities, CompletionMode, DeviceCore, DmaBuf, Error, Op, Persistence, RegistrationSharing};
use pinio_file::{FileOpen, FileTarget, TargetKind};
use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;

fn scratch(name: &str, len: u64) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("pinio-file-{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(len).unwrap();
    p
}

fn core_of(t: &FileTarget) -> DeviceCore {
    let caps = Capabilities {
        backend: "test",
        mem_align: 1,
        register_align: 1,
        offset_align: 1,
        len_align: 1,
        max_transfer: u64::MAX,
        max_pinned_bytes: None,
        device_size: t.size,
        completion: CompletionMode::Synchronous,
        cpu_copies: true,
        pins_memory: false,
        max_queue_depth: 4,
        sharing: RegistrationSharing::Domain,
        persistence: Persistence::WriteBack,
        writable: t.writable,
        short_reads_at_end: false,
        vectored: pinio_core::VectoredIo::Native,
        max_segments: 1024,
    };
    DeviceCore::new(CountingRegistrar::domain().0, caps)
}

/// Whether a write of 4096 bytes at `offset` is admitted by `core`.
fn admits_write_at(core: &DeviceCore, offset: u64) -> bool {
    let region = core.domain().register(DmaBuf::new(4096).unwrap()).unwrap();
    core.admit(Op::write(region.slice(0, 4096).unwrap(), offset, 0), 0, 4).is_ok()
}

#[test]
fn set_len_grow_and_allocate_move_the_bounds() {
    let p = scratch("life", 8192);
    let t = FileTarget::open_with(&p, &FileOpen::default()).unwrap();
    let core = core_of(&t);
    assert!(!admits_write_at(&core, 8192));

    assert_eq!(t.set_len(1 << 20, &core).unwrap(), 1 << 20);
    assert_eq!((core.size(), core.capabilities().device_size), (1 << 20, 8192), "capabilities keep the size at open");
    assert_eq!(std::fs::metadata(&p).unwrap().len(), 1 << 20);
    assert!(admits_write_at(&core, 8192) && admits_write_at(&core, (1 << 20) - 4096));
    assert!(!admits_write_at(&core, 1 << 20));

    // Shrinking moves the bound back.
    assert_eq!(t.set_len(4096, &core).unwrap(), 4096);
    assert!(admits_write_at(&core, 0) && !admits_write_at(&core, 4096));

    // grow never shrinks.
    assert_eq!(t.grow(2048, &core).unwrap(), 4096);
    assert_eq!(t.grow(65536, &core).unwrap(), 65536);
    assert_eq!(std::fs::metadata(&p).unwrap().len(), 65536);

    // allocate: blocks for the range, and the file grows to cover it.
    let blocks_before = std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(&p).unwrap());
    assert_eq!(t.allocate(0, 4 << 20, &core).unwrap(), 4 << 20);
    let m = std::fs::metadata(&p).unwrap();
    assert_eq!((m.len(), core.size()), (4 << 20, 4 << 20));
    assert!(std::os::unix::fs::MetadataExt::blocks(&m) * 512 >= 4 << 20 && blocks_before < 8192, "blocks allocated");
    // Inside the file: the size stays.
    assert_eq!(t.allocate(4096, 4096, &core).unwrap(), 4 << 20);
    let e = t.allocate(0, 0, &core).unwrap_err();
    assert!(matches!(e, Error::ZeroLength { .. }), "{e}");
    let e = t.allocate(u64::MAX - 1, 4096, &core).unwrap_err();
    assert!(matches!(e, Error::OutOfBounds { .. }), "{e}");
    std::fs::remove_file(&p).unwrap();
}

#[test]
fn refresh_size_sees_a_resize_from_elsewhere() {
    let p = scratch("refresh", 8192);
    let t = FileTarget::open_with(&p, &FileOpen::default()).unwrap();
    let core = core_of(&t);
    std::fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(3 << 20).unwrap();
    assert_eq!(core.size(), 8192, "not seen before a refresh");
    assert_eq!(t.refresh_size(&core).unwrap(), 3 << 20);
    assert_eq!(core.size(), 3 << 20);
    assert!(admits_write_at(&core, 2 << 20));
    std::fs::remove_file(&p).unwrap();
}

#[test]
fn a_read_only_target_is_not_resized() {
    let p = scratch("ro", 8192);
    let t = FileTarget::open(&p, false, false).unwrap();
    let core = core_of(&t);
    for e in [
        t.set_len(1 << 20, &core).unwrap_err(),
        t.grow(1 << 20, &core).unwrap_err(),
        t.allocate(0, 1 << 20, &core).unwrap_err(),
    ] {
        assert!(matches!(e, Error::ReadOnly), "{e}");
    }
    assert_eq!((std::fs::metadata(&p).unwrap().len(), core.size()), (8192, 8192));
    std::fs::remove_file(&p).unwrap();
}

/// A block device of this machine, opened read-only (nothing is written).
fn some_block_device() -> Option<FileTarget> {
    let mut names: Vec<_> = std::fs::read_dir("/sys/class/block").ok()?.flatten().map(|e| e.file_name()).collect();
    names.sort();
    names.into_iter().find_map(|n| {
        let p = PathBuf::from("/dev").join(n);
        let is_block = std::fs::metadata(&p).is_ok_and(|m| m.file_type().is_block_device());
        if !is_block {
            return None;
        }
        FileTarget::open(&p, false, false).ok()
    })
}

#[test]
fn a_block_device_refuses_resizing_with_the_reason() {
    let Some(t) = some_block_device() else {
        eprintln!("no readable block device on this machine; the rule is also checked by the unit test");
        return;
    };
    assert_eq!(t.kind, TargetKind::Block);
    let core = core_of(&t);
    let size = t.size;
    let is_resize_refusal = |e: &Error| matches!(e, Error::Unsupported { hint, .. } if hint == "a block device's size is the device's; resize the device itself");
    let e = t.set_len(size / 2, &core).unwrap_err();
    assert!(is_resize_refusal(&e) && e.to_string().contains(&t.path.display().to_string()), "{e}");
    let e = t.grow(size + 4096, &core).unwrap_err();
    assert!(is_resize_refusal(&e), "{e}");
    let e = t.allocate(size, 4096, &core).unwrap_err();
    assert!(is_resize_refusal(&e), "{e}");
    // What needs no resize is fine.
    assert_eq!(t.grow(size, &core).unwrap(), size);
    assert_eq!(t.refresh_size(&core).unwrap(), size);
    if size >= 4096 {
        assert_eq!(t.allocate(0, 4096, &core).unwrap(), size);
    }
    // create with a size beyond the device is refused at open.
    let e = FileTarget::open_with(&t.path, &FileOpen { create: Some(size + 1), ..FileOpen::default() }).unwrap_err();
    assert!(
        is_resize_refusal(&e) || e.raw_os_error() == Some(libc::EACCES) || e.raw_os_error() == Some(libc::EROFS),
        "{e}"
    );
}
