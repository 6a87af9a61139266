//! Delta debugging (Zeller and Hildebrandt's ddmin) over the writes a
//! failing crash state added to its durable image.

use super::state::{CrashState, Extra, StateKind};

/// The smallest subset of `state`'s writes found for which `fails` still
/// holds (1-minimal: removing any single write makes it pass), given that
/// it holds for all of them. `fails` is called on candidate states.
pub fn shrink(state: &CrashState, mut fails: impl FnMut(&CrashState) -> bool) -> CrashState {
    let with =
        |extra: Vec<Extra>| CrashState { index: state.index, epoch: state.epoch, kind: StateKind::Shrunk, extra };
    if fails(&with(Vec::new())) {
        return with(Vec::new());
    }
    let mut cur = state.extra.clone();
    let mut n = 2usize;
    while cur.len() >= 2 {
        let chunk = cur.len().div_ceil(n);
        let parts: Vec<Vec<Extra>> = cur.chunks(chunk).map(<[Extra]>::to_vec).collect();
        let mut reduced = false;
        for (i, part) in parts.iter().enumerate() {
            if fails(&with(part.clone())) {
                cur = part.clone();
                n = 2;
                reduced = true;
                break;
            }
            let complement: Vec<Extra> =
                parts.iter().enumerate().filter(|(j, _)| *j != i).flat_map(|(_, p)| p.clone()).collect();
            if parts.len() > 2 && fails(&with(complement.clone())) {
                cur = complement;
                n = (n - 1).max(2);
                reduced = true;
                break;
            }
        }
        if !reduced {
            if n >= cur.len() {
                break;
            }
            n = (2 * n).min(cur.len());
        }
    }
    with(cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(n: usize) -> CrashState {
        let extra = (0..n).map(|w| Extra { write: w, time: w as f64, torn: None }).collect();
        CrashState { index: 0, epoch: 0, kind: StateKind::Sampled, extra }
    }

    fn writes(s: &CrashState) -> Vec<usize> {
        s.extra.iter().map(|x| x.write).collect()
    }

    #[test]
    fn finds_the_pair_that_fails_together() {
        let mut calls = 0;
        let s = shrink(&state(32), |c| {
            calls += 1;
            let w = writes(c);
            w.contains(&5) && w.contains(&20)
        });
        assert_eq!(writes(&s), [5, 20]);
        assert!(calls < 100, "{calls} checks");
    }

    #[test]
    fn an_empty_failure_shrinks_to_nothing() {
        assert!(shrink(&state(8), |_| true).extra.is_empty());
        assert_eq!(writes(&shrink(&state(8), |c| writes(c).contains(&7))), [7]);
    }
}
