//! Vectored operations on the uring backend, on every path it has: one
//! `READV_FIXED`/`WRITEV_FIXED` SQE (slices of one registered buffer: arena
//! pieces), one SQE per slice (slices of several registrations, or the
//! fallback forced with `vectored_fixed: false`), one plain `READV`/`WRITEV`
//! SQE (no fixed buffers), buffered and O_DIRECT.

mod common;

use common::Scratch;
use pinio_core::conformance;
use pinio_core::{Device, Op, Queue, VectoredIo};
use pinio_uring::{UringDevice, UringOptions};

const FILE: usize = 1 << 20;

fn open(file: &Scratch, opts: UringOptions) -> UringDevice {
    UringDevice::open(&file.path, opts).unwrap_or_else(|e| panic!("open {}: {e}", file.path.display()))
}

/// The host kernel (6.18) has the fixed vectored opcodes; the capabilities
/// say so, and say `Emulated` when they are turned off.
#[test]
fn capabilities_follow_the_kernel_and_the_option() {
    let f = Scratch::new("vec-caps", FILE);
    let dev = open(&f, UringOptions::default());
    assert_eq!(
        dev.capabilities().vectored,
        VectoredIo::Native,
        "Linux 6.15+ has READV_FIXED: {:?}",
        dev.capabilities()
    );
    assert_eq!(dev.capabilities().max_segments, 1024);
    let dev = open(&f, UringOptions { vectored_fixed: false, ..UringOptions::default() });
    assert_eq!(dev.capabilities().vectored, VectoredIo::Emulated);
}

#[test]
fn native_from_the_arena_direct() {
    let f = Scratch::new("vec-arena", FILE);
    let dev = open(&f, UringOptions { arena_bytes: 1 << 20, ..UringOptions::default() });
    conformance::vectored(&dev).unwrap();
    let s = dev.stats();
    assert_eq!((s.bytes_copied, s.unregistered_fallbacks), (0, 0), "{s}");
}

#[test]
fn regions_of_several_registrations_direct_and_buffered() {
    let f = Scratch::new("vec-split", FILE);
    for direct in [true, false] {
        let dev = open(&f, UringOptions { direct, ..UringOptions::default() });
        conformance::vectored(&dev).unwrap_or_else(|e| panic!("direct={direct}: {e}"));
    }
}

#[test]
fn forced_fallback_one_sqe_per_slice() {
    let f = Scratch::new("vec-forced", FILE);
    for arena_bytes in [0, 1 << 20] {
        let dev = open(&f, UringOptions { vectored_fixed: false, arena_bytes, ..UringOptions::default() });
        conformance::vectored(&dev).unwrap_or_else(|e| panic!("arena_bytes={arena_bytes}: {e}"));
    }
}

#[test]
fn plain_readv_without_fixed_buffers() {
    let f = Scratch::new("vec-plain", FILE);
    let dev = open(&f, UringOptions { fixed_buffers: false, ..UringOptions::default() });
    assert_eq!(dev.capabilities().vectored, VectoredIo::Native);
    conformance::vectored(&dev).unwrap();
}

/// Many vectored and one-slice operations in flight at once, mixed, on a
/// small ring (more SQEs than the submission queue holds: the split path
/// submits in rounds), each landing where it should.
#[test]
fn many_in_flight_on_a_small_ring() {
    let f = Scratch::new("vec-many", FILE);
    for vectored_fixed in [true, false] {
        let dev = open(&f, UringOptions { ring_entries: 8, vectored_fixed, ..UringOptions::default() });
        let a = dev.alloc(64 * 4096).unwrap();
        let other = dev.alloc(64 * 4096).unwrap();
        let mut q = dev.queue(8).unwrap();
        let data = conformance::pattern(9, 64 * 4096 * 2);
        // 16 writes of 8 pages each: 4 from each region, alternating, so
        // every one spans two registrations.
        let mut pushed = 0;
        let mut out = Vec::new();
        for i in 0..16usize {
            let mut slices = Vec::new();
            for j in 0..8usize {
                let r = if j % 2 == 0 { &a } else { &other };
                let k = i * 4 + j / 2;
                let mut s = r.slice(k * 4096, 4096).unwrap();
                let at = (i * 8 + j) * 4096;
                s.copy_from_slice(&data[at..at + 4096]);
                slices.push(s);
            }
            let op = Op::writev(slices, (i * 8 * 4096) as u64, i as u64).unwrap();
            let mut op = Some(op);
            while let Some(o) = op.take() {
                match q.push(o) {
                    Ok(()) => pushed += 1,
                    Err(r) if matches!(r.error, pinio_core::Error::QueueFull { .. }) => {
                        op = Some(r.op);
                        q.wait(1, &mut out).unwrap();
                    }
                    Err(r) => panic!("push {i}: {}", r.error),
                }
            }
        }
        while out.len() < pushed {
            q.wait(pushed - out.len(), &mut out).unwrap();
        }
        for c in out.drain(..) {
            assert_eq!(*c.result.as_ref().unwrap(), 8 * 4096, "write {}", c.tag);
            assert_eq!(c.rest.len(), 7);
        }
        let back = dev.alloc(128 * 4096).unwrap();
        let (n, s) = q.read_at(back.slice_all().unwrap(), 0).unwrap();
        assert_eq!(n, 128 * 4096);
        assert!(s[..] == data[..], "vectored_fixed={vectored_fixed}: the bytes landed where they belong");
    }
}

#[test]
fn async_vectored_futures_and_flush_on_every_path() {
    let f = Scratch::new("vec-async", 8 << 20);
    for opts in [
        UringOptions::default(),
        UringOptions { arena_bytes: 4 << 20, ..UringOptions::default() },
        UringOptions { vectored_fixed: false, ..UringOptions::default() },
        UringOptions { direct: false, ..UringOptions::default() },
    ] {
        let dev = open(&f, opts.clone());
        let mid_flight = conformance::async_vectored_and_flush(&dev, 0).unwrap_or_else(|e| panic!("{opts:?}: {e}"));
        // An O_DIRECT read waits for the disk. A buffered one of cached pages
        // completes inline at submission (it never is in flight), or goes to
        // io-wq when it would block: either may happen.
        if opts.direct {
            assert_eq!(mid_flight, conformance::MidFlight::Checked, "{opts:?}");
        } else {
            eprintln!("buffered: {mid_flight:?}");
        }
    }
}

/// The non-blocking flush: `start_flush` submits the FSYNC and returns,
/// `poll_flush` reports it; a second start while one runs is refused; a
/// blocking flush meanwhile waits for the started one first; the writes
/// pushed before are complete once it is done.
#[test]
fn started_flush_runs_while_the_caller_goes_on() {
    use pinio_core::{FlushMode, FlushProgress};
    let f = Scratch::new("started-flush", FILE);
    let dev = open(&f, UringOptions::default());
    let r = dev.alloc(4 * 4096).unwrap();
    let mut q = dev.queue(8).unwrap();
    for i in 0..4 {
        q.push(Op::write(r.slice(i * 4096, 4096).unwrap(), (i * 4096) as u64, i as u64)).unwrap();
    }
    let mut progress = q.start_flush(FlushMode::Data).unwrap();
    if progress == FlushProgress::Running {
        let e = q.start_flush(FlushMode::Data).expect_err("one started flush at a time");
        assert!(matches!(e, pinio_core::Error::Unsupported { .. }), "{e}");
    }
    let mut polls = 0u64;
    while progress == FlushProgress::Running {
        progress = q.poll_flush().unwrap();
        polls += 1;
        assert!(polls < 10_000_000, "the FSYNC never completed");
    }
    let mut out = Vec::new();
    q.poll(&mut out).unwrap();
    assert_eq!(out.len(), 4, "the writes pushed before the flush completed before it");
    assert!(out.iter().all(|c| c.result.is_ok()));
    // Started, then a blocking flush: it waits for the started one.
    let _ = q.start_flush(FlushMode::All).unwrap();
    q.flush(FlushMode::Data).unwrap();
    assert_eq!(q.poll_flush().unwrap(), FlushProgress::Done, "nothing runs after the blocking flush");
    assert_eq!(q.in_flight(), 0);
}

/// A vectored operation in the middle of a `push_batch` takes the slow path
/// and the batch goes on after it: written through the concrete queue's
/// batch, read back through `dyn Queue`'s, every byte where it belongs.
#[test]
fn a_batch_mixes_vectored_and_one_slice_operations() {
    let f = Scratch::new("vec-batch", FILE);
    let dev = open(&f, UringOptions::default());
    let src = dev.alloc(4 * 4096).unwrap();
    let mut slices: Vec<_> = (0..4).map(|i| src.slice(i * 4096, 4096).unwrap()).collect();
    for (i, s) in slices.iter_mut().enumerate() {
        s.fill(0xa0 + i as u8);
    }
    let mut s = slices.into_iter();
    let (a, b, c, d) = (s.next().unwrap(), s.next().unwrap(), s.next().unwrap(), s.next().unwrap());
    let writes = vec![Op::write(a, 0, 0), Op::writev(vec![b, c], 4096, 1).unwrap(), Op::write(d, 3 * 4096, 2)];
    let mut q = dev.uring_queue(4).unwrap();
    assert_eq!(q.push_batch(writes).unwrap(), 3);
    let mut out = Vec::new();
    while q.in_flight() > 0 {
        let n = q.in_flight();
        q.wait(n, &mut out).unwrap();
    }
    assert!(out.iter().all(|c| c.result.is_ok()), "{out:?}");
    assert_eq!(out.iter().map(|c| c.segments().count()).sum::<usize>(), 4);
    drop(out);

    let dst = dev.alloc(4 * 4096).unwrap();
    let mut s = (0..4).map(|i| dst.slice(i * 4096, 4096).unwrap());
    let (a, b, c, d) = (s.next().unwrap(), s.next().unwrap(), s.next().unwrap(), s.next().unwrap());
    let reads = vec![Op::read(a, 0, 0), Op::readv(vec![b, c], 4096, 1).unwrap(), Op::read(d, 3 * 4096, 2)];
    let mut boxed = dev.queue(4).unwrap();
    assert_eq!(boxed.push_batch(&mut reads.into_iter()).unwrap(), 3);
    let mut out = Vec::new();
    while boxed.in_flight() > 0 {
        let n = boxed.in_flight();
        boxed.wait(n, &mut out).unwrap();
    }
    let mut back: Vec<_> = out.into_iter().flat_map(|c| c.into_slices()).collect();
    back.sort_by_key(|s| s.offset());
    assert_eq!(back.len(), 4);
    for (i, s) in back.iter().enumerate() {
        assert!(s.iter().all(|&x| x == 0xa0 + i as u8), "block {i} read back wrong");
    }
}
