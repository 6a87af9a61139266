//! Registration plus unregistration of a buffer by size: pinio's uring
//! backend (sparse slot update behind `Device::register`) against the raw
//! `io_uring_register(IORING_REGISTER_BUFFERS_UPDATE)` calls it makes.
//!
//! First an interleaved phase (criterion runs one benchmark after the
//! other, so drift between them reads as a difference): for each size,
//! `PINIO_REG_ROUNDS` rounds (default 30) of 20 register+unregister pairs
//! of each contender, in an order rotated every round, on one populated
//! buffer per contender; it prints the median over rounds of the per-round
//! ratio pinio / raw. Three contenders: pinio; the raw calls on a ring with
//! a 4-slot table; the raw calls on a ring with a sparse table of
//! [`pinio::uring::SLOTS`] slots, as pinio's table ring has (so the table
//! size is not mistaken for pinio's cost). `PINIO_REG_ROUNDS=0` skips it.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use io_uring::IoUring;
use pinio::uring::{UringDevice, UringOptions};
use pinio::{Device, DmaBuf};
use pinio_benches::Scratch;
use std::hint::black_box;
use std::time::{Duration, Instant};

const SIZES: [usize; 4] = [4 << 10, 64 << 10, 1 << 20, 8 << 20];

/// One raw contender: a ring with a sparse table of `slots` and a buffer.
struct Raw {
    ring: IoUring,
    buf: DmaBuf,
}

impl Raw {
    fn new(slots: u32, size: usize) -> Raw {
        let ring = IoUring::new(8).expect("io_uring");
        ring.submitter().register_buffers_sparse(slots).expect("sparse table");
        Raw { ring, buf: DmaBuf::builder(size).populate(true).build().unwrap() }
    }

    fn pairs(&mut self, n: usize) -> Duration {
        let iov = [libc::iovec { iov_base: self.buf.as_mut_ptr().cast(), iov_len: self.buf.len() }];
        let empty = [libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }];
        let t = Instant::now();
        for _ in 0..n {
            // SAFETY: `buf` outlives the registration, removed again right after.
            unsafe { self.ring.submitter().register_buffers_update(0, &iov, None).unwrap() };
            // SAFETY: an empty iovec clears the slot.
            unsafe { self.ring.submitter().register_buffers_update(0, &empty, None).unwrap() };
        }
        t.elapsed()
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

/// The interleaved phase (see the module documentation).
fn interleaved(dev: &UringDevice) {
    let rounds: usize = std::env::var("PINIO_REG_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    if rounds == 0 {
        return;
    }
    const PAIRS: usize = 20;
    println!(
        "interleaved register+unregister, {rounds} rounds x {PAIRS} pairs per contender, median per-round figures:"
    );
    for size in SIZES {
        let mut buf = Some(DmaBuf::builder(size).populate(true).build().unwrap());
        let mut pinio = |n: usize| {
            let t = Instant::now();
            for _ in 0..n {
                let region = dev.register(buf.take().unwrap()).unwrap();
                buf = Some(black_box(region).unregister().unwrap());
            }
            t.elapsed()
        };
        let (mut small, mut table) = (Raw::new(4, size), Raw::new(pinio::uring::SLOTS, size));
        let (mut tp, mut ts, mut tt) = (Vec::new(), Vec::new(), Vec::new());
        pinio(PAIRS);
        small.pairs(PAIRS);
        table.pairs(PAIRS);
        for r in 0..rounds {
            let per = |d: Duration| d.as_secs_f64() * 1e6 / PAIRS as f64;
            for k in 0..3 {
                match (r + k) % 3 {
                    0 => tp.push(per(pinio(PAIRS))),
                    1 => ts.push(per(small.pairs(PAIRS))),
                    _ => tt.push(per(table.pairs(PAIRS))),
                }
            }
        }
        let ratio = |a: &[f64], b: &[f64]| median(a.iter().zip(b).map(|(x, y)| x / y).collect());
        println!(
            "  {:>8} B: pinio {:8.1} us, raw 4-slot table {:8.1} us, raw {}-slot table {:8.1} us; pinio / raw 4-slot {:.2}x, pinio / raw {}-slot {:.2}x",
            size,
            median(tp.clone()),
            median(ts.clone()),
            pinio::uring::SLOTS,
            median(tt.clone()),
            ratio(&tp, &ts),
            pinio::uring::SLOTS,
            ratio(&tp, &tt)
        );
    }
}

fn registration(c: &mut Criterion) {
    let file = Scratch::new("registration", 1 << 20);
    let dev = UringDevice::open(&file.path, UringOptions::default()).expect("open uring device");
    interleaved(&dev);
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
