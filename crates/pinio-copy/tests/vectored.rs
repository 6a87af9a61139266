//! Vectored operations on the copy backend: gathered into (scattered from)
//! the bounce buffer, one pwrite/pread per bounce chunk, in strict and
//! permissive mode, buffered and O_DIRECT, with a bounce buffer smaller
//! than the transfer (chunks that straddle slices).

use pinio_copy::{CopyDevice, CopyOptions};
use pinio_core::conformance;
use pinio_core::{Device, VectoredIo};
use std::path::PathBuf;

fn scratch(name: &str, len: usize) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let p = dir.join(format!("copy-{name}-{}", std::process::id()));
    std::fs::write(&p, conformance::pattern(2, len)).unwrap();
    p
}

#[test]
fn vectored_conformance_every_mode() {
    let p = scratch("vectored", 1 << 20);
    for strict in [true, false] {
        for direct in [false, true] {
            for bounce_bytes in [1 << 20, 4096, 12288] {
                let opts = CopyOptions { strict, direct, bounce_bytes, ..CopyOptions::default() };
                let dev = CopyDevice::open(&p, opts).unwrap();
                assert_eq!(dev.capabilities().vectored, VectoredIo::Native);
                conformance::vectored(&dev)
                    .unwrap_or_else(|e| panic!("strict={strict} direct={direct} bounce={bounce_bytes}: {e}"));
            }
        }
    }
    std::fs::remove_file(p).unwrap();
}

#[test]
fn async_vectored_futures_and_flush() {
    let p = scratch("async-vectored", 8 << 20);
    for direct in [false, true] {
        let dev = CopyDevice::open(&p, CopyOptions { strict: true, direct, ..CopyOptions::default() }).unwrap();
        let mid_flight =
            conformance::async_vectored_and_flush(&dev, 0).unwrap_or_else(|e| panic!("direct={direct}: {e}"));
        // The copy worker's reads are in flight at the first poll.
        assert_eq!(mid_flight, conformance::MidFlight::Checked, "direct={direct}");
    }
    std::fs::remove_file(p).unwrap();
}
