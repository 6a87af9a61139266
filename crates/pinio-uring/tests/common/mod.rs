//! Helpers shared by the integration tests: a directory where O_DIRECT is
//! real, scratch files filled with written (not fallocated) data.
#![allow(dead_code)]

use pinio_file::FileTarget;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A directory on a file system with real direct IO: the system temporary
/// directory if it qualifies (statx reports a DIO alignment), else Cargo's
/// per-target temporary directory on the build disk.
pub fn dio_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let candidates = [std::env::temp_dir(), PathBuf::from(env!("CARGO_TARGET_TMPDIR"))];
        for dir in candidates {
            let probe = dir.join(format!("pinio-uring-probe-{}", std::process::id()));
            if std::fs::write(&probe, vec![0u8; 4096]).is_err() {
                continue;
            }
            let ok = FileTarget::open(&probe, true, false).is_ok_and(|t| t.dio.is_some());
            let _ = std::fs::remove_file(&probe);
            if ok {
                return dir;
            }
        }
        panic!("no directory with real O_DIRECT support among the temp dir and CARGO_TARGET_TMPDIR");
    })
}

/// A file of `len` bytes of written pseudo-random data (seeded by name and
/// length), removed on drop.
pub struct Scratch {
    pub path: PathBuf,
}

impl Scratch {
    pub fn new(name: &str, len: usize) -> Scratch {
        Scratch::in_dir(dio_dir(), name, len)
    }

    pub fn in_dir(dir: &Path, name: &str, len: usize) -> Scratch {
        let path = dir.join(format!("pinio-uring-{name}-{}", std::process::id()));
        let mut f = std::fs::File::create(&path).unwrap();
        let seed = name.bytes().fold(len as u64, |h, b| h.wrapping_mul(0x100_0000_01b3) ^ b as u64);
        let chunk = pinio_core::conformance::pattern(seed, 1 << 20);
        let mut left = len;
        while left > 0 {
            let n = left.min(chunk.len());
            f.write_all(&chunk[..n]).unwrap();
            left -= n;
        }
        f.sync_all().unwrap();
        Scratch { path }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
