//! `pinio info`: every backend compiled into this build, whether it works on
//! this machine, why not, and what to do about it.

use crate::CliResult;
use clap::Args;
use pinio::{BackendKind, Capabilities, CompletionMode};
use std::path::{Path, PathBuf};

/// Arguments of `pinio info`.
#[derive(Args)]
pub struct InfoArgs {
    /// Probe these targets instead of the defaults (repeatable), e.g. --target kmod:/dev/pinio.
    #[arg(long = "target")]
    targets: Vec<String>,
}

/// PCI ids of QEMU's `edu` device (vendor, device).
const EDU_IDS: (&str, &str) = ("0x1234", "0x11e8");
/// PCI class of an NVMe controller (mass storage, non-volatile memory, NVMe).
const NVME_CLASS: &str = "0x010802";
/// PCI ids of QEMU's emulated NVMe controller, named when none is found.
const QEMU_NVME_IDS: &str = "1b36:0010";

/// One PCI function as sysfs shows it.
#[derive(Debug, Clone)]
struct PciDevice {
    address: String,
    vendor: String,
    device: String,
    class: String,
    /// The kernel driver bound to it, if any.
    driver: Option<String>,
}

/// What the machine offers, read below `root` (`/` for real; a small tree
/// in tests).
struct Machine {
    root: PathBuf,
    is_root: bool,
}

impl Machine {
    fn real() -> Machine {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        Machine { root: PathBuf::from("/"), is_root: euid == 0 }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }

    /// Number of IOMMU groups (0: no IOMMU is on).
    fn iommu_groups(&self) -> usize {
        std::fs::read_dir(self.path("/sys/kernel/iommu_groups")).map(|d| d.count()).unwrap_or(0)
    }

    fn pci_devices(&self) -> Vec<PciDevice> {
        let Ok(rd) = std::fs::read_dir(self.path("/sys/bus/pci/devices")) else { return Vec::new() };
        let mut v: Vec<PciDevice> = rd
            .flatten()
            .map(|e| {
                let p = e.path();
                let read = |f: &str| std::fs::read_to_string(p.join(f)).unwrap_or_default().trim().to_string();
                PciDevice {
                    address: e.file_name().to_string_lossy().into_owned(),
                    vendor: read("vendor"),
                    device: read("device"),
                    class: read("class"),
                    driver: std::fs::read_link(p.join("driver"))
                        .ok()
                        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned())),
                }
            })
            .collect();
        v.sort_by(|a, b| a.address.cmp(&b.address));
        v
    }

    /// The devices `pick` selects, the best candidate first: bound to
    /// vfio-pci, then unbound, then bound elsewhere.
    fn find(&self, pick: impl Fn(&PciDevice) -> bool) -> Vec<PciDevice> {
        let mut v: Vec<PciDevice> = self.pci_devices().into_iter().filter(|d| pick(d)).collect();
        v.sort_by_key(|d| match d.driver.as_deref() {
            Some("vfio-pci") => 0,
            None => 1,
            Some(_) => 2,
        });
        v
    }

    fn vfio_pci_loaded(&self) -> bool {
        self.path("/sys/bus/pci/drivers/vfio-pci").exists() || self.path("/sys/module/vfio_pci").exists()
    }
}

/// Whether a backend can be tried here, and if not, why and what to do.
#[derive(Debug, Default)]
struct Verdict {
    /// The selection string to open when nothing stands in the way.
    target: Option<String>,
    /// Why it cannot work here, each in plain words.
    problems: Vec<String>,
    /// What to do about each problem.
    remedies: Vec<String>,
}

impl Verdict {
    fn problem(&mut self, why: String, remedy: String) {
        self.problems.push(why);
        if !self.remedies.contains(&remedy) {
            self.remedies.push(remedy);
        }
    }
}

/// One line on what a backend is.
fn what_it_is(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Copy => {
            "plain reads and writes through a bounce buffer: the baseline the others are measured against"
        }
        BackendKind::Uring => {
            "io_uring with registered (pinned) buffers and O_DIRECT: the disk moves data straight into your buffers"
        }
        BackendKind::Kmod => "pinio's kernel module: pins your buffers and runs an echo DMA engine on them",
        BackendKind::Vfio => "a userspace driver for QEMU's edu DMA device, through VFIO and the IOMMU",
        BackendKind::Nvme => "a userspace NVMe driver, through VFIO and the IOMMU (no kernel block layer)",
        BackendKind::NvmeUring => {
            "NVMe commands through io_uring passthrough (/dev/ngXnY) with registered buffers: the kernel's NVMe driver without the block layer"
        }
    }
}

/// The cargo feature of the `pinio` crate that builds a backend.
fn feature(kind: BackendKind) -> &'static str {
    kind.name()
}

/// Diagnoses `kind` on `m`; `probe` is a scratch file for the file backends.
fn diagnose(kind: BackendKind, m: &Machine, probe: &Path) -> Verdict {
    let mut v = Verdict::default();
    match kind {
        BackendKind::Copy => v.target = Some(format!("copy:{}", probe.display())),
        BackendKind::Uring => {
            let disabled = std::fs::read_to_string(m.path("/proc/sys/kernel/io_uring_disabled")).unwrap_or_default();
            match disabled.trim() {
                "2" => v.problem(
                    "the kernel has io_uring switched off (kernel.io_uring_disabled = 2)".into(),
                    "allow it as root: sysctl kernel.io_uring_disabled=0".into(),
                ),
                "1" if !m.is_root => v.problem(
                    "the kernel allows io_uring only to root and the group in kernel.io_uring_group (kernel.io_uring_disabled = 1)".into(),
                    "run as root, join that group, or allow it for all: sysctl kernel.io_uring_disabled=0".into(),
                ),
                _ => {}
            }
            v.target = Some(format!("uring:{}", probe.display()));
        }
        BackendKind::Kmod => {
            if m.path("/dev/pinio").exists() {
                v.target = Some("kmod:/dev/pinio".into());
            } else {
                v.problem(
                    "/dev/pinio is missing: pinio's kernel module is not loaded".into(),
                    "load pinio.ko: build it with `cargo xtask kmod`, then `insmod pinio.ko` as root; where the kernel cannot load modules, \
                     `cargo xtask vm run` boots a guest that has it"
                        .into(),
                );
            }
        }
        BackendKind::NvmeUring => diagnose_nvme_uring(m, &mut v),
        BackendKind::Vfio | BackendKind::Nvme => {
            let (devices, name) = if kind == BackendKind::Vfio {
                (m.find(|d| d.vendor == EDU_IDS.0 && d.device == EDU_IDS.1), "edu")
            } else {
                (m.find(|d| d.class == NVME_CLASS), "NVMe")
            };
            if m.iommu_groups() == 0 {
                v.problem(
                    "no IOMMU: /sys/kernel/iommu_groups is empty".into(),
                    "turn on an IOMMU: in the firmware (VT-d / AMD-Vi) and on the kernel command line (intel_iommu=on or amd_iommu=on); \
                     in QEMU, -machine q35 -device intel-iommu"
                        .into(),
                );
            }
            match devices.first() {
                None if kind == BackendKind::Vfio => v.problem(
                    format!("no edu device: no PCI device has edu's ids {}:{}", &EDU_IDS.0[2..], &EDU_IDS.1[2..]),
                    "edu is a QEMU device: start QEMU with -device edu (`cargo xtask vm run` does)".into(),
                ),
                None => v.problem(
                    format!(
                        "no NVMe device: no PCI device has the NVMe controller class {} (QEMU's is {QEMU_NVME_IDS})",
                        &NVME_CLASS[2..]
                    ),
                    "add an NVMe controller (in QEMU: -device nvme,serial=...,drive=...; `cargo xtask vm run` has one)"
                        .into(),
                ),
                Some(d) => {
                    match d.driver.as_deref() {
                        Some("vfio-pci") => {}
                        None if !m.vfio_pci_loaded() => v.problem(
                            format!("{} ({name}) has no driver, and the vfio-pci driver that pinio would bind it to is not loaded", d.address),
                            "load it as root: modprobe vfio-pci".into(),
                        ),
                        None => {} // pinio binds it to vfio-pci when it opens it.
                        Some(other) => v.problem(
                            format!(
                                "{} ({name}) is bound to the kernel's {other} driver, not to vfio-pci{}",
                                d.address,
                                if other == "nvme" { " (it may hold mounted file systems)" } else { "" }
                            ),
                            format!(
                                "hand it to vfio-pci as root (after unmounting anything on it): \
                                 echo vfio-pci > /sys/bus/pci/devices/{a}/driver_override; echo {a} > /sys/bus/pci/drivers/{other}/unbind; \
                                 echo {a} > /sys/bus/pci/drivers_probe — or open it with the builder's take_from_driver option",
                                a = d.address
                            ),
                        ),
                    }
                    v.target = Some(format!("{kind}:{}", d.address));
                }
            }
            if !m.is_root {
                v.problem(
                    "not root: binding a device to vfio-pci and opening /dev/vfio need root (or a udev rule that gives you /dev/vfio/N)".into(),
                    "run as root: sudo pinio info".into(),
                );
            }
        }
    }
    v
}

/// The NVMe generic namespace devices (`/dev/ngXnY`), sorted.
fn generic_nvme_devices(m: &Machine) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(m.path("/dev")) else { return Vec::new() };
    let mut v: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.strip_prefix("ng").is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()) && r.contains('n'))
        })
        .collect();
    v.sort();
    v
}

/// Diagnoses the passthrough backend: a generic namespace device, io_uring
/// allowed, root for the admin passthrough ioctl.
fn diagnose_nvme_uring(m: &Machine, v: &mut Verdict) {
    match generic_nvme_devices(m).first() {
        Some(name) => v.target = Some(format!("nvme-uring:/dev/{name}")),
        None => v.problem(
            "no NVMe generic namespace device (/dev/ngXnY): no NVMe controller is bound to the kernel's nvme driver, or the kernel predates 5.13".into(),
            "bind an NVMe controller to the kernel's nvme driver (a controller taken by vfio-pci goes back with \
             echo > /sys/bus/pci/devices/BDF/driver_override; echo BDF > /sys/bus/pci/drivers_probe); `cargo xtask vm run` boots a guest with one"
                .into(),
        ),
    }
    if std::fs::read_to_string(m.path("/proc/sys/kernel/io_uring_disabled")).unwrap_or_default().trim() == "2" {
        v.problem(
            "the kernel has io_uring switched off (kernel.io_uring_disabled = 2)".into(),
            "allow it as root: sysctl kernel.io_uring_disabled=0".into(),
        );
    }
    if !m.is_root {
        v.problem(
            "not root: Identify through the admin passthrough ioctl on /dev/nvmeX needs CAP_SYS_ADMIN".into(),
            "run as root: sudo pinio info".into(),
        );
    }
}

fn bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        if n >= size {
            return if n.is_multiple_of(size) {
                format!("{} {unit}", n / size)
            } else {
                format!("{:.1} {unit}", n as f64 / size as f64)
            };
        }
    }
    format!("{n} B")
}

fn multiple(n: u64, what: &str) -> String {
    match (n <= 1, what.strip_suffix(" in")) {
        (true, Some(w)) => format!("{w} of any size"),
        (true, None) => format!("{what} anywhere"),
        (false, Some(w)) => format!("{w} in multiples of {}", bytes(n)),
        (false, None) => format!("{what} at multiples of {}", bytes(n)),
    }
}

/// A device's capabilities in plain words, one line each.
fn plain_capabilities(c: &Capabilities) -> Vec<String> {
    let mut l = Vec::new();
    l.push(if c.cpu_copies {
        "the CPU copies the data between the device and your buffers (not zero-copy)".to_string()
    } else {
        "zero-copy: the device reads and writes your buffers itself; the CPU copies nothing".to_string()
    });
    l.push(match c.completion {
        CompletionMode::Synchronous => {
            "each operation is finished when it is submitted: nothing to wait for".to_string()
        }
        CompletionMode::Interrupt => "the device signals completions (interrupts): waiting for one sleeps".to_string(),
        CompletionMode::Poll => "completions are found by polling: waiting for one keeps a CPU busy".to_string(),
    });
    l.push(if c.pins_memory {
        format!(
            "registering a buffer pins it in memory (counted against the locked-memory limit){}",
            c.max_pinned_bytes.map_or(String::new(), |b| format!("; at most {} may be pinned at once", bytes(b)))
        )
    } else {
        "registering a buffer pins nothing".to_string()
    });
    l.push(format!(
        "{}, {}, {}; at most {} per operation, queues up to {} deep",
        multiple(c.mem_align, "buffers in memory"),
        multiple(c.offset_align, "device offsets"),
        multiple(c.len_align, "lengths in"),
        bytes(c.max_transfer),
        c.max_queue_depth
    ));
    l.push(match c.vectored {
        pinio::VectoredIo::Native => format!("one operation may move up to {} buffers to or from one device range, as one device command", c.max_segments),
        pinio::VectoredIo::Emulated => {
            format!("one operation may move up to {} buffers to or from one device range; the backend splits it into one command per buffer", c.max_segments)
        }
        pinio::VectoredIo::Unsupported => "one buffer per operation (operations over several buffers are refused)".to_string(),
    });
    l
}

fn memlock() -> String {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit through a valid pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) } != 0 {
        return "unknown".into();
    }
    if r.rlim_cur == libc::RLIM_INFINITY { "unlimited".into() } else { bytes(r.rlim_cur) }
}

/// Opens `spec` and prints what it offers; the error when it cannot open.
fn probe(spec: &str) -> Result<(), String> {
    let dev = pinio::open(spec).map_err(|e| e.to_string())?;
    let c = dev.capabilities();
    println!("  usable here: {spec} opened — {}", dev.describe());
    for line in plain_capabilities(c) {
        println!("  {line}");
    }
    let reach = match c.sharing {
        pinio::RegistrationSharing::Domain => "one registration serves every device of the domain",
        pinio::RegistrationSharing::PerQueue => {
            "every device of the domain accepts its regions, but each queue pins them again"
        }
    };
    println!("  domain: {}; {reach}", dev.domain().describe());
    Ok(())
}

/// The scratch file the file backends open, removed however `run` ends.
struct ProbeFile(PathBuf);

impl Drop for ProbeFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub fn run(a: InfoArgs) -> CliResult {
    let built = pinio::available_backends();
    let names: Vec<&str> = built.iter().map(|b| b.name()).collect();
    println!("pinio {} — backends in this build: {}", env!("CARGO_PKG_VERSION"), names.join(", "));
    println!("locked-memory limit (ulimit -l): {} — how much memory this process may pin for zero-copy IO", memlock());
    let m = Machine::real();
    println!("running as root: {}", if m.is_root { "yes" } else { "no" });
    if !a.targets.is_empty() {
        for spec in a.targets {
            println!("\n{spec}:");
            if let Err(e) = probe(&spec) {
                println!("  not available — {e}");
            }
        }
        return Ok(());
    }
    // /var/tmp, like the bench: the temp dir may be tmpfs, which has no O_DIRECT.
    let probe_file = ProbeFile(Path::new("/var/tmp").join(format!("pinio-info-{}", std::process::id())));
    std::fs::write(&probe_file.0, vec![0u8; 1 << 20])
        .map_err(|e| format!("writing the probe file {}: {e}", probe_file.0.display()))?;
    let mut usable = Vec::new();
    for kind in BackendKind::ALL {
        println!();
        if !built.contains(&kind) {
            println!("{kind}: not in this build — {}", what_it_is(kind));
            println!("  to use it: build pinio with its cargo feature `{}`", feature(kind));
            continue;
        }
        println!("{kind}: {}", what_it_is(kind));
        let mut v = diagnose(kind, &m, &probe_file.0);
        if v.problems.is_empty()
            && let Some(spec) = &v.target
        {
            match probe(spec) {
                Ok(()) => {
                    usable.push(kind.name());
                    continue;
                }
                Err(e) => {
                    v.problem(format!("opening {spec} failed: {e}"), "see the error above for what it needs".into())
                }
            }
        }
        println!("  not usable here:");
        for p in &v.problems {
            println!("    - {p}");
        }
        println!("  to use it:");
        for r in &v.remedies {
            println!("    - {r}");
        }
    }
    println!("\nusable here: {}", if usable.is_empty() { "none".to_string() } else { usable.join(", ") });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fake root, removed when dropped.
    struct Fake(Machine);

    impl Drop for Fake {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0.root);
        }
    }

    impl std::ops::Deref for Fake {
        type Target = Machine;
        fn deref(&self) -> &Machine {
            &self.0
        }
    }

    /// A fake root with these PCI devices `(address, vendor, device, class, driver)`.
    fn machine(
        iommu_groups: usize,
        devices: &[(&str, &str, &str, &str, Option<&str>)],
        files: &[&str],
        is_root: bool,
    ) -> Fake {
        static N: AtomicUsize = AtomicUsize::new(0);
        let root = std::env::temp_dir().join(format!(
            "pinio-info-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("sys/kernel/iommu_groups")).unwrap();
        for g in 0..iommu_groups {
            std::fs::create_dir_all(root.join(format!("sys/kernel/iommu_groups/{g}"))).unwrap();
        }
        for (addr, vendor, device, class, driver) in devices {
            let d = root.join("sys/bus/pci/devices").join(addr);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("vendor"), format!("{vendor}\n")).unwrap();
            std::fs::write(d.join("device"), format!("{device}\n")).unwrap();
            std::fs::write(d.join("class"), format!("{class}\n")).unwrap();
            if let Some(drv) = driver {
                let target = root.join("sys/bus/pci/drivers").join(drv);
                std::fs::create_dir_all(&target).unwrap();
                std::os::unix::fs::symlink(&target, d.join("driver")).unwrap();
            }
        }
        for f in files {
            let p = root.join(f.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        Fake(Machine { root, is_root })
    }

    fn diag(kind: BackendKind, m: &Machine) -> Verdict {
        diagnose(kind, m, Path::new("/var/tmp/probe"))
    }

    const EDU: (&str, &str, &str, &str, Option<&str>) = ("0000:00:03.0", "0x1234", "0x11e8", "0x00ff00", None);
    const NVME: (&str, &str, &str, &str, Option<&str>) = ("0000:01:00.0", "0x1b36", "0x0010", "0x010802", Some("nvme"));

    #[test]
    fn a_bare_host_explains_every_vfio_problem() {
        let m = machine(0, &[("0000:00:01.0", "0x1af4", "0x1042", "0x018000", Some("virtio-pci"))], &[], false);
        let v = diag(BackendKind::Vfio, &m);
        let all = v.problems.join("\n");
        assert!(all.contains("no IOMMU: /sys/kernel/iommu_groups is empty"), "{all}");
        assert!(all.contains("no edu device") && all.contains("1234:11e8"), "{all}");
        assert!(all.contains("not root"), "{all}");
        assert_eq!(v.target, None);
        let todo = v.remedies.join("\n");
        assert!(todo.contains("intel_iommu=on") && todo.contains("-device edu") && todo.contains("sudo"), "{todo}");

        let v = diag(BackendKind::Nvme, &m);
        let all = v.problems.join("\n");
        assert!(all.contains("no NVMe device") && all.contains("010802"), "{all}");
    }

    #[test]
    fn a_guest_with_devices_and_an_iommu() {
        let m = machine(4, &[EDU, NVME], &["/sys/bus/pci/drivers/vfio-pci/bind"], true);
        let v = diag(BackendKind::Vfio, &m);
        assert!(v.problems.is_empty(), "{:?}", v.problems);
        assert_eq!(v.target.as_deref(), Some("vfio:0000:00:03.0"));
        // The NVMe disk belongs to the kernel's driver: pinio leaves it alone and says how to hand it over.
        let v = diag(BackendKind::Nvme, &m);
        assert_eq!(v.problems.len(), 1, "{:?}", v.problems);
        assert!(v.problems[0].contains("bound to the kernel's nvme driver, not to vfio-pci"), "{:?}", v.problems);
        assert!(
            v.remedies[0].contains("driver_override") && v.remedies[0].contains("take_from_driver"),
            "{:?}",
            v.remedies
        );
    }

    #[test]
    fn vfio_pci_needed_for_an_unbound_device_and_preferred_when_bound() {
        let m = machine(1, &[EDU], &[], true);
        let v = diag(BackendKind::Vfio, &m);
        assert!(
            v.problems.iter().any(|p| p.contains("vfio-pci driver that pinio would bind it to is not loaded")),
            "{:?}",
            v.problems
        );
        assert!(v.remedies.iter().any(|r| r.contains("modprobe vfio-pci")));
        let bound = ("0000:00:05.0", "0x1b36", "0x0010", "0x010802", Some("vfio-pci"));
        let m = machine(1, &[NVME, bound], &[], true);
        let v = diag(BackendKind::Nvme, &m);
        assert!(v.problems.is_empty(), "{:?}", v.problems);
        assert_eq!(v.target.as_deref(), Some("nvme:0000:00:05.0"));
    }

    #[test]
    fn kmod_needs_its_device_node() {
        let v = diag(BackendKind::Kmod, &machine(0, &[], &[], true));
        assert!(v.problems[0].contains("/dev/pinio is missing"), "{:?}", v.problems);
        assert!(v.remedies[0].contains("load pinio.ko"), "{:?}", v.remedies);
        let v = diag(BackendKind::Kmod, &machine(0, &[], &["/dev/pinio"], false));
        assert!(v.problems.is_empty());
        assert_eq!(v.target.as_deref(), Some("kmod:/dev/pinio"));
    }

    #[test]
    fn uring_off_in_the_kernel() {
        let m = machine(0, &[], &[], true);
        std::fs::create_dir_all(m.path("/proc/sys/kernel")).unwrap();
        std::fs::write(m.path("/proc/sys/kernel/io_uring_disabled"), "2\n").unwrap();
        let v = diag(BackendKind::Uring, &m);
        assert!(v.problems[0].contains("io_uring switched off"), "{:?}", v.problems);
        std::fs::write(m.path("/proc/sys/kernel/io_uring_disabled"), "0\n").unwrap();
        assert!(diag(BackendKind::Uring, &m).problems.is_empty());
        assert!(diag(BackendKind::Copy, &m).problems.is_empty());
    }

    #[test]
    fn capabilities_in_plain_words() {
        let c = Capabilities {
            backend: "uring",
            mem_align: 4096,
            register_align: 4096,
            offset_align: 512,
            len_align: 512,
            max_transfer: 1 << 20,
            max_pinned_bytes: Some(8 << 20),
            device_size: 1 << 30,
            completion: CompletionMode::Interrupt,
            cpu_copies: false,
            pins_memory: true,
            max_queue_depth: 4096,
            sharing: pinio::RegistrationSharing::Domain,
            persistence: pinio::Persistence::WriteBack,
            writable: true,
            short_reads_at_end: true,
            vectored: pinio::VectoredIo::Native,
            max_segments: 1024,
        };
        let l = plain_capabilities(&c).join("\n");
        assert!(l.contains("the device signals completions (interrupts)"), "{l}");
        assert!(l.contains("zero-copy"), "{l}");
        assert!(l.contains("at most 8 MiB may be pinned"), "{l}");
        assert!(l.contains("buffers in memory at multiples of 4 KiB, device offsets at multiples of 512 B"), "{l}");
        assert!(l.contains("up to 1024 buffers to or from one device range, as one device command"), "{l}");
        assert!(
            !l.contains("Interrupt") && !l.contains("true") && !l.contains("false") && !l.contains("Native"),
            "no jargon: {l}"
        );
        let c = Capabilities {
            completion: CompletionMode::Synchronous,
            cpu_copies: true,
            pins_memory: false,
            mem_align: 1,
            vectored: pinio::VectoredIo::Unsupported,
            max_segments: 1,
            ..c
        };
        let l = plain_capabilities(&c).join("\n");
        assert!(
            l.contains("buffers in memory anywhere") && l.contains("not zero-copy") && l.contains("pins nothing"),
            "{l}"
        );
        assert!(l.contains("one buffer per operation"), "{l}");
        assert_eq!(bytes(4096), "4 KiB");
        assert_eq!(bytes(u32::MAX as u64), "4.0 GiB");
        assert_eq!(bytes(100), "100 B");
    }
}
