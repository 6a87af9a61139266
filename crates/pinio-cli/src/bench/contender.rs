//! The configurations a benchmark compares: pinio backends, and fio jobs
//! doing the same IO as peers.

use super::workload::Workload;
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

/// Who does the IO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Engine {
    /// A pinio backend.
    Pinio { backend: &'static str, direct: bool, fixed_buffers: bool },
    /// fio with these extra arguments.
    Fio { args: &'static [&'static str], honours_depth: bool },
}

/// One configuration.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Contender {
    pub label: &'static str,
    pub engine: Engine,
    pub cache: Cache,
}

const URING_FIXED: Contender = Contender {
    label: "uring fixed",
    engine: Engine::Pinio { backend: "uring", direct: true, fixed_buffers: true },
    cache: Cache::Bypassed,
};
const URING_PLAIN: Contender = Contender {
    label: "uring plain",
    engine: Engine::Pinio { backend: "uring", direct: true, fixed_buffers: false },
    cache: Cache::Bypassed,
};
/// The CPU-bound workload: buffered io_uring reads of a file already in the
/// page cache, into fixed buffers. The device is out of the way, so what
/// shows is the cost of the library and the kernel's io_uring path.
const URING_BUF_HOT: Contender = Contender {
    label: "uring buf hot",
    engine: Engine::Pinio { backend: "uring", direct: false, fixed_buffers: true },
    cache: Cache::Hot,
};
const COPY_COLD: Contender = Contender {
    label: "copy cold",
    engine: Engine::Pinio { backend: "copy", direct: false, fixed_buffers: false },
    cache: Cache::Cold,
};
const COPY_HOT: Contender = Contender {
    label: "copy hot",
    engine: Engine::Pinio { backend: "copy", direct: false, fixed_buffers: false },
    cache: Cache::Hot,
};
const FIO_URING_FIXED: Contender = Contender {
    label: "fio uring fixed",
    engine: Engine::Fio {
        args: &["--ioengine=io_uring", "--direct=1", "--fixedbufs=1", "--registerfiles=1"],
        honours_depth: true,
    },
    cache: Cache::Bypassed,
};
/// fio's peer of [`URING_BUF_HOT`]: io_uring, buffered, fixed buffers,
/// registered file, same hot file.
const FIO_URING_BUF_HOT: Contender = Contender {
    label: "fio uring buf hot",
    engine: Engine::Fio {
        args: &["--ioengine=io_uring", "--direct=0", "--fixedbufs=1", "--registerfiles=1"],
        honours_depth: true,
    },
    cache: Cache::Hot,
};
/// [`FIO_URING_BUF_HOT`] with fio's submit and reap batching on: by default
/// fio enters the kernel once per IO (`iodepth_batch_submit=1`), a library
/// submits what was pushed since its last wait in one call; this peer shows
/// fio doing the same.
const FIO_URING_BUF_HOT_BATCHED: Contender = Contender {
    label: "fio uring buf hot batched",
    engine: Engine::Fio {
        args: &[
            "--ioengine=io_uring",
            "--direct=0",
            "--fixedbufs=1",
            "--registerfiles=1",
            "--iodepth_batch_submit=32",
            "--iodepth_batch_complete_min=1",
            "--iodepth_batch_complete_max=32",
        ],
        honours_depth: true,
    },
    cache: Cache::Hot,
};
const FIO_PSYNC_DIRECT: Contender = Contender {
    label: "fio psync dio",
    engine: Engine::Fio { args: &["--ioengine=psync", "--direct=1"], honours_depth: false },
    cache: Cache::Bypassed,
};
const FIO_PSYNC_BUFFERED: Contender = Contender {
    label: "fio psync buf hot",
    engine: Engine::Fio { args: &["--ioengine=psync", "--direct=0"], honours_depth: false },
    cache: Cache::Hot,
};

impl Contender {
    /// The default set: io_uring with registered buffers (direct, and
    /// buffered from a hot page cache) against copy IO, page-cache cold and
    /// hot.
    pub fn defaults() -> Vec<Contender> {
        let mut v = Vec::new();
        if has_uring() {
            v.extend([URING_FIXED, URING_BUF_HOT]);
        }
        v.extend([COPY_COLD, COPY_HOT]);
        v
    }

    /// Every pinio configuration, plus fio's when `with_fio`.
    pub fn full(with_fio: bool) -> Vec<Contender> {
        let mut v = Vec::new();
        if has_uring() {
            v.extend([URING_FIXED, URING_PLAIN, URING_BUF_HOT]);
        }
        v.extend([COPY_COLD, COPY_HOT]);
        if with_fio {
            v.extend([
                FIO_URING_FIXED,
                FIO_URING_BUF_HOT,
                FIO_URING_BUF_HOT_BATCHED,
                FIO_PSYNC_DIRECT,
                FIO_PSYNC_BUFFERED,
            ]);
        }
        v
    }

    /// Whether this configuration runs `w`: the buffered hot io_uring pair
    /// only reads (buffered writes would dirty the page cache under the
    /// next runs), and workloads of several threads run only on the
    /// io_uring configurations, whose scaling they measure.
    pub fn runs(&self, w: &Workload) -> bool {
        let hot_uring = matches!(self.label, "uring buf hot" | "fio uring buf hot" | "fio uring buf hot batched");
        if hot_uring && w.dir == pinio::Direction::Write {
            return false;
        }
        w.jobs == 1 || hot_uring || matches!(self.label, "uring fixed" | "fio uring fixed")
    }

    /// Opens this pinio configuration on `file`.
    pub fn open(&self, file: &Path) -> pinio::Result<Box<dyn Device>> {
        let Engine::Pinio { backend, direct, fixed_buffers } = self.engine else {
            unreachable!("only pinio contenders are opened as devices")
        };
        let target = Target::parse(&format!("{backend}:{}", file.display()))?;
        let target_is_uring = target.backend == pinio::BackendKind::Uring;
        let builder = Builder::new(target).direct(direct);
        // Only io_uring has the fixed-buffer switch; the builder refuses it elsewhere.
        let builder = if target_is_uring { builder.fixed_buffers(fixed_buffers) } else { builder };
        builder.open()
    }
}

fn has_uring() -> bool {
    pinio::available_backends().contains(&pinio::BackendKind::Uring)
}

impl fmt::Display for Contender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label)
    }
}
