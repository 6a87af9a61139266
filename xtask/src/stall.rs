//! When a guest goes silent: what QEMU can still tell about it, and a
//! non-maskable interrupt that makes the guest kernel print where every
//! task and CPU is and power off (docs/guest.md, "A guest that goes silent").
//!
//! A guest test that hangs in user space is killed by the runner's per-test
//! timeout and the console says so; a guest whose kernel stops making
//! progress (no timer ticks, every task asleep, a device model stuck) prints
//! nothing, not even the hung-task or RCU stall reports. After the silence,
//! the host asks QEMU over QMP for its run state, each vCPU's instruction
//! pointer and its local APIC's in-service and pending vectors, then
//! injects an NMI: the guest's command line has
//! `unknown_nmi_panic` and `panic_print` (see [`CMDLINE`]), so the kernel
//! panics with every task's stack on the console, and `panic=-1` with
//! QEMU's `-no-reboot` ends the boot.

use std::path::Path;

use anyhow::Result;
use serde_json::json;

/// Kernel parameters for the NMI's report: panic on an NMI nobody claims,
/// and on panic print every task's state and stack (0x1) and a backtrace of
/// every CPU (0x40).
pub const CMDLINE: &str = "unknown_nmi_panic panic_print=0x41";

/// How the lines of the stall report start in the console log (the first
/// says how long the guest was silent).
pub const MARK: &str = "xtask: stall: ";

/// Asks QEMU what the silent guest is doing and injects the NMI; the lines
/// to print (a line saying QMP did not answer means QEMU itself is stuck).
pub fn diagnose(socket: &Path) -> Vec<String> {
    match ask(socket) {
        Ok(lines) => lines,
        Err(e) => vec![format!("QEMU did not answer on its monitor ({e:#}): QEMU itself may be stuck")],
    }
}

fn ask(socket: &Path) -> Result<Vec<String>> {
    let mut qmp = crate::qmp::Qmp::connect(socket)?;
    let status = qmp.execute("query-status", json!({}))?;
    let mut lines = vec![format!("QEMU run state: {}", status["status"].as_str().unwrap_or("?"))];
    let regs = qmp.human("info registers -a")?;
    let vcpus = vcpu_summary(&regs);
    let count = vcpus.len();
    lines.extend(vcpus);
    // Each local APIC's in-service, pending and priority state: a vector in
    // service that is never EOIed blocks that CPU's interrupts for good.
    for cpu in 0..count {
        lines.extend(lapic_summary(cpu, &qmp.human(&format!("info lapic {cpu}"))?));
    }
    qmp.execute("inject-nmi", json!({}))?;
    lines.push("NMI injected: the guest kernel should now print every task's stack and power off".into());
    Ok(lines)
}

/// One line per vCPU from `info registers -a`: its instruction pointer,
/// flags and whether it is halted (`HLT=1` with interrupts enabled is an
/// idle CPU waiting for an interrupt).
fn vcpu_summary(regs: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cpu = String::new();
    for line in regs.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("CPU#") {
            cpu = rest.to_string();
        } else if line.starts_with("RIP=") {
            let mut fields = line.split_whitespace();
            let rip = fields.next().unwrap_or_default();
            let rfl = fields.next().unwrap_or_default();
            let hlt = line.split_whitespace().find(|f| f.starts_with("HLT=")).unwrap_or("HLT=?");
            out.push(format!("vCPU {cpu}: {rip} {rfl} {hlt}"));
        }
    }
    out
}

/// The in-service (ISR), pending (IRR) and priority (PPR) lines of `info
/// lapic N`, on one line.
fn lapic_summary(cpu: usize, lapic: &str) -> Option<String> {
    let keep: Vec<&str> = lapic
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("ISR") || l.starts_with("IRR") || l.starts_with("APR"))
        .collect();
    (!keep.is_empty())
        .then(|| format!("vCPU {cpu} local APIC: {}", keep.join("; ").split_whitespace().collect::<Vec<_>>().join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lapic_summary_keeps_what_is_in_service_and_pending() {
        let lapic = "dumping local APIC state for CPU 1 \n\nLVTT\t 0x000200ec periodic\nISR\t 236 \nIRR\t 34 36 236 \n\nAPR 0x01 TPR 0x10 DFR 0x0f LDR 0x00 PPR 0xe0\n";
        assert_eq!(
            lapic_summary(1, lapic).unwrap(),
            "vCPU 1 local APIC: ISR 236; IRR 34 36 236; APR 0x01 TPR 0x10 DFR 0x0f LDR 0x00 PPR 0xe0"
        );
        assert_eq!(lapic_summary(0, "no such CPU"), None);
    }

    #[test]
    fn the_summary_names_each_vcpu_and_where_it_is() {
        let regs = "CPU#0\nRAX=0000000000000000 RBX=0000000000000000\n\
                    RIP=ffffffff81e5a6af RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=1\nES =0000\n\
                    CPU#1\nRIP=ffffffff8112a000 RFL=00000086 [--S--P-] CPL=0 II=0 A20=1 SMM=0 HLT=0\n";
        assert_eq!(
            vcpu_summary(regs),
            ["vCPU 0: RIP=ffffffff81e5a6af RFL=00000246 HLT=1", "vCPU 1: RIP=ffffffff8112a000 RFL=00000086 HLT=0"]
        );
    }
}
