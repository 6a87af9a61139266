//! The file lifecycle through a uring device: created with a size,
//! resized, preallocated, refreshed; its queues (O_DIRECT, fixed buffers)
//! follow the size.

mod common;

use common::dio_dir;
use pinio_core::{Device, Error, FlushMode, Op, conformance};
use pinio_uring::{FileDevice, UringDevice, UringOptions};

#[test]
fn create_resize_and_write_past_the_old_end() {
    let p = dio_dir().join(format!("pinio-uring-life-{}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    let dev = UringDevice::open(&p, UringOptions { create: Some(64 << 10), ..UringOptions::default() }).unwrap();
    assert!(dev.created());
    assert_eq!((dev.size(), dev.capabilities().device_size), (64 << 10, 64 << 10));
    let region = dev.alloc(4096).unwrap();
    let mut q = dev.queue(8).unwrap();
    let mut w = region.slice(0, 4096).unwrap();
    w.copy_from_slice(&conformance::pattern(11, 4096));
    let r = q.push(Op::write(w, 64 << 10, 0)).unwrap_err();
    assert!(matches!(r.error, Error::OutOfBounds { limit, .. } if limit == 64 << 10), "{}", r.error);
    assert_eq!(dev.set_len(1 << 20).unwrap(), 1 << 20);
    let (n, w) = q.write_at(r.op.slice, 64 << 10).unwrap();
    assert_eq!(n, 4096);
    assert_eq!(dev.allocate(1 << 20, 1 << 20).unwrap(), 2 << 20);
    let (n, w) = q.write_at(w, (2 << 20) - 4096).unwrap();
    assert_eq!(n, 4096);
    assert_eq!(dev.grow(4096).unwrap(), 2 << 20);
    std::fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(3 << 20).unwrap();
    assert_eq!(dev.refresh_size().unwrap(), 3 << 20);
    let (n, w) = q.write_at(w, (3 << 20) - 4096).unwrap();
    assert_eq!(n, 4096);
    q.flush(FlushMode::Data).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    assert_eq!(bytes.len(), 3 << 20);
    for off in [64 << 10, (2 << 20) - 4096, (3 << 20) - 4096] {
        assert!(bytes[off..off + 4096] == conformance::pattern(11, 4096)[..], "write at {off:#x}");
    }
    // Shrinking: new operations see the new end.
    assert_eq!(dev.set_len(8192).unwrap(), 8192);
    let r = q.push(Op::read(w, 8192, 0)).unwrap_err();
    assert!(matches!(r.error, Error::OutOfBounds { limit: 8192, .. }), "{}", r.error);
    // Reopening with a smaller create size neither shrinks nor "creates".
    let again = UringDevice::open(&p, UringOptions { create: Some(4096), ..UringOptions::default() }).unwrap();
    assert_eq!((again.created(), again.size()), (false, 8192));
    std::fs::remove_file(p).unwrap();
}
