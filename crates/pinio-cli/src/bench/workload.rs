//! What a benchmark run does: pattern, block size, queue depth, direction.

use pinio::Direction;
use std::fmt;

/// Random or sequential offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Pattern {
    /// Uniformly random block-aligned offsets.
    Random,
    /// Consecutive blocks, wrapping at the end of the file.
    Sequential,
}

/// One workload.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Workload {
    pub pattern: Pattern,
    pub block: usize,
    pub depth: usize,
    /// Threads, each with its own queue on the one device (fio: `numjobs`).
    pub jobs: usize,
    #[serde(serialize_with = "dir_name")]
    pub dir: Direction,
}

fn dir_name<S: serde::Serializer>(d: &Direction, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match d {
        Direction::Read => "read",
        Direction::Write => "write",
    })
}

impl Workload {
    /// Parses `randread-4k-qd32`, `read-1m-qd4`, `write-128k-qd1`,
    /// `randwrite-4k-qd32`, and with a thread count `randread-4k-qd32-j2`
    /// (two threads, each with its own queue of depth 32).
    pub fn parse(s: &str) -> Result<Workload, String> {
        let bad = || {
            format!(
                "bad workload {s:?}; expected e.g. randread-4k-qd32, read-1m-qd4, write-128k-qd1, randread-4k-qd32-j2"
            )
        };
        let mut it = s.split('-');
        let (kind, size, qd) = (it.next().ok_or_else(bad)?, it.next().ok_or_else(bad)?, it.next().ok_or_else(bad)?);
        let jobs = match it.next() {
            None => 1,
            Some(j) => j
                .strip_prefix('j')
                .and_then(|j| j.parse().ok())
                .filter(|&j: &usize| (1..=64).contains(&j))
                .ok_or_else(bad)?,
        };
        if it.next().is_some() {
            return Err(bad());
        }
        let (pattern, dir) = match kind {
            "randread" => (Pattern::Random, Direction::Read),
            "randwrite" => (Pattern::Random, Direction::Write),
            "read" => (Pattern::Sequential, Direction::Read),
            "write" => (Pattern::Sequential, Direction::Write),
            _ => return Err(bad()),
        };
        let (num, mult) = match size.chars().last() {
            Some('k') => (&size[..size.len() - 1], 1024),
            Some('m') => (&size[..size.len() - 1], 1 << 20),
            _ => (size, 1),
        };
        let block = num.parse::<usize>().map_err(|_| bad())? * mult;
        let depth = qd.strip_prefix("qd").and_then(|d| d.parse().ok()).filter(|&d| d > 0).ok_or_else(bad)?;
        if block == 0 {
            return Err(bad());
        }
        Ok(Workload { pattern, block, depth, jobs, dir })
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match (self.pattern, self.dir) {
            (Pattern::Random, Direction::Read) => "randread",
            (Pattern::Random, Direction::Write) => "randwrite",
            (Pattern::Sequential, Direction::Read) => "read",
            (Pattern::Sequential, Direction::Write) => "write",
        };
        let size = if self.block.is_multiple_of(1 << 20) {
            format!("{}m", self.block >> 20)
        } else if self.block.is_multiple_of(1024) {
            format!("{}k", self.block >> 10)
        } else {
            self.block.to_string()
        };
        write!(f, "{kind}-{size}-qd{}", self.depth)?;
        if self.jobs > 1 {
            write!(f, "-j{}", self.jobs)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in ["randread-4k-qd32", "read-1m-qd4", "write-128k-qd1", "randwrite-512-qd2", "randread-4k-qd32-j2"] {
            assert_eq!(Workload::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(Workload::parse("randread-4k-qd1-j1").unwrap().to_string(), "randread-4k-qd1");
        for s in [
            "",
            "randread-4k",
            "randread-0-qd1",
            "randread-4k-qd0",
            "seek-4k-qd1",
            "read-4x-qd1",
            "randread-4k-qd1-j0",
            "randread-4k-qd1-x2",
            "randread-4k-qd1-j2-j2",
        ] {
            assert!(Workload::parse(s).is_err(), "{s}");
        }
    }
}
