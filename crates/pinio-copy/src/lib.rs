//! The copy backend: plain `pread`/`pwrite` through a bounce buffer, behind
//! the same API as the zero-copy backends.
//!
//! It is the baseline. Every byte crosses the CPU at least once: the kernel
//! copies between the page cache and the bounce buffer (unless the file is
//! opened with `O_DIRECT`), and pinio copies between the bounce buffer and
//! the caller's slice. Both copies are counted in
//! [`StatsSnapshot::bytes_copied`](pinio_core::StatsSnapshot::bytes_copied),
//! which is how a benchmark shows what zero-copy saves.
//!
//! Registration pins nothing, so any buffer and any alignment works; with
//! `O_DIRECT` only device offsets and lengths must follow the file's
//! direct-IO alignment (the bounce buffer takes care of memory alignment).
//!
//! ```no_run
//! use pinio_core::{Device, Queue};
//! let dev = pinio_copy::CopyDevice::open("/var/tmp/data", pinio_copy::CopyOptions::default())?;
//! let region = dev.alloc(4096)?;
//! let mut q = dev.queue(8)?;
//! let (n, slice) = q.read_at(region.slice(0, 4096)?, 0)?;
//! println!("read {n} bytes, first {:#04x}", slice[0]);
//! # Ok::<(), pinio_core::Error>(())
//! ```
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod device;
mod domain;
mod eventfd;
mod queue;

pub use device::{CopyDevice, CopyOptions};
pub use domain::CopyRegistrar;
pub use queue::CopyQueue;
