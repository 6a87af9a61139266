// SPDX-License-Identifier: GPL-2.0

//! The on-board memory of the echo device and its two access paths.
//!
//! - The DMA engine ([`DeviceMemory::dma`]) copies between the memory and pinned pages of a
//!   registered region ([`RegionRef`]): no user virtual address, no `copy_{from,to}_user`.
//! - The copy path ([`DeviceMemory::copy_to_user`], [`DeviceMemory::copy_from_user`]) serves
//!   `pread`/`pwrite` through `copy_to_user`/`copy_from_user`; it is the baseline.

use crate::{abi, limits::Limits, region::RegionRef};
use kernel::{
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
    uaccess::{UserSliceReader, UserSliceWriter},
};

/// State shared by every open file of `/dev/pinio`: the device memory and the limits.
///
/// # Invariants
///
/// `mem.len() == limits.mem_size`.
#[pin_data]
pub(crate) struct DeviceMemory {
    /// Device memory; the lock serialises the DMA engine and the copy path like a memory
    /// controller would.
    #[pin]
    mem: Mutex<VVec<u8>>,
    /// Limits read from the module parameters at load time.
    pub(crate) limits: Limits,
}

impl DeviceMemory {
    /// Allocates `limits.mem_size` bytes of zeroed device memory.
    pub(crate) fn new(limits: Limits) -> Result<Arc<Self>> {
        let mem = VVec::from_elem(0u8, limits.mem_size, GFP_KERNEL)?;
        // INVARIANT: `mem` has `limits.mem_size` bytes.
        Arc::pin_init(
            pin_init!(Self {
                mem <- new_mutex!(mem),
                limits,
            }),
            GFP_KERNEL,
        )
    }

    /// Checks that `[offset, offset + len)` lies in device memory: `ERANGE` if not.
    pub(crate) fn check_range(&self, offset: u64, len: u64) -> Result<(usize, usize)> {
        let end = offset.checked_add(len).ok_or(ERANGE)?;
        if end > self.limits.mem_size as u64 {
            return Err(ERANGE);
        }
        Ok((offset as usize, len as usize))
    }

    /// Executes one validated descriptor against `region`, returning the bytes moved.
    pub(crate) fn dma(&self, region: &RegionRef, desc: &abi::Desc) -> Result<usize> {
        let (dev_offset, len) = self.check_range(desc.dev_offset, desc.len)?;
        let region_offset = usize::try_from(desc.region_offset).map_err(|_| ERANGE)?;
        let mut mem = self.mem.lock();
        let window = &mut mem[dev_offset..dev_offset + len];
        match desc.dir {
            abi::DIR_TO_DEVICE => region.read(region_offset, window)?,
            abi::DIR_FROM_DEVICE => region.write(region_offset, window)?,
            _ => return Err(EINVAL),
        }
        Ok(len)
    }

    /// `pread` path: copies device memory from `*pos` to userspace with `copy_to_user`, stopping
    /// at the end of the memory (0 at or past the end).
    pub(crate) fn copy_to_user(&self, mut out: UserSliceWriter, pos: &mut i64) -> Result<usize> {
        let start = usize::try_from(*pos).map_err(|_| EINVAL)?;
        if start >= self.limits.mem_size {
            return Ok(0);
        }
        let n = core::cmp::min(out.len(), self.limits.mem_size - start);
        let mem = self.mem.lock();
        out.write_slice(&mem[start..start + n])?;
        *pos += n as i64;
        Ok(n)
    }

    /// `pwrite` path: copies userspace into device memory at `*pos` with `copy_from_user`,
    /// truncated at the end of the memory; `ENOSPC` at or past the end.
    pub(crate) fn copy_from_user(&self, mut input: UserSliceReader, pos: &mut i64) -> Result<usize> {
        let start = usize::try_from(*pos).map_err(|_| EINVAL)?;
        if start >= self.limits.mem_size {
            return Err(ENOSPC);
        }
        let n = core::cmp::min(input.len(), self.limits.mem_size - start);
        let mut mem = self.mem.lock();
        input.read_slice(&mut mem[start..start + n])?;
        *pos += n as i64;
        Ok(n)
    }
}
