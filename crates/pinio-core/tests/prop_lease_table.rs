//! Property tests of a region's lease table: random sequences of slice, split, merge, drop and
//! unregister, checked against a model. Live slices never overlap (each keeps the bytes written
//! through it), `live_slices()` is exact, and unregistering succeeds iff no slice is alive, with
//! the backend hook called exactly once.

use pinio_core::conformance::CountingRegistrar;
use pinio_core::{DmaBuf, Error, Region, Slice, UnregisterError};
use proptest::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const DEVICE_ADDR: u64 = CountingRegistrar::DEVICE_ADDR;

fn region(len: usize) -> (Region, Arc<AtomicUsize>) {
    let (domain, released) = CountingRegistrar::domain();
    (domain.register(DmaBuf::new(len).unwrap()).unwrap(), released)
}

#[derive(Debug, Clone)]
enum Action {
    Take { offset: usize, len: usize },
    Split { pick: usize, mid: usize },
    Merge { a: usize, b: usize },
    MergeForeign { pick: usize },
    Drop { pick: usize },
    Unregister,
}

fn action(max: usize) -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => (0..max + 8, 0..max / 2 + 8).prop_map(|(offset, len)| Action::Take { offset, len }),
        3 => (any::<usize>(), 0..max + 2).prop_map(|(pick, mid)| Action::Split { pick, mid }),
        3 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Action::Merge { a, b }),
        1 => any::<usize>().prop_map(|pick| Action::MergeForeign { pick }),
        2 => any::<usize>().prop_map(|pick| Action::Drop { pick }),
        1 => Just(Action::Unregister),
    ]
}

/// The slices alive, each with the byte it was filled with.
struct Live {
    slices: Vec<(Slice, u8)>,
    next_tag: u8,
}

impl Live {
    fn tag(&mut self) -> u8 {
        self.next_tag = self.next_tag.wrapping_add(1).max(1);
        self.next_tag
    }

    fn push(&mut self, mut s: Slice) {
        let t = self.tag();
        s.fill(t);
        self.slices.push((s, t));
    }

    /// Every live slice still holds its own bytes and no two overlap.
    fn check(&self, region: &Region) -> Result<(), TestCaseError> {
        prop_assert_eq!(region.live_slices(), self.slices.len(), "live_slices() is exact");
        let mut spans: Vec<(usize, usize)> = self.slices.iter().map(|(s, _)| (s.offset(), s.len())).collect();
        spans.sort();
        for w in spans.windows(2) {
            prop_assert!(w[0].0 + w[0].1 <= w[1].0, "live slices overlap: {:?}", w);
        }
        for (s, t) in &self.slices {
            prop_assert!(s.iter().all(|b| b == t), "slice {}+{} lost its bytes", s.offset(), s.len());
            prop_assert_eq!(s.device_addr(), DEVICE_ADDR + s.offset() as u64);
            prop_assert!(s.offset() + s.len() <= region.len());
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_lease_sequences_keep_the_table_exact(len in 1usize..20_000, actions in prop::collection::vec(action(20_000), 1..60)) {
        let (r, hook) = region(len);
        // DmaBuf rounds up to whole pages: the region is as long as the buffer.
        prop_assert!(r.len() >= len);
        let len = r.len();
        let (foreign, _) = region(4096);
        let foreign_slice = foreign.slice(0, 100).unwrap();
        let mut foreign_slice = Some(foreign_slice);
        let mut r = Some(r);
        let mut live = Live { slices: Vec::new(), next_tag: 0 };
        for a in actions {
            let Some(region) = r.as_ref() else { break };
            match a {
                Action::Take { offset, len: l } => {
                    let overlaps = live.slices.iter().any(|(s, _)| offset < s.offset() + s.len() && s.offset() < offset + l);
                    match region.slice(offset, l) {
                        Ok(s) => {
                            prop_assert!(l > 0 && offset + l <= len && !overlaps, "slice({offset}, {l}) granted");
                            prop_assert_eq!((s.offset(), s.len()), (offset, l));
                            live.push(s);
                        }
                        Err(Error::ZeroLength { .. }) => prop_assert_eq!(l, 0),
                        Err(Error::OutOfBounds { .. }) => prop_assert!(l > 0 && offset + l > len),
                        Err(Error::SliceOverlap { .. }) => prop_assert!(l > 0 && offset + l <= len && overlaps),
                        Err(e) => prop_assert!(false, "unexpected error {e}"),
                    }
                }
                Action::Split { pick, mid } if !live.slices.is_empty() => {
                    let i = pick % live.slices.len();
                    let (s, t) = live.slices.swap_remove(i);
                    let (o, l) = (s.offset(), s.len());
                    match s.split_at(mid) {
                        Ok((a, b)) => {
                            prop_assert!(mid > 0 && mid < l);
                            prop_assert_eq!((a.offset(), a.len(), b.offset(), b.len()), (o, mid, o + mid, l - mid));
                            prop_assert!(a.iter().chain(b.iter()).all(|&x| x == t), "split halves keep the bytes");
                            live.push(a);
                            live.push(b);
                        }
                        Err(s) => {
                            prop_assert!(mid == 0 || mid >= l);
                            prop_assert_eq!((s.offset(), s.len()), (o, l));
                            live.slices.push((s, t));
                        }
                    }
                }
                Action::Merge { a, b } if live.slices.len() >= 2 => {
                    let i = a % live.slices.len();
                    let (sa, ta) = live.slices.swap_remove(i);
                    let j = b % live.slices.len();
                    let (sb, tb) = live.slices.swap_remove(j);
                    let adjacent = sa.offset() + sa.len() == sb.offset();
                    let (oa, la, ob, lb) = (sa.offset(), sa.len(), sb.offset(), sb.len());
                    match sa.merge(sb) {
                        Ok(m) => {
                            prop_assert!(adjacent);
                            prop_assert_eq!((m.offset(), m.len()), (oa, la + lb));
                            live.push(m);
                        }
                        Err((x, y)) => {
                            prop_assert!(!adjacent);
                            prop_assert_eq!((x.offset(), x.len(), y.offset(), y.len()), (oa, la, ob, lb));
                            live.slices.push((x, ta));
                            live.slices.push((y, tb));
                        }
                    }
                }
                Action::MergeForeign { pick } if !live.slices.is_empty() => {
                    let i = pick % live.slices.len();
                    let (s, t) = live.slices.swap_remove(i);
                    let f = foreign_slice.take().unwrap();
                    match s.merge(f) {
                        Ok(_) => prop_assert!(false, "merged slices of two regions"),
                        Err((s, f)) => {
                            live.slices.push((s, t));
                            foreign_slice = Some(f);
                        }
                    }
                }
                Action::Drop { pick } if !live.slices.is_empty() => {
                    let i = pick % live.slices.len();
                    live.slices.swap_remove(i);
                }
                Action::Unregister => {
                    let n = live.slices.len();
                    match r.take().unwrap().unregister() {
                        Ok(buf) => {
                            prop_assert_eq!(n, 0, "unregistered with {} live slices", n);
                            prop_assert_eq!(buf.len(), len);
                            prop_assert_eq!(hook.load(Ordering::SeqCst), 1);
                        }
                        Err(UnregisterError::Busy { region, outstanding }) => {
                            prop_assert!(n > 0, "refused with no live slice");
                            prop_assert_eq!(outstanding, n);
                            prop_assert_eq!(hook.load(Ordering::SeqCst), 0);
                            r = Some(region);
                        }
                        Err(e) => prop_assert!(false, "unexpected {e}"),
                    }
                }
                _ => {}
            }
            if let Some(region) = r.as_ref() {
                live.check(region)?;
                prop_assert_eq!(hook.load(Ordering::SeqCst), 0, "hook ran while the region is alive");
            }
        }
        // Whatever is left: the hook runs exactly once, after the last handle and slice.
        let registered = r.is_some();
        drop(r);
        let expect_before = usize::from(!registered);
        prop_assert_eq!(hook.load(Ordering::SeqCst), if live.slices.is_empty() { 1 } else { expect_before });
        live.slices.clear();
        prop_assert_eq!(hook.load(Ordering::SeqCst), 1);
    }
}
