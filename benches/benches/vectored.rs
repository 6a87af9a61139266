//! One 64 KiB O_DIRECT read as 16 slices of 4 KiB, round trip (push, wait,
//! slices back), on each uring path: one `READV_FIXED` SQE (the slices are
//! pieces of the domain's arena), one `READ_FIXED` SQE per slice completing
//! as one operation (`vectored_fixed: false`), and 16 separate one-slice
//! operations; beside the raw `preadv` of the same memory on the same file.

use criterion::{Criterion, criterion_group, criterion_main};
use pinio::uring::{UringDevice, UringOptions};
use pinio::{Device, Op, Slice};
use pinio_benches::Scratch;
use std::hint::black_box;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

const N: usize = 16;
const SEG: usize = 4096;

fn open(file: &Scratch, vectored_fixed: bool) -> UringDevice {
    UringDevice::open(&file.path, UringOptions { arena_bytes: 1 << 20, vectored_fixed, ..UringOptions::default() })
        .unwrap()
}

/// 16 slices of 4 KiB, every other page of a 128 KiB arena region (so they
/// are not one contiguous range).
fn slices(dev: &UringDevice) -> (pinio::Region, Vec<Slice>) {
    let r = dev.alloc(2 * N * SEG).unwrap();
    let s = (0..N).map(|i| r.slice(2 * i * SEG, SEG).unwrap()).collect();
    (r, s)
}

fn vectored(c: &mut Criterion) {
    let file = Scratch::new("vectored", 1 << 20);
    let mut g = c.benchmark_group("64 KiB O_DIRECT read as 16 x 4 KiB slices");
    for (name, fixed) in [
        ("pinio uring: one READV_FIXED SQE", true),
        ("pinio uring: one READ_FIXED SQE per slice (vectored_fixed off)", false),
    ] {
        let dev = open(&file, fixed);
        let (_r, s) = slices(&dev);
        let mut q = dev.queue(N).unwrap();
        let mut slot = Some(s);
        g.bench_function(name, |b| {
            b.iter(|| {
                let c = q.run(Op::readv(slot.take().unwrap(), black_box(0), 0).unwrap()).unwrap();
                assert_eq!(*c.result.as_ref().unwrap(), N * SEG);
                slot = Some(c.into_slices());
            })
        });
    }
    let dev = open(&file, true);
    let (_r, s) = slices(&dev);
    let mut q = dev.queue(N).unwrap();
    let mut slot = Some(s);
    let mut out = Vec::with_capacity(N);
    g.bench_function("pinio uring: 16 one-slice READ_FIXED operations", |b| {
        b.iter(|| {
            for (i, s) in slot.take().unwrap().into_iter().enumerate() {
                q.push(Op::read(s, black_box((i * SEG) as u64), i as u64)).unwrap();
            }
            out.clear();
            while out.len() < N {
                q.wait(N - out.len(), &mut out).unwrap();
            }
            out.sort_by_key(|c| c.tag);
            slot = Some(out.drain(..).map(|c| c.slice).collect());
        })
    });
    let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(&file.path).unwrap();
    let mut s = slot.take().unwrap();
    let iov: Vec<libc::iovec> =
        s.iter_mut().map(|s| libc::iovec { iov_base: s.as_mut_ptr().cast(), iov_len: SEG }).collect();
    g.bench_function("raw preadv (O_DIRECT, same memory)", |b| {
        b.iter(|| {
            // SAFETY: every iovec names 4 KiB of a live slice nothing else touches meanwhile.
            let n = unsafe { libc::preadv(f.as_raw_fd(), iov.as_ptr(), N as i32, black_box(0)) };
            assert_eq!(n as usize, N * SEG);
        })
    });
    drop(iov);
    drop(s);
    g.finish();
}

criterion_group!(benches, vectored);
criterion_main!(benches);
