//! The copy backend: plain `pread`/`pwrite` through bounce buffers, behind
//! the same API as the zero-copy backends.
//!
//! It is the baseline. Every byte crosses the CPU at least once: the kernel
//! copies between the page cache and the bounce buffer (unless the file is
//! opened with `O_DIRECT`), and pinio copies between the bounce buffer and
//! the caller's slice. Both copies are counted in
//! [`StatsSnapshot::bytes_copied`](pinio_core::StatsSnapshot::bytes_copied),
//! which is how a benchmark shows what zero-copy saves.
//!
//! An honest baseline is as concurrent as an application would make it: a
//! queue of depth `d > 1` runs its operations on its own worker threads (up
//! to `d`, at most 256), so QD32 means 32 `pread`/`pwrite` calls in flight.
//! A depth-1 queue runs each operation at `submit` on the caller's thread.
//!
//! Registration pins nothing, so any buffer and any alignment works; with
//! `O_DIRECT` only device offsets and lengths must follow the file's
//! direct-IO alignment (the bounce buffer takes care of memory alignment).
//! [`CopyOptions::strict`] enforces the alignment the `uring` backend will
//! require instead, so that code tested here moves there unchanged.
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
mod exec;
mod pool;
mod queue;
mod shared;

pub use device::{CopyDevice, CopyOptions};
pub use domain::CopyRegistrar;
/// The file lifecycle (`set_len`, `grow`, `allocate`, `refresh_size`) of this backend's devices.
pub use pinio_file::FileDevice;
pub use queue::CopyQueue;
