//! What an [`crate::NvmeUringDevice`] and its queues share.

use crate::NvmeUringOptions;
use crate::admin::Geometry;
use pinio_core::DeviceCore;
use std::fs::File;
use std::path::PathBuf;

/// What a device and its queues share.
pub(crate) struct Shared {
    pub(crate) core: DeviceCore,
    pub(crate) opts: NvmeUringOptions,
    pub(crate) path: PathBuf,
    /// The namespace's generic character device: fixed file 0 of every ring.
    pub(crate) file: File,
    /// The controller node, for admin commands and resets.
    pub(crate) ctrl: File,
    pub(crate) geometry: Geometry,
    /// log2 of the logical block size.
    pub(crate) lba_shift: u32,
}
