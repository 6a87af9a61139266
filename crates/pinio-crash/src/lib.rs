//! Crash consistency and fault injection for pinio.
//!
//! - [`RecordDevice`] (`record:<log>:<selection>`) forwards every operation
//!   of any device and logs the device's contents when recording began,
//!   every write's bytes and device offset, every completion and every
//!   flush, in order, to a crash log ([`log`] documents the format).
//! - [`crash`] reads such a log and produces the crash states the flush
//!   contract allows: everything a completed flush made durable, plus any
//!   subset of the writes not yet durable, in any order their completions
//!   allow, torn at the device's atomic unit; it materializes each as an
//!   image file. `pinio crash-test` runs a checker on every image.
//! - [`FaultDevice`] (`fault:<rules>:<selection>`) makes chosen operations
//!   fail (EIO, ENOSPC), move fewer bytes, or complete late or out of
//!   order, by rule or at random with a seed ([`fault::rules`]).
//!
//! Both wrappers are the inner device as far as regions, capabilities and
//! statistics go, so they stack over any backend (`fault:` over `record:`
//! over `uring:`), and a guest test can wrap an NVMe or edu device the same
//! way. The method and the figures are in docs/reliability.md.
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod crash;
pub mod fault;
pub mod log;
mod record;
mod rng;
mod snapshot;
mod tags;

pub use crash::{CrashTest, Report};
pub use fault::{FaultDevice, FaultPlan};
pub use record::RecordDevice;
pub use rng::SplitMix;
