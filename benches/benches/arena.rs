//! Allocating a registered 64 KiB region: from the uring backend's
//! pre-registered arena, against mapping and registering a fresh buffer,
//! against the raw mmap + munmap of the same size.

use criterion::{Criterion, criterion_group, criterion_main};
use pinio::Device;
use pinio::uring::{UringDevice, UringOptions};
use pinio_benches::Scratch;
use std::hint::black_box;

const LEN: usize = 64 << 10;

fn arena(c: &mut Criterion) {
    let file = Scratch::new("arena", 1 << 20);
    let with_arena =
        UringDevice::open(&file.path, UringOptions { arena_bytes: 4 << 20, ..UringOptions::default() }).unwrap();
    let without = UringDevice::open(&file.path, UringOptions::default()).unwrap();
    let mut g = c.benchmark_group("alloc 64 KiB region");
    g.bench_function("pinio uring arena alloc + drop", |b| b.iter(|| drop(black_box(with_arena.alloc(LEN).unwrap()))));
    g.bench_function("pinio uring fresh buffer + register + drop", |b| {
        b.iter(|| drop(black_box(without.alloc(LEN).unwrap())))
    });
    g.bench_function("raw mmap + munmap", |b| {
        b.iter(|| {
            // SAFETY: an anonymous mapping, unmapped right away.
            unsafe {
                let p = libc::mmap(
                    std::ptr::null_mut(),
                    LEN,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                assert_ne!(p, libc::MAP_FAILED);
                libc::munmap(black_box(p), LEN);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, arena);
criterion_main!(benches);
