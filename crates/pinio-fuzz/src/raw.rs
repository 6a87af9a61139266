//! Raw calls on `/dev/pinio` with every argument field under the caller's control, returning the
//! kernel's answer unchanged (value or errno). The fuzzer needs this rather than
//! `pinio_kmod::sys`, which fills reserved fields and validates lengths itself.

use crate::Errno;
use std::ffi::CStr;

/// What a system call returned: its non-negative value, or the errno.
pub type Answer = Result<i64, Errno>;

fn answer(r: i64) -> Answer {
    if r < 0 { Err(Errno::last()) } else { Ok(r) }
}

/// `open(path, flags | O_CLOEXEC)`.
pub fn open(path: &CStr, flags: i32) -> Answer {
    // SAFETY: `path` is a NUL-terminated string.
    answer(i64::from(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) }))
}

/// `close(fd)`.
pub fn close(fd: i32) -> Answer {
    // SAFETY: Closing a descriptor number has no memory-safety preconditions; the caller owns it.
    answer(i64::from(unsafe { libc::close(fd) }))
}

/// `dup(fd)` (close-on-exec).
pub fn dup(fd: i32) -> Answer {
    // SAFETY: No memory is passed.
    answer(i64::from(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) }))
}

/// `ioctl(fd, cmd, arg)` with an integer (usually an address) argument.
///
/// The kernel validates user addresses itself, so any `arg` is memory-safe for pinio's commands;
/// a *valid* address of this process may be written by commands that write their argument
/// (INFO, REGISTER, REAP) or, for REAP, at the record address inside it.
///
/// # Safety
///
/// If `arg` (or an address inside the structure it points to) is a valid address of this
/// process, the kernel may write there as the command encodes: the caller must own that memory
/// and expect the write.
pub unsafe fn ioctl(fd: i32, cmd: u32, arg: u64) -> Answer {
    // SAFETY: Per the contract, writes the kernel may make land in memory the caller owns; invalid
    // addresses make the kernel answer EFAULT without touching anything.
    answer(i64::from(unsafe { libc::ioctl(fd, cmd as libc::c_ulong, arg) }))
}

/// `ioctl(fd, cmd, &mut arg)` for a structure argument owned by the caller.
pub fn ioctl_on<T>(fd: i32, cmd: u32, arg: &mut T) -> Answer {
    // SAFETY: `arg` is a live, exclusively borrowed `T`; the kernel reads or writes at most the
    // size `cmd` encodes, which callers pass as `size_of::<T>()` or less. Addresses inside `T`
    // are the caller's business (see `ioctl`).
    unsafe { ioctl(fd, cmd, arg as *mut T as u64) }
}

/// `pread(fd, addr, len, offset)` into raw memory.
///
/// # Safety
///
/// `[addr, addr + len)`, where it is valid memory of this process, must be owned by the caller
/// and writable by the kernel without breaking Rust's aliasing rules.
pub unsafe fn pread(fd: i32, addr: u64, len: usize, offset: i64) -> Answer {
    // SAFETY: Per the contract; invalid addresses give EFAULT.
    answer(unsafe { libc::pread(fd, addr as *mut libc::c_void, len, offset) } as i64)
}

/// `pwrite(fd, addr, len, offset)` from raw memory (any address: the kernel only reads it).
pub fn pwrite(fd: i32, addr: u64, len: usize, offset: i64) -> Answer {
    // SAFETY: The kernel only reads `[addr, addr + len)` and answers EFAULT if it is not mapped.
    answer(unsafe { libc::pwrite(fd, addr as *const libc::c_void, len, offset) } as i64)
}

/// `read(fd, addr, len)` at the file position.
///
/// # Safety
///
/// As [`pread`].
pub unsafe fn read(fd: i32, addr: u64, len: usize) -> Answer {
    // SAFETY: Per the contract.
    answer(unsafe { libc::read(fd, addr as *mut libc::c_void, len) } as i64)
}

/// `write(fd, addr, len)` at the file position.
pub fn write(fd: i32, addr: u64, len: usize) -> Answer {
    // SAFETY: The kernel only reads the range.
    answer(unsafe { libc::write(fd, addr as *const libc::c_void, len) } as i64)
}

/// `lseek(fd, offset, whence)`.
pub fn lseek(fd: i32, offset: i64, whence: i32) -> Answer {
    // SAFETY: No memory is passed.
    answer(unsafe { libc::lseek(fd, offset, whence) })
}

/// `poll` on one fd for `POLLIN | POLLOUT`; returns the `revents`.
pub fn poll(fd: i32, timeout_ms: i32) -> Answer {
    let mut p = libc::pollfd { fd, events: libc::POLLIN | libc::POLLOUT, revents: 0 };
    // SAFETY: One valid pollfd.
    let r = unsafe { libc::poll(&mut p, 1, timeout_ms) };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(i64::from(p.revents))
}

/// `mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset)`; unmaps at once on success.
pub fn mmap_shared(fd: i32, len: usize, offset: i64) -> Answer {
    // SAFETY: A new mapping at an address the kernel chooses; unmapped right away.
    let p = unsafe {
        libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, offset)
    };
    if p == libc::MAP_FAILED {
        return Err(Errno::last());
    }
    // SAFETY: `p` is the mapping just made.
    unsafe { libc::munmap(p, len) };
    Ok(p as i64)
}

/// `poll` on one fd for `events`; returns the `revents`.
pub fn poll_events(fd: i32, events: i16, timeout_ms: i32) -> Answer {
    let mut p = libc::pollfd { fd, events, revents: 0 };
    // SAFETY: One valid pollfd.
    let r = unsafe { libc::poll(&mut p, 1, timeout_ms) };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(i64::from(p.revents))
}
