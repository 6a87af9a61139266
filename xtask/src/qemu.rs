//! Booting the guest under QEMU (TCG: the hosts' KVM cannot run these guests)
//! and streaming its serial console.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// What to boot.
pub struct Machine {
    /// The kernel QEMU loads: an uncompressed `vmlinux` with a PVH entry
    /// note (started directly, nothing to decompress) or a bzImage.
    pub kernel: PathBuf,
    /// Firmware (`-bios`) in place of SeaBIOS, when set.
    pub bios: Option<PathBuf>,
    pub initrd: PathBuf,
    /// Kernel command line.
    pub append: String,
    /// 9p shares: (mount tag, host directory), read-write.
    pub shares: Vec<(String, PathBuf)>,
    /// Backing file of the emulated NVMe disk.
    pub nvme_image: PathBuf,
    /// A run directory whose `hotplug/` requests a host thread serves
    /// through QEMU's monitor (QMP on a unix socket): see `hotplug.rs`.
    pub hotplug_dir: Option<PathBuf>,
    pub memory_mib: u32,
    pub cpus: u32,
    /// `-accel`: `tcg,thread=single` (one host thread for all vCPUs) or
    /// `tcg,thread=multi` (one per vCPU).
    pub accel: String,
    pub timeout: Duration,
    /// After this long without a console line the guest counts as stuck:
    /// the host asks QEMU what it is doing and makes the guest kernel print
    /// its tasks and power off (`stall.rs`; needs the QMP socket, i.e. a
    /// hotplug directory). None: wait for the timeout.
    pub stall_after: Option<Duration>,
}

/// How long a stuck guest gets to print its NMI report and power off.
const STALL_REPORT: Duration = Duration::from_secs(180);

/// QEMU's monitors, one QMP socket each: a QMP server talks to one client
/// at a time, and the hotplug bridge keeps its connection for the boot.
#[derive(Clone, Copy)]
enum Monitor {
    /// The hotplug bridge's (`hotplug.rs`).
    Hotplug,
    /// The stall diagnosis's (`stall.rs`).
    Stall,
}

impl Monitor {
    const ALL: [Monitor; 2] = [Monitor::Hotplug, Monitor::Stall];

    /// The socket name's suffix.
    fn name(self) -> &'static str {
        match self {
            Monitor::Hotplug => "hotplug",
            Monitor::Stall => "stall",
        }
    }
}

/// How a boot ended.
pub struct Boot {
    /// Every console line, in order (carriage returns stripped).
    pub lines: Vec<String>,
    /// When each line arrived, since QEMU started.
    pub times: Vec<Duration>,
    pub timed_out: bool,
    /// QEMU's own exit status (None when killed on timeout).
    pub qemu_status: Option<std::process::ExitStatus>,
}

/// QEMU's qboot, a minimal firmware that only knows how to start a kernel:
/// under TCG it reaches the kernel seconds sooner than SeaBIOS.
/// `PINIO_QEMU_BIOS=seabios` keeps QEMU's default; `PINIO_QEMU_BIOS=PATH`
/// names another firmware image.
pub fn fast_firmware() -> Option<PathBuf> {
    match std::env::var_os("PINIO_QEMU_BIOS") {
        Some(v) if v == "seabios" => None,
        Some(v) => Some(PathBuf::from(v)),
        None => Some(PathBuf::from("/usr/share/qemu/qboot.rom")).filter(|p| p.exists()),
    }
}

impl Machine {
    /// The QEMU command line.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args(["-accel", &self.accel, "-machine", "q35,kernel-irqchip=split", "-cpu", "max,la57=off"])
            .args(["-m", &format!("{}M", self.memory_mib), "-smp", &self.cpus.to_string()])
            .args(["-nodefaults", "-display", "none", "-no-reboot", "-monitor", "none"])
            .args(["-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console"])
            .args(["-device", "intel-iommu,intremap=on,caching-mode=on"])
            .args(["-device", "edu"])
            // The NVMe controller behind a root port of its own (q35's root
            // bus has no hotplug): 0000:01:00.0 in the guest, the port at
            // 00:02.0 where the controller was before. QEMU's default for
            // q35, ACPI PCI hotplug (the guest's acpiphp): the kernel's
            // native PCIe hotplug (pciehp) logs a lockdep report at every
            // removal (docs/guest.md). `-blockdev`, not `-drive`, so that
            // the disk outlives a `device_del` and the controller can be
            // plugged back (cache=unsafe: no flushes).
            .args(["-device", "pcie-root-port,id=nvme-port,bus=pcie.0,addr=0x2,chassis=1,slot=1"])
            .arg("-blockdev")
            .arg(format!(
                "driver=raw,node-name=nvme0,cache.no-flush=on,file.driver=file,file.filename={}",
                self.nvme_image.display()
            ))
            .args(["-device", &crate::hotplug::Pluggable::Nvme.device_arg()]);
        for purpose in Monitor::ALL {
            if let Some(socket) = self.qmp_socket(purpose) {
                cmd.arg("-qmp").arg(format!("unix:{},server=on,wait=off", socket.display()));
            }
        }
        for (tag, dir) in &self.shares {
            cmd.arg("-virtfs")
                .arg(format!("local,path={},mount_tag={tag},security_model=none,id={tag}", dir.display()));
        }
        if let Some(bios) = &self.bios {
            cmd.arg("-bios").arg(bios);
        }
        cmd.arg("-kernel").arg(&self.kernel).arg("-initrd").arg(&self.initrd);
        cmd.arg("-append").arg(&self.append);
        cmd
    }

    /// The QMP socket, when there is a hotplug directory: one per run
    /// directory (guests may boot side by side), outside it (a unix socket's
    /// path is limited to 107 bytes).
    fn qmp_socket(&self, purpose: Monitor) -> Option<PathBuf> {
        let dir = self.hotplug_dir.as_ref()?;
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let what = purpose.name();
        Some(std::env::temp_dir().join(format!("pinio-qmp-{}-{name}-{what}.sock", std::process::id())))
    }

    /// Boots, calls `on_line` for each console line as it arrives, and waits
    /// for QEMU to exit or the timeout to pass (then kills it).
    pub fn boot(&self, mut on_line: impl FnMut(&str)) -> Result<Boot> {
        let mut cmd = self.command();
        let bridge = match (&self.hotplug_dir, self.qmp_socket(Monitor::Hotplug)) {
            (Some(dir), Some(socket)) => Some(crate::hotplug::Bridge::start(dir, socket)?),
            _ => None,
        };
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start qemu-system-x86_64 (run xtask/scripts/install-deps.sh)")?;
        let start = Instant::now();
        let (tx, rx) = mpsc::channel::<(bool, String)>();
        let out = child.stdout.take().context("qemu stdout")?;
        let err = child.stderr.take().context("qemu stderr")?;
        let readers = [reader(out, false, tx.clone()), reader(err, true, tx)];
        let mut deadline = start + self.timeout;
        let mut boot = Boot { lines: Vec::new(), times: Vec::new(), timed_out: false, qemu_status: None };
        let mut last_line = start;
        let mut stall = self.stall_after.zip(self.qmp_socket(Monitor::Stall));
        loop {
            let wake = match &stall {
                Some((after, _)) => deadline.min(last_line + *after),
                None => deadline,
            };
            match rx.recv_timeout(wake.saturating_duration_since(Instant::now())) {
                Ok((is_stderr, line)) => {
                    let line = if is_stderr { format!("qemu: {line}") } else { line };
                    on_line(&line);
                    boot.lines.push(line);
                    boot.times.push(start.elapsed());
                    last_line = Instant::now();
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    let Some((after, socket)) = stall.take() else { continue };
                    let mut report = vec![format!(
                        "the guest printed nothing for {} s (stuck): asking QEMU, then an NMI",
                        after.as_secs()
                    )];
                    report.extend(crate::stall::diagnose(&socket));
                    for l in report {
                        let line = format!("{}{l}", crate::stall::MARK);
                        on_line(&line);
                        boot.lines.push(line);
                        boot.times.push(start.elapsed());
                    }
                    deadline = deadline.min(Instant::now() + STALL_REPORT);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    boot.timed_out = true;
                    let _ = child.kill();
                    break;
                }
            }
        }
        let status = child.wait().context("waiting for qemu")?;
        drop(bridge);
        for purpose in Monitor::ALL {
            if let Some(socket) = self.qmp_socket(purpose) {
                let _ = std::fs::remove_file(socket);
            }
        }
        for r in readers {
            let _ = r.join();
        }
        if !boot.timed_out {
            boot.qemu_status = Some(status);
        }
        if boot.lines.is_empty() && !boot.timed_out && !status.success() {
            bail!("qemu exited at once ({status}): `{}`", crate::cmd::describe(&cmd));
        }
        Ok(boot)
    }
}

fn reader(
    src: impl Read + Send + 'static,
    is_stderr: bool,
    tx: mpsc::Sender<(bool, String)>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut r = BufReader::new(src);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).replace('\r', "").trim_end_matches('\n').to_string();
                    if tx.send((is_stderr, line)).is_err() {
                        break;
                    }
                }
            }
        }
    })
}
