//! Sharing the guest tests among guests booted side by side.
//!
//! Each guest is a whole machine of its own (kernel, devices, `/proc/vmstat`
//! pin counters), so tests in different guests cannot disturb each other's
//! checks; within one guest they run one after another, in the order listed.
//! Tests are dealt out longest first to the guest with the least work so far
//! (LPT scheduling), using each test's time in the last run, kept in the
//! cache; a test never timed counts as the median of those that were.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Seconds a test is assumed to take when no test has been timed yet.
const UNKNOWN_SECS: f64 = 10.0;

/// Each test's wall time in the last run that timed it, by name.
pub struct Times {
    path: PathBuf,
    secs: HashMap<String, f64>,
}

impl Times {
    /// Reads `path` (`name<TAB>seconds` lines); missing or unreadable lines are ignored.
    pub fn load(path: &Path) -> Times {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let secs = text
            .lines()
            .filter_map(|l| {
                let (name, secs) = l.rsplit_once('\t')?;
                Some((name.to_string(), secs.trim().parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0)?))
            })
            .collect();
        Times { path: path.to_path_buf(), secs }
    }

    /// Records that `name` took `took`.
    pub fn record(&mut self, name: &str, took: Duration) {
        self.secs.insert(name.to_string(), took.as_secs_f64());
    }

    /// Writes the times back (best effort: they only steer the next split).
    pub fn save(&self) {
        let mut names: Vec<_> = self.secs.iter().collect();
        names.sort_by(|a, b| a.0.cmp(b.0));
        let text: String = names.iter().map(|(n, s)| format!("{n}\t{s:.1}\n")).collect();
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::write(&self.path, text);
    }

    /// The time expected of `name`.
    fn estimate(&self, name: &str, fallback: f64) -> f64 {
        self.secs.get(name).copied().unwrap_or(fallback)
    }

    fn median(&self) -> f64 {
        let mut v: Vec<f64> = self.secs.values().copied().collect();
        if v.is_empty() {
            return UNKNOWN_SECS;
        }
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }
}

/// Splits tests `names` among `guests` guests: indices into `names` per
/// guest, each in the original order; no guest is left empty while another
/// has two tests or more.
pub fn split(names: &[String], guests: usize, times: &Times) -> Vec<Vec<usize>> {
    let guests = guests.clamp(1, names.len().max(1));
    let fallback = times.median();
    let mut order: Vec<usize> = (0..names.len()).collect();
    // Longest first; ties keep the listed order, so the split is deterministic.
    order.sort_by(|&a, &b| times.estimate(&names[b], fallback).total_cmp(&times.estimate(&names[a], fallback)));
    let mut lanes: Vec<(f64, Vec<usize>)> = vec![(0.0, Vec::new()); guests];
    for i in order {
        let lane = (0..guests)
            .min_by(|&a, &b| lanes[a].0.total_cmp(&lanes[b].0).then(lanes[a].1.len().cmp(&lanes[b].1.len())))
            .unwrap_or(0);
        lanes[lane].0 += times.estimate(&names[i], fallback);
        lanes[lane].1.push(i);
    }
    lanes
        .into_iter()
        .map(|(_, mut v)| {
            v.sort_unstable();
            v
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(pairs: &[(&str, f64)]) -> Times {
        Times { path: PathBuf::new(), secs: pairs.iter().map(|(n, s)| (n.to_string(), *s)).collect() }
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn longest_tests_go_to_different_guests_and_order_is_kept() {
        let n = names(&["a", "fuzz", "b", "c", "nvme"]);
        let t = times(&[("a", 5.0), ("fuzz", 100.0), ("b", 5.0), ("c", 5.0), ("nvme", 90.0)]);
        let lanes = split(&n, 2, &t);
        assert_eq!(lanes.len(), 2);
        let fuzz_lane = lanes.iter().position(|l| l.contains(&1)).unwrap();
        let nvme_lane = lanes.iter().position(|l| l.contains(&4)).unwrap();
        assert_ne!(fuzz_lane, nvme_lane);
        for l in &lanes {
            assert!(l.windows(2).all(|w| w[0] < w[1]), "listed order kept: {l:?}");
        }
        let mut all: Vec<usize> = lanes.concat();
        all.sort_unstable();
        assert_eq!(all, vec![0, 1, 2, 3, 4], "every test exactly once");
    }

    #[test]
    fn untimed_tests_count_as_the_median_and_one_guest_takes_all() {
        let n = names(&["x", "y", "z", "w"]);
        let lanes = split(&n, 2, &times(&[]));
        assert_eq!(lanes.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2]);
        assert_eq!(split(&n, 1, &times(&[])), vec![vec![0, 1, 2, 3]]);
        assert_eq!(split(&names(&["only"]), 3, &times(&[])).len(), 1, "no empty guest booted");
    }

    #[test]
    fn times_round_trip_through_the_file() {
        let dir = std::env::temp_dir().join(format!("pinio-lanes-{}", std::process::id()));
        let path = dir.join("times.tsv");
        let mut t = Times::load(&path);
        t.record("pinio-kmod/guest_abi", Duration::from_millis(12_340));
        t.record("smoke/pci-edu", Duration::from_millis(500));
        t.save();
        std::fs::write(&path, std::fs::read_to_string(&path).unwrap() + "garbage line\nbad\tNaN\n").unwrap();
        let back = Times::load(&path);
        assert_eq!(back.secs.len(), 2);
        assert!((back.estimate("pinio-kmod/guest_abi", 0.0) - 12.3).abs() < 0.01);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
