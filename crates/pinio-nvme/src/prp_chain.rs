//! The PRPs of a vectored command: one NVMe Read or Write across several
//! slices (NVMe Base Specification 1.4, section 4.3).
//!
//! A PRP list names memory pages, not byte ranges: PRP1 may start at any
//! dword offset in its page, every further entry must be page aligned, and
//! every piece but the last runs to the end of its page. Several slices can
//! therefore be one command exactly when every boundary *between* them
//! falls on a memory page boundary: the first slice may start anywhere
//! (dword aligned) and must end on a page boundary, every later slice must
//! start on one, and every slice but the last must end on one. pinio's
//! slices are contiguous IOVA ranges (each region is one IOMMU mapping), so
//! the list is the pages of each slice in order; unlike a contiguous
//! transfer ([`crate::prp::Prps`]) it is stored, not computed.
//!
//! Operations whose inner boundaries are not page aligned are refused at
//! push with a typed error naming the boundary (a command cannot describe
//! them; the caller aligns the slices, or pushes them as separate
//! operations).

use crate::prp::{PrpError, Prps};
use pinio_core::{Error, Op};

/// The PRP entries of one command over several slices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrpChain {
    /// PRP1: the first byte of the transfer.
    pub prp1: u64,
    /// Every further page, in order: PRP2 itself when there is one, the
    /// list PRP2 points at when there are more.
    pages: Vec<u64>,
}

/// Why several slices cannot be one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainError {
    /// A boundary between two slices is not on a memory page boundary.
    Boundary {
        /// The slice (0-based) whose start or end is misplaced.
        segment: usize,
        /// Its IOVA at that boundary.
        addr: u64,
    },
    /// A slice no PRP can describe (zero bytes, not dword aligned), or
    /// more pages than one list page holds.
    Prp(PrpError),
}

impl PrpChain {
    /// The PRPs of `segments` (IOVA, length), in order, with memory pages of
    /// `page` bytes (a power of two) and one list page of `page / 8`
    /// entries at most.
    ///
    /// ```
    /// use pinio_nvme::prp_chain::{ChainError, PrpChain};
    /// // Half a page ending on a boundary, then a page elsewhere: 2 entries.
    /// let c = PrpChain::new([(0x10_0800, 0x800), (0x40_0000, 0x1000)], 4096)?;
    /// assert_eq!((c.prp1, c.prp2_field(0xdead_0000)), (0x10_0800, 0x40_0000));
    /// // A second slice that starts mid-page cannot follow.
    /// assert_eq!(PrpChain::new([(0x10_0000, 0x1000), (0x40_0200, 0x200)], 4096), Err(ChainError::Boundary { segment: 1, addr: 0x40_0200 }));
    /// # Ok::<(), ChainError>(())
    /// ```
    pub fn new(segments: impl IntoIterator<Item = (u64, u64)>, page: u64) -> Result<PrpChain, ChainError> {
        debug_assert!(page.is_power_of_two() && page >= 4096);
        let segments: Vec<(u64, u64)> = segments.into_iter().collect();
        let Some(&(prp1, _)) = segments.first() else { return Err(ChainError::Prp(PrpError::Empty)) };
        let last = segments.len() - 1;
        let mut pages = Vec::new();
        for (i, &(addr, len)) in segments.iter().enumerate() {
            if len == 0 {
                return Err(ChainError::Prp(PrpError::Empty));
            }
            if !addr.is_multiple_of(4) {
                return Err(ChainError::Prp(PrpError::Misaligned { addr }));
            }
            let end = addr.checked_add(len).ok_or(ChainError::Prp(PrpError::Overflow))?;
            if i > 0 && !addr.is_multiple_of(page) {
                return Err(ChainError::Boundary { segment: i, addr });
            }
            if i < last && !end.is_multiple_of(page) {
                return Err(ChainError::Boundary { segment: i, addr: end });
            }
            // The first slice's first page is PRP1; every other page start
            // is an entry.
            let mut p = if i == 0 { (addr & !(page - 1)) + page } else { addr };
            while p < end {
                pages.push(p);
                p += page;
            }
        }
        let max = (page / 8) as usize;
        if pages.len() > 1 && pages.len() > max {
            return Err(ChainError::Prp(PrpError::TooLong { entries: pages.len(), max }));
        }
        Ok(PrpChain { prp1, pages })
    }

    /// The value of the PRP2 field, given the IOVA of the command's list
    /// page (used when there is more than one further page).
    pub fn prp2_field(&self, list_iova: u64) -> u64 {
        match self.pages.len() {
            0 => 0,
            1 => self.pages[0],
            _ => list_iova,
        }
    }

    /// The list entries, in order (empty unless PRP2 is a list).
    pub fn list_entries(&self) -> &[u64] {
        if self.pages.len() > 1 { &self.pages } else { &[] }
    }
}

/// The PRPs of one command of a queue: a contiguous transfer (computed) or
/// a vectored one (stored).
#[derive(Debug)]
pub(crate) enum CommandPrps {
    One(Prps),
    Chain(PrpChain),
}

impl CommandPrps {
    /// The PRPs of `op` with memory pages of `page` bytes, or the typed
    /// error that refuses it.
    #[inline]
    pub(crate) fn of(op: &Op, page: u64) -> Result<CommandPrps, Error> {
        if !op.is_vectored() {
            return match Prps::new(op.slice.device_addr(), op.slice.len() as u64, page) {
                Ok(p) => Ok(CommandPrps::One(p)),
                Err(e) => Err(too_long(e)),
            };
        }
        match PrpChain::new(op.segments().map(|s| (s.device_addr(), s.len() as u64)), page) {
            Ok(c) => Ok(CommandPrps::Chain(c)),
            Err(ChainError::Prp(e)) => Err(too_long(e)),
            Err(ChainError::Boundary { segment, addr }) => Err(Error::Misaligned {
                what: if addr == op.segments().nth(segment).map_or(0, |s| s.device_addr()) {
                    "start of a slice after the first of a vectored NVMe command (one PRP list: every slice but the first starts on a memory page)"
                } else {
                    "end of a slice before the last of a vectored NVMe command (one PRP list: every slice but the last ends on a memory page)"
                },
                value: addr,
                required: page,
            }),
        }
    }

    /// PRP1.
    #[inline]
    pub(crate) fn prp1(&self) -> u64 {
        match self {
            CommandPrps::One(p) => p.prp1,
            CommandPrps::Chain(c) => c.prp1,
        }
    }

    /// The PRP2 field, given the IOVA of the command's list page.
    #[inline]
    pub(crate) fn prp2_field(&self, list_iova: u64) -> u64 {
        match self {
            CommandPrps::One(p) => p.prp2_field(list_iova),
            CommandPrps::Chain(c) => c.prp2_field(list_iova),
        }
    }

    /// Calls `write(index, entry)` for each list entry, in order.
    #[inline]
    pub(crate) fn for_each_list_entry(&self, page: u64, mut write: impl FnMut(usize, u64)) {
        match self {
            CommandPrps::One(p) => p.list_entries(page).enumerate().for_each(|(i, e)| write(i, e)),
            CommandPrps::Chain(c) => c.list_entries().iter().enumerate().for_each(|(i, e)| write(i, *e)),
        }
    }
}

/// The error of a transfer no PRP list can describe.
fn too_long(e: PrpError) -> Error {
    Error::Unsupported {
        what: format!("this transfer ({e})"),
        hint: "keep transfers within Capabilities::max_transfer".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const P: u64 = 4096;

    #[test]
    fn one_slice_matches_the_contiguous_prps() {
        for (addr, len) in
            [(0x20_0000, 512), (0x20_0000, P), (0x20_0000, P + 1), (0x20_0004, 3 * P), (0x20_0000, 8 * P)]
        {
            let c = PrpChain::new([(addr, len)], P).unwrap();
            let p = Prps::new(addr, len, P).unwrap();
            assert_eq!(c.prp1, p.prp1);
            assert_eq!(c.prp2_field(0x9000), p.prp2_field(0x9000), "{addr:#x}+{len:#x}");
            assert_eq!(c.list_entries(), p.list_entries(P).collect::<Vec<_>>().as_slice());
        }
    }

    #[test]
    fn slices_with_page_boundaries_are_one_list() {
        // An offset first slice ending on a page, a whole page, a short last one.
        let c = PrpChain::new([(0x10_0c00, 0x400), (0x50_0000, P), (0x30_0000, 0x200)], P).unwrap();
        assert_eq!(c.prp1, 0x10_0c00);
        assert_eq!(c.prp2_field(0x7000), 0x7000);
        assert_eq!(c.list_entries(), &[0x50_0000, 0x30_0000]);
        // Two slices, one page each: PRP2 is the second page, no list.
        let c = PrpChain::new([(0x10_0000, P), (0x30_0000, P)], P).unwrap();
        assert_eq!((c.prp2_field(0x7000), c.list_entries().len()), (0x30_0000, 0));
    }

    #[test]
    fn misplaced_boundaries_and_bad_slices_are_refused() {
        assert_eq!(
            PrpChain::new([(0x10_0000, 0x200), (0x30_0000, P)], P),
            Err(ChainError::Boundary { segment: 0, addr: 0x10_0200 })
        );
        assert_eq!(
            PrpChain::new([(0x10_0000, P), (0x30_0200, P)], P),
            Err(ChainError::Boundary { segment: 1, addr: 0x30_0200 })
        );
        assert_eq!(PrpChain::new([(0x10_0000, P), (0x30_0000, 0)], P), Err(ChainError::Prp(PrpError::Empty)));
        assert_eq!(PrpChain::new([(0x10_0002, P)], P), Err(ChainError::Prp(PrpError::Misaligned { addr: 0x10_0002 })));
        assert_eq!(PrpChain::new(Vec::new(), P), Err(ChainError::Prp(PrpError::Empty)));
        let many: Vec<(u64, u64)> = (0..514).map(|i| (0x100_0000 + 2 * i * P, P)).collect();
        assert_eq!(PrpChain::new(many, P), Err(ChainError::Prp(PrpError::TooLong { entries: 513, max: 512 })));
    }

    proptest! {
        /// Every byte of every slice is covered once, in order, by pieces
        /// that obey the PRP rules.
        #[test]
        fn pages_cover_every_slice_in_order(first_off in 0u64..(P / 4), pages in proptest::collection::vec(1u64..4, 1..6), tail in 1u64..P) {
            let mut segs = Vec::new();
            let mut base = 0x100_0000u64;
            let n = pages.len();
            for (i, np) in pages.iter().enumerate() {
                let start = if i == 0 { base + first_off * 4 } else { base };
                let end = if i + 1 == n { base + (np - 1) * P + tail } else { base + np * P };
                if end > start {
                    segs.push((start, end - start));
                }
                base += 16 * P;
            }
            prop_assume!(!segs.is_empty());
            let c = PrpChain::new(segs.clone(), P).unwrap();
            let mut starts = vec![c.prp1];
            starts.extend(match c.list_entries().len() { 0 => (c.prp2_field(0) != 0).then_some(c.prp2_field(0)).into_iter().collect::<Vec<_>>(), _ => c.list_entries().to_vec() });
            let bytes: Vec<u64> = segs.iter().flat_map(|&(a, l)| a..a + l).collect();
            let mut got = Vec::new();
            for (i, s) in starts.iter().enumerate() {
                if i > 0 {
                    prop_assert_eq!(s % P, 0);
                }
                let room = P - s % P;
                let left = bytes.len() as u64 - got.len() as u64;
                got.extend(*s..*s + room.min(left));
            }
            prop_assert_eq!(got, bytes);
        }
    }
}
