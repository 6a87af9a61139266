//! Code tested on `copy:` in strict mode does not break on `uring:` because
//! of alignment: on the same file, strict copy and uring (O_DIRECT, its
//! default) have the same requirements and accept or refuse the same
//! operations with the same errors.

mod common;

use common::Scratch;
use pinio_copy::{CopyDevice, CopyOptions};
use pinio_core::conformance::{self, Plan};
use pinio_core::{Device, Error, Op};
use pinio_uring::{UringDevice, UringOptions};

fn kind(e: &Error) -> String {
    match e {
        Error::Misaligned { what, required, .. } => format!("misaligned {what} (needs {required})"),
        Error::OutOfBounds { what, .. } => format!("out of bounds: {what}"),
        Error::TooLarge { max, .. } => format!("too large (max {max})"),
        other => format!("{other}"),
    }
}

#[test]
fn strict_copy_admits_exactly_what_uring_admits() {
    let f = Scratch::new("strict", 4 << 20);
    let uring = UringDevice::open(&f.path, UringOptions::default()).unwrap();
    let copy = CopyDevice::open(&f.path, CopyOptions { strict: true, ..CopyOptions::default() }).unwrap();
    let (u, c) = (uring.capabilities(), copy.capabilities());
    assert_eq!(
        (c.mem_align, c.register_align, c.offset_align, c.len_align, c.max_transfer, c.max_queue_depth),
        (u.mem_align, u.register_align, u.offset_align, u.len_align, u.max_transfer, u.max_queue_depth),
    );
    let (ru, rc) = (uring.alloc(1 << 20).unwrap(), copy.alloc(1 << 20).unwrap());
    let (mut qu, mut qc) = (uring.queue(1).unwrap(), copy.queue(1).unwrap());
    let mut agreed = (0, 0);
    for mem_off in [0usize, 1, 2, 4, 8, 16, 64, 256, 511, 512, 2048, 4096] {
        for dev_off in [0u64, 1, 4, 256, 511, 512, 1024, 2048, 4096, 4097, 12288] {
            for len in [1usize, 4, 511, 512, 1000, 1024, 4096, 4097, 65536] {
                let (su, sc) = (ru.slice(mem_off, len).unwrap(), rc.slice(mem_off, len).unwrap());
                let what = format!("memory offset {mem_off}, device offset {dev_off}, length {len}");
                match (qu.push(Op::read(su, dev_off, 0)), qc.push(Op::read(sc, dev_off, 0))) {
                    (Ok(()), Ok(())) => {
                        let (mut a, mut b) = (Vec::new(), Vec::new());
                        qu.wait(1, &mut a).unwrap();
                        qc.wait(1, &mut b).unwrap();
                        let (a, b) = (a.pop().unwrap(), b.pop().unwrap());
                        assert_eq!(a.result.as_ref().unwrap(), b.result.as_ref().unwrap(), "{what}");
                        assert!(a.slice[..] == b.slice[..], "{what}: same bytes");
                        agreed.0 += 1;
                    }
                    (Err(eu), Err(ec)) => {
                        assert_eq!(kind(&eu.error), kind(&ec.error), "{what}");
                        agreed.1 += 1;
                    }
                    (u, c) => panic!(
                        "{what}: uring {:?}, strict copy {:?}",
                        u.err().map(|r| r.error),
                        c.err().map(|r| r.error)
                    ),
                }
            }
        }
    }
    assert!(agreed.0 > 20 && agreed.1 > 100, "both kinds exercised: {agreed:?}");
}

/// The conformance round trips pass on both, from one plan that only uses
/// what the strict copy device allows.
#[test]
fn one_plan_runs_on_strict_copy_and_on_uring() {
    let f = Scratch::new("strict-plan", 16 << 20);
    let copy = CopyDevice::open(&f.path, CopyOptions { strict: true, ..CopyOptions::default() }).unwrap();
    let plan = Plan { sizes: vec![1, 511, 4097, 65536, 1 << 20], ..Plan::default() };
    conformance::round_trips(&copy, &plan).unwrap();
    drop(copy);
    let uring = UringDevice::open(&f.path, UringOptions::default()).unwrap();
    conformance::round_trips(&uring, &plan).unwrap();
}
