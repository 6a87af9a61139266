//! The fault rules of `fault:<rules>:<selection>`: which operations fail,
//! and how.
//!
//! ```text
//! rules  := rule (',' rule)*
//! rule   := KIND '@' WHEN '=' FAULT      the WHEN-th operations of KIND
//!         | KIND '%' PROB '=' FAULT      each operation of KIND with probability PROB
//!         | 'seed=' N                    the random stream of '%' rules (default 0)
//! KIND   := read | write | io | flush    (io: reads and writes, counted together)
//! WHEN   := N | N '-' M | N '+'          the N-th (from 1), the N-th to M-th, the N-th and every later one
//! PROB   := a number in [0, 1]           e.g. 0.01
//! FAULT  := eio | enospc                 fails with that errno, without reaching the device
//!         | short                        reads and writes: moves only the first half (whole units), completes Ok(fewer bytes)
//!         | delay | delayN               reads and writes: the completion is held back for N (default 2) further poll/wait calls
//!         | reorder                      reads and writes: the completion is handed out after later operations' completions
//! ```
//!
//! Operations are counted per device across all its queues, from 1, when
//! they are pushed (a flush when it is called). The first rule that matches
//! an operation decides its fault. Example:
//! `fault:write@3=eio,flush@2=eio,io%0.05=delay,seed=7:copy:/var/tmp/x`.

use pinio_core::{Error, Result};
use std::fmt;

/// Which operations a rule counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// Reads.
    Read,
    /// Writes.
    Write,
    /// Reads and writes, counted together.
    Io,
    /// Flushes.
    Flush,
}

impl OpKind {
    fn name(self) -> &'static str {
        match self {
            OpKind::Read => "read",
            OpKind::Write => "write",
            OpKind::Io => "io",
            OpKind::Flush => "flush",
        }
    }
}

/// Which of them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum When {
    /// The N-th to the M-th (inclusive, from 1); `u64::MAX` for "and every later one".
    Range(u64, u64),
    /// Each with this probability.
    Chance(f64),
}

/// What happens to a chosen operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Fails with `EIO`; never reaches the device.
    Eio,
    /// Fails with `ENOSPC`; never reaches the device.
    Enospc,
    /// Moves only the first half of its bytes (whole units of the device's
    /// alignment; none if it is a single unit) and completes `Ok` with that
    /// count.
    Short,
    /// Its completion is held back for this many further `poll`/`wait` calls.
    Delay(u32),
    /// Its completion is handed out after completions of later operations.
    Reorder,
}

impl Fault {
    /// The OS error it injects, if it is one.
    pub fn errno(self) -> Option<i32> {
        match self {
            Fault::Eio => Some(libc::EIO),
            Fault::Enospc => Some(libc::ENOSPC),
            _ => None,
        }
    }
}

/// One rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Which operations it counts.
    pub kind: OpKind,
    /// Which of them it hits.
    pub when: When,
    /// What it does to them.
    pub fault: Fault,
}

/// Parsed rules and the seed of their random stream.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FaultPlan {
    /// The rules, first match wins.
    pub rules: Vec<Rule>,
    /// The seed of `%` rules.
    pub seed: u64,
}

fn bad(spec: &str, reason: String) -> Error {
    Error::InvalidTarget { spec: format!("fault:{spec}"), reason }
}

impl FaultPlan {
    /// Parses the rules part of `fault:<rules>:<selection>`.
    pub fn parse(spec: &str) -> Result<FaultPlan> {
        let mut plan = FaultPlan::default();
        if spec.is_empty() {
            return Err(bad(spec, "no fault rules (e.g. write@3=eio)".into()));
        }
        for item in spec.split(',') {
            plan.parse_item(spec, item)?;
        }
        if plan.rules.is_empty() {
            return Err(bad(spec, "only a seed, no fault rule (e.g. write@3=eio)".into()));
        }
        Ok(plan)
    }

    fn parse_item(&mut self, spec: &str, item: &str) -> Result<()> {
        let item = item.trim();
        if let Some(n) = item.strip_prefix("seed=") {
            self.seed = n.parse().map_err(|_| bad(spec, format!("seed {n:?} is not a non-negative integer")))?;
            return Ok(());
        }
        let Some((lhs, fault)) = item.split_once('=') else {
            return Err(bad(spec, format!("rule {item:?} has no '=FAULT' (e.g. write@3=eio)")));
        };
        let (kind, when) = if let Some((k, w)) = lhs.split_once('@') {
            (k, parse_when(spec, w)?)
        } else if let Some((k, p)) = lhs.split_once('%') {
            let prob: f64 = p.parse().map_err(|_| bad(spec, format!("probability {p:?} is not a number")))?;
            if !(0.0..=1.0).contains(&prob) {
                return Err(bad(spec, format!("probability {prob} is outside [0, 1]")));
            }
            (k, When::Chance(prob))
        } else {
            return Err(bad(
                spec,
                format!("rule {item:?} says neither which operations (KIND@N) nor how often (KIND%P)"),
            ));
        };
        let kind = match kind {
            "read" => OpKind::Read,
            "write" => OpKind::Write,
            "io" => OpKind::Io,
            "flush" => OpKind::Flush,
            k => {
                return Err(bad(spec, format!("unknown operation kind {k:?} (read, write, io or flush)")));
            }
        };
        let fault = match fault {
            "eio" => Fault::Eio,
            "enospc" => Fault::Enospc,
            "short" => Fault::Short,
            "reorder" => Fault::Reorder,
            "delay" => Fault::Delay(2),
            f => match f.strip_prefix("delay").map(str::parse::<u32>) {
                Some(Ok(n)) if n > 0 => Fault::Delay(n),
                _ => {
                    return Err(bad(spec, format!("unknown fault {f:?} (eio, enospc, short, delay, delayN, reorder)")));
                }
            },
        };
        if kind == OpKind::Flush && fault.errno().is_none() {
            return Err(bad(spec, format!("a flush can fail (eio, enospc) but not be {fault:?}")));
        }
        self.rules.push(Rule { kind, when, fault });
        Ok(())
    }
}

fn parse_when(spec: &str, w: &str) -> Result<When> {
    let num = |s: &str| -> Result<u64> {
        match s.parse::<u64>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(bad(spec, format!("{s:?} is not an operation number (1, 2, ...)"))),
        }
    };
    if let Some(n) = w.strip_suffix('+') {
        return Ok(When::Range(num(n)?, u64::MAX));
    }
    if let Some((a, b)) = w.split_once('-') {
        let (a, b) = (num(a)?, num(b)?);
        if b < a {
            return Err(bad(spec, format!("range {a}-{b} ends before it starts")));
        }
        return Ok(When::Range(a, b));
    }
    let n = num(w)?;
    Ok(When::Range(n, n))
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Eio => f.write_str("eio"),
            Fault::Enospc => f.write_str("enospc"),
            Fault::Short => f.write_str("short"),
            Fault::Delay(n) => write!(f, "delay{n}"),
            Fault::Reorder => f.write_str("reorder"),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.when {
            When::Range(a, b) if a == b => write!(f, "{}@{a}={}", self.kind.name(), self.fault),
            When::Range(a, u64::MAX) => write!(f, "{}@{a}+={}", self.kind.name(), self.fault),
            When::Range(a, b) => write!(f, "{}@{a}-{b}={}", self.kind.name(), self.fault),
            When::Chance(p) => write!(f, "{}%{p}={}", self.kind.name(), self.fault),
        }
    }
}

impl fmt::Display for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rules: Vec<String> = self.rules.iter().map(Rule::to_string).collect();
        write!(f, "{}", rules.join(","))?;
        if self.seed != 0 {
            write!(f, ",seed={}", self.seed)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_print_back() {
        let p = FaultPlan::parse("write@3=eio,flush@1=enospc,io%0.25=delay5,read@2-4=short,write@7+=reorder,seed=9")
            .unwrap();
        assert_eq!(p.seed, 9);
        assert_eq!(p.rules[0], Rule { kind: OpKind::Write, when: When::Range(3, 3), fault: Fault::Eio });
        assert_eq!(p.rules[2], Rule { kind: OpKind::Io, when: When::Chance(0.25), fault: Fault::Delay(5) });
        assert_eq!(p.rules[4].when, When::Range(7, u64::MAX));
        assert_eq!(p.to_string(), "write@3=eio,flush@1=enospc,io%0.25=delay5,read@2-4=short,write@7+=reorder,seed=9");
        assert_eq!(FaultPlan::parse(&p.to_string()).unwrap(), p);
    }

    #[test]
    fn bad_rules_say_what_is_wrong() {
        for (s, why) in [
            ("", "no fault rules"),
            ("seed=3", "only a seed"),
            ("write@3", "no '=FAULT'"),
            ("write=eio", "neither"),
            ("disk@1=eio", "unknown operation kind"),
            ("write@0=eio", "not an operation number"),
            ("write@5-2=eio", "ends before"),
            ("write%2=eio", "outside [0, 1]"),
            ("write%x=eio", "not a number"),
            ("write@1=melt", "unknown fault"),
            ("write@1=delay0", "unknown fault"),
            ("flush@1=short", "a flush can fail"),
            ("seed=-1,write@1=eio", "seed"),
        ] {
            let e = FaultPlan::parse(s).unwrap_err().to_string();
            assert!(e.contains(why), "{s}: {e}");
        }
    }
}
