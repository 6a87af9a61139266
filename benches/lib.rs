//! Shared set-up of pinio's criterion benches: scratch files on a file
//! system with O_DIRECT (the cargo target dir), removed on drop.
#![deny(missing_docs)]

use std::path::PathBuf;

/// A scratch file of `len` bytes of non-zero data, deleted on drop.
pub struct Scratch {
    /// Its path.
    pub path: PathBuf,
}

impl Scratch {
    /// Writes the file under `target/bench-scratch/`.
    pub fn new(name: &str, len: usize) -> Scratch {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-scratch");
        std::fs::create_dir_all(&dir).expect("create target/bench-scratch");
        let path = dir.join(format!("{name}-{}", std::process::id()));
        let data: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(7).wrapping_add(1)).collect();
        std::fs::write(&path, data).expect("write scratch file");
        Scratch { path }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
