//! Session-level calls: open, close, dup, INFO, poll, mmap of the device, unknown ioctls; and the
//! fuzzer's setup and shutdown.

use super::arena::{Arena, Scratch};
use super::expect::Expect;
use super::model::{Limits, SessionM};
use super::wild::wild_addr;
use super::{Config, Fuzzer, MAX_SESSIONS, Report};
use crate::FuzzError;
use crate::raw;
use crate::rng::Rng;
use pinio_kmod::abi;
use std::collections::VecDeque;

impl Fuzzer {
    /// Opens the echo session, reads the limits, maps the arena.
    pub(crate) fn new(cfg: &Config, rng: &mut Rng) -> Result<Fuzzer, FuzzError> {
        let fd = raw::open(&cfg.device, libc::O_RDWR).map_err(|e| FuzzError::Setup {
            what: format!("open {:?}", cfg.device),
            errno: e,
            hint: "is pinio.ko loaded?",
        })? as i32;
        let mut info = abi::Info::default();
        raw::ioctl_on(fd, abi::PINIO_IOC_INFO, &mut info).map_err(|e| FuzzError::Setup {
            what: "PINIO_IOC_INFO".into(),
            errno: e,
            hint: "module and ABI mismatch?",
        })?;
        if info.abi_version != abi::ABI_VERSION {
            return Err(FuzzError::Check(format!("module ABI {} != {}", info.abi_version, abi::ABI_VERSION)));
        }
        let lim = Limits {
            page: u64::from(info.page_size),
            dev_mem: info.dev_mem_size,
            cap_pages: info.max_pinned_pages,
            depth: info.queue_depth,
            max_batch: info.max_batch,
        };
        if lim.dev_mem < 2 * super::model::ECHO_WINDOW {
            return Err(FuzzError::Check(format!(
                "device memory of {} bytes is too small for the fuzzer",
                lim.dev_mem
            )));
        }
        println!(
            "fuzz: device memory {} MiB, cap {} pages per open file, queue depth {}",
            lim.dev_mem >> 20,
            lim.cap_pages,
            lim.depth
        );
        let echo = super::ops_dma::Echo::new(fd)?;
        Ok(Fuzzer {
            seed: cfg.seed,
            device: cfg.device.clone(),
            lim,
            sessions: Vec::new(),
            arena: Arena::new(rng)?,
            scratch: Scratch::new()?,
            echo,
            next_tag: 1,
            index: 0,
            trace: VecDeque::new(),
            report: Report::default(),
        })
    }

    /// Closes every open file (with whatever DMA is still in flight).
    pub(crate) fn shutdown(&mut self) -> Result<(), FuzzError> {
        let fds: Vec<i32> = self.sessions.iter().flat_map(|s| s.fds.clone()).collect();
        for fd in fds {
            self.verify("close", format!("close({fd}) at shutdown"), &Expect::value(0), raw::close(fd))?;
        }
        self.sessions.clear();
        let fd = self.echo.fd;
        self.verify("close", format!("close({fd}) echo session"), &Expect::value(0), raw::close(fd))?;
        Ok(())
    }

    /// A random session index and one of its fds.
    pub(crate) fn pick_fd(&self, rng: &mut Rng) -> (usize, i32) {
        let si = rng.index(self.sessions.len());
        let s = &self.sessions[si];
        (si, *rng.pick(&s.fds))
    }

    pub(crate) fn open(&mut self, rng: &mut Rng) -> Result<(), FuzzError> {
        if self.sessions.len() >= MAX_SESSIONS {
            return self.close(rng);
        }
        let got = raw::open(&self.device, libc::O_RDWR);
        let got = self.check("open", "open(/dev/pinio, O_RDWR)".into(), &Expect::ok(), got)?;
        if let Ok(fd) = got {
            self.sessions.push(SessionM::new(fd as i32));
        }
        Ok(())
    }

    pub(crate) fn close(&mut self, rng: &mut Rng) -> Result<(), FuzzError> {
        if self.sessions.is_empty() || rng.chance(1, 20) {
            let fd = 4000 + rng.below(1000) as i32;
            let got = raw::close(fd);
            self.verify("close", format!("close({fd}) never opened"), &Expect::err(libc::EBADF), got)?;
            return Ok(());
        }
        let (si, fd) = self.pick_fd(rng);
        let s = &self.sessions[si];
        let what = format!(
            "close({fd}) session with {} regions, {} pages, {} outstanding, {} fds",
            s.regions.len(),
            s.pinned,
            s.pending.len(),
            s.fds.len()
        );
        self.verify("close", what, &Expect::value(0), raw::close(fd))?;
        let s = &mut self.sessions[si];
        s.fds.retain(|&f| f != fd);
        if s.fds.is_empty() {
            self.sessions.swap_remove(si);
        }
        Ok(())
    }

    pub(crate) fn dup(&mut self, rng: &mut Rng) -> Result<(), FuzzError> {
        let (si, fd) = self.pick_fd(rng);
        if self.sessions[si].fds.len() >= 3 {
            return self.info(rng);
        }
        let got = self.check("dup", format!("dup({fd})"), &Expect::ok(), raw::dup(fd))?;
        if let Ok(new) = got {
            self.sessions[si].fds.push(new as i32);
        }
        Ok(())
    }

    pub(crate) fn info(&mut self, rng: &mut Rng) -> Result<(), FuzzError> {
        let (si, fd) = self.pick_fd(rng);
        match rng.below(10) {
            0 => {
                let a = wild_addr(rng);
                // SAFETY: `a` is never a valid address of this process (kernel, non-canonical or
                // below mmap_min_addr), so the kernel cannot write our memory.
                let got = unsafe { raw::ioctl(fd, abi::PINIO_IOC_INFO, a) };
                self.verify("INFO", format!("INFO({fd}, arg {a:#x})"), &Expect::err(libc::EFAULT), got)?;
            }
            1 => {
                let a = self.scratch.read_only();
                // SAFETY: The read-only scratch page: the kernel's write fails with EFAULT.
                let got = unsafe { raw::ioctl(fd, abi::PINIO_IOC_INFO, a) };
                self.verify("INFO", format!("INFO({fd}, read-only arg)"), &Expect::err(libc::EFAULT), got)?;
            }
            _ => {
                let mut info = abi::Info::default();
                let got = raw::ioctl_on(fd, abi::PINIO_IOC_INFO, &mut info);
                self.verify("INFO", format!("INFO({fd})"), &Expect::value(0), got)?;
                let s = &self.sessions[si];
                let want = abi::Info {
                    abi_version: abi::ABI_VERSION,
                    page_size: self.lim.page as u32,
                    dev_mem_size: self.lim.dev_mem,
                    max_pinned_pages: self.lim.cap_pages,
                    pinned_pages: s.pinned,
                    queue_depth: self.lim.depth,
                    max_batch: self.lim.max_batch,
                    outstanding: s.pending.len() as u32,
                    regions: s.regions.len() as u32,
                };
                if info != want {
                    return Err(self.oracle(format!("INFO({fd})"), format!("{want:?}"), format!("{info:?}")));
                }
            }
        }
        Ok(())
    }

    pub(crate) fn poll(&mut self, rng: &mut Rng) -> Result<(), FuzzError> {
        let (si, fd) = self.pick_fd(rng);
        let pending = self.sessions[si].pending.len();
        if pending > 0 && rng.chance(1, 4) {
            // Blocking wait for POLLIN only: a completion must wake us.
            let got = raw::poll_events(fd, libc::POLLIN, 10_000);
            // poll(2) reports only the requested events (plus errors): exactly POLLIN.
            let want = Expect::value(i64::from(libc::POLLIN));
            self.verify("poll", format!("poll({fd}, POLLIN, 10 s) with {pending} outstanding"), &want, got)?;
            return self.reap_expecting_some(si, fd);
        }
        let got = raw::poll(fd, 0);
        let got = self.check("poll", format!("poll({fd}, 0) with {pending} outstanding"), &Expect::ok(), got)?;
        let revents = got.unwrap_or(0) as i16;
        let writable = revents & libc::POLLOUT != 0;
        if writable != (pending < self.lim.depth as usize) {
            return Err(self.oracle(
                format!("poll({fd})"),
                format!("POLLOUT {} with {pending} of {} outstanding", !writable, self.lim.depth),
                format!("revents {revents:#x}"),
            ));
        }
        if revents & libc::POLLIN != 0 {
            if pending == 0 {
                return Err(self.oracle(
                    format!("poll({fd})"),
                    "no POLLIN: nothing outstanding".into(),
                    format!("revents {revents:#x}"),
                ));
            }
            return self.reap_expecting_some(si, fd);
        }
        Ok(())
    }

    pub(crate) fn mmap_device(&mut self, rng: &mut Rng) -> Result<(), FuzzError> {
        let (_, fd) = self.pick_fd(rng);
        let len = (rng.range(1, 16) * self.lim.page) as usize;
        let off = (rng.below(16) * self.lim.page) as i64;
        let got = raw::mmap_shared(fd, len, off);
        // No mapped ring: the module has no mmap file operation.
        self.verify("mmap", format!("mmap({fd}, {len:#x}, off {off:#x})"), &Expect::err(libc::ENODEV), got)?;
        Ok(())
    }

    pub(crate) fn bad_ioctl(&mut self, rng: &mut Rng) -> Result<(), FuzzError> {
        let (_, fd) = self.pick_fd(rng);
        let known = [
            abi::PINIO_IOC_INFO,
            abi::PINIO_IOC_REGISTER,
            abi::PINIO_IOC_UNREGISTER,
            abi::PINIO_IOC_SUBMIT,
            abi::PINIO_IOC_REAP,
            abi::PINIO_IOC_REGISTER_VEC,
            abi::PINIO_IOC_UNREGISTER_VEC,
        ];
        let cmd = loop {
            let dir = rng.below(4) as u32;
            let nr = if rng.chance(1, 2) { rng.range(0, 6) as u32 } else { rng.below(256) as u32 };
            let size = if rng.chance(1, 2) {
                *rng.pick(&[0usize, 8, 16, 24, 40, 48, 4096])
            } else {
                rng.below(1 << 14) as usize
            };
            let c = abi::ioc(dir, abi::IOC_MAGIC, nr, size);
            if !known.contains(&c) {
                break c;
            }
        };
        let arg = if rng.chance(1, 2) { wild_addr(rng) } else { self.scratch.guard() };
        // SAFETY: Unknown commands are refused before the argument is looked at; the argument is
        // not a writable address of ours anyway (wild or the inaccessible scratch page).
        let got = unsafe { raw::ioctl(fd, cmd, arg) };
        self.verify("bad-ioctl", format!("ioctl({fd}, {cmd:#x}, {arg:#x})"), &Expect::err(libc::ENOTTY), got)?;
        Ok(())
    }
}
