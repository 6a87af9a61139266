//! Kernel reports logged since a point in time, read from `/dev/kmsg`.
//!
//! xtask already fails a guest run on any report (docs/guest.md); reading them here as well lets
//! the fuzzer stop at the first report and name the call and seed that provoked it.

use crate::{Errno, FuzzError};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;

/// Markers of a kernel report (the same families xtask's console scan fails on).
const REPORT_MARKERS: [&str; 14] = [
    "BUG:",
    "WARNING:",
    "KASAN:",
    "UBSAN:",
    "Oops",
    "general protection fault",
    "Kernel panic",
    "kernel BUG at",
    "possible circular locking",
    "possible recursive locking",
    "inconsistent lock state",
    "suspicious RCU usage",
    "panicked at",
    "ODEBUG:",
];

/// A reader positioned at the end of the kernel log when it was started.
#[derive(Debug)]
pub struct KernelLog {
    kmsg: File,
}

impl KernelLog {
    /// Starts watching: only records logged from now on are reported.
    pub fn start() -> Result<KernelLog, FuzzError> {
        let mut kmsg = OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open("/dev/kmsg").map_err(|e| {
            FuzzError::Setup {
                what: "opening /dev/kmsg".into(),
                errno: Errno(e.raw_os_error().unwrap_or(0)),
                hint: "run as root in the guest (cargo xtask test)",
            }
        })?;
        kmsg.seek(SeekFrom::End(0)).map_err(|e| FuzzError::Setup {
            what: "seeking /dev/kmsg".into(),
            errno: Errno(e.raw_os_error().unwrap_or(0)),
            hint: "kernel without printk?",
        })?;
        Ok(KernelLog { kmsg })
    }

    /// The report lines logged since [`KernelLog::start`] (or the previous call).
    pub fn reports(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let mut rec = vec![0u8; 8192];
        loop {
            match self.kmsg.read(&mut rec) {
                Ok(0) => break,
                Ok(n) => {
                    let line = String::from_utf8_lossy(&rec[..n]);
                    let msg = line.split_once(';').map_or(&*line, |x| x.1).trim_end();
                    if REPORT_MARKERS.iter().any(|m| msg.contains(m)) {
                        out.push(msg.to_string());
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => break,
                // Records were overwritten before we read them: keep reading the newer ones.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(_) => break,
            }
        }
        out
    }

    /// `Err(KernelReport)` if a report was logged since the last check.
    pub fn check(&mut self, context: impl FnOnce() -> String) -> Result<(), FuzzError> {
        let reports = self.reports();
        if reports.is_empty() {
            return Ok(());
        }
        Err(FuzzError::KernelReport { context: context(), lines: reports.join("\n") })
    }
}
