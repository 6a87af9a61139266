//! The configurations a benchmark compares.

use pinio::{Builder, Device, Target};
use std::fmt;
use std::path::Path;

/// Page-cache state for buffered runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Cache {
    /// Direct IO: the page cache is not involved.
    Bypassed,
    /// Dropped before the run (and whenever a sequential pass wraps).
    Cold,
    /// The whole file is resident before the run.
    Hot,
}

/// One backend configuration.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Contender {
    pub label: &'static str,
    pub backend: &'static str,
    pub direct: bool,
    pub fixed_buffers: bool,
    pub cache: Cache,
}

impl Contender {
    /// The default set: io_uring with registered buffers against copy IO,
    /// page-cache cold and hot.
    pub fn defaults() -> Vec<Contender> {
        let mut v = Vec::new();
        if pinio::available_backends().contains(&pinio::BackendKind::Uring) {
            v.push(Contender { label: "uring fixed", backend: "uring", direct: true, fixed_buffers: true, cache: Cache::Bypassed });
        }
        v.push(Contender { label: "copy cold", backend: "copy", direct: false, fixed_buffers: false, cache: Cache::Cold });
        v.push(Contender { label: "copy hot", backend: "copy", direct: false, fixed_buffers: false, cache: Cache::Hot });
        v
    }

    /// Every configuration `pinio bench --full` compares.
    pub fn full() -> Vec<Contender> {
        let mut v = Contender::defaults();
        if pinio::available_backends().contains(&pinio::BackendKind::Uring) {
            v.insert(1, Contender { label: "uring plain", backend: "uring", direct: true, fixed_buffers: false, cache: Cache::Bypassed });
        }
        v
    }

    /// Opens this configuration on `file`.
    pub fn open(&self, file: &Path) -> pinio::Result<Box<dyn Device>> {
        let target = Target::parse(&format!("{}:{}", self.backend, file.display()))?;
        Builder::new(target).direct(self.direct).fixed_buffers(self.fixed_buffers).open()
    }
}

impl fmt::Display for Contender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label)
    }
}
