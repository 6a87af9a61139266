//! Statistics are exact as soon as `wait` returns, however many completions
//! one call reaps (the queue counts a batch in plain integers and folds it
//! into the device's atomic counters before handing the batch over).

mod common;

use common::Scratch;
use pinio_core::{Device, Op};
use pinio_uring::{UringDevice, UringOptions};

fn batch(direct: bool) {
    let f = Scratch::new(if direct { "stats-direct" } else { "stats-buffered" }, 1 << 20);
    let dev = UringDevice::open(&f.path, UringOptions { direct, ..UringOptions::default() }).unwrap();
    let region = dev.alloc(16 * 4096).unwrap();
    let mut q = dev.queue(16).unwrap();
    let before = dev.stats();
    let mut out = Vec::new();
    for round in 0..3u64 {
        for i in 0..16u64 {
            let s = region.slice(i as usize * 4096, 4096).unwrap();
            let off = (round * 16 + i) % 256 * 4096;
            let op = if i % 4 == 0 { Op::write(s, off, i) } else { Op::read(s, off, i) };
            q.push(op).unwrap();
        }
        q.wait(16, &mut out).unwrap();
        assert_eq!(out.len(), 16);
        let s = dev.stats().since(&before);
        let done = (round + 1) * 16;
        assert_eq!((s.ops, s.errors), (done, 0), "after round {round}: {s}");
        assert_eq!((s.bytes_read, s.bytes_written), (done * 3 / 4 * 4096, done / 4 * 4096), "{s}");
        assert_eq!(s.bytes_copied, if direct { 0 } else { done * 4096 }, "{s}");
        for c in out.drain(..) {
            assert_eq!(c.result.unwrap(), 4096);
        }
    }
}

#[test]
fn exact_after_each_wait_direct() {
    batch(true);
}

#[test]
fn exact_after_each_wait_buffered() {
    batch(false);
}
