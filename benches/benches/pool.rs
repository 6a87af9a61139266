//! The slice pool against a bare `Vec` free list, and `Region::slice` + drop
//! with 10 and with 100,000 live slices in the region (the lease table's
//! cost must not grow with the slices alive).

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use pinio::copy::CopyRegistrar;
use pinio::{Slice, SlicePool};
use std::hint::black_box;

fn pool(c: &mut Criterion) {
    let domain = CopyRegistrar::domain();
    let mut g = c.benchmark_group("pool");
    let pool = SlicePool::new(domain.alloc(1024 * 4096).unwrap(), 4096).unwrap();
    g.bench_function("pinio SlicePool take + give", |b| {
        b.iter(|| {
            let s = pool.take().unwrap();
            pool.give(black_box(s)).unwrap();
        })
    });
    let region = domain.alloc(1024 * 4096).unwrap();
    let mut free: Vec<Slice> = (0..1024).map(|i| region.slice(i * 4096, 4096).unwrap()).collect();
    g.bench_function("raw Vec free list pop + push", |b| {
        b.iter(|| {
            let s = free.pop().unwrap();
            free.push(black_box(s));
        })
    });
    g.finish();

    let mut g = c.benchmark_group("lease table");
    for live in [10usize, 100_000] {
        let region = domain.alloc((live + 1) * 64).unwrap();
        let _held: Vec<Slice> = (1..=live).map(|i| region.slice(i * 64, 64).unwrap()).collect();
        g.bench_with_input(BenchmarkId::new("pinio Region::slice + drop, live slices", live), &live, |b, _| {
            b.iter(|| drop(black_box(region.slice(black_box(0), 64).unwrap())))
        });
    }
    g.finish();
}

criterion_group!(benches, pool);
criterion_main!(benches);
