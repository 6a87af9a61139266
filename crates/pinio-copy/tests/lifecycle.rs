//! The file lifecycle through a copy device: created with a size, resized,
//! preallocated, refreshed; its queues follow the size.

use pinio_copy::{CopyDevice, CopyOptions, FileDevice};
use pinio_core::{Device, Error, Op, conformance};
use std::path::PathBuf;

fn path(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("copy-life-{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

#[test]
fn create_write_grow_and_write_past_the_old_end() {
    let p = path("grow");
    let dev =
        CopyDevice::open(&p, CopyOptions { create: Some(64 << 10), strict: true, ..CopyOptions::default() }).unwrap();
    assert!(dev.created());
    assert_eq!((dev.size(), dev.capabilities().device_size), (64 << 10, 64 << 10));
    let region = dev.alloc(8192).unwrap();
    let mut q = dev.queue(4).unwrap();
    let mut w = region.slice(0, 4096).unwrap();
    w.copy_from_slice(&conformance::pattern(5, 4096));
    // Past the end: refused until the file grows.
    let r = q.push(Op::write(w, 64 << 10, 1)).unwrap_err();
    assert!(matches!(r.error, Error::OutOfBounds { limit, .. } if limit == 64 << 10), "{}", r.error);
    assert_eq!(dev.set_len(128 << 10).unwrap(), 128 << 10);
    assert_eq!((dev.size(), dev.capabilities().device_size), (128 << 10, 64 << 10));
    let (n, w) = q.write_at(r.op.slice, 64 << 10).unwrap();
    assert_eq!(n, 4096);
    // Preallocate a further 1 MiB: the device grows to cover it.
    assert_eq!(dev.allocate(0, 1 << 20).unwrap(), 1 << 20);
    let (n, w) = q.write_at(w, (1 << 20) - 4096).unwrap();
    assert_eq!(n, 4096);
    // grow never shrinks; refresh sees a resize made elsewhere.
    assert_eq!(dev.grow(4096).unwrap(), 1 << 20);
    std::fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(2 << 20).unwrap();
    assert_eq!(dev.size(), 1 << 20);
    assert_eq!(dev.refresh_size().unwrap(), 2 << 20);
    let (n, _w) = q.write_at(w, (2 << 20) - 4096).unwrap();
    assert_eq!(n, 4096);
    q.flush(pinio_core::FlushMode::Data).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    assert_eq!(bytes.len(), 2 << 20);
    let data = conformance::pattern(5, 4096);
    for off in [64 << 10, (1 << 20) - 4096, (2 << 20) - 4096] {
        assert!(bytes[off..off + 4096] == data[..], "write at {off:#x}");
    }
    std::fs::remove_file(p).unwrap();
}

#[test]
fn shrinking_below_reads_in_flight_is_safe() {
    let p = path("shrink");
    let dev = CopyDevice::open(&p, CopyOptions { create: Some(4 << 20), ..CopyOptions::default() }).unwrap();
    assert!(!CopyDevice::open(&p, CopyOptions { create: Some(4096), ..CopyOptions::default() }).unwrap().created());
    let region = dev.alloc(4 << 20).unwrap();
    let mut q = dev.queue(16).unwrap();
    for i in 0..16u64 {
        q.push(Op::read(region.slice((i as usize) << 18, 1 << 18).unwrap(), i << 18, i)).unwrap();
    }
    q.submit().unwrap();
    dev.set_len(4096).unwrap();
    let mut out = Vec::new();
    while q.in_flight() > 0 {
        q.wait(1, &mut out).unwrap();
    }
    // Each read got the bytes up to the end the file had when it ran.
    assert_eq!(out.len(), 16);
    for c in &out {
        let n = *c.result.as_ref().unwrap();
        assert!(n <= 1 << 18);
    }
    drop(out);
    // New operations see the new size.
    let r = q.push(Op::read(region.slice(0, 4096).unwrap(), 4096, 0)).unwrap_err();
    assert!(matches!(r.error, Error::OutOfBounds { limit: 4096, .. }), "{}", r.error);
    drop(r);
    region.unregister().unwrap();
    std::fs::remove_file(p).unwrap();
}

#[test]
fn a_read_only_device_is_not_resized() {
    let p = path("ro");
    drop(CopyDevice::open(&p, CopyOptions { create: Some(8192), ..CopyOptions::default() }).unwrap());
    let dev = CopyDevice::open(&p, CopyOptions { writable: false, ..CopyOptions::default() }).unwrap();
    assert!(matches!(dev.set_len(1 << 20), Err(Error::ReadOnly)));
    assert!(matches!(dev.allocate(0, 1 << 20), Err(Error::ReadOnly)));
    let e = CopyDevice::open(&p, CopyOptions { writable: false, create: Some(1 << 20), ..CopyOptions::default() })
        .err()
        .unwrap();
    assert!(matches!(e, Error::Unsupported { .. }), "{e}");
    assert_eq!(std::fs::metadata(&p).unwrap().len(), 8192);
    std::fs::remove_file(p).unwrap();
}
