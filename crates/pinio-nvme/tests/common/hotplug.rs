//! Asking the host to hot-unplug and plug back the NVMe controller: xtask
//! serves requests written to `<run dir>/hotplug/` (the run directory is
//! shared over 9p and named on the kernel command line as `pinio_run=`) by
//! sending QEMU's monitor `device_del` / `device_add` (xtask/src/hotplug.rs,
//! docs/guest.md).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// What the host may be asked.
#[derive(Clone, Copy, Debug)]
pub enum Request {
    /// QEMU `device_del` of the NVMe controller: QEMU signals the guest
    /// (ACPI), whose hotplug driver removes the device, and deletes it once
    /// the guest ejected it.
    UnplugNvme,
    /// QEMU `device_add` of the controller again (the host first waits for
    /// QEMU to finish the unplug).
    PlugNvme,
}

impl Request {
    fn line(self) -> &'static str {
        match self {
            Self::UnplugNvme => "unplug nvme",
            Self::PlugNvme => "plug nvme",
        }
    }
}

/// The host's directory of requests, from `pinio_run=` on the kernel command line.
fn dir() -> PathBuf {
    let cmdline = std::fs::read_to_string("/proc/cmdline").expect("reading /proc/cmdline");
    let run = cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("pinio_run="))
        .expect("no pinio_run= on the kernel command line: run under cargo xtask");
    PathBuf::from(run).join("hotplug")
}

/// Sends `req` and waits (up to `within`) for the host's answer; `Ok(what
/// the host did)` or `Err(why not)`.
pub fn ask(req: Request, within: Duration) -> Result<String, String> {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let dir = dir();
    let name = format!("{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
    let tmp = dir.join(format!("{name}.tmp"));
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(|e| format!("creating {}: {e}", tmp.display()))?;
        f.write_all(req.line().as_bytes()).and_then(|()| f.sync_all()).map_err(|e| format!("writing: {e}"))?;
    }
    std::fs::rename(&tmp, dir.join(format!("{name}.req"))).map_err(|e| format!("renaming the request: {e}"))?;
    // The answer's name is looked up only once a listing of the directory
    // (which always asks the host) shows it: the 9p mount (cache=loose)
    // remembers a name that was missing for 24 hours.
    let resp_name = format!("{name}.resp");
    let resp = dir.join(&resp_name);
    let deadline = Instant::now() + within;
    loop {
        let listed = std::fs::read_dir(&dir)
            .map_err(|e| format!("listing {}: {e}", dir.display()))?
            .flatten()
            .any(|e| e.file_name().to_str() == Some(resp_name.as_str()));
        if listed {
            let text = std::fs::read_to_string(&resp).map_err(|e| format!("reading {}: {e}", resp.display()))?;
            let _ = std::fs::remove_file(&resp);
            let text = text.trim().to_string();
            return match text.strip_prefix("ok ") {
                Some(what) => Ok(what.to_string()),
                None => Err(text),
            };
        }
        if Instant::now() >= deadline {
            return Err(format!("the host did not answer {:?} within {within:?}", req.line()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
