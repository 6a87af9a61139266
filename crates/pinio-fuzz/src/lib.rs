//! pinio's hardening kit: it tries to break the kernel module from userspace and proves that no
//! pinned page ever leaks.
//!
//! - [`fuzz`]: a seeded, structured interface fuzzer for `/dev/pinio`. It drives open, REGISTER,
//!   SUBMIT, UNREGISTER, REAP, INFO, `mmap`, `read`/`write`/`pread`/`pwrite`/`lseek`, `poll`, `dup`
//!   and `close` with valid and hostile arguments while it reshapes its own address space
//!   (`mprotect`, `MAP_FIXED` over registered pages, `MADV_DONTNEED`, transparent huge pages),
//!   and checks every answer against a model of the module (exact errnos, exact pin counts, the
//!   order and content of completion records, the bytes the DMA engine moved). A second phase
//!   races threads doing unregister, submit, reap and close on one open file.
//! - [`vmstat::PinGuard`]: snapshots `nr_foll_pin_acquired - nr_foll_pin_released` of
//!   `/proc/vmstat` and fails with the difference when pins leaked. Every guest test of this
//!   crate uses it; other crates can too (see its docs).
//! - [`kmsg::KernelLog`]: kernel reports (KASAN, lockdep, `WARNING`, `BUG`) logged since a point.
//! - [`harness`]: the small runner of this crate's guest test binaries (`harness = false`, so
//!   that the fuzzer prints its seed first and scenarios can fork from a single-threaded process).
//!
//! Everything that needs the module runs in the QEMU guest of `cargo xtask test`
//! (docs/guest.md); docs/reliability.md says what is tested and the latest figures.
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod error;
pub mod fuzz;
pub mod harness;
pub mod kmsg;
pub mod mapping;
pub mod proc;
pub mod raw;
pub mod rng;
pub mod vmstat;

pub use error::{Errno, FuzzError};
