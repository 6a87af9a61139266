//! REGISTER and UNREGISTER with valid and hostile arguments.

use super::Fuzzer;
use super::arena::{Prot, as_bytes};
use super::expect::Expect;
use super::model::pages_spanned;
use super::wild::wild_addr;
use crate::FuzzError;
use crate::raw;
use crate::rng::Rng;
use pinio_kmod::abi;

/// Most regions the fuzzer keeps per session before it prefers unregistering.
const MAX_REGIONS: usize = 48;

fn random_access(rng: &mut Rng) -> u32 {
    *rng.pick(&[abi::ACCESS_DEVICE_READ, abi::ACCESS_DEVICE_WRITE, abi::ACCESS_ALL])
}

fn need_of(access: u32) -> Prot {
    if access & abi::ACCESS_DEVICE_WRITE != 0 { Prot::Rw } else { Prot::Ro }
}

impl Fuzzer {
    /// What REGISTER of `[addr, addr + len)` must answer on session `si`, given where the range
    /// lies: the ABI's order of checks is access bits, length and wrap-around, the per-open cap,
    /// then pinning.
    fn register_expect(&self, si: usize, addr: u64, len: u64, access: u32, pinnable: bool) -> Expect {
        if access == 0 || access & !abi::ACCESS_ALL != 0 || len == 0 {
            return Expect::err(libc::EINVAL);
        }
        if addr.checked_add(len).is_none() {
            return Expect::err(libc::EOVERFLOW);
        }
        let pages = pages_spanned(addr, len, self.lim.page);
        if self.sessions[si].pinned + pages > self.lim.cap_pages {
            return Expect::err(libc::ENOSPC);
        }
        // Pinning works on whole pages: a range in the last page of the address space, whose
        // page-rounded end wraps, is EOVERFLOW there (only kernel addresses are that high).
        if (addr + len).checked_next_multiple_of(self.lim.page).is_none() {
            return Expect::err(libc::EOVERFLOW);
        }
        if pinnable { Expect::value(0) } else { Expect::err(libc::EFAULT) }
    }

    pub(crate) fn register(&mut self, rng: &mut Rng) -> Result<(), FuzzError> {
        let (si, fd) = self.pick_fd(rng);
        if self.sessions[si].regions.len() >= MAX_REGIONS {
            return self.unregister(rng);
        }
        let access = random_access(rng);
        let (addr, len, access, pinnable, kind) = match rng.below(100) {
            0..=44 => {
                // Mostly up to 64 pages (pinning costs per page under emulation), now and then
                // up to the whole arena.
                let max = if rng.chance(1, 20) { self.arena.len() } else { 256 << 10 };
                let (a, l) = self.arena.accessible_range(rng, need_of(access), max);
                (a, l, access, true, "valid")
            }
            45..=56 => match self.arena.denied_range(rng, need_of(access)) {
                Some((a, l)) => (a, l, access, false, "inaccessible"),
                None => {
                    let (a, l) = self.arena.accessible_range(rng, need_of(access), 1 << 16);
                    (a, l, access, true, "valid")
                }
            },
            57..=61 => (self.arena.base() + rng.below(self.arena.len()), 0, access, true, "zero length"),
            62..=66 => {
                let bad = *rng.pick(&[0, 4, 8, 0xffff_fffc, 0x8000_0001, u32::MAX]);
                (self.arena.base(), 4096, bad, true, "bad access")
            }
            67..=71 => {
                let a = self.arena.base() + rng.below(self.arena.len());
                (a, (u64::MAX - a) + rng.range(2, 1 << 20), access, false, "wrapping")
            }
            72..=76 => {
                let a = self.arena.base() + rng.below(self.arena.len());
                let len = rng.range((self.lim.cap_pages + 1) * self.lim.page, 1 << 46);
                (a, len, access, false, "beyond the cap")
            }
            77..=88 => (wild_addr(rng), rng.skewed_len(1 << 22), access, false, "wild address"),
            _ => return self.register_bad_arg(rng, si, fd, access),
        };
        let expect = self.register_expect(si, addr, len, access, pinnable);
        let mut args = abi::RegisterArgs { addr, len, access, region_id: 0 };
        let got = raw::ioctl_on(fd, abi::PINIO_IOC_REGISTER, &mut args);
        let call = format!("REGISTER({fd}, {addr:#x}+{len:#x}, access {access}) {kind}");
        let got = self.check("REGISTER", call.clone(), &expect, got)?;
        if got.is_ok() {
            let s = &self.sessions[si];
            if args.region_id != s.next_id {
                return Err(self.oracle(
                    call,
                    format!("region id {}", s.next_id),
                    format!("region id {}", args.region_id),
                ));
            }
            let pages = pages_spanned(addr, len, self.lim.page);
            self.sessions[si].add_region(args.region_id, len, access, pages);
        }
        Ok(())
    }

    /// REGISTER whose argument itself is unreadable, or readable but not writable (the module
    /// must then unpin again: the caller cannot learn the id).
    fn register_bad_arg(&mut self, rng: &mut Rng, si: usize, fd: i32, access: u32) -> Result<(), FuzzError> {
        if rng.chance(1, 2) {
            let a = wild_addr(rng);
            // SAFETY: A wild address is never memory of this process.
            let got = unsafe { raw::ioctl(fd, abi::PINIO_IOC_REGISTER, a) };
            self.verify("REGISTER", format!("REGISTER({fd}, arg {a:#x})"), &Expect::err(libc::EFAULT), got)?;
            return Ok(());
        }
        let (addr, len) = self.arena.accessible_range(rng, need_of(access), 1 << 16);
        let args = abi::RegisterArgs { addr, len, access, region_id: 0 };
        self.scratch.set_read_only(as_bytes(&args))?;
        let expect = match self.register_expect(si, addr, len, access, true) {
            e if e.admits(&Ok(0)) => Expect::err(libc::EFAULT),
            e => e,
        };
        let consumed_id = expect.admits(&Err(crate::Errno(libc::EFAULT)));
        // SAFETY: The read-only scratch page: the kernel reads the arguments and fails to write
        // the id back.
        let got = unsafe { raw::ioctl(fd, abi::PINIO_IOC_REGISTER, self.scratch.read_only()) };
        let call = format!("REGISTER({fd}, read-only arg {addr:#x}+{len:#x})");
        self.verify("REGISTER", call, &expect, got)?;
        if consumed_id {
            // The module registered the region (taking an id), failed to report it, and
            // unregistered it again.
            let s = &mut self.sessions[si];
            s.next_id = s.next_id.wrapping_add(1);
        }
        Ok(())
    }

    pub(crate) fn unregister(&mut self, rng: &mut Rng) -> Result<(), FuzzError> {
        let (si, fd) = self.pick_fd(rng);
        let s = &self.sessions[si];
        let live: Vec<u32> = s.regions.iter().map(|r| r.id).collect();
        let foreign: Vec<u32> = self
            .sessions
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != si)
            .flat_map(|(_, o)| o.regions.iter().map(|r| r.id))
            .filter(|id| !live.contains(id))
            .collect();
        let roll = rng.below(100);
        let (id, reserved, kind) = match roll {
            0..=59 if !live.is_empty() => (*rng.pick(&live), 0, "live"),
            60..=69 if !s.stale.is_empty() => (*rng.pick(&s.stale), 0, "stale"),
            70..=79 if !foreign.is_empty() => (*rng.pick(&foreign), 0, "foreign"),
            85..=89 if !live.is_empty() => (*rng.pick(&live), rng.range(1, u64::from(u32::MAX)) as u32, "reserved set"),
            90..=99 => {
                let a = wild_addr(rng);
                // SAFETY: A wild address is never memory of this process.
                let got = unsafe { raw::ioctl(fd, abi::PINIO_IOC_UNREGISTER, a) };
                self.verify("UNREGISTER", format!("UNREGISTER({fd}, arg {a:#x})"), &Expect::err(libc::EFAULT), got)?;
                return Ok(());
            }
            _ => {
                let id = if rng.chance(1, 2) { 0 } else { rng.next_u64() as u32 };
                if live.contains(&id) {
                    return self.info(rng);
                }
                (id, 0, "unknown")
            }
        };
        let expect = if reserved != 0 {
            Expect::err(libc::EINVAL)
        } else if !live.contains(&id) {
            Expect::err(libc::ENOENT)
        } else if s.pending_on(id) > 0 {
            // Its descriptors may or may not have finished by now.
            Expect::value(0).or_err(libc::EBUSY)
        } else {
            Expect::value(0)
        };
        let mut args = abi::UnregisterArgs { region_id: id, reserved };
        let got = raw::ioctl_on(fd, abi::PINIO_IOC_UNREGISTER, &mut args);
        let call = format!("UNREGISTER({fd}, id {id}, reserved {reserved}) {kind}, {} pending on it", s.pending_on(id));
        let got = self.check("UNREGISTER", call, &expect, got)?;
        if got.is_ok() {
            self.sessions[si].remove_region(id);
        }
        Ok(())
    }
}
