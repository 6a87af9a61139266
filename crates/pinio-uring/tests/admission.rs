//! `push` admits exactly the operations `Capabilities::check` accepts, and
//! refuses the others with the same error: its fast test (precomputed masks)
//! must never let through what the model refuses, nor refuse what it admits.

mod common;

use common::Scratch;
use pinio_core::{Device, Op, Queue, Slice};
use pinio_uring::{UringDevice, UringOptions};

const FILE: usize = 1 << 20;

/// Pushes `op` and compares the outcome with `check`; returns the slice.
fn push_agrees(dev: &UringDevice, q: &mut dyn Queue, op: Op) -> Slice {
    let expected = dev.capabilities().check(dev.domain().id(), &op).map_err(|e| e.to_string());
    let what = format!(
        "{:?} of {} bytes at buffer {:#x}, device offset {:#x}",
        op.dir,
        op.slice.len(),
        op.slice.as_ptr() as u64,
        op.dev_offset
    );
    match q.push(op) {
        Ok(()) => {
            assert_eq!(expected, Ok(()), "push admitted {what}, which check refuses");
            let mut out = Vec::new();
            q.wait(1, &mut out).expect("wait");
            assert_eq!(out.len(), 1, "{what}");
            let c = out.pop().unwrap();
            c.result.unwrap_or_else(|e| panic!("{what}: {e}"));
            c.slice
        }
        Err(rejected) => {
            assert_eq!(expected, Err(rejected.error.to_string()), "push refused {what}");
            rejected.op.slice
        }
    }
}

#[test]
fn push_admits_what_check_admits() {
    let f = Scratch::new("admission", FILE);
    let dev = UringDevice::open(&f.path, UringOptions::default()).unwrap();
    let caps = dev.capabilities().clone();
    assert!(caps.mem_align >= 512 && caps.offset_align >= 512, "needs real DIO alignment: {caps:?}");
    let (mem, off, size) = (caps.mem_align as usize, caps.offset_align, caps.device_size);
    let region = dev.alloc(4 * mem + 2 * off as usize).unwrap();
    let mut q = dev.queue(4).unwrap();
    let mut tried = 0;
    // Buffer address (slice start), length and device offset around every
    // boundary of the check: alignment, zero length, the device's end.
    for start in [0, 1, mem / 2, mem] {
        for len in [1, off as usize - 1, off as usize, off as usize + 1, 2 * off as usize] {
            for dev_off in
                [0, 1, off / 2, off, size - 2 * off, size - off, size - off + 1, size, size + off, u64::MAX - off + 1]
            {
                let Ok(s) = region.slice(start, len) else { continue };
                // A read, then a write of what it read to the same place (the
                // file keeps its data; the check does not depend on the
                // direction, so a refused read means a refused write).
                let s = push_agrees(&dev, &mut *q, Op::read(s, dev_off, 7));
                drop(push_agrees(&dev, &mut *q, Op::write(s, dev_off, 8)));
                tried += 2;
            }
        }
    }
    assert!(tried > 100, "{tried} operations compared");
}

#[test]
fn push_refuses_a_slice_of_another_domain_as_check_does() {
    let f = Scratch::new("admission-foreign", FILE);
    let a = UringDevice::open(&f.path, UringOptions::default()).unwrap();
    let b = UringDevice::open(&f.path, UringOptions::default()).unwrap();
    let region = b.alloc(b.capabilities().mem_align as usize).unwrap();
    let mut q = a.queue(2).unwrap();
    let op = Op::read(region.slice(0, region.len()).unwrap(), 0, 0);
    let expected = a.capabilities().check(a.domain().id(), &op).unwrap_err().to_string();
    assert!(expected.contains("belongs to a region of domain"), "{expected}");
    let rejected = q.push(op).expect_err("a slice of another domain");
    assert_eq!(rejected.error.to_string(), expected);
}
