//! What the running kernel offers for NVMe passthrough, checked when a
//! device is opened so that a missing feature is a typed error there and
//! not a failed command later.

use io_uring::{IoUring, Probe, opcode};
use pinio_core::{Error, Result};

/// `(major, minor)` of the running kernel, from `uname`.
pub(crate) fn kernel_version() -> Option<(u32, u32)> {
    // SAFETY: zeroed is a valid utsname, which uname fills.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to our own struct.
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    let release: String = u.release.iter().take_while(|&&c| c != 0).map(|&c| c as u8 as char).collect();
    parse_version(&release)
}

fn parse_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Refuses what this kernel cannot do: `IORING_OP_URING_CMD` at all
/// (5.19), fixed buffers and polled completions with it (6.1).
pub(crate) fn check(fixed_buffers: bool, iopoll: bool) -> Result<()> {
    let ring = IoUring::new(1).map_err(|e| Error::io("io_uring_setup (probing for URING_CMD)", e))?;
    let mut probe = Probe::new();
    ring.submitter().register_probe(&mut probe).map_err(|e| Error::io("IORING_REGISTER_PROBE", e))?;
    if !probe.is_supported(opcode::UringCmd80::CODE) {
        return Err(Error::Unsupported {
            what: "IORING_OP_URING_CMD (NVMe passthrough through io_uring) on this kernel".into(),
            hint: "it needs Linux 5.19 or later; use uring: on the namespace's block device instead".into(),
        });
    }
    if let Some(v) = kernel_version()
        && v < (6, 1)
        && (fixed_buffers || iopoll)
    {
        let what = if fixed_buffers { "fixed buffers (IORING_URING_CMD_FIXED)" } else { "IOPOLL" };
        return Err(Error::Unsupported {
            what: format!("{what} with NVMe passthrough on Linux {}.{}", v.0, v.1),
            hint: "it needs Linux 6.1 or later; open with fixed_buffers: false and iopoll: false".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_from_release_strings() {
        assert_eq!(parse_version("6.18.44-amd64"), Some((6, 18)));
        assert_eq!(parse_version("7.3.4"), Some((7, 3)));
        assert_eq!(parse_version("5.19.0-rc1+"), Some((5, 19)));
        assert_eq!(parse_version("garbage"), None);
    }

    #[test]
    fn this_kernel_has_uring_cmd() {
        // The host (6.18) and the guest (7.3) both do.
        check(true, true).unwrap();
    }
}
