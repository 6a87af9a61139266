//! [`Limits`]: a queue's copy of what [`Capabilities::check`] tests, as
//! masks, so that accepting a valid operation is a few instructions.

use pinio_core::{Capabilities, DeviceId, Op};

/// The device id and [`Capabilities`] of a queue's device, precomputed for
/// the fast path of `push`.
///
/// # Invariants
///
/// [`Limits::admits`] returns `true` only for operations that
/// [`Capabilities::check`] accepts for the same device id and capabilities
/// (the capabilities of a device never change after it is opened). When it
/// returns `false` the caller runs [`Capabilities::check`] itself, which
/// names the reason, so the errors are exactly the model's.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    device: DeviceId,
    /// `mem_align - 1` (0 when the alignment is 0 or 1): the bits a buffer
    /// address must not have.
    mem_mask: u64,
    offset_mask: u64,
    len_mask: u64,
    max_transfer: u64,
    device_size: u64,
}

/// The bits a value aligned to `align` has clear, as
/// [`pinio_core::is_aligned`] reads an alignment (0 and 1 accept anything).
fn mask(align: u64) -> u64 {
    align.saturating_sub(1)
}

impl Limits {
    pub(crate) fn new(device: DeviceId, caps: &Capabilities) -> Limits {
        Limits {
            device,
            mem_mask: mask(caps.mem_align),
            offset_mask: mask(caps.offset_align),
            len_mask: mask(caps.len_align),
            max_transfer: caps.max_transfer,
            device_size: caps.device_size,
        }
    }

    /// Whether `op` passes every test of [`Capabilities::check`]: its slice
    /// belongs to this device, its length is not 0, its buffer address,
    /// device offset and length are aligned, its length is at most
    /// `max_transfer` and it ends inside the device.
    #[inline]
    pub(crate) fn admits(&self, op: &Op) -> bool {
        let len = op.slice.len() as u64;
        let addr = op.slice.as_ptr() as u64;
        let misaligned = (addr & self.mem_mask) | (op.dev_offset & self.offset_mask) | (len & self.len_mask);
        // `len - 1 < max_transfer` is `0 < len <= max_transfer`, except that
        // it also refuses `len == max_transfer == u64::MAX`, which the slow
        // path then accepts.
        let sized = len.wrapping_sub(1) < self.max_transfer;
        let inside = len <= self.device_size && op.dev_offset <= self.device_size - len;
        (op.slice.device_id() == self.device) & (misaligned == 0) & sized & inside
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinio_core::CompletionMode;

    fn caps(mem: u64, off: u64, len: u64, max: u64, size: u64) -> Capabilities {
        Capabilities {
            backend: "test",
            mem_align: mem,
            register_align: mem,
            offset_align: off,
            len_align: len,
            max_transfer: max,
            max_pinned_bytes: None,
            device_size: size,
            completion: CompletionMode::Interrupt,
            cpu_copies: false,
            pins_memory: false,
        }
    }

    #[test]
    fn masks_read_alignments_as_is_aligned_does() {
        assert_eq!(mask(0), 0);
        assert_eq!(mask(1), 0);
        assert_eq!(mask(512), 511);
        assert_eq!(mask(4096), 4095);
    }

    #[test]
    fn limits_copy_the_capabilities() {
        let id = DeviceId::next();
        let l = Limits::new(id, &caps(4096, 512, 1, 1 << 20, 1 << 30));
        assert_eq!((l.mem_mask, l.offset_mask, l.len_mask), (4095, 511, 0));
        assert_eq!((l.max_transfer, l.device_size, l.device), (1 << 20, 1 << 30, id));
    }
}
