//! The recorder's cost per write: one 4 KiB or 64 KiB write (push, submit
//! and wait) on the cheapest path, the copy backend over a page-cache-hot
//! file, plain and through `record:` (`pinio::crash::RecordDevice`), side by
//! side in one run. The log goes to /dev/null so that a run of millions of
//! writes does not fill the disk: what is measured is the recorder's own
//! work (the copy of every written byte into the log's buffer, its CRC-32,
//! the lock, the tag table, the completion record), not the page-cache
//! copy of the log file, which costs about one more memcpy per byte.

use criterion::{Criterion, criterion_group, criterion_main};
use pinio::copy::{CopyDevice, CopyOptions};
use pinio::crash::RecordDevice;
use pinio::{Device, Op, Queue, Slice};
use pinio_benches::Scratch;
use std::hint::black_box;
use std::path::Path;

fn one_write(q: &mut dyn Queue, slot: &mut Option<Slice>, out: &mut Vec<pinio::Completion>) {
    let s = slot.take().expect("the slice is back");
    q.push(Op::write(s, black_box(8192), 7)).unwrap();
    q.wait(1, out).unwrap();
    *slot = Some(out.pop().unwrap().slice);
}

fn record(c: &mut Criterion) {
    for len in [4096usize, 65536] {
        let file = Scratch::new("record", 1 << 20);
        let plain: Box<dyn Device> = Box::new(CopyDevice::open(&file.path, CopyOptions::default()).unwrap());
        let inner: Box<dyn Device> = Box::new(CopyDevice::open(&file.path, CopyOptions::default()).unwrap());
        let recorded: Box<dyn Device> = Box::new(RecordDevice::new(inner, Path::new("/dev/null")).unwrap());
        let mut g = c.benchmark_group(format!("{} KiB write, page cache hot", len / 1024));
        for (name, dev) in [("copy", &plain), ("record:/dev/null:copy", &recorded)] {
            let region = dev.alloc(len).unwrap();
            let mut q = dev.queue(1).unwrap();
            let mut slot = Some(region.slice(0, len).unwrap());
            let mut out = Vec::with_capacity(1);
            g.bench_function(name, |b| b.iter(|| one_write(&mut *q, &mut slot, &mut out)));
        }
        g.finish();
    }
}

criterion_group!(benches, record);
criterion_main!(benches);
