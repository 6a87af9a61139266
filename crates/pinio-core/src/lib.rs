//! The backend-neutral model of pinio: pin (register) a buffer once, then hand
//! slices of it to a device that reads and writes them directly.
//!
//! The pieces, in the order an application meets them:
//!
//! - [`DmaBuf`]: memory a device may access directly. Page-aligned anonymous
//!   memory (optionally backed by transparent huge pages), or a caller's buffer
//!   adopted as it is.
//! - [`Domain`]: a registration scope (libfabric's domain, verbs' protection
//!   domain, one VFIO container, one io_uring buffer table). Regions are
//!   registered in a domain once and accepted by every device opened in it.
//!   The [DMA ownership rule](domain#the-dma-ownership-rule) is stated there.
//! - [`Device`]: one opened IO target with a linear *device address space*
//!   of `u64` byte offsets (a file, a block device, an echo device's
//!   on-board memory, an IOMMU-isolated PCI device's buffer, an NVMe
//!   namespace), in one domain. What every device shares, whatever its
//!   backend, is its [`DeviceCore`].
//! - [`Region`]: a [`DmaBuf`] registered in a domain (pinned, or mapped into
//!   an IOMMU, or in an io_uring buffer table). Dropping the last handle
//!   unregisters it; [`Region::unregister`] does it explicitly and hands the
//!   buffer back.
//! - [`Slice`]: `(region, offset, len)`, the unit handed to the device. A slice
//!   owns its bytes exclusively: two live slices of one region never overlap,
//!   so a slice can be read and written as `&mut [u8]` while the application
//!   holds it.
//! - [`Queue`]: a submission/completion pair owned by one thread. An [`Op`]
//!   moves a slice into the queue; its [`Completion`] moves the slice back
//!   (the owned-buffer model of tokio-uring). While an operation is in flight
//!   nobody but the device can touch its bytes, and the region cannot be
//!   unregistered, because the queue owns the slice and the slice keeps the
//!   region alive.
//! - [`aio::AsyncQueue`]: the same operations as futures, for async code
//!   on any runtime.
//! - [`SlicePool`]: fixed-size slices of one region, taken and given back
//!   from any thread without a lock, or awaited.
//! - [`Capabilities`] say what a device needs (alignment, transfer limits) and
//!   how it works (interrupt or polled completions, whether the CPU copies);
//!   [`StatsSnapshot`] counts pins, operations, bytes moved and the bytes the
//!   CPU copied, which is 0 on a true zero-copy path.
//!
//! ```
//! use pinio_core::{DmaBuf, Direction};
//! let buf = DmaBuf::new(8192)?;
//! assert_eq!(buf.as_ptr() as usize % pinio_core::page_size(), 0);
//! assert_eq!(Direction::Read.to_string(), "read (device to memory)");
//! # Ok::<(), pinio_core::Error>(())
//! ```
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod aio;
mod align;
mod buf;
mod caps;
#[cfg(feature = "conformance")]
pub mod conformance;
mod device;
pub mod domain;
mod error;
mod op;
mod pool;
mod queue;
mod region;
mod slice;
mod stats;

pub use align::{align_down, align_up, is_aligned, page_size};
pub use buf::{DmaBuf, DmaBufBuilder, HugePages};
pub use caps::{Capabilities, CompletionMode, Persistence, RegistrationSharing, VectoredIo};
pub use device::{Device, DeviceCore, DeviceId, Tally};
pub use domain::{Domain, DomainId, RegionKey, Registrar, Registration};
pub use error::{Error, RegisterError, Result};
pub use op::{Completion, Direction, Op, SliceTail};
pub use pool::{SlicePool, TakeSlice};
pub use queue::{FlushMode, FlushProgress, OpError, Queue, Rejected};
pub use region::{Region, UnregisterError};
pub use slice::Slice;
pub use stats::{Stats, StatsSnapshot};
