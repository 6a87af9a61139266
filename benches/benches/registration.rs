//! Registration plus unregistration of a buffer by size: pinio's uring
//! backend (sparse slot update behind `Device::register`) against the raw
//! `io_uring_register(IORING_REGISTER_BUFFERS_UPDATE)` calls it makes.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use io_uring::IoUring;
use pinio::uring::{UringDevice, UringOptions};
use pinio::{Device, DmaBuf};
use pinio_benches::Scratch;
use std::hint::black_box;

const SIZES: [usize; 4] = [4 << 10, 64 << 10, 1 << 20, 8 << 20];

fn registration(c: &mut Criterion) {
    let file = Scratch::new("registration", 1 << 20);
    let dev = UringDevice::open(&file.path, UringOptions::default()).expect("open uring device");
    let ring = IoUring::new(8).expect("io_uring");
    ring.submitter().register_buffers_sparse(4).expect("sparse table");
    let mut g = c.benchmark_group("register+unregister");
    for size in SIZES {
        g.bench_with_input(BenchmarkId::new("pinio uring", size), &size, |b, &size| {
            let mut buf = Some(DmaBuf::builder(size).populate(true).build().unwrap());
            b.iter(|| {
                let region = dev.register(buf.take().unwrap()).unwrap();
                buf = Some(black_box(region).unregister().unwrap());
            });
        });
        g.bench_with_input(BenchmarkId::new("raw io_uring", size), &size, |b, &size| {
            let mut buf = DmaBuf::builder(size).populate(true).build().unwrap();
            let iov = [libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() }];
            let empty = [libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }];
            b.iter(|| {
                // SAFETY: `buf` outlives the registration, which is removed
                // again before the next iteration and before `buf` drops.
                unsafe { ring.submitter().register_buffers_update(0, &iov, None).unwrap() };
                // SAFETY: an empty iovec clears the slot.
                unsafe { ring.submitter().register_buffers_update(0, &empty, None).unwrap() };
            });
        });
    }
    g.finish();
}

criterion_group!(benches, registration);
criterion_main!(benches);
