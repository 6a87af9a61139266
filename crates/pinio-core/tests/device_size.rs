//! A device's size can change after open (a file resized through its
//! device): admission follows `DeviceCore::size`, on the fast path and on
//! the path that names the error, while `Capabilities::device_size` keeps
//! the size at open.

use pinio_core::conformance::CountingRegistrar;
use pinio_core::{
    Capabilities, CompletionMode, DeviceCore, DmaBuf, Error, Op, Persistence, Region, RegistrationSharing,
};

fn core(size: u64, offset_align: u64) -> (DeviceCore, Region) {
    let caps = Capabilities {
        backend: "test",
        mem_align: 1,
        register_align: 1,
        offset_align,
        len_align: 1,
        max_transfer: 1 << 20,
        max_pinned_bytes: None,
        device_size: size,
        completion: CompletionMode::Synchronous,
        cpu_copies: false,
        pins_memory: false,
        max_queue_depth: 8,
        sharing: RegistrationSharing::Domain,
        persistence: Persistence::None,
        writable: true,
        short_reads_at_end: true,
        vectored: pinio_core::VectoredIo::Native,
        max_segments: 1024,
    };
    let (domain, _) = CountingRegistrar::domain();
    let region = domain.register(DmaBuf::new(8192).unwrap()).unwrap();
    (DeviceCore::new(domain, caps), region)
}

fn limit_of(e: &Error) -> Option<u64> {
    match e {
        Error::OutOfBounds { limit, .. } => Some(*limit),
        _ => None,
    }
}

#[test]
fn admission_follows_the_size_set_after_open() {
    let (core, region) = core(8192, 1);
    let w = |off| Op::write(region.slice(0, 4096).unwrap(), off, 0);
    let r = core.admit(w(8192), 0, 8).unwrap_err();
    assert_eq!(limit_of(&r.error), Some(8192), "{}", r.error);
    drop(r);

    core.set_size(16384);
    assert_eq!((core.size(), core.capabilities().device_size), (16384, 8192));
    drop(core.admit(w(8192), 0, 8).unwrap());
    drop(core.admit(w(12288), 0, 8).unwrap());
    let r = core.admit(w(12289), 0, 8).unwrap_err();
    assert_eq!(limit_of(&r.error), Some(16384), "the error names the current size: {}", r.error);
    drop(r);

    core.set_size(4096);
    drop(core.admit(w(0), 0, 8).unwrap());
    let r = core.admit(w(4096), 0, 8).unwrap_err();
    assert_eq!(limit_of(&r.error), Some(4096), "{}", r.error);
    assert!(core.check(&r.op).is_err());
}

#[test]
fn the_slow_path_uses_the_current_size_too() {
    // Offsets must be 512-aligned: a misaligned op fails the fast path and
    // is judged by `Capabilities::check_at_size`.
    let (core, region) = core(8192, 512);
    let read = |off, len| Op::read(region.slice(0, len).unwrap(), off, 0);
    // A read straddling the end is admitted short (slow path: not inside).
    drop(core.admit(read(6144, 4096), 0, 8).unwrap());
    core.set_size(6144);
    let r = core.admit(read(6144, 4096), 0, 8).unwrap_err();
    assert_eq!(limit_of(&r.error), Some(6144), "a read starting at the new end: {}", r.error);
    drop(r);
    core.set_size(1 << 20);
    let r = core.admit(read(100_001, 512), 0, 8).unwrap_err();
    assert!(matches!(r.error, Error::Misaligned { what: "device offset", .. }), "{}", r.error);
    drop(r);
    // Capabilities::check keeps judging by the size at open.
    let op = read(16384, 4096);
    assert!(core.check(&op).is_ok());
    assert_eq!(limit_of(&core.capabilities().check(core.domain_id(), &op).unwrap_err()), Some(8192));
}
