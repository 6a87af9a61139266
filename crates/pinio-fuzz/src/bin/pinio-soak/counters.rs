//! What each backend of the soak has done so far.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one backend, added to by its threads.
#[derive(Default)]
pub struct Counters {
    /// Operations completed (each checked: full length, no error).
    pub ops: AtomicU64,
    /// Bytes moved by them.
    pub bytes: AtomicU64,
    /// Bytes read back and compared equal to what was written.
    pub verified_bytes: AtomicU64,
    /// Registrations made.
    pub registered: AtomicU64,
    /// Registrations released.
    pub unregistered: AtomicU64,
    /// Times the device was opened (NVMe switches between drivers).
    pub opens: AtomicU64,
}

impl Counters {
    /// `ops=… MiB=… regs=…` for a report line.
    pub fn summary(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "ops={} MiB={} verified_MiB={} reg={} unreg={} opens={}",
            get(&self.ops),
            get(&self.bytes) >> 20,
            get(&self.verified_bytes) >> 20,
            get(&self.registered),
            get(&self.unregistered),
            get(&self.opens)
        )
    }
}
