//! Shared by the guest tests: finding devices on the guest's PCI bus,
//! serialising access to the one edu, and capturing vfio-ioctls' log.
#![allow(dead_code)]

use pinio_edu::{EduDevice, EduOptions};
use pinio_vfio::PciAddress;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, OnceLock};

/// Fails loudly when run outside the guest.
pub fn require_guest() {
    assert_eq!(std::env::var("PINIO_GUEST").as_deref(), Ok("1"), "guest tests run in the QEMU guest: cargo xtask test");
}

/// The PCI address of the first device with these ids, as sysfs spells it
/// (listed by pinio-vfio, without a fault inside the kernel's readdir: these
/// processes use VFIO, docs/reliability.md).
pub fn find_pci(vendor: u16, device: u16) -> Option<String> {
    let addr = pinio_vfio::Sysfs::system().first_with("device", &format!("{device:#06x}"))?.to_string();
    let vendor_of = std::fs::read_to_string(format!("/sys/bus/pci/devices/{addr}/vendor")).ok()?;
    (u16::from_str_radix(vendor_of.trim().trim_start_matches("0x"), 16).ok()? == vendor).then_some(addr)
}

/// edu's address in the guest.
pub fn edu_addr() -> PciAddress {
    let a = find_pci(0x1234, 0x11e8).expect("no edu (1234:11e8) on the guest's PCI bus; QEMU needs -device edu");
    a.parse().unwrap_or_else(|e| panic!("sysfs lists {a:?}: {e}"))
}

/// The driver `bdf` is bound to.
pub fn driver_of(bdf: &PciAddress) -> Option<String> {
    std::fs::read_link(Path::new("/sys/bus/pci/devices").join(bdf.to_string()).join("driver"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
}

/// One edu, one user at a time: tests in a binary run on threads.
pub fn edu_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Opens edu with `opts`, panicking with the error's message.
pub fn open_edu(opts: EduOptions) -> EduDevice {
    require_guest();
    EduDevice::open(&edu_addr(), opts).unwrap_or_else(|e| panic!("opening edu: {e}"))
}

/// Every log record at warn level or worse, from any crate (vfio-ioctls
/// reports failed ioctls, e.g. EBUSY on releasing a group, only this way).
pub struct Captured(Mutex<Vec<String>>);

impl log::Log for Captured {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            let line = format!("{} {}: {}", r.level(), r.target(), r.args());
            eprintln!("captured log: {line}");
            self.0.lock().unwrap().push(line);
        }
    }
    fn flush(&self) {}
}

/// Installs the capturing logger once; returns it.
pub fn logger() -> &'static Captured {
    static L: OnceLock<&'static Captured> = OnceLock::new();
    L.get_or_init(|| {
        let l: &'static Captured = Box::leak(Box::new(Captured(Mutex::new(Vec::new()))));
        log::set_logger(l).expect("a logger was already installed");
        log::set_max_level(log::LevelFilter::Warn);
        l
    })
}

impl Captured {
    /// Takes the records logged so far.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}
