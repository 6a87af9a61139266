//! Submit plus complete of one 4 KiB read on the cheapest path (the copy
//! backend over a page-cache-hot file), against the raw pread + memcpy it
//! performs: the cost of pinio's queue machinery per operation.

use criterion::{Criterion, criterion_group, criterion_main};
use pinio::copy::{CopyDevice, CopyOptions};
use pinio::{Device, Op};
use pinio_benches::Scratch;
use std::hint::black_box;
use std::os::fd::AsRawFd;

fn per_op(c: &mut Criterion) {
    let file = Scratch::new("per-op", 1 << 20);
    let dev = CopyDevice::open(&file.path, CopyOptions::default()).unwrap();
    let region = dev.alloc(4096).unwrap();
    let mut q = dev.queue(1).unwrap();
    let mut g = c.benchmark_group("4k read, page cache hot");
    let mut slot = Some(region.slice(0, 4096).unwrap());
    let mut out = Vec::with_capacity(1);
    g.bench_function("pinio copy: push + submit + poll", |b| {
        b.iter(|| {
            q.push(Op::read(slot.take().unwrap(), black_box(8192), 7)).unwrap();
            q.submit().unwrap();
            q.poll(&mut out).unwrap();
            slot = Some(out.pop().unwrap().slice);
        })
    });
    let f = std::fs::File::open(&file.path).unwrap();
    let mut bounce = vec![0u8; 4096];
    let mut dst = vec![0u8; 4096];
    g.bench_function("raw pread + memcpy", |b| {
        b.iter(|| {
            // SAFETY: `bounce` is valid for 4096 bytes of writes.
            let n = unsafe { libc::pread(f.as_raw_fd(), bounce.as_mut_ptr().cast(), 4096, black_box(8192)) };
            assert_eq!(n, 4096);
            dst.copy_from_slice(&bounce);
            black_box(&dst);
        })
    });
    g.finish();
}

criterion_group!(benches, per_op);
criterion_main!(benches);
