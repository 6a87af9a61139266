//! `UringQueue::wait_rearm`: completions looked at in place and their
//! slices moved again at other offsets, every check of the new offset
//! applied, nothing lost when the handler refuses to decide, drops, forgets
//! or panics.

mod common;

use common::Scratch;
use pinio_core::{Device, Error, Op, Queue};
use pinio_uring::{UringDevice, UringOptions, UringQueue};

const BLOCK: usize = 4096;
const FILE: usize = 64 * BLOCK;

fn setup(name: &str, direct: bool) -> (Scratch, Vec<u8>, UringDevice) {
    let f = Scratch::new(name, FILE);
    let data = std::fs::read(&f.path).unwrap();
    let dev = UringDevice::open(&f.path, UringOptions { direct, ..UringOptions::default() }).unwrap();
    (f, data, dev)
}

/// Pushes one read per block of `region` (4 blocks) at blocks 0..4.
fn prime(q: &mut UringQueue, region: &pinio_core::Region) {
    let ops = (0..4).map(|i| Op::read(region.slice(i * BLOCK, BLOCK).unwrap(), (i * BLOCK) as u64, i as u64));
    assert_eq!(q.push_batch(ops).unwrap(), 4);
}

/// Four slices read the whole file between them, each re-armed at the next
/// unread block; every block's bytes are checked in the slice that read
/// it, then the slices come out as completions. The statistics count every
/// read.
#[test]
fn rearmed_reads_walk_the_file() {
    for direct in [true, false] {
        let (_f, data, dev) = setup(&format!("rearm-walk-{direct}"), direct);
        let region = dev.alloc(4 * BLOCK).unwrap();
        let mut q = dev.uring_queue(4).unwrap();
        prime(&mut q, &region);
        let mut next = 4usize;
        let mut seen = [false; FILE / BLOCK];
        let mut out = Vec::new();
        while q.in_flight() > 0 {
            q.wait_rearm(1, |done| {
                assert_eq!(done.result().unwrap(), BLOCK);
                let block = done.dev_offset() as usize / BLOCK;
                assert_eq!(done.tag(), block as u64, "the tag given with the offset");
                assert!(!std::mem::replace(&mut seen[block], true), "block {block} read twice");
                assert!(done.slice()[..] == data[block * BLOCK..][..BLOCK], "block {block}: wrong bytes");
                if next < FILE / BLOCK {
                    done.rearm((next * BLOCK) as u64, next as u64).unwrap();
                    next += 1;
                } else {
                    out.push(done.into_completion());
                }
            })
            .unwrap();
        }
        assert!(seen.iter().all(|&s| s), "direct={direct}: every block read");
        assert_eq!(out.len(), 4);
        drop(out);
        let s = dev.stats();
        assert_eq!((s.ops, s.errors, s.bytes_read), ((FILE / BLOCK) as u64, 0, FILE as u64), "{s}");
        region.unregister().expect("every slice came back");
    }
}

/// A new offset past the end, or misaligned for O_DIRECT, is refused with
/// the error `push` gives; the operation comes back with its slice, out of
/// the queue.
#[test]
fn a_refused_rearm_hands_the_operation_back() {
    let (_f, _data, dev) = setup("rearm-refused", true);
    let region = dev.alloc(4 * BLOCK).unwrap();
    let mut q = dev.uring_queue(4).unwrap();
    prime(&mut q, &region);
    let mut refused = Vec::new();
    let mut calls = 0;
    while q.in_flight() > 0 {
        q.wait_rearm(1, |done| {
            calls += 1;
            let bad = if done.tag() % 2 == 0 { FILE as u64 } else { 100 };
            let slice_offset = done.slice().offset();
            let r = done.rearm(bad, 99).expect_err("must be refused");
            assert_eq!((r.op.dev_offset, r.op.tag, r.op.slice.offset()), (bad, 99, slice_offset));
            refused.push(r);
        })
        .unwrap();
    }
    assert_eq!(refused.len(), 4);
    for r in &refused {
        let want_bounds = r.op.dev_offset == FILE as u64;
        assert!(
            if want_bounds {
                matches!(r.error, Error::OutOfBounds { .. })
            } else {
                matches!(r.error, Error::Misaligned { what: "device offset", .. })
            },
            "{}",
            r.error
        );
    }
    drop(refused);
    region.unregister().expect("every refused slice came back");
}

/// A `Reaped` dropped or forgotten without a decision, or one whose
/// handler panics, is kept: the next `wait` hands its completion over, and
/// the queue still drops without waiting for anything.
#[test]
fn undecided_completions_are_kept_for_wait() {
    let (_f, _data, dev) = setup("rearm-kept", false);
    let region = dev.alloc(4 * BLOCK).unwrap();
    let mut q = dev.uring_queue(4).unwrap();
    prime(&mut q, &region);
    let mut handed = 0;
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        q.wait_rearm(4, |done| {
            handed += 1;
            match done.tag() {
                0 => drop(done),
                1 => std::mem::forget(done),
                2 => panic!("handler panics"),
                _ => drop(done),
            }
        })
    }));
    assert!(caught.is_err(), "the handler's panic reaches the caller");
    assert!(handed >= 1);
    let mut out = Vec::new();
    while q.in_flight() > 0 {
        let n = q.in_flight();
        q.wait(n, &mut out).unwrap();
    }
    let mut tags: Vec<u64> = out.iter().map(|c| c.tag).collect();
    tags.sort_unstable();
    assert_eq!(tags, [0, 1, 2, 3], "every completion came back once");
    assert!(out.iter().all(|c| c.result.is_ok()));
    drop(out);
    drop(q);
    region.unregister().expect("every slice came back");
}

/// Writes re-armed in place: the handler fills the slice's bytes with the
/// next block's data before re-arming it there; the file ends up holding
/// every block's data.
#[test]
fn rearmed_writes_carry_new_bytes() {
    let (f, _data, dev) = setup("rearm-write", true);
    let region = dev.alloc(4 * BLOCK).unwrap();
    let fill = |block: usize| (block as u8).wrapping_mul(7) ^ 0x5a;
    let mut q = dev.uring_queue(4).unwrap();
    let ops = (0..4).map(|i| {
        let mut s = region.slice(i * BLOCK, BLOCK).unwrap();
        s.fill(fill(i));
        Op::write(s, (i * BLOCK) as u64, i as u64)
    });
    assert_eq!(q.push_batch(ops).unwrap(), 4);
    let mut next = 4usize;
    while q.in_flight() > 0 {
        q.wait_rearm(1, |mut done| {
            assert_eq!(done.result().unwrap(), BLOCK);
            if next < FILE / BLOCK {
                done.bytes_mut().fill(fill(next));
                done.rearm((next * BLOCK) as u64, next as u64).unwrap();
                next += 1;
            } else {
                drop(done.into_completion());
            }
        })
        .unwrap();
    }
    drop(q);
    let written = std::fs::read(&f.path).unwrap();
    for (block, bytes) in written.chunks(BLOCK).enumerate() {
        assert!(bytes.iter().all(|&b| b == fill(block)), "block {block}");
    }
}
