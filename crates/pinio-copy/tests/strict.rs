//! Strict mode: the copy backend refuses what the uring backend (O_DIRECT,
//! its default) would refuse on the same file, even when buffered.

use pinio_copy::{CopyDevice, CopyOptions};
use pinio_core::{Device, Error, Op};
use pinio_file::FileTarget;
use std::path::PathBuf;

fn scratch(name: &str, len: usize) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("copy-strict-{name}-{}", std::process::id()));
    std::fs::write(&p, pinio_core::conformance::pattern(3, len)).unwrap();
    p
}

#[test]
fn strict_mode_takes_the_direct_io_alignment_of_the_file() {
    let p = scratch("caps", 1 << 20);
    let dio = FileTarget::open(&p, true, false)
        .expect("the cargo target dir must be on a file system with O_DIRECT")
        .dio
        .unwrap();
    for direct in [false, true] {
        let dev = CopyDevice::open(&p, CopyOptions { strict: true, direct, ..CopyOptions::default() }).unwrap();
        let c = dev.capabilities();
        assert_eq!(
            (c.mem_align, c.register_align, c.offset_align, c.len_align),
            (dio.mem, dio.mem, dio.offset, dio.offset),
            "direct={direct}"
        );
        assert_eq!(c.max_transfer, pinio_core::align_down(0x7fff_f000, dio.offset));
        assert_eq!(c.max_queue_depth, 32768);
        assert!(dev.describe().contains("strict"), "{}", dev.describe());
    }
    let loose = CopyDevice::open(&p, CopyOptions::default()).unwrap();
    let c = loose.capabilities();
    assert_eq!((c.mem_align, c.offset_align, c.len_align), (1, 1, 1));
    std::fs::remove_file(p).unwrap();
}

#[test]
fn strict_mode_refuses_misaligned_memory_offsets_and_lengths() {
    let p = scratch("refuse", 1 << 20);
    let strict = CopyDevice::open(&p, CopyOptions { strict: true, ..CopyOptions::default() }).unwrap();
    let loose = CopyDevice::open_in(strict.domain(), &p, CopyOptions::default()).unwrap();
    let (mem, off) = (strict.capabilities().mem_align as usize, strict.capabilities().offset_align);
    assert!(mem > 1 && off >= 512);
    let region = strict.alloc(64 << 10).unwrap();
    let (mut qs, mut ql) = (strict.queue(4).unwrap(), loose.queue(4).unwrap());
    let cases: [(&str, usize, usize, u64); 3] =
        [("buffer address", 1, 4096, 0), ("device offset", 0, 4096, off / 2), ("length", 0, 4096 + 1, 0)];
    for (what, mem_off, len, dev_off) in cases {
        let op = Op::read(region.slice(mem_off, len).unwrap(), dev_off, 0);
        let r = qs.push(op).expect_err(what);
        assert!(matches!(r.error, Error::Misaligned { what: w, .. } if w == what), "{what}: {}", r.error);
        // The permissive copy device takes the same operation.
        let (n, _s) =
            ql.run(r.op).map(|c| (c.result.unwrap(), c.slice)).unwrap_or_else(|e| panic!("{what}: {}", e.error));
        assert_eq!(n, len, "{what}");
    }
    // Aligned: fine in both.
    let (n, _s) = qs.read_at(region.slice(0, 8192).unwrap(), 2 * off).unwrap();
    assert_eq!(n, 8192);
    std::fs::remove_file(p).unwrap();
}
