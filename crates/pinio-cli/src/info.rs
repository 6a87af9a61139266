//! `pinio info`: which backends this machine can run, and their limits.

use crate::CliResult;
use clap::Args;
use pinio::BackendKind;

/// Arguments of `pinio info`.
#[derive(Args)]
pub struct InfoArgs {
    /// Probe these targets instead of the defaults (repeatable), e.g. --target kmod:/dev/pinio.
    #[arg(long = "target")]
    targets: Vec<String>,
}

fn default_targets(probe_file: &str) -> Vec<String> {
    let mut t = Vec::new();
    for kind in pinio::available_backends() {
        match kind {
            BackendKind::Copy | BackendKind::Uring => t.push(format!("{kind}:{probe_file}")),
            BackendKind::Kmod => t.push("kmod:/dev/pinio".into()),
            BackendKind::Vfio => t.extend(find_pci("0x1234", "0x11e8").map(|a| format!("vfio:{a}"))),
            BackendKind::Nvme => t.extend(find_pci("0x1b36", "0x0010").map(|a| format!("nvme:{a}"))),
        }
    }
    t
}

/// The first PCI device with this vendor and device id.
fn find_pci(vendor: &str, device: &str) -> Option<String> {
    let rd = std::fs::read_dir("/sys/bus/pci/devices").ok()?;
    for e in rd.flatten() {
        let p = e.path();
        let v = std::fs::read_to_string(p.join("vendor")).unwrap_or_default();
        let d = std::fs::read_to_string(p.join("device")).unwrap_or_default();
        if v.trim() == vendor && d.trim() == device {
            return Some(e.file_name().to_string_lossy().into_owned());
        }
    }
    None
}

fn memlock() -> String {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit through a valid pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) } != 0 {
        return "unknown".into();
    }
    if r.rlim_cur == libc::RLIM_INFINITY { "unlimited".into() } else { format!("{} bytes", r.rlim_cur) }
}

pub fn run(a: InfoArgs) -> CliResult {
    let probe = std::env::temp_dir().join(format!("pinio-info-{}", std::process::id()));
    std::fs::write(&probe, vec![0u8; 1 << 20])?;
    let targets = if a.targets.is_empty() { default_targets(&probe.to_string_lossy()) } else { a.targets };
    let built: Vec<String> = pinio::available_backends().iter().map(|b| b.to_string()).collect();
    println!("pinio {} — backends in this build: {}", env!("CARGO_PKG_VERSION"), built.join(", "));
    println!("RLIMIT_MEMLOCK: {}", memlock());
    for spec in targets {
        match pinio::open(&spec) {
            Ok(dev) => {
                let c = dev.capabilities();
                println!("\n{spec}: works — {}", dev.describe());
                println!("  alignment: memory {} B, offset {} B, length {} B; max transfer {} B", c.mem_align, c.offset_align, c.len_align, c.max_transfer);
                println!(
                    "  completions: {:?}; CPU copies payload: {}; pins memory: {}; max pinned: {}",
                    c.completion,
                    c.cpu_copies,
                    c.pins_memory,
                    c.max_pinned_bytes.map_or("no limit known".into(), |b| format!("{b} B"))
                );
            }
            Err(e) => println!("\n{spec}: not available — {e}"),
        }
    }
    let _ = std::fs::remove_file(&probe);
    Ok(())
}
