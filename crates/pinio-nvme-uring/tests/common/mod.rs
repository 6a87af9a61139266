//! Shared by the guest tests: the controller bound to the kernel's nvme
//! driver, its namespace's generic device, one test at a time, and every
//! overwritten byte restored.
#![allow(dead_code)]

use pinio_core::Device;
use pinio_nvme_uring::{NvmeUringDevice, NvmeUringOptions};
use pinio_vfio::PciAddress;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Fails loudly when run outside the guest.
pub fn require_guest() {
    assert_eq!(std::env::var("PINIO_GUEST").as_deref(), Ok("1"), "guest tests run in the QEMU guest: cargo xtask test");
}

/// The guest's NVMe controller (PCI class 0x010802).
pub fn nvme_addr() -> PciAddress {
    require_guest();
    pinio_vfio::Sysfs::system()
        .first_with("class", "0x010802")
        .expect("no NVMe controller (class 0x010802) on the guest's PCI bus")
}

pub fn driver_of(bdf: &PciAddress) -> Option<String> {
    std::fs::read_link(Path::new("/sys/bus/pci/devices").join(bdf.to_string()).join("driver"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
}

/// One controller, one test at a time.
pub fn lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// The controller's sysfs directory under the nvme class (`.../nvme/nvme0`),
/// once the kernel's nvme driver has it live.
pub fn controller_dir(bdf: &PciAddress) -> PathBuf {
    if driver_of(bdf).as_deref() != Some("nvme") {
        pinio_nvme::release_to_kernel(bdf).unwrap_or_else(|e| panic!("handing {bdf} to the kernel: {e}"));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let dir = Path::new("/sys/bus/pci/devices").join(bdf.to_string()).join("nvme");
        if let Some(c) = std::fs::read_dir(&dir).ok().into_iter().flatten().flatten().next() {
            let state = std::fs::read_to_string(c.path().join("state")).unwrap_or_default();
            if state.trim() == "live" {
                return c.path();
            }
        }
        assert!(Instant::now() < deadline, "the kernel's nvme driver did not bring {bdf} live");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the controller at `dir` is live again (after a reset).
pub fn wait_live(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(dir.join("state")).unwrap_or_default().trim() != "live" {
        assert!(Instant::now() < deadline, "{} did not come back live", dir.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `/dev/ngXn1` and `/dev/nvmeXn1` of namespace 1, once both exist.
pub fn namespace_nodes(bdf: &PciAddress) -> (PathBuf, PathBuf) {
    let ctrl = controller_dir(bdf);
    let name = ctrl.file_name().unwrap().to_string_lossy().into_owned();
    let instance = name.trim_start_matches("nvme");
    let generic = PathBuf::from(format!("/dev/ng{instance}n1"));
    let block = PathBuf::from(format!("/dev/nvme{instance}n1"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(generic.exists() && block.exists()) {
        assert!(Instant::now() < deadline, "{} / {} never appeared", generic.display(), block.display());
        std::thread::sleep(Duration::from_millis(50));
    }
    (generic, block)
}

/// The namespace through passthrough for one test; the saved ranges are
/// written back (and flushed) when it is dropped. Whatever the test made of
/// the device's domain must be dropped first (it is, when declared after).
pub struct Ns {
    pub dev: NvmeUringDevice,
    pub bdf: PciAddress,
    pub generic: PathBuf,
    pub block: PathBuf,
    saved: Vec<(u64, Vec<u8>)>,
    _guard: Option<MutexGuard<'static, ()>>,
}

impl Ns {
    /// Takes the controller lock for the life of the value.
    pub fn open(opts: NvmeUringOptions) -> Ns {
        let guard = lock();
        let mut ns = Ns::open_locked(opts);
        ns._guard = Some(guard);
        ns
    }

    /// For a test that holds [`lock`] itself.
    pub fn open_locked(opts: NvmeUringOptions) -> Ns {
        let bdf = nvme_addr();
        let (generic, block) = namespace_nodes(&bdf);
        let dev =
            NvmeUringDevice::open(&generic, opts).unwrap_or_else(|e| panic!("opening {}: {e}", generic.display()));
        Ns { dev, bdf, generic, block, saved: Vec::new(), _guard: None }
    }

    /// The last `len` bytes of the namespace: `(offset, len)`.
    pub fn tail(&self, len: u64) -> (u64, u64) {
        (self.dev.capabilities().device_size - len, len)
    }

    /// Reads and keeps `[off, off + len)` so that drop restores it.
    pub fn save(&mut self, off: u64, len: u64) {
        let data = read_bytes(&self.dev, off, len);
        self.saved.push((off, data));
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let restored = !self.saved.is_empty();
        for (off, data) in self.saved.drain(..).rev() {
            write_bytes(&self.dev, off, &data);
        }
        if restored || !std::thread::panicking() {
            let mut q = self.dev.queue(1).expect("queue");
            q.flush(pinio_core::FlushMode::Data).expect("flush after restoring");
        }
    }
}

/// Reads `len` bytes at `off` in max-transfer chunks.
pub fn read_bytes(dev: &dyn Device, off: u64, len: u64) -> Vec<u8> {
    pinio_core::conformance::read_bytes(dev, off, len).unwrap_or_else(|e| panic!("{e}"))
}

/// Writes `data` at `off` in max-transfer chunks.
pub fn write_bytes(dev: &dyn Device, off: u64, data: &[u8]) {
    pinio_core::conformance::write_bytes(dev, off, data).unwrap_or_else(|e| panic!("{e}"))
}
