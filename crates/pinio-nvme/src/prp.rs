//! Physical Region Page entries: how a command names the memory it moves
//! (NVMe Base Specification 1.4, section 4.3).
//!
//! A transfer of `len` bytes at IOVA `addr` is cut at memory-page
//! boundaries. The first piece may start at any dword-aligned offset in its
//! page; every further piece starts on a page boundary; all but the last
//! are whole pages. PRP1 names the first piece. PRP2 is unused when one
//! piece suffices, names the second page when there are exactly two, and
//! otherwise points at a *PRP list*: a page of 8-byte entries naming the
//! second, third, ... pages.
//!
//! pinio hands the device contiguous IOVA ranges (each region is one IOMMU
//! mapping), so the list entries are consecutive pages; they are computed,
//! not stored, until written into the command's list page.

use std::fmt;

/// How PRP2 is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prp2 {
    /// The transfer fits in the first page piece; PRP2 is 0.
    Unused,
    /// Exactly two pieces: PRP2 is the second page.
    Page(u64),
    /// More than two: PRP2 points at a list page holding `count` entries,
    /// `first`, `first + page`, ...
    List {
        /// The first entry (the second page of the transfer).
        first: u64,
        /// How many entries the list holds.
        count: usize,
    },
}

/// The PRP entries of one transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prps {
    /// PRP1: the first byte of the transfer.
    pub prp1: u64,
    /// What PRP2 carries.
    pub prp2: Prp2,
}

/// Why a transfer cannot be described with PRPs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrpError {
    /// The address is not dword aligned.
    Misaligned {
        /// The address.
        addr: u64,
    },
    /// Zero bytes.
    Empty,
    /// More list entries than one list page holds.
    TooLong {
        /// The entries needed.
        entries: usize,
        /// The entries one list page holds.
        max: usize,
    },
    /// The transfer runs past the end of the 64-bit address space.
    Overflow,
}

impl fmt::Display for PrpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrpError::Misaligned { addr } => write!(f, "PRP address {addr:#x} is not dword (4-byte) aligned"),
            PrpError::Empty => f.write_str("a PRP transfer of zero bytes"),
            PrpError::TooLong { entries, max } => {
                write!(f, "{entries} PRP list entries exceed the {max} one list page holds")
            }
            PrpError::Overflow => f.write_str("the transfer runs past the end of the IOVA space"),
        }
    }
}

impl Prps {
    /// The PRPs of `len` bytes at IOVA `addr` with memory pages of `page`
    /// bytes (a power of two), when one list page may hold at most
    /// `page / 8` entries (no list chaining).
    ///
    /// ```
    /// use pinio_nvme::prp::{Prps, Prp2};
    /// // One page plus one byte, page-aligned: two pieces.
    /// let p = Prps::new(0x10_0000, 4097, 4096)?;
    /// assert_eq!(p.prp2, Prp2::Page(0x10_1000));
    /// // 16 KiB starting 4 bytes into a page: five pieces, a list of four.
    /// let p = Prps::new(0x10_0004, 16384, 4096)?;
    /// assert_eq!(p.prp2, Prp2::List { first: 0x10_1000, count: 4 });
    /// # Ok::<(), pinio_nvme::prp::PrpError>(())
    /// ```
    pub fn new(addr: u64, len: u64, page: u64) -> Result<Prps, PrpError> {
        debug_assert!(page.is_power_of_two() && page >= 4096);
        if len == 0 {
            return Err(PrpError::Empty);
        }
        if !addr.is_multiple_of(4) {
            return Err(PrpError::Misaligned { addr });
        }
        addr.checked_add(len - 1).ok_or(PrpError::Overflow)?;
        let first_piece = page - (addr & (page - 1));
        if len <= first_piece {
            return Ok(Prps { prp1: addr, prp2: Prp2::Unused });
        }
        let second = (addr & !(page - 1)) + page;
        let rest = len - first_piece;
        if rest <= page {
            return Ok(Prps { prp1: addr, prp2: Prp2::Page(second) });
        }
        let count = rest.div_ceil(page) as usize;
        let max = (page / 8) as usize;
        if count > max {
            return Err(PrpError::TooLong { entries: count, max });
        }
        Ok(Prps { prp1: addr, prp2: Prp2::List { first: second, count } })
    }

    /// The value of the PRP2 field, given the IOVA of the command's list
    /// page (used only for [`Prp2::List`]).
    pub fn prp2_field(&self, list_iova: u64) -> u64 {
        match self.prp2 {
            Prp2::Unused => 0,
            Prp2::Page(p) => p,
            Prp2::List { .. } => list_iova,
        }
    }

    /// The list entries, in order (empty unless PRP2 is a list).
    pub fn list_entries(&self, page: u64) -> impl Iterator<Item = u64> {
        let (first, count) = match self.prp2 {
            Prp2::List { first, count } => (first, count),
            _ => (0, 0),
        };
        (0..count as u64).map(move |i| first + i * page)
    }
}

/// The largest transfer that [`Prps::new`] accepts at *any* dword-aligned
/// address: a misaligned start costs one extra page piece, so one list
/// page of `page / 8` entries covers `page / 8` whole pages after the
/// first piece.
///
/// ```
/// assert_eq!(pinio_nvme::prp::max_transfer(4096), 512 * 4096);
/// ```
pub fn max_transfer(page: u64) -> u64 {
    page / 8 * page
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const P: u64 = 4096;
    const BASE: u64 = 0x20_0000;

    /// Every byte of `[addr, addr + len)` is covered exactly once, by
    /// pieces that obey the PRP rules.
    fn pieces(p: &Prps, len: u64) -> Vec<(u64, u64)> {
        let mut starts = vec![p.prp1];
        match p.prp2 {
            Prp2::Unused => {}
            Prp2::Page(a) => starts.push(a),
            Prp2::List { .. } => starts.extend(p.list_entries(P)),
        }
        let mut out = Vec::new();
        let mut left = len;
        for (i, s) in starts.iter().enumerate() {
            if i > 0 {
                assert_eq!(s % P, 0, "entry {i} ({s:#x}) must be page aligned");
            }
            let room = P - (s % P);
            let take = room.min(left);
            out.push((*s, take));
            left -= take;
        }
        assert_eq!(left, 0, "pieces do not cover the transfer: {p:?}");
        out
    }

    #[test]
    fn exactly_one_page_aligned() {
        let p = Prps::new(BASE, P, P).unwrap();
        assert_eq!(p, Prps { prp1: BASE, prp2: Prp2::Unused });
        assert_eq!(p.prp2_field(0xdead_0000), 0);
    }

    #[test]
    fn one_page_plus_one_byte() {
        let p = Prps::new(BASE, P + 1, P).unwrap();
        assert_eq!(p.prp2, Prp2::Page(BASE + P));
        assert_eq!(p.prp2_field(0xdead_0000), BASE + P);
        assert_eq!(pieces(&p, P + 1), vec![(BASE, P), (BASE + P, 1)]);
    }

    #[test]
    fn one_page_at_an_odd_dword_offset_crosses_into_a_second() {
        let p = Prps::new(BASE + 4, P, P).unwrap();
        assert_eq!(p.prp2, Prp2::Page(BASE + P));
        assert_eq!(pieces(&p, P), vec![(BASE + 4, P - 4), (BASE + P, 4)]);
        // The last dword of a page: 4 bytes in the first page.
        let p = Prps::new(BASE + P - 4, 8, P).unwrap();
        assert_eq!(pieces(&p, 8), vec![(BASE + P - 4, 4), (BASE + P, 4)]);
    }

    #[test]
    fn small_transfer_inside_one_page_needs_no_prp2() {
        let p = Prps::new(BASE + 0x200, 512, P).unwrap();
        assert_eq!(p.prp2, Prp2::Unused);
        // Ending exactly at the page boundary.
        let p = Prps::new(BASE + P - 512, 512, P).unwrap();
        assert_eq!(p.prp2, Prp2::Unused);
    }

    #[test]
    fn two_pages_plus_a_byte_needs_a_list() {
        let p = Prps::new(BASE, 2 * P + 1, P).unwrap();
        assert_eq!(p.prp2, Prp2::List { first: BASE + P, count: 2 });
        assert_eq!(p.prp2_field(0x9000), 0x9000);
        assert_eq!(p.list_entries(P).collect::<Vec<_>>(), vec![BASE + P, BASE + 2 * P]);
        // Exactly two pages, aligned: no list.
        assert_eq!(Prps::new(BASE, 2 * P, P).unwrap().prp2, Prp2::Page(BASE + P));
        // Two pages at an odd offset: three pieces, a list of two.
        let p = Prps::new(BASE + 12, 2 * P, P).unwrap();
        assert_eq!(p.prp2, Prp2::List { first: BASE + P, count: 2 });
        assert_eq!(pieces(&p, 2 * P), vec![(BASE + 12, P - 12), (BASE + P, P), (BASE + 2 * P, 12)]);
    }

    #[test]
    fn the_largest_transfer_fills_one_list_page_exactly() {
        let max = max_transfer(P);
        // Page aligned: 512 pages = first + 511 entries.
        let p = Prps::new(BASE, max, P).unwrap();
        assert_eq!(p.prp2, Prp2::List { first: BASE + P, count: 511 });
        // Worst offset: first piece of 4 bytes, then 512 entries, a full list page.
        let p = Prps::new(BASE + P - 4, max, P).unwrap();
        assert_eq!(p.prp2, Prp2::List { first: BASE + P, count: 512 });
        pieces(&p, max);
        // Two dwords more need a 513th entry (a chained list): refused.
        assert_eq!(Prps::new(BASE + P - 4, max + 8, P), Err(PrpError::TooLong { entries: 513, max: 512 }));
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert_eq!(Prps::new(BASE + 2, 512, P), Err(PrpError::Misaligned { addr: BASE + 2 }));
        assert_eq!(Prps::new(BASE + 1, 512, P), Err(PrpError::Misaligned { addr: BASE + 1 }));
        assert_eq!(Prps::new(BASE, 0, P), Err(PrpError::Empty));
        assert_eq!(Prps::new(u64::MAX - 3, 8, P), Err(PrpError::Overflow));
        assert!(PrpError::TooLong { entries: 513, max: 512 }.to_string().contains("513"));
    }

    #[test]
    fn larger_memory_pages() {
        let p = Prps::new(BASE + 4, 65536, 65536).unwrap();
        assert_eq!(p.prp2, Prp2::Page(BASE + 65536));
        assert_eq!(max_transfer(65536), 8192 * 65536);
    }

    proptest! {
        #[test]
        fn every_aligned_transfer_is_covered_exactly(off in 0u64..(2 * P / 4), len in 1u64..(64 * P)) {
            let addr = BASE + off * 4;
            let p = Prps::new(addr, len, P).unwrap();
            let ps = pieces(&p, len);
            // Contiguous: each piece starts where the previous ended.
            let mut at = addr;
            for (s, l) in ps {
                prop_assert_eq!(s, at);
                at += l;
            }
            prop_assert_eq!(at, addr + len);
            let expect_pieces = ((addr + len - 1) / P - addr / P + 1) as usize;
            let got = 1 + match p.prp2 { Prp2::Unused => 0, Prp2::Page(_) => 1, Prp2::List { count, .. } => count };
            prop_assert_eq!(got, expect_pieces);
        }
    }
}
