//! Taking and releasing a slice (the lease table) and validating an
//! operation against the device's capabilities, against the bare arithmetic.

use criterion::{Criterion, criterion_group, criterion_main};
use pinio::copy::{CopyDevice, CopyOptions};
use pinio::{Device, Op};
use pinio_benches::Scratch;
use std::hint::black_box;

fn slices(c: &mut Criterion) {
    let file = Scratch::new("slices", 1 << 20);
    let dev = CopyDevice::open(&file.path, CopyOptions::default()).unwrap();
    let region = dev.alloc(1 << 20).unwrap();
    // Live neighbours, so the lease table is not trivially empty.
    let _held: Vec<_> = (0..8).map(|i| region.slice((i + 1) * 65536, 4096).unwrap()).collect();
    let mut g = c.benchmark_group("slice");
    g.bench_function("pinio Region::slice + drop", |b| {
        b.iter(|| drop(black_box(region.slice(black_box(0), 4096).unwrap())))
    });
    g.bench_function("raw bounds check", |b| {
        b.iter(|| {
            let (off, len, size) = (black_box(0usize), black_box(4096usize), black_box(region.len()));
            black_box(off.checked_add(len).is_some_and(|e| e <= size))
        })
    });
    let caps = dev.capabilities().clone();
    let mut op = Some(Op::read(region.slice(0, 4096).unwrap(), 8192, 1));
    g.bench_function("pinio Capabilities::check", |b| {
        b.iter(|| {
            let o = op.take().unwrap();
            black_box(caps.check(dev.domain().id(), &o)).unwrap();
            op = Some(o);
        })
    });
    g.bench_function("raw alignment + bounds arithmetic", |b| {
        b.iter(|| {
            let (off, len, size, align) =
                (black_box(8192u64), black_box(4096u64), black_box(1u64 << 20), black_box(512u64));
            black_box(off % align == 0 && len % align == 0 && off.checked_add(len).is_some_and(|e| e <= size))
        })
    });
    g.finish();
}

criterion_group!(benches, slices);
criterion_main!(benches);
