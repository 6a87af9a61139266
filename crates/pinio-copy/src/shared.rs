//! [`Shared`]: what a copy device, its queues and their workers share.

use pinio_core::DeviceCore;
use pinio_file::{DioAlign, FileTarget};

/// One opened file: the part every device has ([`DeviceCore`]: domain,
/// capabilities, current size, statistics, admission) and the copy part.
pub(crate) struct Shared {
    pub(crate) core: DeviceCore,
    pub(crate) target: FileTarget,
    /// Size of each bounce buffer (one per worker, one per depth-1 queue).
    pub(crate) bounce_bytes: usize,
    /// The alignment strict mode enforces (uring's O_DIRECT alignment on
    /// this file), when on.
    pub(crate) strict: Option<DioAlign>,
}
