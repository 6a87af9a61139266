//! The base snapshot: what the device held before recording began, logged
//! as `BASE` records of its non-zero 4 KiB blocks, so that crash images
//! start from exactly that.

use crate::log::LogWriter;
use pinio_core::{Device, Error, Op, Result};

/// Bytes read per operation.
const CHUNK: usize = 1 << 20;
/// The granularity at which zero blocks are left out of the log.
pub(crate) const BLOCK: usize = 4096;

/// Reads the whole of `dev` and logs its non-zero blocks. Returns the
/// bytes logged.
pub(crate) fn snapshot(dev: &dyn Device, log: &LogWriter) -> Result<u64> {
    let size = dev.size();
    if size == 0 {
        return Ok(0);
    }
    let caps = dev.capabilities();
    let unit = caps.offset_align.max(caps.len_align).max(1);
    let chunk = (CHUNK as u64).min(caps.max_transfer / unit * unit).max(unit);
    let region = dev.alloc(chunk as usize)?;
    let mut q = dev.queue(1)?;
    let mut logged = 0u64;
    let mut off = 0u64;
    while off < size {
        let want = (size - off).min(chunk);
        let len = want.div_ceil(unit) * unit;
        if off + len > size && !caps.short_reads_at_end {
            return Err(Error::Unsupported {
                what: format!(
                    "a base snapshot of {} (its last {want} bytes are not a whole {unit}-byte unit)",
                    dev.describe()
                ),
                hint: "record a device whose size is a multiple of its transfer unit".into(),
            });
        }
        let slice = region.slice(0, len as usize)?;
        let c = q.run(Op::read(slice, off, 0)).map_err(Error::from)?;
        let n = c.result?;
        let got = (n as u64).min(want) as usize;
        if got == 0 {
            break;
        }
        let bytes = &c.slice[..got];
        let mut b = 0;
        while b < got {
            // A run of non-zero blocks, logged as one record.
            let start = b;
            while b < got && bytes[b..(b + BLOCK).min(got)].iter().any(|&x| x != 0) {
                b += BLOCK;
            }
            let end = b.min(got);
            if end > start {
                log.base(off + start as u64, &bytes[start..end])?;
                logged += (end - start) as u64;
            } else {
                b += BLOCK;
            }
        }
        off += got as u64;
    }
    Ok(logged)
}
