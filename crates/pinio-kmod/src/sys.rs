//! A thin, safe client of `/dev/pinio`: one method per ioctl, errno kept.
//!
//! This is the layer the backend ([`crate::KmodDevice`]) is built on and the one the guest tests
//! use to provoke each errno of the ABI. Nothing here owns memory: [`PinioFd::register`] pins
//! whatever the caller names, and the caller keeps it mapped while it is registered.

use crate::abi;
use crate::error::{Call, KmodError};
use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// An open file of `/dev/pinio`: one kernel session with its regions and its completion queue.
///
/// Closing it (drop) makes the kernel wait for the session's in-flight DMA and unpin every region
/// it still holds.
#[derive(Debug)]
pub struct PinioFd {
    fd: File,
}

/// Issues `ioctl(fd, cmd, arg)` and returns its non-negative result.
///
/// # Safety
///
/// `arg` must point to a live `T` whose type matches the size and direction encoded in `cmd`.
unsafe fn ioctl<T>(fd: BorrowedFd<'_>, call: Call, cmd: u32, arg: *mut T) -> Result<i64, KmodError> {
    // SAFETY: Per this function's contract `arg` is valid for the access `cmd` encodes; the fd
    // is open for the duration of the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), cmd as libc::c_ulong, arg) };
    if r < 0 {
        return Err(KmodError::last(call));
    }
    Ok(r as i64)
}

impl PinioFd {
    /// Opens the device node (normally `/dev/pinio`) read-write, close-on-exec.
    pub fn open(path: impl AsRef<Path>) -> Result<PinioFd, KmodError> {
        let path = path.as_ref();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| KmodError::open(path, e))?;
        Ok(PinioFd { fd: file })
    }

    /// `PINIO_IOC_INFO`: the device, the limits and this session's usage. Checks the ABI version.
    pub fn info(&self) -> Result<abi::Info, KmodError> {
        let mut info = abi::Info::default();
        // SAFETY: `info` is a live `abi::Info`, which PINIO_IOC_INFO writes.
        unsafe { ioctl(self.fd.as_fd(), Call::Info, abi::PINIO_IOC_INFO, &mut info)? };
        if info.abi_version != abi::ABI_VERSION {
            return Err(KmodError::AbiMismatch { kernel: info.abi_version, user: abi::ABI_VERSION });
        }
        Ok(info)
    }

    /// `PINIO_IOC_REGISTER`: pins `[addr, addr + len)` of this process for the accesses in
    /// `access` (`abi::ACCESS_*`); returns the region id.
    ///
    /// The memory must stay mapped until the region is unregistered or the fd closed; unmapping
    /// it earlier is safe for the kernel (the pages stay pinned) but the device then works on
    /// pages this process no longer sees.
    pub fn register(&self, addr: u64, len: u64, access: u32) -> Result<u32, KmodError> {
        let mut args = abi::RegisterArgs { addr, len, access, region_id: 0 };
        // SAFETY: `args` is a live `abi::RegisterArgs`, read and written by PINIO_IOC_REGISTER.
        unsafe { ioctl(self.fd.as_fd(), Call::Register, abi::PINIO_IOC_REGISTER, &mut args)? };
        Ok(args.region_id)
    }

    /// `PINIO_IOC_UNREGISTER`: unpins a region (`EBUSY` while DMA on it is in flight).
    pub fn unregister(&self, region_id: u32) -> Result<(), KmodError> {
        let mut args = abi::UnregisterArgs { region_id, reserved: 0 };
        // SAFETY: `args` is a live `abi::UnregisterArgs`, read by PINIO_IOC_UNREGISTER.
        unsafe { ioctl(self.fd.as_fd(), Call::Unregister, abi::PINIO_IOC_UNREGISTER, &mut args)? };
        Ok(())
    }

    /// `PINIO_IOC_REGISTER_VEC`: registers every entry of `entries` (`addr`, `len`, `access`
    /// each, as for [`PinioFd::register`]) in one system call, or none, and writes each region id
    /// into its entry's `region_id`. Returns how many were registered (`entries.len()`).
    ///
    /// The same rule as for [`PinioFd::register`]: the memory must stay mapped while registered.
    /// More than [`abi::MAX_VEC`] entries (or none) is `EINVAL`.
    ///
    /// Entries that follow each other on adjacent pages (each starting on the page after the
    /// previous one's last, all with or all without [`abi::ACCESS_DEVICE_WRITE`]) are pinned
    /// together by the module, as one run: registering a pool of slices of one allocation in one
    /// call costs about what pinning its pages once costs, while each region is still
    /// unregistered on its own (docs/kmod.md, "Runs").
    pub fn register_vec(&self, entries: &mut [abi::RegisterArgs]) -> Result<usize, KmodError> {
        let count = u32::try_from(entries.len()).map_err(|_| KmodError::from_errno(Call::RegisterVec, libc::EINVAL))?;
        let mut args = abi::VecArgs { entries: entries.as_mut_ptr() as u64, count, flags: 0 };
        // SAFETY: `args` is a live `abi::VecArgs`, read by PINIO_IOC_REGISTER_VEC; its array is
        // `entries`, valid for reading and writing `count` `RegisterArgs` (the kernel writes only
        // their `region_id` fields) and exclusively borrowed for the call.
        let n = unsafe { ioctl(self.fd.as_fd(), Call::RegisterVec, abi::PINIO_IOC_REGISTER_VEC, &mut args)? };
        Ok(n as usize)
    }

    /// `PINIO_IOC_UNREGISTER_VEC`: unregisters every region named in `entries` in one system
    /// call, or none (`ENOENT`, `EBUSY` for the first offending entry; `EINVAL` for an id given
    /// twice or a nonzero `reserved`). Returns how many were unregistered.
    pub fn unregister_vec(&self, entries: &[abi::UnregisterArgs]) -> Result<usize, KmodError> {
        let count =
            u32::try_from(entries.len()).map_err(|_| KmodError::from_errno(Call::UnregisterVec, libc::EINVAL))?;
        self.unregister_vec_raw(entries.as_ptr() as u64, count, 0)
    }

    /// `PINIO_IOC_REGISTER_VEC` with raw arguments, for tests of bad input.
    ///
    /// # Safety
    ///
    /// If `[entries, entries + count * 24)` is valid memory of this process, the kernel may write
    /// the `region_id` fields of the entries there: the caller must own that memory and expect the
    /// write.
    pub unsafe fn register_vec_raw(&self, entries: u64, count: u32, flags: u32) -> Result<usize, KmodError> {
        let mut args = abi::VecArgs { entries, count, flags };
        // SAFETY: `args` is a live `abi::VecArgs`; the kernel validates the array address itself
        // (`EFAULT`), and writes there only where the caller accepted it (this function's contract).
        let n = unsafe { ioctl(self.fd.as_fd(), Call::RegisterVec, abi::PINIO_IOC_REGISTER_VEC, &mut args)? };
        Ok(n as usize)
    }

    /// `PINIO_IOC_UNREGISTER_VEC` with raw arguments, for tests of bad input (the kernel only reads
    /// the array).
    pub fn unregister_vec_raw(&self, entries: u64, count: u32, flags: u32) -> Result<usize, KmodError> {
        let mut args = abi::VecArgs { entries, count, flags };
        // SAFETY: `args` is a live `abi::VecArgs`, read by PINIO_IOC_UNREGISTER_VEC; the kernel only
        // reads the array and validates its address itself (`EFAULT`).
        let n = unsafe { ioctl(self.fd.as_fd(), Call::UnregisterVec, abi::PINIO_IOC_UNREGISTER_VEC, &mut args)? };
        Ok(n as usize)
    }

    /// `PINIO_IOC_SUBMIT`: queues every descriptor of `descs`, or none; returns how many.
    pub fn submit(&self, descs: &[abi::Desc]) -> Result<usize, KmodError> {
        let count = u32::try_from(descs.len()).map_err(|_| KmodError::from_errno(Call::Submit, libc::EINVAL))?;
        self.submit_raw(descs.as_ptr() as u64, count)
    }

    /// `PINIO_IOC_SUBMIT` with a raw descriptor address and count, for tests of bad input.
    pub fn submit_raw(&self, descs: u64, count: u32) -> Result<usize, KmodError> {
        let mut args = abi::SubmitArgs { descs, count, flags: 0 };
        // SAFETY: `args` is a live `abi::SubmitArgs`, read by PINIO_IOC_SUBMIT; the kernel checks
        // the descriptor address itself (`EFAULT`), so any value is safe to pass.
        let n = unsafe { ioctl(self.fd.as_fd(), Call::Submit, abi::PINIO_IOC_SUBMIT, &mut args)? };
        Ok(n as usize)
    }

    /// `PINIO_IOC_REAP`: moves up to `out.capacity() - out.len()` completion records into `out`,
    /// first waiting (interruptibly) until `min` are available (capped by the kernel at the
    /// number outstanding). Returns how many were added.
    pub fn reap(&self, out: &mut Vec<abi::CompletionRecord>, min: u32) -> Result<usize, KmodError> {
        let room = out.capacity() - out.len();
        if room == 0 {
            return Ok(0);
        }
        let max = u32::try_from(room).unwrap_or(u32::MAX);
        let start = out.len();
        let mut args = abi::ReapArgs {
            // SAFETY: `start <= capacity`, so the pointer stays inside (or one past) the allocation.
            records: unsafe { out.as_mut_ptr().add(start) } as u64,
            max,
            min: min.min(max),
            count: 0,
            reserved: 0,
        };
        // SAFETY: `args` is a live `abi::ReapArgs`; the kernel writes at most `max` records to the
        // spare capacity of `out`, which is valid for that many.
        unsafe { ioctl(self.fd.as_fd(), Call::Reap, abi::PINIO_IOC_REAP, &mut args)? };
        let n = (args.count as usize).min(room);
        // SAFETY: The kernel initialised `n <= room` records after `start`.
        unsafe { out.set_len(start + n) };
        Ok(n)
    }

    /// `fstat(2)` of the open file: which device node the session is of.
    pub fn metadata(&self) -> Result<std::fs::Metadata, KmodError> {
        self.fd.metadata().map_err(|e| KmodError::io(Call::Stat, e))
    }

    /// Issues an arbitrary ioctl with an integer argument, for tests of unknown commands.
    pub fn raw_ioctl(&self, cmd: u32, arg: u64) -> Result<i64, KmodError> {
        // SAFETY: The argument is an integer the module interprets; for commands it does not know
        // it answers ENOTTY without touching memory; for known ones it validates the user address.
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), cmd as libc::c_ulong, arg) };
        if r < 0 {
            return Err(KmodError::last(Call::Other));
        }
        Ok(r as i64)
    }

    /// The copy path: `pwrite(2)` of `buf` into device memory at `offset` (`copy_from_user`).
    pub fn pwrite(&self, buf: &[u8], offset: u64) -> Result<usize, KmodError> {
        self.fd.write_at(buf, offset).map_err(|e| KmodError::io(Call::Pwrite, e))
    }

    /// The copy path: `pread(2)` from device memory at `offset` into `buf` (`copy_to_user`).
    pub fn pread(&self, buf: &mut [u8], offset: u64) -> Result<usize, KmodError> {
        self.fd.read_at(buf, offset).map_err(|e| KmodError::io(Call::Pread, e))
    }

    /// Waits up to `timeout_ms` (-1: forever) for completions; returns whether some are ready.
    pub fn wait_readable(&self, timeout_ms: i32) -> Result<bool, KmodError> {
        let mut p = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: `p` is one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, timeout_ms) };
        if r < 0 {
            return Err(KmodError::last(Call::Poll));
        }
        Ok(p.revents & libc::POLLIN != 0)
    }
}

impl AsFd for PinioFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
