//! The fuzzer's own address space: an arena of slots whose protection and backing the fuzzer
//! changes under registered buffers, and a scratch area for hostile argument placement.

use crate::FuzzError;
use crate::mapping::{Mapping, page_size};
use crate::rng::Rng;

/// Pages per slot.
pub(crate) const SLOT_PAGES: usize = 16;
/// Slots in the arena (64 x 64 KiB = 4 MiB, 2 MiB-aligned so huge pages can back it).
pub(crate) const SLOTS: usize = 64;
/// The first slots stay readable and writable, so valid registrations always exist.
const STABLE_SLOTS: usize = 4;

/// Protection of a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prot {
    Rw,
    Ro,
    None,
}

impl Prot {
    fn bits(self) -> i32 {
        match self {
            Prot::Rw => libc::PROT_READ | libc::PROT_WRITE,
            Prot::Ro => libc::PROT_READ,
            Prot::None => libc::PROT_NONE,
        }
    }
}

/// The arena: `SLOTS` slots of `SLOT_PAGES` pages, each with its own protection.
pub(crate) struct Arena {
    map: Mapping,
    slots: Vec<Prot>,
    slot_bytes: usize,
}

impl Arena {
    /// Maps the arena, fills it with random bytes, backs half of it with huge pages if the kernel
    /// can, and protects a few slots read-only or inaccessible.
    pub(crate) fn new(rng: &mut Rng) -> Result<Arena, FuzzError> {
        let slot_bytes = SLOT_PAGES * page_size();
        let mut map = Mapping::new(SLOTS * slot_bytes, libc::PROT_READ | libc::PROT_WRITE, 2 << 20)?;
        // Best effort: THP may be disabled; the fuzzer works either way.
        let _ = map.advise(0, SLOTS * slot_bytes / 2, libc::MADV_HUGEPAGE);
        // SAFETY: The whole mapping is readable and writable right after creation.
        rng.fill(unsafe { map.bytes() });
        let mut arena = Arena { map, slots: vec![Prot::Rw; SLOTS], slot_bytes };
        for s in STABLE_SLOTS..SLOTS {
            match rng.below(10) {
                0 => arena.protect(s, Prot::Ro)?,
                1 => arena.protect(s, Prot::None)?,
                _ => {}
            }
        }
        Ok(arena)
    }

    pub(crate) fn base(&self) -> u64 {
        self.map.addr()
    }

    pub(crate) fn len(&self) -> u64 {
        self.map.len() as u64
    }

    fn protect(&mut self, slot: usize, prot: Prot) -> Result<(), FuzzError> {
        self.map.protect(slot * self.slot_bytes, self.slot_bytes, prot.bits())?;
        self.slots[slot] = prot;
        Ok(())
    }

    /// The slots `[addr, addr + len)` touches, or `None` if it leaves the arena.
    fn slots_of(&self, addr: u64, len: u64) -> Option<std::ops::RangeInclusive<usize>> {
        let base = self.base();
        let end = addr.checked_add(len)?;
        if len == 0 || addr < base || end > base + self.len() {
            return None;
        }
        let sb = self.slot_bytes as u64;
        Some(((addr - base) / sb) as usize..=((end - 1 - base) / sb) as usize)
    }

    /// Whether every byte of the range is mapped with at least `need` access (`Ro`: readable,
    /// `Rw`: writable). Ranges leaving the arena are not.
    pub(crate) fn allows(&self, addr: u64, len: u64, need: Prot) -> bool {
        self.slots_of(addr, len).is_some_and(|r| {
            r.into_iter().all(|s| match need {
                Prot::Rw => self.slots[s] == Prot::Rw,
                Prot::Ro => self.slots[s] != Prot::None,
                Prot::None => true,
            })
        })
    }

    /// A random range inside the arena that is accessible with `need`, of at most `max_len`
    /// bytes, at any alignment. Falls back to the stable slots.
    pub(crate) fn accessible_range(&self, rng: &mut Rng, need: Prot, max_len: u64) -> (u64, u64) {
        for _ in 0..8 {
            let off = rng.below(self.len());
            let len = rng.skewed_len(max_len.min(self.len() - off));
            if self.allows(self.base() + off, len, need) {
                return (self.base() + off, len);
            }
        }
        let stable = (STABLE_SLOTS * self.slot_bytes) as u64;
        let off = rng.below(stable);
        (self.base() + off, rng.skewed_len(max_len.min(stable - off)))
    }

    /// A random range inside the arena that touches a slot without `need` access (for EFAULT),
    /// or `None` if every slot allows it right now.
    pub(crate) fn denied_range(&self, rng: &mut Rng, need: Prot) -> Option<(u64, u64)> {
        let bad: Vec<usize> = (0..SLOTS).filter(|&s| !self.allows(self.slot_addr(s), 1, need)).collect();
        if bad.is_empty() {
            return None;
        }
        let s = *rng.pick(&bad);
        let sb = self.slot_bytes as u64;
        // Start up to two slots before the bad one, end inside or after it.
        let start = self.slot_addr(s.saturating_sub(rng.index(3))) + rng.below(sb);
        let start = start.min(self.slot_addr(s) + sb - 1);
        let min_end = self.slot_addr(s) + 1;
        let end_max = (self.slot_addr(s) + 2 * sb).min(self.base() + self.len());
        let end = rng.range(min_end.max(start + 1), end_max.max(start + 1));
        Some((start, end - start))
    }

    fn slot_addr(&self, s: usize) -> u64 {
        self.base() + (s * self.slot_bytes) as u64
    }

    /// Changes one slot: re-protect it, replace its pages with fresh ones (`MAP_FIXED`: registered
    /// pages leave the address space but stay pinned), drop its pages (`MADV_DONTNEED`), or
    /// change its huge-page advice. Returns what was done.
    pub(crate) fn mutate(&mut self, rng: &mut Rng) -> Result<String, FuzzError> {
        let s = rng.index(SLOTS);
        let (off, len) = (s * self.slot_bytes, self.slot_bytes);
        let stable = s < STABLE_SLOTS;
        let prot = if stable { Prot::Rw } else { *rng.pick(&[Prot::Rw, Prot::Rw, Prot::Ro, Prot::None]) };
        match rng.below(5) {
            0 if !stable => {
                self.protect(s, prot)?;
                Ok(format!("mprotect slot {s} {prot:?}"))
            }
            1 => {
                self.map.replace(off, len, Prot::Rw.bits())?;
                // Fresh pages: fill them so read-only pins later see real pages, not the zero page.
                if rng.chance(1, 2) {
                    let mut bytes = vec![0u8; len];
                    rng.fill(&mut bytes);
                    // SAFETY: The slot was just mapped readable and writable and lies inside the
                    // arena; `bytes` is a separate buffer.
                    unsafe {
                        std::ptr::copy_nonoverlapping(bytes.as_ptr(), (self.map.addr() as *mut u8).add(off), len)
                    };
                }
                self.slots[s] = Prot::Rw;
                if prot != Prot::Rw {
                    self.protect(s, prot)?;
                }
                Ok(format!("MAP_FIXED slot {s} fresh {prot:?}"))
            }
            2 => {
                self.map.advise(off, len, libc::MADV_DONTNEED)?;
                Ok(format!("MADV_DONTNEED slot {s}"))
            }
            3 => {
                let huge = rng.chance(1, 2);
                let (o2, l2) = (off - off % (2 << 20), 2 << 20);
                self.map.advise(
                    o2,
                    l2.min(self.map.len() - o2),
                    if huge { libc::MADV_HUGEPAGE } else { libc::MADV_NOHUGEPAGE },
                )?;
                Ok(format!("MADV_{}HUGEPAGE around slot {s}", if huge { "" } else { "NO" }))
            }
            _ => {
                // Touch the slot (fault pages in, maybe a huge page), if writable.
                if self.slots[s] == Prot::Rw {
                    // SAFETY: The slot is mapped readable and writable (model) and inside the arena.
                    unsafe { std::ptr::write_bytes((self.map.addr() as *mut u8).add(off), rng.next_u64() as u8, len) };
                }
                Ok(format!("touch slot {s}"))
            }
        }
    }
}

/// Four pages for hostile argument placement: `[rw][rw][none][ro]`.
pub(crate) struct Scratch {
    map: Mapping,
    page: usize,
}

impl Scratch {
    pub(crate) fn new() -> Result<Scratch, FuzzError> {
        let page = page_size();
        let mut map = Mapping::rw(4 * page)?;
        map.protect(2 * page, page, libc::PROT_NONE)?;
        map.protect(3 * page, page, libc::PROT_READ)?;
        Ok(Scratch { map, page })
    }

    /// Address where `n` bytes end exactly at the end of the second (last writable) page, so
    /// that anything past `n` bytes falls into the inaccessible page.
    pub(crate) fn ends_at_guard(&self, n: usize) -> u64 {
        self.map.addr() + (2 * self.page - n.min(2 * self.page)) as u64
    }

    /// Start of the inaccessible page.
    pub(crate) fn guard(&self) -> u64 {
        self.map.addr() + 2 * self.page as u64
    }

    /// Start of the read-only page.
    pub(crate) fn read_only(&self) -> u64 {
        self.map.addr() + 3 * self.page as u64
    }

    /// Writes `bytes` into the read-only page (briefly making it writable).
    pub(crate) fn set_read_only(&mut self, bytes: &[u8]) -> Result<(), FuzzError> {
        self.map.protect(3 * self.page, self.page, libc::PROT_READ | libc::PROT_WRITE)?;
        // SAFETY: The page is writable now and `bytes` fits in it (callers pass ABI structs).
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.read_only() as *mut u8, bytes.len().min(self.page))
        };
        self.map.protect(3 * self.page, self.page, libc::PROT_READ)
    }

    /// Copies `bytes` so that they end at the guard page; returns their address.
    pub(crate) fn place_before_guard(&mut self, bytes: &[u8]) -> u64 {
        let at = self.ends_at_guard(bytes.len());
        // SAFETY: `[at, at + len)` lies in the two writable pages (ends_at_guard clamps), which
        // nothing else references now.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), at as *mut u8, bytes.len().min(2 * self.page)) };
        at
    }

    /// Reads `n` bytes at `addr` inside the writable pages.
    pub(crate) fn read_back(&self, addr: u64, n: usize) -> Vec<u8> {
        let lo = self.map.addr();
        let hi = lo + 2 * self.page as u64;
        if addr < lo || addr + n as u64 > hi {
            return Vec::new();
        }
        // SAFETY: The range lies inside the two writable pages (checked above).
        unsafe { std::slice::from_raw_parts(addr as *const u8, n) }.to_vec()
    }
}

/// Views an ABI struct as bytes.
pub(crate) fn as_bytes<T: Copy>(v: &T) -> &[u8] {
    // SAFETY: The ABI structs are `repr(C)` plain integers without padding (abi_layout.rs pins
    // that), so every byte is initialised.
    unsafe { std::slice::from_raw_parts(v as *const T as *const u8, std::mem::size_of::<T>()) }
}

/// Views a slice of ABI structs as bytes.
pub(crate) fn slice_bytes<T: Copy>(v: &[T]) -> &[u8] {
    // SAFETY: As `as_bytes`, for `v.len()` consecutive structs.
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) }
}
