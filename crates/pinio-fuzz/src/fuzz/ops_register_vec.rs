//! REGISTER_VEC and UNREGISTER_VEC with valid and hostile arguments: bad counts and flags,
//! unreadable and unwritable arrays, bad entries anywhere in the array, overlapping entries, sums
//! over the per-open cap, and (in a child without `CAP_IPC_LOCK`) sums over `RLIMIT_MEMLOCK`.
//!
//! The order of checks the model follows is the one docs/kmod.md documents: `flags` and
//! `count`, the array, every entry's access bits, length and wrap-around in array order, the
//! cap on the sum, the memory-lock limit on the sum, then pinning in array order. Every error
//! registers nothing (INFO's pinned page count, compared with the model's, catches a leak).

use super::Fuzzer;
use super::arena::{Prot, slice_bytes};
use super::expect::Expect;
use super::model::pages_spanned;
use super::wild::wild_addr;
use crate::raw;
use crate::rng::Rng;
use crate::{Errno, FuzzError};
use pinio_kmod::abi;

/// Most entries of a vector the fuzzer builds (besides the count-limit cases).
const MAX_ENTRIES: u64 = 8;
/// Most regions per session before the fuzzer prefers unregistering (as for single REGISTER).
const MAX_REGIONS: usize = 48;

/// One entry as the model sees it.
struct Entry {
    args: abi::RegisterArgs,
    /// Whether its range is mapped with the access it asks for (as far as the fuzzer knows).
    pinnable: bool,
    kind: &'static str,
}

/// What the kernel must answer for one entry at each stage: `Err` at validation (before
/// anything is reserved), or its page count and the errno of pinning it (`None`: pins).
fn entry_stage(e: &Entry, page: u64) -> Result<(u64, Option<i32>), i32> {
    let a = &e.args;
    if a.access == 0 || a.access & !abi::ACCESS_ALL != 0 || a.len == 0 {
        return Err(libc::EINVAL);
    }
    let Some(end) = a.addr.checked_add(a.len) else {
        return Err(libc::EOVERFLOW);
    };
    let pages = pages_spanned(a.addr, a.len, page);
    // Pinning works on whole pages: a range whose page-rounded end wraps is EOVERFLOW there.
    let pin = if end.checked_next_multiple_of(page).is_none() {
        Some(libc::EOVERFLOW)
    } else if e.pinnable {
        None
    } else {
        Some(libc::EFAULT)
    };
    Ok((pages, pin))
}

fn need_of(access: u32) -> Prot {
    if access & abi::ACCESS_DEVICE_WRITE != 0 { Prot::Rw } else { Prot::Ro }
}

impl Fuzzer {
    /// A random entry: mostly a valid range of the arena, sometimes one that must fail.
    fn vec_entry(&self, rng: &mut Rng, valid: bool) -> Entry {
        let access = *rng.pick(&[abi::ACCESS_DEVICE_READ, abi::ACCESS_DEVICE_WRITE, abi::ACCESS_ALL]);
        let entry = |addr, len, access, pinnable, kind| Entry {
            args: abi::RegisterArgs { addr, len, access, region_id: 0 },
            pinnable,
            kind,
        };
        if valid {
            let (a, l) = self.arena.accessible_range(rng, need_of(access), 64 << 10);
            return entry(a, l, access, true, "valid");
        }
        match rng.below(7) {
            0 => match self.arena.denied_range(rng, need_of(access)) {
                Some((a, l)) => entry(a, l, access, false, "inaccessible"),
                None => entry(wild_addr(rng), rng.skewed_len(1 << 20), access, false, "wild"),
            },
            1 => entry(self.arena.base(), 0, access, true, "zero length"),
            2 => {
                let bad = *rng.pick(&[0, 4, 8, 0x8000_0001, u32::MAX]);
                entry(self.arena.base(), 4096, bad, true, "bad access")
            }
            3 => {
                let a = self.arena.base() + rng.below(self.arena.len());
                entry(a, (u64::MAX - a) + rng.range(2, 1 << 20), access, false, "wrapping")
            }
            4 => {
                let a = self.arena.base() + rng.below(self.arena.len());
                let len = rng.range((self.lim.cap_pages + 1) * self.lim.page, 1 << 46);
                entry(a, len, access, false, "beyond the cap")
            }
            _ => entry(wild_addr(rng), rng.skewed_len(1 << 22), access, false, "wild"),
        }
    }

    /// What REGISTER_VEC of `entries` must answer on session `si` (past the count and array
    /// checks), and the pages it pins on success.
    fn register_vec_expect(&self, si: usize, entries: &[Entry]) -> (Expect, u64) {
        let mut total = 0u64;
        let mut pin_err = None;
        for e in entries {
            match entry_stage(e, self.lim.page) {
                Err(errno) => return (Expect::err(errno), 0),
                Ok((pages, pin)) => {
                    total = total.saturating_add(pages);
                    pin_err = pin_err.or(pin);
                }
            }
        }
        if self.sessions[si].pinned.saturating_add(total) > self.lim.cap_pages {
            return (Expect::err(libc::ENOSPC), 0);
        }
        match pin_err {
            Some(errno) => (Expect::err(errno), 0),
            None => (Expect::value(entries.len() as i64), total),
        }
    }

    pub(crate) fn register_vec(&mut self, rng: &mut Rng) -> Result<(), FuzzError> {
        let (si, fd) = self.pick_fd(rng);
        if self.sessions[si].regions.len() >= MAX_REGIONS {
            return self.unregister_vec(rng);
        }
        let n = rng.range(1, MAX_ENTRIES) as usize;
        // Mostly all valid; else one bad entry at a random place.
        let bad_at = if rng.chance(2, 5) { Some(rng.index(n)) } else { None };
        let mut entries: Vec<Entry> = (0..n).map(|i| self.vec_entry(rng, bad_at != Some(i))).collect();
        // Overlapping entries are separate registrations: repeat one now and then.
        if n > 1 && rng.chance(1, 4) {
            let (from, to) = (rng.index(n), rng.index(n));
            entries[to] = Entry { args: entries[from].args, pinnable: entries[from].pinnable, kind: "overlapping" };
        }
        let kinds: Vec<&str> = entries.iter().map(|e| e.kind).collect();
        let mut args: Vec<abi::RegisterArgs> = entries.iter().map(|e| e.args).collect();
        let (mut expect, pages) = self.register_vec_expect(si, &entries);
        let roll = rng.below(100);
        let (addr, count, flags, what, read_only) = match roll {
            0..=74 => (args.as_mut_ptr() as u64, n as u32, 0, "", false),
            75..=79 => {
                let count = *rng.pick(&[0, abi::MAX_VEC + 1, u32::MAX]);
                expect = Expect::err(libc::EINVAL);
                (args.as_mut_ptr() as u64, count, 0, ", bad count", false)
            }
            80..=83 => {
                expect = Expect::err(libc::EINVAL);
                (args.as_mut_ptr() as u64, n as u32, 1 << rng.below(32), ", flags set", false)
            }
            84..=89 => {
                expect = Expect::err(libc::EFAULT);
                (wild_addr(rng), n as u32, 0, ", wild array", false)
            }
            90..=94 => {
                // The array runs into an inaccessible page.
                let bytes = slice_bytes(&args);
                let cut = rng.below(bytes.len() as u64) as usize;
                expect = Expect::err(libc::EFAULT);
                (self.scratch.place_before_guard(&bytes[..cut]), n as u32, 0, ", array cut by a guard page", false)
            }
            _ => {
                // Readable, not writable: if everything else succeeds the ids cannot be written
                // back, and the module unregisters the regions again.
                self.scratch.set_read_only(slice_bytes(&args))?;
                if expect.admits(&Ok(n as i64)) {
                    expect = Expect::err(libc::EFAULT);
                }
                (self.scratch.read_only(), n as u32, 0, ", read-only array", true)
            }
        };
        let consumed_ids = read_only && expect.admits(&Err(Errno(libc::EFAULT))) && pages > 0;
        let mut vec = abi::VecArgs { entries: addr, count, flags };
        // SAFETY: `addr` is `args` (ours, written by the kernel only on success), the scratch
        // pages (ours), or a wild address; the argument is a live `VecArgs`.
        let got = unsafe { raw::ioctl(fd, abi::PINIO_IOC_REGISTER_VEC, &mut vec as *mut abi::VecArgs as u64) };
        let call = format!("REGISTER_VEC({fd}, {n} entries {kinds:?}, count {count}, flags {flags:#x}{what})");
        let got = self.check("REGISTER_VEC", call.clone(), &expect, got)?;
        if consumed_ids {
            let s = &mut self.sessions[si];
            s.next_id = s.next_id.wrapping_add(n as u32);
        }
        if got.is_ok() {
            let first = self.sessions[si].next_id;
            for (i, a) in args.iter().enumerate() {
                let want = first.wrapping_add(i as u32);
                if a.region_id != want {
                    return Err(self.oracle(call, format!("entry {i}: region id {want}"), format!("{}", a.region_id)));
                }
                let p = pages_spanned(a.addr, a.len, self.lim.page);
                self.sessions[si].add_region(a.region_id, a.len, a.access, p);
            }
        }
        Ok(())
    }

    pub(crate) fn unregister_vec(&mut self, rng: &mut Rng) -> Result<(), FuzzError> {
        let (si, fd) = self.pick_fd(rng);
        let s = &self.sessions[si];
        let mut live: Vec<u32> = s.regions.iter().map(|r| r.id).collect();
        // A random subset of the live ids, in random order.
        for i in (1..live.len()).rev() {
            live.swap(i, rng.index(i + 1));
        }
        live.truncate(rng.range(0, MAX_ENTRIES) as usize);
        let mut list: Vec<abi::UnregisterArgs> =
            live.iter().map(|&region_id| abi::UnregisterArgs { region_id, reserved: 0 }).collect();
        let mut kind = "live";
        if list.is_empty() || rng.chance(1, 4) {
            // An id this session does not have: stale, another session's, or random.
            let id = match rng.below(3) {
                0 if !s.stale.is_empty() => *rng.pick(&s.stale),
                1 => self.sessions.iter().flat_map(|o| o.regions.iter().map(|r| r.id)).max().unwrap_or(0) + 1000,
                _ => rng.next_u64() as u32,
            };
            if s.region(id).is_none() {
                let at = rng.index(list.len() + 1);
                list.insert(at, abi::UnregisterArgs { region_id: id, reserved: 0 });
                kind = "with an unknown id";
            }
        }
        if !list.is_empty() && rng.chance(1, 8) {
            let dup = list[rng.index(list.len())];
            let at = rng.index(list.len() + 1);
            list.insert(at, dup);
            kind = "with an id twice";
        }
        if !list.is_empty() && rng.chance(1, 10) {
            let at = rng.index(list.len());
            list[at].reserved = rng.range(1, u64::from(u32::MAX)) as u32;
            kind = "with reserved set";
        }
        if list.is_empty() {
            return self.info(rng);
        }
        // The model: EINVAL for reserved or a repeated id, then per entry in order ENOENT (unknown)
        // or EBUSY (descriptors may still be in flight: timing decides).
        let mut sorted: Vec<u32> = list.iter().map(|e| e.region_id).collect();
        sorted.sort_unstable();
        let mut expect = if list.iter().any(|e| e.reserved != 0) || sorted.windows(2).any(|w| w[0] == w[1]) {
            Expect::err(libc::EINVAL)
        } else {
            let mut maybe_busy = false;
            let mut verdict = None;
            for e in &list {
                if s.region(e.region_id).is_none() {
                    verdict = Some(Expect::err(libc::ENOENT));
                    break;
                }
                maybe_busy |= s.pending_on(e.region_id) > 0;
            }
            let v = verdict.unwrap_or_else(|| Expect::value(list.len() as i64));
            if maybe_busy { v.or_err(libc::EBUSY) } else { v }
        };
        let n = list.len() as u32;
        let (addr, count, flags, what) = match rng.below(100) {
            0..=79 => (list.as_ptr() as u64, n, 0, ""),
            80..=84 => {
                expect = Expect::err(libc::EINVAL);
                (list.as_ptr() as u64, *rng.pick(&[0, abi::MAX_VEC + 1]), 0, ", bad count")
            }
            85..=89 => {
                expect = Expect::err(libc::EINVAL);
                (list.as_ptr() as u64, n, 1 << rng.below(32), ", flags set")
            }
            90..=94 => {
                expect = Expect::err(libc::EFAULT);
                (wild_addr(rng), n, 0, ", wild array")
            }
            _ => {
                let bytes = slice_bytes(&list);
                let cut = rng.below(bytes.len() as u64) as usize;
                expect = Expect::err(libc::EFAULT);
                (self.scratch.place_before_guard(&bytes[..cut]), n, 0, ", array cut by a guard page")
            }
        };
        let mut vec = abi::VecArgs { entries: addr, count, flags };
        let got = raw::ioctl_on(fd, abi::PINIO_IOC_UNREGISTER_VEC, &mut vec);
        let ids: Vec<u32> = list.iter().map(|e| e.region_id).collect();
        let call = format!("UNREGISTER_VEC({fd}, ids {ids:?} {kind}, count {count}, flags {flags:#x}{what})");
        let got = self.check("UNREGISTER_VEC", call, &expect, got)?;
        if got.is_ok() {
            for id in ids {
                self.sessions[si].remove_region(id);
            }
        }
        Ok(())
    }

    /// REGISTER_VEC in a forked child that dropped `CAP_IPC_LOCK` (uid 65534) under a small
    /// `RLIMIT_MEMLOCK`, on a session of its own: the sum of the entries is charged at once, so
    /// `ENOMEM` exactly when the sum exceeds the limit (though each entry may fit), and success
    /// otherwise. The child reports the errno in its exit status.
    pub(crate) fn register_vec_memlock(&mut self, rng: &mut Rng) -> Result<(), FuzzError> {
        let page = self.lim.page;
        let limit_pages = rng.range(1, 32);
        let n = rng.range(1, 6) as usize;
        let mut args: Vec<abi::RegisterArgs> = (0..n)
            .map(|_| {
                let (addr, len) = self.arena.accessible_range(rng, Prot::Ro, 8 * page);
                abi::RegisterArgs { addr, len, access: abi::ACCESS_DEVICE_READ, region_id: 0 }
            })
            .collect();
        let total: u64 = args.iter().map(|a| pages_spanned(a.addr, a.len, page)).sum();
        let expect = if total > limit_pages { Expect::err(libc::ENOMEM) } else { Expect::value(n as i64) };
        let mut vec = abi::VecArgs { entries: args.as_mut_ptr() as u64, count: n as u32, flags: 0 };
        let device = self.device.clone();
        // SAFETY: Phase one is single-threaded, so the child may run any code; it only makes
        // system calls on memory prepared before the fork and leaves with `_exit`.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(FuzzError::Check(format!("fork: {}", std::io::Error::last_os_error())));
        }
        if pid == 0 {
            // SAFETY: See above; the exit status is the errno of the call, 0 for success, or
            // 250+ for a failure to set the child up.
            unsafe {
                let fd = libc::open(device.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
                let lim = libc::rlimit { rlim_cur: limit_pages * page, rlim_max: limit_pages * page };
                if fd < 0 || libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) != 0 || libc::setuid(65534) != 0 {
                    libc::_exit(250);
                }
                let r = libc::ioctl(fd, abi::PINIO_IOC_REGISTER_VEC as libc::c_ulong, &mut vec);
                if r < 0 {
                    libc::_exit(*libc::__errno_location() & 0xff);
                }
                libc::_exit(if r == n as i32 { 0 } else { 251 });
            }
        }
        let mut status = 0;
        // SAFETY: Waits for our own child.
        let w = unsafe { libc::waitpid(pid, &mut status, 0) };
        let call = format!("REGISTER_VEC in a child, RLIMIT_MEMLOCK {limit_pages} pages, {n} entries of {total} pages");
        if w != pid || !libc::WIFEXITED(status) {
            return Err(self.oracle(call, expect.to_string(), format!("child status {status:#x}")));
        }
        let got = match libc::WEXITSTATUS(status) {
            0 => Ok(n as i64),
            code @ 250.. => return Err(self.oracle(call, expect.to_string(), format!("child setup failed ({code})"))),
            errno => Err(Errno(errno)),
        };
        self.verify("REGISTER_VEC", call, &expect, got)
    }
}
