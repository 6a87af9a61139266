//! The copy path: `pread`, `pwrite`, `read`, `write` and `lseek` with valid and hostile buffers
//! and offsets.

use super::Fuzzer;
use super::arena::Prot;
use super::expect::Expect;
use super::model::ECHO_WINDOW;
use super::wild::{is_kernel_or_noncanonical, wild_addr};
use crate::FuzzError;
use crate::raw;
use crate::rng::Rng;

/// Largest transfer the fuzzer asks for.
const MAX_COPY: u64 = 16 << 10;

impl Fuzzer {
    pub(crate) fn copy_path(&mut self, rng: &mut Rng) -> Result<(), FuzzError> {
        let (si, fd) = self.pick_fd(rng);
        let mem = self.lim.dev_mem;
        match rng.below(10) {
            0..=2 => {
                // pwrite from the arena (maybe partly inaccessible) into device memory.
                let (src, len) = if rng.chance(3, 4) {
                    self.arena.accessible_range(rng, Prot::Ro, MAX_COPY)
                } else {
                    self.arena
                        .denied_range(rng, Prot::Ro)
                        .unwrap_or_else(|| self.arena.accessible_range(rng, Prot::Ro, MAX_COPY))
                };
                let off =
                    if rng.chance(9, 10) { rng.range(ECHO_WINDOW, mem - 1) } else { rng.range(mem, mem + (1 << 30)) };
                let n = len.min(mem.saturating_sub(off));
                let expect = if off >= mem {
                    Expect::err(libc::ENOSPC)
                } else if self.arena.allows(src, n, Prot::Ro) {
                    Expect::value(n as i64)
                } else {
                    Expect::err(libc::EFAULT)
                };
                let got = raw::pwrite(fd, src, len as usize, off as i64);
                self.verify("pwrite", format!("pwrite({fd}, {src:#x}+{len:#x}, off {off:#x})"), &expect, got)?;
            }
            3..=5 => {
                // pread from device memory into the arena (maybe read-only or inaccessible there).
                let (dst, len) = if rng.chance(3, 4) {
                    self.arena.accessible_range(rng, Prot::Rw, MAX_COPY)
                } else {
                    self.arena
                        .denied_range(rng, Prot::Rw)
                        .unwrap_or_else(|| self.arena.accessible_range(rng, Prot::Rw, MAX_COPY))
                };
                let off = if rng.chance(9, 10) { rng.below(mem) } else { rng.range(mem, mem + (1 << 30)) };
                let n = len.min(mem.saturating_sub(off));
                let expect = if n == 0 || self.arena.allows(dst, n, Prot::Rw) {
                    Expect::value(n as i64)
                } else {
                    Expect::err(libc::EFAULT)
                };
                // SAFETY: The destination is the fuzzer's arena, whose bytes nothing in Rust
                // borrows; the kernel writes only where the mapping allows.
                let got = unsafe { raw::pread(fd, dst, len as usize, off as i64) };
                self.verify("pread", format!("pread({fd}, {dst:#x}+{len:#x}, off {off:#x})"), &expect, got)?;
            }
            6 => {
                // Wild buffers and offsets.
                let a = wild_addr(rng);
                let len = rng.skewed_len(MAX_COPY) as usize;
                let off = match rng.below(3) {
                    0 => -(rng.range(1, 1 << 40) as i64),
                    1 => i64::MAX - rng.below(len as u64 / 2) as i64,
                    _ => rng.range(ECHO_WINDOW, mem + 4096) as i64,
                };
                // The kernel's order: negative offset (pread/pwrite), access_ok of the buffer,
                // offset + length overflow, then the driver.
                let (pw, pr) = if off < 0 {
                    (Expect::err(libc::EINVAL), Expect::err(libc::EINVAL))
                } else if is_kernel_or_noncanonical(a) {
                    (Expect::err(libc::EFAULT), Expect::err(libc::EFAULT))
                } else if off.checked_add(len as i64).is_none() {
                    (Expect::err(libc::EINVAL), Expect::err(libc::EINVAL))
                } else if off >= mem as i64 {
                    (Expect::err(libc::ENOSPC), Expect::value(0))
                } else {
                    (Expect::err(libc::EFAULT), Expect::err(libc::EFAULT))
                };
                if rng.chance(1, 2) {
                    let got = raw::pwrite(fd, a, len, off);
                    self.verify("pwrite", format!("pwrite({fd}, {a:#x}+{len:#x}, off {off:#x})"), &pw, got)?;
                } else {
                    // SAFETY: A wild address is never memory of this process.
                    let got = unsafe { raw::pread(fd, a, len, off) };
                    self.verify("pread", format!("pread({fd}, {a:#x}+{len:#x}, off {off:#x})"), &pr, got)?;
                }
            }
            7 => {
                let (whence, off) = match rng.below(3) {
                    0 => (
                        libc::SEEK_SET,
                        rng.range(0, mem + 4096) as i64 - if rng.chance(1, 8) { mem as i64 * 2 } else { 0 },
                    ),
                    1 => (libc::SEEK_CUR, rng.range(0, 1 << 20) as i64 - (1 << 19)),
                    _ => (libc::SEEK_END, rng.range(0, mem) as i64 - if rng.chance(1, 8) { mem as i64 } else { 0 }),
                };
                let base = match whence {
                    libc::SEEK_CUR => self.sessions[si].pos,
                    _ => 0, // SEEK_SET; SEEK_END of a character device (i_size 0)
                };
                let target = base + off;
                let expect = if target < 0 { Expect::err(libc::EINVAL) } else { Expect::value(target) };
                let got = raw::lseek(fd, off, whence);
                let got = self.check("lseek", format!("lseek({fd}, {off}, {whence})"), &expect, got)?;
                if let Ok(p) = got {
                    self.sessions[si].pos = p;
                }
            }
            _ => {
                // read/write at the file position (moved out of the echo window first).
                if self.sessions[si].pos < ECHO_WINDOW as i64 {
                    let to = rng.range(ECHO_WINDOW, mem + 4096) as i64;
                    let got = raw::lseek(fd, to, libc::SEEK_SET);
                    self.verify("lseek", format!("lseek({fd}, {to}, SEEK_SET)"), &Expect::value(to), got)?;
                    self.sessions[si].pos = to;
                }
                let pos = self.sessions[si].pos as u64;
                let write = rng.chance(1, 2);
                let need = if write { Prot::Ro } else { Prot::Rw };
                let (buf, len) = self.arena.accessible_range(rng, need, MAX_COPY);
                let n = len.min(mem.saturating_sub(pos));
                let (got, expect, op) = if write {
                    let e = if pos >= mem { Expect::err(libc::ENOSPC) } else { Expect::value(n as i64) };
                    (raw::write(fd, buf, len as usize), e, "write")
                } else {
                    // SAFETY: As for pread above: the arena, written only where it allows.
                    (unsafe { raw::read(fd, buf, len as usize) }, Expect::value(n as i64), "read")
                };
                let got = self.check(op, format!("{op}({fd}, {buf:#x}+{len:#x}) at pos {pos:#x}"), &expect, got)?;
                if let Ok(k) = got {
                    self.sessions[si].pos += k;
                }
            }
        }
        Ok(())
    }
}
