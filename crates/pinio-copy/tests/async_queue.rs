//! The runtime-agnostic async layer over the copy queue: many tasks on many
//! threads sharing one `AsyncQueue`, each slice coming back with its bytes.

use pinio_copy::{CopyDevice, CopyOptions};
use pinio_core::aio::AsyncQueue;
use pinio_core::conformance::{self, block_on};
use pinio_core::{Device, Error};

#[test]
fn tasks_on_threads_share_one_async_queue() {
    let p = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("copy-async-{}", std::process::id()));
    std::fs::write(&p, vec![0u8; 1 << 20]).unwrap();
    let dev = CopyDevice::open(&p, CopyOptions::default()).unwrap();
    let q = AsyncQueue::new(dev.queue(4).unwrap()).unwrap();
    let region = dev.alloc(1 << 20).unwrap();
    std::thread::scope(|s| {
        for t in 0..8usize {
            let (q, region) = (q.clone(), region.clone());
            s.spawn(move || {
                for round in 0..50usize {
                    let off = (t * 64 + round % 64) * 2048 % (1 << 20);
                    let mut w = region.slice(off, 512).unwrap();
                    let data = conformance::pattern((t * 1000 + round) as u64, 512);
                    w.copy_from_slice(&data);
                    let (n, w) = block_on(q.write_at(w, off as u64)).unwrap();
                    assert_eq!(n, 512);
                    drop(w);
                    let r = region.slice(off, 512).unwrap();
                    let (_, r) = block_on(q.read_at(r, off as u64)).unwrap();
                    assert_eq!(&r[..], &data[..]);
                }
            });
        }
    });
    assert_eq!(q.in_flight(), 0);
    // A refused operation resolves at once to its typed error, slice handed back.
    let s = region.slice(0, 4096).unwrap();
    let e = block_on(q.read_at(s, 1 << 20)).unwrap_err();
    assert!(matches!(e.error, Error::OutOfBounds { .. }) && e.slice.is_some(), "{}", e.error);
    std::fs::remove_file(p).unwrap();
}
