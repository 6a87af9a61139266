//! Wrappers in selection strings: `record:<log>:<selection>` records every
//! write and flush of the device into a crash log
//! ([`pinio_crash::RecordDevice`]); `fault:<rules>:<selection>` fails chosen
//! operations ([`pinio_crash::FaultDevice`], rules in
//! [`pinio_crash::fault::rules`]). They stack, outermost first:
//! `fault:write@9=eio:record:/var/tmp/kv.log:uring:/var/tmp/kv.dat`.

use pinio_core::{Device, Error, Result};
use std::fmt;

/// A wrapper around the device a selection string opens.
///
/// # Example
///
/// ```
/// use pinio::{BackendKind, Target, Wrapper};
/// let t = Target::parse("fault:write@9=eio:record:/var/tmp/kv.log:copy:/var/tmp/kv.dat")?;
/// assert_eq!(
///     t.wrappers,
///     [Wrapper::Fault { rules: "write@9=eio".into() }, Wrapper::Record { log: "/var/tmp/kv.log".into() }]
/// );
/// assert_eq!((t.backend, t.location.as_str()), (BackendKind::Copy, "/var/tmp/kv.dat"));
/// assert_eq!(t.wrappers[1].to_string(), "record:/var/tmp/kv.log");
/// # Ok::<(), pinio::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wrapper {
    /// `record:<log>`: record into the crash log at this path (which cannot
    /// contain ':').
    Record {
        /// The log's path.
        log: String,
    },
    /// `fault:<rules>`: inject these faults (checked when parsed).
    Fault {
        /// The rules, as written.
        rules: String,
    },
}

impl fmt::Display for Wrapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Wrapper::Record { log } => write!(f, "record:{log}"),
            Wrapper::Fault { rules } => write!(f, "fault:{rules}"),
        }
    }
}

/// Takes the wrappers off the front of `spec`; returns them (outermost
/// first) and the rest, the backend's selection string.
pub(crate) fn split(spec: &str) -> Result<(Vec<Wrapper>, &str)> {
    let bad = |reason: String| Error::InvalidTarget { spec: spec.to_string(), reason };
    let mut wrappers = Vec::new();
    let mut rest = spec;
    loop {
        let (name, after) = match rest.split_once(':') {
            Some((n @ ("record" | "fault"), a)) => (n, a),
            _ => return Ok((wrappers, rest)),
        };
        let Some((param, inner)) = after.split_once(':') else {
            return Err(bad(format!(
                "{name}: needs {name}:{}:<selection>, e.g. {}",
                if name == "record" { "<log path>" } else { "<rules>" },
                example(name)
            )));
        };
        if param.is_empty() || param.contains('\0') {
            return Err(bad(format!(
                "{name}: has an empty or NUL-containing {}",
                if name == "record" { "log path" } else { "rule list" }
            )));
        }
        if inner.is_empty() {
            return Err(bad(format!(
                "{name}:{param}: wraps nothing; add the device's selection string, e.g. {}",
                example(name)
            )));
        }
        wrappers.push(if name == "record" {
            Wrapper::Record { log: param.to_string() }
        } else {
            pinio_crash::FaultPlan::parse(param).map_err(|e| bad(e.to_string()))?;
            Wrapper::Fault { rules: param.to_string() }
        });
        rest = inner;
    }
}

fn example(name: &str) -> &'static str {
    if name == "record" {
        "record:/var/tmp/kv.log:uring:/var/tmp/kv.dat"
    } else {
        "fault:write@3=eio,seed=7:copy:/var/tmp/x"
    }
}

/// Wraps `dev` in `wrappers`, innermost (last) first.
pub(crate) fn apply(wrappers: &[Wrapper], mut dev: Box<dyn Device>) -> Result<Box<dyn Device>> {
    for w in wrappers.iter().rev() {
        dev = match w {
            Wrapper::Record { log } => Box::new(pinio_crash::RecordDevice::new(dev, std::path::Path::new(log))?),
            Wrapper::Fault { rules } => {
                Box::new(pinio_crash::FaultDevice::new(dev, pinio_crash::FaultPlan::parse(rules)?))
            }
        };
    }
    Ok(dev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Target;

    #[test]
    fn wrappers_parse_round_trip_and_leave_the_backend_alone() {
        let t = Target::parse("fault:write@3=eio,seed=7:record:/var/tmp/kv.log:uring:/var/tmp/kv.dat").unwrap();
        assert_eq!(
            t.wrappers,
            [Wrapper::Fault { rules: "write@3=eio,seed=7".into() }, Wrapper::Record { log: "/var/tmp/kv.log".into() }]
        );
        assert_eq!((t.backend, t.location.as_str()), (crate::BackendKind::Uring, "/var/tmp/kv.dat"));
        assert_eq!(t.to_string(), "fault:write@3=eio,seed=7:record:/var/tmp/kv.log:uring:/var/tmp/kv.dat");
        assert!(Target::parse("uring:/var/tmp/kv.dat").unwrap().wrappers.is_empty());
    }

    #[test]
    fn bad_wrappers_say_what_is_wrong() {
        for (s, why) in [
            ("record:/var/tmp/kv.log", "needs record:<log path>:<selection>"),
            ("record::copy:/x", "empty"),
            ("record:/l:", "wraps nothing"),
            ("fault:write@0=eio:copy:/x", "not an operation number"),
            ("fault:write@1=eio:tape:/x", "unknown backend"),
        ] {
            let e = Target::parse(s).unwrap_err().to_string();
            assert!(e.contains(why), "{s}: {e}");
        }
    }

    #[test]
    fn a_recorded_and_faulty_copy_device_opens_through_the_facade() {
        let dir = std::env::temp_dir();
        let (data, log) = (
            dir.join(format!("pinio-wrap-{}.dat", std::process::id())),
            dir.join(format!("pinio-wrap-{}.log", std::process::id())),
        );
        std::fs::write(&data, vec![0u8; 8192]).unwrap();
        let spec = format!("fault:write@2=eio:record:{}:copy:{}", log.display(), data.display());
        let dev = crate::open(&spec).unwrap();
        assert!(dev.describe().starts_with("fault:write@2=eio:record:"), "{}", dev.describe());
        let region = dev.alloc(4096).unwrap();
        let mut q = dev.queue(4).unwrap();
        let (_, s) = q.write_at(region.slice(0, 4096).unwrap(), 0).unwrap();
        let e = q.write_at(s, 4096).unwrap_err();
        assert_eq!(e.error.raw_os_error(), Some(libc_eio()), "{}", e.error);
        assert!(e.slice.is_some(), "the slice comes back with the injected error");
        drop((q, e, region, dev));
        let l = pinio_crash::log::LogReader::read(&log).unwrap();
        assert!(l.closed);
        let writes = l.records.iter().filter(|r| matches!(r, pinio_crash::log::Record::Write { .. })).count();
        assert_eq!(writes, 1, "the failed write never reached the recorder below the fault layer");
        let _ = std::fs::remove_file(&data);
        let _ = std::fs::remove_file(&log);
    }

    fn libc_eio() -> i32 {
        5
    }
}
