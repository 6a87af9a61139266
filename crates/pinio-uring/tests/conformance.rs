//! The generic pinio conformance checks, run against the uring backend on a
//! file with real O_DIRECT, in each configuration the backend offers.

mod common;

use common::Scratch;
use pinio_core::conformance::{self, Plan};
use pinio_core::{Device, Error, Op, Registration, RegistrationSharing, UnregisterError};
use pinio_uring::{UringDevice, UringOptions};

const FILE: usize = 64 << 20;

fn open(file: &Scratch, opts: UringOptions) -> UringDevice {
    UringDevice::open(&file.path, opts).unwrap_or_else(|e| panic!("open {}: {e}", file.path.display()))
}

#[test]
fn round_trips_direct_fixed() {
    let f = Scratch::new("rt-fixed", FILE);
    let dev = open(&f, UringOptions::default());
    let caps = dev.capabilities();
    assert!(caps.mem_align >= 512 && caps.offset_align >= 512, "real DIO alignment: {caps:?}");
    assert!(!caps.cpu_copies && caps.pins_memory);
    assert_eq!(caps.device_size, FILE as u64);
    for unaligned in [false, true] {
        let plan = Plan { unaligned, ..Plan::default() };
        let report = conformance::round_trips(&dev, &plan).unwrap_or_else(|e| panic!("unaligned={unaligned}: {e}"));
        assert_eq!(report.sizes, plan.sizes.len());
    }
    let s = dev.stats();
    assert_eq!(s.bytes_copied, 0, "O_DIRECT into registered buffers copies nothing: {s}");
    assert_eq!(s.unregistered_fallbacks, 0, "{s}");
    assert!(s.pins >= 2 && s.pins == s.unpins && s.bytes_pinned == 0, "every region was unregistered: {s}");
    assert_eq!(s.bytes_read, s.bytes_written);
}

#[test]
fn round_trips_from_the_arena() {
    let f = Scratch::new("rt-arena", FILE);
    let dev = open(&f, UringOptions { arena_bytes: 4 << 20, ..UringOptions::default() });
    let before = dev.arena_free_bytes();
    let r = dev.alloc(8192).unwrap();
    assert!(matches!(r.key().registration, Registration::Piece(_)), "arena pieces are registered: {:?}", r.key());
    assert_eq!(dev.arena_free_bytes(), before - 8192);
    drop(r);
    assert_eq!(dev.arena_free_bytes(), before, "pieces return to the arena");
    // 8 MiB does not fit in the arena and gets its own registration.
    conformance::round_trips(&dev, &Plan::default()).unwrap();
    assert_eq!(dev.arena_free_bytes(), before);
    let s = dev.stats();
    assert_eq!((s.bytes_copied, s.unregistered_fallbacks), (0, 0), "{s}");
}

#[test]
fn round_trips_without_fixed_buffers() {
    let f = Scratch::new("rt-plain", FILE);
    let dev = open(&f, UringOptions { fixed_buffers: false, ..UringOptions::default() });
    assert!(!dev.capabilities().pins_memory);
    conformance::round_trips(&dev, &Plan::default()).unwrap();
    let s = dev.stats();
    assert_eq!((s.pins, s.unregistered_fallbacks, s.bytes_copied), (0, 0, 0), "{s}");
}

#[test]
fn round_trips_buffered_count_cpu_copies() {
    let f = Scratch::new("rt-buffered", FILE);
    let dev = open(&f, UringOptions { direct: false, ..UringOptions::default() });
    let caps = dev.capabilities();
    assert!(caps.cpu_copies && caps.offset_align == 1 && caps.mem_align == 1);
    conformance::round_trips(&dev, &Plan::default()).unwrap();
    let s = dev.stats();
    assert!(s.bytes_copied > 0 && s.bytes_copied == s.bytes_moved(), "the page cache copies every byte: {s}");
}

#[test]
fn bad_inputs() {
    let f = Scratch::new("bad", 1 << 20);
    let dev = open(&f, UringOptions::default());
    conformance::bad_inputs(&dev).unwrap();
    let buffered = open(&f, UringOptions { direct: false, ..UringOptions::default() });
    conformance::bad_inputs(&buffered).unwrap();
}

#[test]
fn push_batch() {
    let f = Scratch::new("batch", 1 << 20);
    for opts in
        [UringOptions::default(), UringOptions { direct: false, fixed_buffers: false, ..UringOptions::default() }]
    {
        conformance::push_batch(&open(&f, opts)).unwrap();
    }
}

#[test]
fn misaligned_registration_and_zero_depth_are_refused() {
    let f = Scratch::new("misreg", 1 << 20);
    let dev = open(&f, UringOptions::default());
    let mut backing = pinio_core::DmaBuf::new(16384).unwrap();
    let odd_ptr = std::ptr::NonNull::new(backing.as_mut_ptr().wrapping_add(256)).unwrap();
    // SAFETY: `backing` outlives `odd` (the refused buffer comes back in the
    // error and is dropped before it), and nothing else touches those bytes.
    let odd = unsafe { pinio_core::DmaBuf::from_raw_parts(odd_ptr, 8192, |_, _| {}) }.unwrap();
    let e = dev.register(odd).unwrap_err();
    assert!(matches!(e.error, Error::Misaligned { what: "buffer address", required: 512, .. }), "{e}");
    assert_eq!(e.buf.as_ptr(), odd_ptr.as_ptr() as *const u8, "the buffer comes back");
    drop(e);
    drop(backing);
    assert!(matches!(dev.queue(0), Err(Error::ZeroLength { .. })));
}

#[test]
fn queue_depth_is_capped_at_the_ring_limit_with_a_typed_error() {
    let f = Scratch::new("depth", 1 << 20);
    let dev = open(&f, UringOptions::default());
    assert_eq!(dev.capabilities().max_queue_depth, 32768, "IORING_MAX_ENTRIES");
    // Regression: 1 << 32 used to size the in-flight table before anything
    // checked it, and aborted the process on the allocation.
    for depth in [32769, 1 << 32, usize::MAX] {
        match dev.queue(depth) {
            Err(Error::QueueTooDeep { depth: d, max: 32768 }) => assert_eq!(d, depth),
            Err(e) => panic!("queue({depth}) must be QueueTooDeep, got {e}"),
            Ok(_) => panic!("queue({depth}) was made"),
        }
        assert!(matches!(dev.uring_queue(depth), Err(Error::QueueTooDeep { .. })), "uring_queue({depth})");
    }
    let mut q = dev.queue(32768).expect("the deepest queue");
    assert_eq!(q.capacity(), 32768);
    let region = dev.alloc(4096).unwrap();
    let (n, _) = q.read_at(region.slice(0, 4096).unwrap(), 0).unwrap();
    assert_eq!(n, 4096);
    // A huge ring_entries is capped, not overflowed.
    let huge = open(&f, UringOptions { ring_entries: u32::MAX, ..UringOptions::default() });
    let mut q = huge.queue(2).unwrap();
    let (n, _) = q.read_at(region_of(&huge), 0).unwrap();
    assert_eq!(n, 4096);
}

fn region_of(dev: &UringDevice) -> pinio_core::Slice {
    dev.alloc(4096).unwrap().slice(0, 4096).unwrap()
}

#[test]
fn concurrent_round_trips() {
    let f = Scratch::new("concurrent", FILE);
    let dev = open(&f, UringOptions::default());
    conformance::concurrent_round_trips(&dev, 4, &[512, 4096, 65536, 1 << 20]).unwrap();
    let s = dev.stats();
    assert_eq!((s.bytes_copied, s.unregistered_fallbacks, s.bytes_pinned), (0, 0, 0), "{s}");
}

#[test]
fn foreign_region() {
    let f = Scratch::new("foreign", 1 << 20);
    let a = open(&f, UringOptions::default());
    let b = open(&f, UringOptions::default());
    assert_ne!(a.domain().id(), b.domain().id(), "open makes a domain of its own");
    conformance::foreign_region(&a, &b).unwrap();
    conformance::foreign_region(&b, &a).unwrap();
}

#[test]
fn unregister_waits_for_the_operation_in_flight() {
    let f = Scratch::new("inflight", 1 << 20);
    let dev = open(&f, UringOptions::default());
    let region = dev.alloc(1 << 20).unwrap();
    let mut q = dev.queue(4).unwrap();
    q.push(Op::read(region.slice(0, 1 << 20).unwrap(), 0, 9)).unwrap();
    q.submit().unwrap();
    let region = match region.unregister() {
        Err(UnregisterError::Busy { region, outstanding: 1 }) => region,
        other => panic!("unregister with a read in flight must be refused, got {other:?}"),
    };
    let mut out = Vec::new();
    assert_eq!(q.wait(1, &mut out).unwrap(), 1);
    let c = out.pop().unwrap();
    assert_eq!((c.tag, *c.result.as_ref().unwrap()), (9, 1 << 20));
    let expect = std::fs::read(&f.path).unwrap();
    assert!(c.slice[..] == expect[..], "read returned the file's bytes");
    drop(c);
    region.unregister().unwrap();
    assert_eq!(dev.stats().bytes_pinned, 0);
}

#[test]
fn dropping_a_queue_waits_for_its_operations() {
    let f = Scratch::new("dropq", 4 << 20);
    let dev = open(&f, UringOptions::default());
    let region = dev.alloc(4 << 20).unwrap();
    let mut q = dev.queue(8).unwrap();
    for i in 0..4 {
        q.push(Op::read(region.slice(i << 20, 1 << 20).unwrap(), (i << 20) as u64, i as u64)).unwrap();
    }
    q.submit().unwrap();
    drop(q);
    assert_eq!(region.live_slices(), 0, "the queue's drop collected every slice");
    assert_eq!(dev.stats().ops, 4);
    region.unregister().unwrap();
}

#[test]
fn two_targets_share_registered_regions() {
    let (a, b) = (Scratch::new("share-a", 4 << 20), Scratch::new("share-b", 4 << 20));
    let src = open(&a, UringOptions { arena_bytes: 2 << 20, ..UringOptions::default() });
    let dst = UringDevice::open_in(src.domain(), &b.path, UringOptions::default()).unwrap();
    assert_eq!(src.domain().id(), dst.domain().id());
    assert_ne!(src.id(), dst.id(), "two devices");
    assert_eq!(dst.options().arena_bytes, 2 << 20, "the domain's options are in effect");
    let (mut qr, mut qw) = (src.queue(4).unwrap(), dst.queue(4).unwrap());
    let from_arena = src.alloc(1 << 20).unwrap();
    let own = dst.register(pinio_core::DmaBuf::new(1 << 20).unwrap()).unwrap();
    assert!(matches!(from_arena.key().registration, Registration::Piece(_)));
    assert!(matches!(own.key().registration, Registration::Own(_)));
    for (i, region) in [from_arena, own].into_iter().enumerate() {
        let off = (i as u64) << 20;
        let (_, s) = qr.read_at(region.slice_all().unwrap(), off).unwrap();
        let (_, s) = qw.write_at(s, off).unwrap();
        drop(s);
        region.unregister().unwrap();
    }
    let (x, y) = (std::fs::read(&a.path).unwrap(), std::fs::read(&b.path).unwrap());
    assert!(x[..2 << 20] == y[..2 << 20], "the first 2 MiB were copied through shared regions");
    assert!(x[2 << 20..] != y[2 << 20..], "the files differ elsewhere (different seeds)");
    let (rs, ws) = (src.stats(), dst.stats());
    assert_eq!((rs.bytes_read, ws.bytes_written, rs.bytes_copied + ws.bytes_copied), (2 << 20, 2 << 20, 0));
    // The arena (one pin for the domain's life) and the region of its own.
    assert_eq!((rs.pins, rs.unpins, ws.pins, ws.unpins), (2, 1, 2, 1), "the domain's registrations: {rs} / {ws}");
    assert_eq!(rs.bytes_pinned, 2 << 20, "the arena stays registered: {rs}");
    assert_ne!(
        src.capabilities().sharing,
        RegistrationSharing::PerQueue,
        "this binary does not force per-ring registration"
    );
}

#[test]
fn round_trips_with_sqpoll() {
    let f = Scratch::new("rt-sqpoll", 16 << 20);
    let dev = open(&f, UringOptions { sqpoll: Some(20), ..UringOptions::default() });
    assert!(dev.describe().contains("SQPOLL"));
    let plan = Plan { sizes: vec![512, 4096, 65536, 1 << 20], ..Plan::default() };
    conformance::round_trips(&dev, &plan).unwrap();
    let s = dev.stats();
    assert_eq!((s.bytes_copied, s.errors), (0, 0), "{s}");
}

#[test]
fn a_write_to_a_read_only_device_is_refused_at_push() {
    // Regression: it used to be accepted and fail only at completion with EBADF.
    let f = Scratch::new("ro", 1 << 20);
    let dev = open(&f, UringOptions { writable: false, ..UringOptions::default() });
    assert!(!dev.capabilities().writable);
    let region = dev.alloc(4096).unwrap();
    let mut q = dev.queue(2).unwrap();
    let e = q.write_at(region.slice(0, 4096).unwrap(), 0).unwrap_err();
    assert!(matches!(e.error, Error::ReadOnly), "{}", e.error);
    let s = e.slice.expect("the slice comes back with the refusal");
    let (n, _) = q.read_at(s, 0).unwrap();
    assert_eq!(n, 4096);
    let st = dev.stats();
    assert_eq!((st.ops, st.errors, st.bytes_written), (1, 0, 0), "{st}");
}

#[test]
fn a_read_straddling_the_end_of_the_file_completes_short() {
    // Regression: it used to be refused with OutOfBounds although Op documents short reads.
    let f = Scratch::new("eof", (1 << 20) + 4096);
    let dev = open(&f, UringOptions::default());
    let region = dev.alloc(16384).unwrap();
    let mut q = dev.queue(2).unwrap();
    let (n, _) = q.read_at(region.slice(0, 16384).unwrap(), 1 << 20).unwrap();
    assert_eq!(n, 4096, "the bytes up to the end of the file");
    let e = q.read_at(region.slice(0, 4096).unwrap(), (1 << 20) + 4096).unwrap_err();
    assert!(matches!(e.error, Error::OutOfBounds { .. }), "a read starting at the end: {}", e.error);
    drop(e);
    // [1 MiB, +8 KiB) straddles the end (1 MiB + 4 KiB).
    let e = q.write_at(region.slice(0, 8192).unwrap(), 1 << 20).unwrap_err();
    assert!(matches!(e.error, Error::OutOfBounds { .. }), "writes never straddle the end: {}", e.error);
}

#[test]
fn flush_drains_pushed_writes() {
    let f = Scratch::new("flush", 1 << 20);
    for opts in [
        UringOptions::default(),
        UringOptions { direct: false, ..UringOptions::default() },
        UringOptions { fixed_buffers: false, ..UringOptions::default() },
    ] {
        let dev = open(&f, opts.clone());
        conformance::flush_drains(&dev).unwrap_or_else(|e| panic!("{opts:?}: {e}"));
    }
}
