//! Queue index and phase arithmetic, separate from memory so that it can
//! be tested on its own.
//!
//! A submission queue is full when advancing its tail would make it equal
//! to the head the controller last reported, so a queue of `n` entries
//! holds at most `n - 1` commands. A completion queue entry is new when its
//! phase tag equals the phase the host expects; the expected phase starts
//! at 1 (the queue memory is zeroed) and flips each time the head wraps.

/// The host's side of a submission queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqRing {
    entries: u16,
    tail: u16,
    head: u16,
}

impl SqRing {
    /// A queue of `entries` entries (at least 2), empty.
    pub fn new(entries: u16) -> SqRing {
        debug_assert!(entries >= 2);
        SqRing { entries, tail: 0, head: 0 }
    }

    /// The slot the next command goes to.
    pub fn tail(&self) -> u16 {
        self.tail
    }

    /// Commands written and not yet consumed by the controller.
    pub fn used(&self) -> u16 {
        (self.tail + self.entries - self.head) % self.entries
    }

    /// Whether another command fits.
    pub fn is_full(&self) -> bool {
        self.used() == self.entries - 1
    }

    /// Claims the tail slot and advances; `None` when full.
    pub fn push(&mut self) -> Option<u16> {
        if self.is_full() {
            return None;
        }
        let slot = self.tail;
        self.tail = (self.tail + 1) % self.entries;
        Some(slot)
    }

    /// Records the head the controller reported in a completion. A value
    /// outside the queue is ignored (a misbehaving device cannot make the
    /// host overwrite unconsumed entries through it).
    pub fn set_head(&mut self, head: u16) {
        if head < self.entries {
            self.head = head;
        }
    }
}

/// The host's side of a completion queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CqRing {
    entries: u16,
    head: u16,
    phase: bool,
}

impl CqRing {
    /// A queue of `entries` entries whose memory is zeroed.
    pub fn new(entries: u16) -> CqRing {
        CqRing { entries, head: 0, phase: true }
    }

    /// The slot the next completion appears in.
    pub fn head(&self) -> u16 {
        self.head
    }

    /// The phase tag a new entry at the head carries.
    pub fn phase(&self) -> bool {
        self.phase
    }

    /// Whether an entry with phase tag `tag` at the head is new.
    pub fn is_new(&self, tag: bool) -> bool {
        tag == self.phase
    }

    /// Consumes the head entry; flips the expected phase on wrap.
    pub fn advance(&mut self) {
        self.head += 1;
        if self.head == self.entries {
            self.head = 0;
            self.phase = !self.phase;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sq_holds_one_less_than_its_entries() {
        let mut sq = SqRing::new(4);
        assert_eq!((sq.push(), sq.push(), sq.push()), (Some(0), Some(1), Some(2)));
        assert!(sq.is_full());
        assert_eq!(sq.push(), None);
        assert_eq!(sq.used(), 3);
        sq.set_head(2);
        assert_eq!(sq.used(), 1);
        assert_eq!((sq.push(), sq.push()), (Some(3), Some(0)), "tail wraps");
        assert!(sq.is_full());
        sq.set_head(9);
        assert!(sq.is_full(), "an out-of-range head is ignored");
        sq.set_head(1);
        assert_eq!(sq.used(), 0);
        assert_eq!(sq.tail(), 1);
    }

    #[test]
    fn cq_phase_flips_on_every_wrap() {
        let mut cq = CqRing::new(3);
        assert!(cq.is_new(true) && !cq.is_new(false), "zeroed memory is old");
        let mut seen = Vec::new();
        for _ in 0..7 {
            seen.push((cq.head(), cq.phase()));
            cq.advance();
        }
        assert_eq!(seen, vec![(0, true), (1, true), (2, true), (0, false), (1, false), (2, false), (0, true)]);
    }

    #[test]
    fn a_simulated_controller_and_host_agree() {
        // The controller posts entries with its own phase; the host consumes
        // exactly the posted ones, over many wraps.
        let n = 5u16;
        let mut mem = vec![false; n as usize];
        let (mut ctail, mut cphase) = (0u16, true);
        let mut cq = CqRing::new(n);
        let mut consumed = 0;
        for round in 0..40 {
            let post = round % 4 + 1;
            for _ in 0..post.min(n - 1) {
                mem[ctail as usize] = cphase;
                ctail += 1;
                if ctail == n {
                    ctail = 0;
                    cphase = !cphase;
                }
            }
            let mut got = 0;
            while cq.is_new(mem[cq.head() as usize]) {
                cq.advance();
                got += 1;
            }
            assert_eq!(got, post.min(n - 1), "round {round}");
            consumed += got;
        }
        assert!(consumed > 3 * n);
    }
}
