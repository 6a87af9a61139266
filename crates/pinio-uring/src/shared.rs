//! [`Shared`]: what a device and its queues share.

use crate::UringOptions;
use crate::registry::Registry;
use pinio_core::DeviceCore;
use pinio_file::FileTarget;
use std::sync::Arc;

/// One opened file: the part every device has ([`DeviceCore`]: domain,
/// capabilities, statistics, admission) and the uring part.
pub(crate) struct Shared {
    pub(crate) core: DeviceCore,
    /// The options in effect: the target's own, with the domain's
    /// domain-wide part.
    pub(crate) opts: UringOptions,
    pub(crate) target: FileTarget,
    /// The domain's buffer table, which every queue ring subscribes to;
    /// `None` when the domain has no fixed buffers.
    pub(crate) registry: Option<Arc<Registry>>,
}
