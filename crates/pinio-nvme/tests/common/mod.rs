//! Shared by the guest tests: finding the controller (and edu), taking the
//! controller from the kernel for one test and giving it back with every
//! overwritten byte restored.
#![allow(dead_code)]

pub mod hotplug;

use pinio_nvme::{CompletionMode, DoorbellMode, NvmeDevice, NvmeOptions, release_to_kernel};
use pinio_vfio::PciAddress;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub const TAKE_POLL: NvmeOptions = NvmeOptions {
    take_from_driver: true,
    completion: CompletionMode::Poll,
    io_queues: 8,
    admin_timeout_ms: 20_000,
    doorbells: DoorbellMode::PerBatch,
};
pub const TAKE_IRQ: NvmeOptions = NvmeOptions { completion: CompletionMode::Interrupt, ..TAKE_POLL };

/// Fails loudly when run outside the guest.
pub fn require_guest() {
    assert_eq!(std::env::var("PINIO_GUEST").as_deref(), Ok("1"), "guest tests run in the QEMU guest: cargo xtask test");
}

fn find_pci(attr: &str, value: &str) -> Option<PciAddress> {
    pinio_vfio::Sysfs::system().first_with(attr, value)
}

/// The guest's NVMe controller.
pub fn nvme_addr() -> PciAddress {
    require_guest();
    find_pci("class", "0x010802").expect("no NVMe controller (class 0x010802) on the guest's PCI bus")
}

/// The guest's edu.
pub fn edu_addr() -> PciAddress {
    require_guest();
    find_pci("device", "0x11e8").expect("the guest has QEMU's edu (1234:11e8)")
}

pub fn driver_of(bdf: &PciAddress) -> Option<String> {
    std::fs::read_link(Path::new("/sys/bus/pci/devices").join(bdf.to_string()).join("driver"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
}

/// One controller (and one edu), one test at a time.
pub fn lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Hands the controller back to the kernel and waits until nvme has it.
pub fn give_back(bdf: &PciAddress) {
    release_to_kernel(bdf).unwrap_or_else(|e| panic!("handing {bdf} back to the kernel: {e}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while driver_of(bdf).as_deref() != Some("nvme") {
        assert!(Instant::now() < deadline, "{bdf} did not rebind to nvme (driver now {:?})", driver_of(bdf));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The kernel's block device of namespace 1 of `bdf`, once nvme shows it.
pub fn kernel_block_device(bdf: &PciAddress) -> std::path::PathBuf {
    if driver_of(bdf).as_deref() != Some("nvme") {
        give_back(bdf);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let dir = Path::new("/sys/bus/pci/devices").join(bdf.to_string()).join("nvme");
        let name = std::fs::read_dir(dir).ok().into_iter().flatten().flatten().find_map(|c| {
            std::fs::read_dir(c.path())
                .ok()?
                .flatten()
                .map(|n| n.file_name().to_string_lossy().into_owned())
                .find(|n| n.starts_with("nvme") && n.ends_with("n1"))
        });
        if let Some(n) = name {
            let p = Path::new("/dev").join(n);
            if p.exists() {
                return p;
            }
        }
        assert!(Instant::now() < deadline, "the kernel never showed namespace 1 of {bdf}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The controller, taken for one test; saved ranges are written back and
/// the controller returned to the kernel when this is dropped. Whatever
/// else the test made in the device's domain must be dropped first (it is,
/// when declared after this value).
pub struct Taken {
    dev: Option<NvmeDevice>,
    pub bdf: PciAddress,
    saved: Vec<(u64, Vec<u8>)>,
    _guard: MutexGuard<'static, ()>,
}

impl Taken {
    pub fn new(opts: NvmeOptions) -> Taken {
        let guard = lock();
        let bdf = nvme_addr();
        let dev = NvmeDevice::open(&bdf, opts).unwrap_or_else(|e| panic!("opening {bdf}: {e}"));
        Taken { dev: Some(dev), bdf, saved: Vec::new(), _guard: guard }
    }

    pub fn dev(&self) -> &NvmeDevice {
        self.dev.as_ref().expect("open until drop")
    }

    /// Reads and keeps `[off, off + len)` so that drop restores it.
    pub fn save(&mut self, off: u64, len: u64) {
        let data = read_bytes(self.dev(), off, len);
        self.saved.push((off, data));
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        if let Some(dev) = self.dev.take() {
            for (off, data) in self.saved.drain(..).rev() {
                write_bytes(&dev, off, &data);
            }
            dev.flush().expect("flush after restoring");
            drop(dev);
        }
        if !std::thread::panicking() {
            give_back(&self.bdf);
        } else {
            let _ = release_to_kernel(&self.bdf);
        }
    }
}

/// Reads `len` bytes at `off` in max-transfer chunks.
pub fn read_bytes(dev: &NvmeDevice, off: u64, len: u64) -> Vec<u8> {
    pinio_core::conformance::read_bytes(dev, off, len).unwrap_or_else(|e| panic!("{e}"))
}

/// Writes `data` at `off` in max-transfer chunks.
pub fn write_bytes(dev: &NvmeDevice, off: u64, data: &[u8]) {
    pinio_core::conformance::write_bytes(dev, off, data).unwrap_or_else(|e| panic!("{e}"))
}
