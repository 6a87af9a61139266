//! Completions that are not ours (stray CQEs) and the epoll-able eventfd.

mod common;

use common::Scratch;
use io_uring::{IoUring, opcode, types};
use pinio_core::{Device, Op, Queue};
use pinio_uring::{UringDevice, UringOptions};

/// Posts a CQE carrying `user_data` into the ring `target` with MSG_RING.
fn post_stray(sender: &mut IoUring, target: i32, user_data: u64) {
    let sqe = opcode::MsgRingData::new(types::Fd(target), 0, user_data, None).build().user_data(7);
    // SAFETY: MSG_RING references no memory of ours.
    unsafe { sender.submission().push(&sqe).unwrap() };
    sender.submit_and_wait(1).unwrap();
    let cqe = sender.completion().next().unwrap();
    assert_eq!(cqe.result(), 0, "MSG_RING failed: {}", cqe.result());
}

#[test]
fn stray_completions_are_ignored() {
    let f = Scratch::new("strays", 4 << 20);
    let expect = std::fs::read(&f.path).unwrap();
    let dev = UringDevice::open(&f.path, UringOptions::default()).unwrap();
    let region = dev.alloc(1 << 20).unwrap();
    let mut q = dev.uring_queue(8).unwrap();
    let mut sender = IoUring::new(4).unwrap();
    // Strays before, between and after real operations: 1..=4 are what
    // tagged buffer registrations post; the others name entries beyond the
    // queue's capacity.
    for ud in [0, 1, 2, 3, 4, (1 << 32) | 1000, u64::MAX] {
        post_stray(&mut sender, q.ring_fd(), ud);
    }
    for i in 0..4u64 {
        q.push(Op::read(region.slice((i as usize) << 18, 1 << 18).unwrap(), i << 18, 100 + i)).unwrap();
    }
    q.submit().unwrap();
    post_stray(&mut sender, q.ring_fd(), 5);
    let mut out = Vec::new();
    while out.len() < 4 {
        q.wait(4 - out.len(), &mut out).unwrap();
    }
    assert_eq!(q.in_flight(), 0);
    let mut tags: Vec<u64> = out.iter().map(|c| c.tag).collect();
    tags.sort();
    assert_eq!(tags, [100, 101, 102, 103]);
    for c in &out {
        let off = c.dev_offset as usize;
        assert_eq!(*c.result.as_ref().unwrap(), 1 << 18);
        assert!(c.slice[..] == expect[off..off + (1 << 18)], "tag {}", c.tag);
    }
    out.clear();
    // A stray may still be in the ring; reap it.
    q.poll(&mut out).unwrap();
    assert!(out.is_empty());
    assert_eq!(q.stray_completions(), 8);
}

#[test]
fn event_fd_becomes_readable_on_completion() {
    let f = Scratch::new("eventfd", 1 << 20);
    let dev = UringDevice::open(&f.path, UringOptions::default()).unwrap();
    let region = dev.alloc(4096).unwrap();
    let mut q = dev.queue(4).unwrap();
    let fd = {
        use std::os::fd::AsRawFd;
        q.event_fd().expect("the uring backend has an eventfd").as_raw_fd()
    };
    let readable = |timeout_ms| {
        let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut p, 1, timeout_ms) == 1 }
    };
    assert!(!readable(0), "nothing completed yet");
    q.push(Op::read(region.slice(0, 4096).unwrap(), 0, 1)).unwrap();
    q.submit().unwrap();
    assert!(readable(5000), "the eventfd signals the completion");
    let mut out = Vec::new();
    while out.is_empty() {
        q.poll(&mut out).unwrap();
    }
    assert_eq!(out[0].tag, 1);
    assert_eq!(*out[0].result.as_ref().unwrap(), 4096);
}
