// SPDX-License-Identifier: GPL-2.0

//! Limits of the device, read once from the module parameters at load time.

use kernel::{page::PAGE_SIZE, prelude::*};

/// Largest accepted `mem_size` (1 GiB).
const MAX_MEM_SIZE: usize = 1 << 30;
/// Largest accepted `queue_depth`.
const MAX_QUEUE_DEPTH: u32 = 4096;

/// Validated module parameters.
///
/// # Invariants
///
/// `0 < mem_size <= 1 GiB`, `max_pinned_pages > 0`, `0 < queue_depth <= 4096`.
#[derive(Clone, Copy)]
pub(crate) struct Limits {
    /// Bytes of device memory.
    pub(crate) mem_size: usize,
    /// Most pages one open file may keep pinned.
    pub(crate) max_pinned_pages: usize,
    /// Most descriptors per open file submitted and not yet reaped; also the largest batch.
    pub(crate) queue_depth: u32,
}

impl Limits {
    /// Reads and checks the module parameters; `EINVAL` (the load fails) when one is out of range.
    pub(crate) fn from_params() -> Result<Self> {
        let mem_size = crate::module_parameters::mem_size.value();
        let max_pinned_pages = crate::module_parameters::max_pinned_pages.value();
        let queue_depth = crate::module_parameters::queue_depth.value();
        if mem_size == 0 || mem_size > MAX_MEM_SIZE {
            pr_err!("mem_size={} must be in 1..={}\n", mem_size, MAX_MEM_SIZE);
            return Err(EINVAL);
        }
        if max_pinned_pages == 0 || max_pinned_pages > usize::MAX / PAGE_SIZE {
            pr_err!("max_pinned_pages={} must be positive\n", max_pinned_pages);
            return Err(EINVAL);
        }
        if queue_depth == 0 || queue_depth > MAX_QUEUE_DEPTH {
            pr_err!("queue_depth={} must be in 1..={}\n", queue_depth, MAX_QUEUE_DEPTH);
            return Err(EINVAL);
        }
        // INVARIANT: every bound was checked above.
        Ok(Self {
            mem_size,
            max_pinned_pages,
            queue_depth,
        })
    }
}
