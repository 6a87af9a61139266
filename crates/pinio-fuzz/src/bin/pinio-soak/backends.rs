//! The backends a soak runs, how each is opened, and the loop that keeps
//! one backend busy (for NVMe: switching the controller between pinio's
//! userspace driver and the kernel's nvme driver with io_uring on top).

use crate::counters::Counters;
use crate::worker::{self, Lane};
use pinio::{Builder, Device};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Largest chunk one operation moves.
const MAX_CHUNK: u64 = 64 << 10;
/// Size of the scratch files of copy and uring.
const FILE_BYTES: u64 = 32 << 20;

/// A backend of the soak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// pinio's kernel module, `/dev/pinio` (its echo DMA engine).
    Kmod,
    /// QEMU's edu through VFIO.
    Edu,
    /// The NVMe controller, alternately through pinio's userspace driver
    /// (VFIO) and through the kernel's nvme driver with io_uring O_DIRECT
    /// on its block device.
    Nvme,
    /// The copy backend on a tmpfs file.
    Copy,
    /// io_uring with fixed buffers on a tmpfs file (buffered: tmpfs has no
    /// direct IO).
    Uring,
}

impl Backend {
    /// Every backend, in report order.
    pub const ALL: [Backend; 5] = [Backend::Kmod, Backend::Edu, Backend::Nvme, Backend::Copy, Backend::Uring];

    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Kmod => "kmod",
            Backend::Edu => "edu",
            Backend::Nvme => "nvme",
            Backend::Copy => "copy",
            Backend::Uring => "uring",
        }
    }

    /// The backend called `name`.
    pub fn parse(name: &str) -> Result<Backend, String> {
        Backend::ALL
            .into_iter()
            .find(|b| b.name() == name)
            .ok_or_else(|| format!("unknown backend {name:?}: one of kmod, edu, nvme, copy, uring"))
    }
}

/// What the soak's backends share with the reporter.
#[derive(Default)]
pub struct Shared {
    /// The kmod device while it is open, for the module's own counters.
    pub kmod: Mutex<Option<Arc<dyn Device>>>,
}

/// How one backend runs.
pub struct Plan {
    pub backend: Backend,
    pub threads: usize,
    /// NVMe: how long each driver keeps the controller before it changes hands.
    pub switch_every: Duration,
    pub seed: u64,
}

/// Keeps `plan.backend` busy with `plan.threads` worker threads until
/// `stop`; `counters[0]` counts the backend (for NVMe: its userspace
/// driver), `counters[1]` the kernel nvme driver + io_uring phases.
pub fn drive(plan: &Plan, stop: &AtomicBool, shared: &Shared, counters: &[Counters; 2]) -> Result<(), String> {
    match plan.backend {
        Backend::Nvme => drive_nvme(plan, stop, counters),
        b => {
            let dev: Arc<dyn Device> = Arc::from(open(b)?);
            if b == Backend::Kmod {
                *shared.kmod.lock().unwrap_or_else(|p| p.into_inner()) = Some(dev.clone());
            }
            counters[0].opens.fetch_add(1, Ordering::Relaxed);
            let r = run_threads(dev.as_ref(), plan, plan.seed, stop, &counters[0]);
            if b == Backend::Kmod {
                shared.kmod.lock().unwrap_or_else(|p| p.into_inner()).take();
                check_kmod_unpinned(dev.as_ref())?;
            }
            r
        }
    }
}

/// Opens a backend other than NVMe.
fn open(b: Backend) -> Result<Box<dyn Device>, String> {
    let r = match b {
        Backend::Kmod => pinio::open("kmod:/dev/pinio"),
        Backend::Edu => {
            let addr = edu_addr().ok_or("no edu (1234:11e8) on the PCI bus")?;
            pinio::open(&format!("vfio:{addr}"))
        }
        Backend::Copy => Builder::parse("copy:/tmp/pinio-soak-copy.dat").and_then(|b| b.create(FILE_BYTES).open()),
        // tmpfs has no direct IO: buffered, still with registered (pinned)
        // fixed buffers. O_DIRECT is soaked on the NVMe disk's kernel phase.
        Backend::Uring => {
            Builder::parse("uring:/tmp/pinio-soak-uring.dat").and_then(|b| b.create(FILE_BYTES).direct(false).open())
        }
        Backend::Nvme => unreachable!("drive_nvme opens NVMe"),
    };
    r.map_err(|e| format!("opening {}: {e}", b.name()))
}

/// After every region of the kmod device is gone, the module's own
/// counter of pinned pages of the open file must be zero.
fn check_kmod_unpinned(dev: &dyn Device) -> Result<(), String> {
    let info = kmod_info(dev).ok_or("the kmod device has no kmod registrar")?;
    if info.pinned_pages != 0 || info.regions != 0 {
        return Err(format!(
            "kmod: after every region was dropped the module still counts {} pinned page(s) in {} region(s)",
            info.pinned_pages, info.regions
        ));
    }
    Ok(())
}

/// The module's INFO of the kmod device's open file.
pub fn kmod_info(dev: &dyn Device) -> Option<pinio::kmod::abi::Info> {
    dev.domain().registrar::<pinio::kmod::KmodRegistrar>()?.info().ok()
}

/// NVMe: the userspace driver for `switch_every`, then the kernel's driver
/// with io_uring on /dev/nvme0n1 for as long, and so on until `stop`.
fn drive_nvme(plan: &Plan, stop: &AtomicBool, counters: &[Counters; 2]) -> Result<(), String> {
    let bdf = nvme_addr().ok_or("no NVMe controller (class 0x010802) on the PCI bus")?;
    let mut phase = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let user = phase.is_multiple_of(2);
        let phase_stop = AtomicBool::new(false);
        let dev: Box<dyn Device> = if user {
            Builder::parse(&format!("nvme:{bdf}"))
                .and_then(|b| b.take_from_driver(true).open())
                .map_err(|e| format!("opening nvme:{bdf}: {e}"))?
        } else {
            let disk = kernel_block_device(&bdf)?;
            pinio::open(&format!("uring:{}", disk.display()))
                .map_err(|e| format!("opening uring:{}: {e}", disk.display()))?
        };
        let c = &counters[usize::from(!user)];
        c.opens.fetch_add(1, Ordering::Relaxed);
        let deadline = Instant::now() + plan.switch_every;
        let r = std::thread::scope(|s| {
            let timer = s.spawn(|| {
                while Instant::now() < deadline && !stop.load(Ordering::Relaxed) && !phase_stop.load(Ordering::Relaxed)
                {
                    std::thread::sleep(Duration::from_millis(100));
                }
                phase_stop.store(true, Ordering::Relaxed);
            });
            let r = run_threads(dev.as_ref(), plan, plan.seed ^ (phase << 40), &phase_stop, c);
            phase_stop.store(true, Ordering::Relaxed);
            let _ = timer.join();
            r
        });
        drop(dev);
        if user {
            pinio::nvme::release_to_kernel(&bdf.parse().map_err(|e| format!("{bdf}: {e}"))?)
                .map_err(|e| format!("handing {bdf} back to the kernel: {e}"))?;
        }
        r?;
        phase += 1;
    }
    // The controller ends where it started: with the kernel.
    kernel_block_device(&bdf).map(|_| ())
}

/// Runs the worker threads of one device until `stop`.
fn run_threads(dev: &dyn Device, plan: &Plan, seed: u64, stop: &AtomicBool, counters: &Counters) -> Result<(), String> {
    let lanes = Lane::split(dev, plan.threads, MAX_CHUNK)?;
    let failed = AtomicBool::new(false);
    let results: Vec<Result<(), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = lanes
            .iter()
            .enumerate()
            .map(|(i, &lane)| {
                let failed = &failed;
                s.spawn(move || {
                    // A thread stops when told to or when another thread failed.
                    let should_stop = || stop.load(Ordering::Relaxed) || failed.load(Ordering::Relaxed);
                    let r = worker::run(dev, lane, seed.wrapping_add(i as u64 * 0x1000_0001), &should_stop, counters);
                    if r.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    r
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a worker thread panicked".into()))).collect()
    });
    let errors: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    if errors.is_empty() { Ok(()) } else { Err(format!("{}: {}", dev.describe(), errors.join("; "))) }
}

/// The PCI addresses of edu and the NVMe controller, looked up once
/// before any backend starts ([`discover`]): no sysfs directory listing
/// while VFIO devices are in use (see [`kernel_block_device`]).
static PCI: std::sync::OnceLock<(Option<String>, Option<String>)> = std::sync::OnceLock::new();

/// Finds edu and the NVMe controller; call before the backends start.
pub fn discover() {
    PCI.get_or_init(|| (find_pci("device", "0x11e8"), find_pci("class", "0x010802")));
}

fn edu_addr() -> Option<String> {
    PCI.get().and_then(|p| p.0.clone())
}

fn nvme_addr() -> Option<String> {
    PCI.get().and_then(|p| p.1.clone())
}

fn find_pci(attr: &str, value: &str) -> Option<String> {
    pinio_vfio::Sysfs::system().first_with(attr, value).map(|a| a.to_string())
}

/// The kernel's block device of namespace 1 of `bdf`, once the nvme driver
/// shows it. Only `stat`s of names the driver gives (controller `nvmeC`,
/// namespace `nvmeCn1`), no directory listing: a `getdents` of sysfs whose
/// buffer faults while vfio-pci enables MSI-X and another thread faults
/// on a BAR mapping is the lock cycle lockdep reported in the first
/// 10-minute soak (docs/reliability.md), a kernel problem the soak does
/// not need to provoke every 50 ms.
fn kernel_block_device(bdf: &str) -> Result<PathBuf, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let dir = Path::new("/sys/bus/pci/devices").join(bdf).join("nvme");
    loop {
        let found = (0..64).find_map(|c| {
            let ns = format!("nvme{c}n1");
            (dir.join(format!("nvme{c}")).join(&ns).exists() && Path::new("/dev").join(&ns).exists())
                .then(|| Path::new("/dev").join(ns))
        });
        if let Some(p) = found {
            return Ok(p);
        }
        if Instant::now() > deadline {
            return Err(format!("the kernel's nvme driver did not show namespace 1 of {bdf} within 60 s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
