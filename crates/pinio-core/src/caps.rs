//! What a device needs and how it works.

use crate::{DomainId, Error, Op, Result, is_aligned};

/// How a device reports completions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompletionMode {
    /// The operation is done when `submit` returns.
    Synchronous,
    /// The device signals completion (an io_uring CQE, an MSI, a kernel
    /// worker's wake-up, a copy queue's worker thread); waiting sleeps.
    Interrupt,
    /// Completions are found by polling device memory; waiting spins.
    Poll,
}

/// How far one registration reaches in its domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationSharing {
    /// One registration serves every device and queue of the domain: the
    /// memory is pinned, charged and mapped once.
    Domain,
    /// Every queue holds its own registration of each region (io_uring
    /// before Linux 6.13, which cannot clone a buffer table): regions are
    /// accepted by every device of the domain, but the memory is pinned and
    /// charged to the memory limit once per queue.
    PerQueue,
}

/// What a completed write means for durability on a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// The device's memory does not outlive it (the echo device's memory,
    /// edu's buffer): nothing is made durable; a flush only waits for the
    /// writes before it (a drain).
    None,
    /// A completed write is durable as it completes (no volatile cache); a
    /// flush only drains.
    WriteThrough,
    /// A completed write may sit in a volatile cache (the page cache, a
    /// drive's write cache): only a completed [`crate::Queue::flush`] makes
    /// it durable.
    WriteBack,
}

/// How a device runs a vectored operation ([`crate::Op::readv`],
/// [`crate::Op::writev`]: several slices, one contiguous device range).
///
/// Whatever the answer, [`crate::DeviceCore::admit`] checks every segment
/// (its domain, alignment and length) and the total transfer (alignment,
/// [`Capabilities::max_transfer`], bounds) before a backend sees the
/// operation, and a refusal hands every slice back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectoredIo {
    /// One device command moves every segment: an io_uring
    /// `READV_FIXED`/`WRITEV_FIXED` SQE, one NVMe command with a PRP list
    /// across the slices, one gathered `pread`/`pwrite` of the copy
    /// backend.
    Native,
    /// The backend splits the operation into one command per segment and
    /// completes it once, when all of them are done (the bytes of a failed
    /// one are reported as the error; the others may have moved). Correct
    /// everywhere, but several commands where a native device needs one.
    Emulated,
    /// The backend cannot run it (a DMA engine without scatter-gather, an
    /// ABI without descriptor chains): pushing one is refused with
    /// [`Error::Unsupported`], naming the backend, every slice handed back;
    /// push one operation per slice at consecutive device offsets instead.
    Unsupported,
}

/// What a device requires of operations handed to it, and what it does.
///
/// Every backend fills one in at open time; [`Capabilities::check`] validates
/// an operation against it before anything reaches the device.
#[derive(Debug, Clone)]
pub struct Capabilities {
    /// The backend's name (`"copy"`, `"uring"`, `"kmod"`, `"vfio"`).
    pub backend: &'static str,
    /// Alignment of host memory addresses handed to the device (the address
    /// of each slice), in bytes.
    pub mem_align: u64,
    /// Alignment of buffers at registration (the address of each region).
    pub register_align: u64,
    /// Alignment of device offsets.
    pub offset_align: u64,
    /// Granularity of transfer lengths.
    pub len_align: u64,
    /// Largest transfer of one operation, in bytes.
    pub max_transfer: u64,
    /// Largest amount of memory that may be registered at once, if known.
    pub max_pinned_bytes: Option<u64>,
    /// Size of the device address space in bytes when the device was
    /// opened. A file resized through its device (`set_len`, `allocate`)
    /// changes the size the device checks bounds against:
    /// [`crate::DeviceCore::size`] and [`crate::Device::size`] give the
    /// current one.
    pub device_size: u64,
    /// How completions are reported.
    pub completion: CompletionMode,
    /// Whether the CPU copies payload bytes on this path (false means
    /// zero-copy: the device moves the bytes itself).
    pub cpu_copies: bool,
    /// Whether registration pins memory (or maps it into an IOMMU).
    pub pins_memory: bool,
    /// Deepest queue [`crate::Device::queue`] makes.
    pub max_queue_depth: usize,
    /// How far one registration reaches in the device's domain.
    pub sharing: RegistrationSharing,
    /// What a completed write means for durability, and so what
    /// [`crate::Queue::flush`] does.
    pub persistence: Persistence,
    /// Whether the device takes writes (`false`: opened read-only; a write
    /// is refused at push with [`Error::ReadOnly`]).
    pub writable: bool,
    /// Whether a read may run past the end of the device address space and
    /// complete short (files: the bytes up to the end of the file), as long
    /// as it starts inside. Writes never may.
    pub short_reads_at_end: bool,
    /// How the device runs vectored operations.
    pub vectored: VectoredIo,
    /// Most segments (slices) of one vectored operation (1 when
    /// [`Capabilities::vectored`] is [`VectoredIo::Unsupported`]).
    pub max_segments: usize,
}

impl Capabilities {
    /// Checks `op` against these capabilities, for a device of `domain`:
    /// the slice's domain, zero length, alignment of address, offset and
    /// length, the transfer limit and the bounds of the device address space
    /// (of [`Capabilities::device_size`], the size at open). For a vectored
    /// operation: whether the device runs them ([`Capabilities::vectored`]),
    /// the segment count ([`Capabilities::max_segments`]), every segment's
    /// domain, length and address (each length a multiple of
    /// [`Capabilities::len_align`]), then the total as for one slice.
    pub fn check(&self, domain: DomainId, op: &Op) -> Result<()> {
        self.check_at_size(domain, op, self.device_size)
    }

    /// [`Capabilities::check`] against a device address space of
    /// `device_size` bytes (the device's current size,
    /// [`crate::DeviceCore::size`]) instead of the size at open.
    pub fn check_at_size(&self, domain: DomainId, op: &Op, device_size: u64) -> Result<()> {
        let len = if op.is_vectored() {
            self.check_segments(domain, op)?
        } else {
            self.check_segment(domain, &op.slice, op, false)?
        };
        if !is_aligned(op.dev_offset, self.offset_align) {
            return Err(Error::Misaligned { what: "device offset", value: op.dev_offset, required: self.offset_align });
        }
        if !is_aligned(len, self.len_align) {
            return Err(Error::Misaligned { what: "length", value: len, required: self.len_align });
        }
        if len > self.max_transfer {
            return Err(Error::TooLarge { len, max: self.max_transfer });
        }
        match op.dev_offset.checked_add(len) {
            Some(end) if end <= device_size => Ok(()),
            // A read that starts inside completes short at the end.
            Some(_) if self.short_reads_at_end && op.dir == crate::Direction::Read && op.dev_offset < device_size => {
                Ok(())
            }
            _ => {
                Err(Error::OutOfBounds { what: "device address space", offset: op.dev_offset, len, limit: device_size })
            }
        }
    }

    /// The device-side checks of [`Capabilities::check_at_size`] alone, for
    /// an operation of `len` bytes whose memory side was admitted before:
    /// the alignment of `dev_offset`, then the bounds (with the short read
    /// at the end that [`Capabilities::short_reads_at_end`] allows), with
    /// the same errors.
    pub(crate) fn check_device_range(
        &self,
        dir: crate::Direction,
        len: u64,
        dev_offset: u64,
        device_size: u64,
    ) -> Result<()> {
        if !is_aligned(dev_offset, self.offset_align) {
            return Err(Error::Misaligned { what: "device offset", value: dev_offset, required: self.offset_align });
        }
        match dev_offset.checked_add(len) {
            Some(end) if end <= device_size => Ok(()),
            Some(_) if self.short_reads_at_end && dir == crate::Direction::Read && dev_offset < device_size => Ok(()),
            _ => Err(Error::OutOfBounds { what: "device address space", offset: dev_offset, len, limit: device_size }),
        }
    }

    /// The checks of one slice, in this order: its domain, its length, a
    /// write to a read-only device, its address; a segment of a vectored
    /// operation (`segment`) must also have a length that follows
    /// `len_align`. Returns its length.
    fn check_segment(&self, domain: DomainId, slice: &crate::Slice, op: &Op, segment: bool) -> Result<u64> {
        if slice.domain_id() != domain {
            return Err(Error::ForeignRegion { region_domain: slice.domain_id(), domain });
        }
        let len = slice.len() as u64;
        if len == 0 {
            return Err(Error::ZeroLength {
                what: if segment { "segment of a vectored transfer" } else { "transfer" },
            });
        }
        if op.dir == crate::Direction::Write && !self.writable {
            return Err(Error::ReadOnly);
        }
        let addr = slice.as_ptr() as u64;
        if !is_aligned(addr, self.mem_align) {
            let what = if segment { "segment buffer address" } else { "buffer address" };
            return Err(Error::Misaligned { what, value: addr, required: self.mem_align });
        }
        if segment && !is_aligned(len, self.len_align) {
            return Err(Error::Misaligned { what: "segment length", value: len, required: self.len_align });
        }
        Ok(len)
    }

    /// The checks of a vectored operation's segments: whether the device
    /// runs vectored operations at all, their count, then each segment;
    /// returns the total length.
    #[cold]
    fn check_segments(&self, domain: DomainId, op: &Op) -> Result<u64> {
        if self.vectored == VectoredIo::Unsupported {
            return Err(Error::Unsupported {
                what: format!("a vectored operation ({} slices) on the {} backend", op.segment_count(), self.backend),
                hint: "push one operation per slice at consecutive device offsets (Capabilities::vectored says which backends run vectored operations)".into(),
            });
        }
        let count = op.segment_count();
        if count > self.max_segments {
            return Err(Error::TooManySegments { count, max: self.max_segments });
        }
        let mut total = 0u64;
        for s in op.segments() {
            total = total.saturating_add(self.check_segment(domain, s, op, true)?);
        }
        Ok(total)
    }
}

/// The tests of [`Capabilities::check`] as masks, so that accepting a valid
/// operation is a few instructions.
///
/// # Invariants
///
/// [`Admission::admits`] returns `true` only for operations that
/// [`Capabilities::check_at_size`] accepts for the same domain,
/// capabilities and device size (a device's capabilities never change after
/// it is opened; its size may, so the caller passes the size it read). When
/// it returns `false` the caller runs [`Capabilities::check_at_size`] with
/// the same size, which names the reason, so the errors are exactly the
/// model's.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Admission {
    domain: DomainId,
    /// `mem_align - 1` (0 when the alignment is 0 or 1): the bits a buffer
    /// address must not have.
    mem_mask: u64,
    offset_mask: u64,
    len_mask: u64,
    max_transfer: u64,
    /// Whether writes are admitted at all.
    writable: bool,
}

/// The bits a value aligned to `align` has clear, as [`is_aligned`] reads an
/// alignment (0 and 1 accept anything).
fn mask(align: u64) -> u64 {
    align.saturating_sub(1)
}

impl Admission {
    pub(crate) fn new(domain: DomainId, caps: &Capabilities) -> Admission {
        Admission {
            domain,
            mem_mask: mask(caps.mem_align),
            offset_mask: mask(caps.offset_align),
            len_mask: mask(caps.len_align),
            max_transfer: caps.max_transfer,
            writable: caps.writable,
        }
    }

    /// Whether a `len`-byte operation admitted before passes the
    /// device-side tests at `dev_offset`: its alignment and the bounds.
    #[inline]
    pub(crate) fn admits_range(&self, len: u64, dev_offset: u64, device_size: u64) -> bool {
        let inside = len <= device_size && dev_offset <= device_size - len;
        (dev_offset & self.offset_mask == 0) & inside
    }

    /// Whether `op` passes every test of [`Capabilities::check_at_size`]
    /// for a device of `device_size` bytes.
    #[inline]
    pub(crate) fn admits(&self, op: &Op, device_size: u64) -> bool {
        let len = op.slice.len() as u64;
        let addr = op.slice.as_ptr() as u64;
        let misaligned = (addr & self.mem_mask) | (op.dev_offset & self.offset_mask) | (len & self.len_mask);
        // `len - 1 < max_transfer` is `0 < len <= max_transfer`, except that
        // it also refuses `len == max_transfer == u64::MAX`, which the slow
        // path then accepts.
        let sized = len.wrapping_sub(1) < self.max_transfer;
        let inside = len <= device_size && op.dev_offset <= device_size - len;
        let allowed = self.writable | (op.dir == crate::Direction::Read);
        // A vectored operation takes the slow path, which checks every
        // segment.
        (op.slice.domain_id() == self.domain) & (misaligned == 0) & sized & inside & allowed & op.rest.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn masks_read_alignments_as_is_aligned_does() {
        assert_eq!((mask(0), mask(1), mask(512), mask(4096)), (0, 0, 511, 4095));
    }
}
