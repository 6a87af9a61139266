//! The IO path allocates nothing per operation: `Queue::run` (and so
//! `read_at`/`write_at`), a push/submit/wait loop, a `push_batch`/wait
//! loop on the concrete queue and through `dyn Queue`, and a `wait_rearm`
//! loop, counted by a global
//! allocator that tallies the allocations of the calling thread.

mod common;

use common::Scratch;
use pinio_core::{Device, Op, Queue};
use pinio_uring::{UringDevice, UringOptions};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; the
// thread-local counter is a const-initialised Cell, which allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

#[test]
fn run_and_the_queue_loop_allocate_nothing_per_operation() {
    let f = Scratch::new("no-alloc", 4 << 20);
    for direct in [true, false] {
        let dev = UringDevice::open(&f.path, UringOptions { direct, ..UringOptions::default() }).unwrap();
        let region = dev.alloc(8 * 4096).unwrap();
        let mut q = dev.queue(8).unwrap();
        // run(): warm up once, then count.
        let mut s = region.slice(0, 4096).unwrap();
        (_, s) = q.read_at(s, 0).unwrap();
        let before = allocs();
        for i in 0..200u64 {
            (_, s) = q.read_at(s, (i % 64) * 4096).unwrap();
        }
        assert_eq!(allocs() - before, 0, "direct={direct}: Queue::run allocated");
        drop(s);
        // push/submit/wait with a reused completion vector.
        let mut out = Vec::with_capacity(8);
        for i in 0..8 {
            q.push(Op::read(region.slice(i * 4096, 4096).unwrap(), 0, i as u64)).unwrap();
        }
        let before = allocs();
        for round in 0..50u64 {
            out.clear();
            q.wait(1, &mut out).unwrap();
            for c in out.drain(..) {
                assert_eq!(*c.result.as_ref().unwrap(), 4096);
                q.push(Op::read(c.slice, (round % 64) * 4096, c.tag)).unwrap();
            }
            q.submit().unwrap();
        }
        assert_eq!(allocs() - before, 0, "direct={direct}: the push/wait loop allocated");
        while q.in_flight() > 0 {
            out.clear();
            q.wait(q.in_flight(), &mut out).unwrap();
        }
    }
}

#[test]
fn the_batch_loop_allocates_nothing_per_operation() {
    let f = Scratch::new("no-alloc-batch", 4 << 20);
    for direct in [true, false] {
        let dev = UringDevice::open(&f.path, UringOptions { direct, ..UringOptions::default() }).unwrap();
        let region = dev.alloc(8 * 4096).unwrap();
        let mut concrete = dev.uring_queue(8).unwrap();
        let mut boxed = dev.queue(8).unwrap();
        let mut out = Vec::with_capacity(8);
        // The concrete queue's inherent push_batch, then the trait's.
        let first = (0..8).map(|i| Op::read(region.slice(i * 4096, 4096).unwrap(), 0, i as u64));
        assert_eq!(concrete.push_batch(first).unwrap(), 8);
        let before = allocs();
        for round in 0..50u64 {
            concrete.wait(1, &mut out).unwrap();
            let ops = out.drain(..).map(|c| {
                assert_eq!(*c.result.as_ref().unwrap(), 4096);
                Op::read(c.slice, (round % 64) * 4096, c.tag)
            });
            concrete.push_batch(ops).unwrap();
        }
        assert_eq!(allocs() - before, 0, "direct={direct}: the concrete push_batch loop allocated");
        while concrete.in_flight() > 0 {
            let n = concrete.in_flight();
            concrete.wait(n, &mut out).unwrap();
        }
        // wait_rearm: the slices read again in place.
        let slices: Vec<_> = out.drain(..).map(|c| c.slice).collect();
        concrete.push_batch(slices.into_iter().map(|s| Op::read(s, 0, 0))).unwrap();
        let before = allocs();
        for round in 0..50u64 {
            concrete.wait_rearm(1, |done| done.rearm((round % 64) * 4096, round).unwrap()).unwrap();
        }
        assert_eq!(allocs() - before, 0, "direct={direct}: the wait_rearm loop allocated");
        while concrete.in_flight() > 0 {
            let n = concrete.in_flight();
            concrete.wait(n, &mut out).unwrap();
        }
        let slices: Vec<_> = out.drain(..).map(|c| c.slice).collect();
        boxed.push_batch(&mut slices.into_iter().map(|s| Op::read(s, 0, 0))).unwrap();
        let before = allocs();
        for round in 0..50u64 {
            boxed.wait(1, &mut out).unwrap();
            let mut ops = out.drain(..).map(|c| Op::read(c.slice, (round % 64) * 4096, c.tag));
            boxed.push_batch(&mut ops).unwrap();
        }
        assert_eq!(allocs() - before, 0, "direct={direct}: Queue::push_batch through dyn Queue allocated");
        while boxed.in_flight() > 0 {
            let n = boxed.in_flight();
            boxed.wait(n, &mut out).unwrap();
        }
    }
}
