//! The generic checks of pinio-core, on files in buffered and O_DIRECT mode.
//!
//! The suite runs in strict mode ([`CopyOptions::strict`]: the alignment
//! the uring backend will require) unless a test is about the permissive
//! mode, so that what passes here passes on `uring:` too.

use pinio_copy::{CopyDevice, CopyOptions};
use pinio_core::conformance::{self, Plan};
use pinio_core::{Device, Error};
use std::path::PathBuf;

/// The options of the suite: strict, otherwise the defaults.
fn strict() -> CopyOptions {
    CopyOptions { strict: true, ..CopyOptions::default() }
}

fn scratch(name: &str, len: usize) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let p = dir.join(format!("copy-{name}-{}", std::process::id()));
    std::fs::write(&p, conformance::pattern(1, len)).unwrap();
    p
}

#[test]
fn buffered_round_trips() {
    let p = scratch("buffered-strict", 16 << 20);
    let dev = CopyDevice::open(&p, strict()).unwrap();
    let caps = dev.capabilities();
    assert!(caps.offset_align >= 512 && caps.len_align == caps.offset_align && caps.mem_align > 1, "{caps:?}");
    let plan = Plan { sizes: vec![1, 512, 4097, 65536, 1 << 20, 8 << 20], ..Plan::default() };
    conformance::round_trips(&dev, &plan).unwrap();
    conformance::bad_inputs(&dev).unwrap();
    let s = dev.stats();
    assert_eq!(s.bytes_copied, 2 * s.bytes_moved(), "buffered IO copies every byte twice");
    conformance::concurrent_round_trips(&dev, 3, &[4096, 65536, 100_000]).unwrap();
    std::fs::remove_file(p).unwrap();
}

/// Without strict mode any alignment works.
#[test]
fn permissive_round_trips_at_odd_offsets() {
    let p = scratch("buffered", 32 << 20);
    let dev = CopyDevice::open(&p, CopyOptions::default()).unwrap();
    let plan = Plan { sizes: vec![1, 3, 512, 4097, 65536, 1 << 20, 8 << 20], ..Plan::default() };
    let r = conformance::round_trips(&dev, &plan).unwrap();
    assert_eq!(r.sizes, 7);
    let s = dev.stats();
    assert_eq!(s.bytes_copied, 2 * s.bytes_moved(), "buffered IO copies every byte twice");
    conformance::concurrent_round_trips(&dev, 3, &[1, 4096, 100_000]).unwrap();
    std::fs::remove_file(p).unwrap();
}

#[test]
fn direct_round_trips_and_alignment() {
    let p = scratch("direct", 16 << 20);
    let dev = match CopyDevice::open(&p, CopyOptions { direct: true, ..strict() }) {
        Ok(d) => d,
        Err(Error::Unsupported { .. }) => panic!("the cargo target dir must be on a file system with O_DIRECT"),
        Err(e) => panic!("{e}"),
    };
    let caps = dev.capabilities();
    assert!(caps.offset_align >= 512 && caps.mem_align > 1, "{caps:?}");
    let plan = Plan { sizes: vec![512, 4096, 1 << 20, 8 << 20], ..Plan::default() };
    conformance::round_trips(&dev, &plan).unwrap();
    conformance::bad_inputs(&dev).unwrap();
    let s = dev.stats();
    assert_eq!(s.bytes_copied, s.bytes_moved(), "with O_DIRECT only the bounce copy remains");
    std::fs::remove_file(p).unwrap();
}

#[test]
fn bad_inputs_and_foreign_regions() {
    let (a, b) = (scratch("a", 1 << 20), scratch("b", 1 << 20));
    let da = CopyDevice::open(&a, strict()).unwrap();
    let db = CopyDevice::open(&b, strict()).unwrap();
    conformance::bad_inputs(&da).unwrap();
    conformance::push_batch(&da).unwrap();
    conformance::foreign_region(&da, &db).unwrap();
    std::fs::remove_file(a).unwrap();
    std::fs::remove_file(b).unwrap();
}

#[test]
fn two_files_in_one_domain_share_registrations() {
    let (a, b) = (scratch("dom-a", 1 << 20), scratch("dom-b", 1 << 20));
    let da = CopyDevice::open(&a, strict()).unwrap();
    let db = CopyDevice::open_in(da.domain(), &b, strict()).unwrap();
    assert_eq!(da.domain().id(), db.domain().id());
    conformance::shared_domain(&da, &db).unwrap();
    // A device of another domain still refuses them.
    let other = CopyDevice::open(&b, strict()).unwrap();
    conformance::foreign_region(&da, &other).unwrap();
    conformance::foreign_region(&other, &db).unwrap();
    std::fs::remove_file(a).unwrap();
    std::fs::remove_file(b).unwrap();
}

#[test]
fn flush_drains_pushed_writes() {
    let p = scratch("flush", 1 << 20);
    for direct in [false, true] {
        let dev = CopyDevice::open(&p, CopyOptions { direct, ..strict() }).unwrap();
        conformance::flush_drains(&dev).unwrap_or_else(|e| panic!("direct={direct}: {e}"));
    }
    std::fs::remove_file(p).unwrap();
}

#[test]
fn reads_straddling_the_end_complete_short_and_event_fd_fires() {
    let p = scratch("eof", 10_000);
    let dev = CopyDevice::open(&p, CopyOptions::default()).unwrap();
    let region = dev.alloc(4096).unwrap();
    let mut q = dev.queue(2).unwrap();
    // Starting at the end: refused. Straddling it: the bytes up to the end.
    let r = q.push(pinio_core::Op::read(region.slice(0, 4096).unwrap(), 10_000, 9)).unwrap_err();
    assert!(matches!(r.error, Error::OutOfBounds { limit: 10_000, .. }), "{}", r.error);
    let (n, s) = q.read_at(r.op.slice, 8192).unwrap();
    assert_eq!(n, 10_000 - 8192);
    let r = q.push(pinio_core::Op::write(s, 8192, 9)).unwrap_err();
    assert!(matches!(r.error, Error::OutOfBounds { .. }), "writes never straddle the end: {}", r.error);
    let fd = q.event_fd().expect("copy queues have an event fd").try_clone_to_owned().unwrap();
    let readable = |timeout_ms| {
        let mut pfd = libc::pollfd { fd: std::os::fd::AsRawFd::as_raw_fd(&fd), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, timeout_ms) }
    };
    assert_eq!(readable(0), 0, "event fd not readable before any completion");
    q.push(pinio_core::Op::read(r.op.slice, 4096, 9)).unwrap();
    q.submit().unwrap();
    // A worker finishes it and signals.
    assert_eq!(readable(10_000), 1, "event fd readable once the operation finished");
    let mut out = Vec::new();
    q.poll(&mut out).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].tag, 9);
    assert_eq!(*out[0].result.as_ref().unwrap(), 4096);
    assert_eq!(&out[0].slice[..], &conformance::pattern(1, 10_000)[4096..8192]);
    assert_eq!(readable(0), 0, "poll collected everything and reset the event fd");
    std::fs::remove_file(p).unwrap();
}

#[test]
fn missing_file_is_a_clear_error() {
    let e = CopyDevice::open("/nonexistent/pinio-data", CopyOptions::default()).err().unwrap();
    assert!(e.to_string().contains("/nonexistent/pinio-data"), "{e}");
}
