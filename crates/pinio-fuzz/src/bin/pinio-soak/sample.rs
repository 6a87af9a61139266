//! Memory and pin figures of the guest, sampled for the report lines.

use pinio_fuzz::vmstat::PinCounters;

/// One sample.
pub struct Sample {
    /// Resident set of this process, KiB (`VmRSS`).
    pub rss_kib: u64,
    /// `MemAvailable` of the guest, KiB.
    pub mem_available_kib: u64,
    /// Pages pinned system-wide (`nr_foll_pin_acquired - nr_foll_pin_released`).
    pub pinned_pages: i64,
    /// Pages the module's open file of the soak has pinned (its own counter), when kmod runs.
    pub kmod_pinned_pages: Option<u64>,
}

/// The value in kB of `key:` in a `/proc` file of `key: value kB` lines.
fn kib(path: &str, key: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(':')?.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

impl Sample {
    /// Samples now; `kmod_pinned_pages` comes from the module's INFO.
    pub fn take(kmod_pinned_pages: Option<u64>) -> Sample {
        Sample {
            rss_kib: kib("/proc/self/status", "VmRSS"),
            mem_available_kib: kib("/proc/meminfo", "MemAvailable"),
            pinned_pages: PinCounters::read().map(|c| c.outstanding()).unwrap_or(-1),
            kmod_pinned_pages,
        }
    }

    /// `RSS=… MiB MemAvailable=… MiB pinned=… pages (kmod …)`.
    pub fn describe(&self) -> String {
        let kmod = self.kmod_pinned_pages.map_or(String::new(), |p| format!(" kmod_pinned={p}"));
        format!(
            "RSS={:.1}MiB MemAvailable={}MiB pinned_pages={}{kmod}",
            self.rss_kib as f64 / 1024.0,
            self.mem_available_kib / 1024,
            self.pinned_pages
        )
    }
}
