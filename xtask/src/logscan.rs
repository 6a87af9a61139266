//! Finding kernel reports (BUG, WARN, Oops, KASAN, UBSAN, lockdep, hung
//! tasks, panics) in the guest console.
//!
//! The guest boots with `printk.time=1`, so kernel lines start with
//! `[ seconds.micros] `; only such lines are scanned, which keeps output of
//! the programs under test (sharing the console) from faking a report.
//! A test that provokes a report on purpose brackets it with kernel log lines
//! `pinio: expect-report begin` / `pinio: expect-report end` (write them to
//! /dev/kmsg); reports inside such a window are listed but do not fail a run.

/// One kernel report.
#[derive(Debug)]
pub struct Report {
    /// What kind of report (the first trigger that matched).
    pub kind: &'static str,
    /// Index of the first line in the console line list.
    pub start: usize,
    /// The report's kernel lines (trigger to end marker, at most [`MAX_LINES`]).
    pub lines: Vec<String>,
    /// Inside an expect-report window.
    pub expected: bool,
    /// A known kernel bug that is not pinio's (one of [`KNOWN`]): its name.
    pub known: Option<&'static str>,
}

impl Report {
    /// Whether the report fails a run: not provoked on purpose, not a known
    /// kernel bug.
    pub fn fails(&self) -> bool {
        !self.expected && self.known.is_none()
    }
}

/// A kernel bug outside pinio that guest runs can hit: a report whose
/// trigger line and the lines after it contain every one of `signature`.
pub struct Known {
    pub name: &'static str,
    pub signature: &'static [&'static str],
}

/// How many console lines after a report's trigger a [`Known`] signature is
/// looked for, and within which the report's continuation (its call trace)
/// belongs to it.
const KNOWN_SPAN: usize = 200;

/// The known kernel bugs (docs/reliability.md, "What the soak found").
pub const KNOWN: &[Known] = &[Known {
    name: "vfio-pci/kernfs lockdep cycle (upstream: MSI enable creates sysfs files under vdev->memory_lock)",
    signature: &[
        "possible circular locking dependency",
        "kernfs_rwsem",
        "memory_lock",
        "msi_setup_device_data",
        "filldir64",
    ],
}];

/// Longest report excerpt kept.
pub const MAX_LINES: usize = 60;

/// The message part of a kernel console line, or None for other output.
pub fn kernel_message(line: &str) -> Option<&str> {
    // Program output may precede the stamp on the same line: try every '['.
    line.match_indices('[').find_map(|(start, _)| {
        let rest = &line[start + 1..];
        let close = rest.find("] ")?;
        let stamp = rest[..close].trim();
        let is_stamp =
            !stamp.is_empty() && stamp.contains('.') && stamp.chars().all(|c| c.is_ascii_digit() || c == '.');
        is_stamp.then(|| &rest[close + 2..])
    })
}

/// Classifies a kernel message that starts or signals a report.
pub fn trigger(msg: &str) -> Option<&'static str> {
    const CONTAINS: &[(&str, &str)] = &[
        ("KASAN:", "KASAN"),
        ("UBSAN:", "UBSAN"),
        ("possible circular locking", "lockdep"),
        ("possible recursive locking", "lockdep"),
        ("inconsistent lock state", "lockdep"),
        ("suspicious RCU usage", "lockdep (RCU)"),
        ("Kernel panic", "panic"),
        ("kernel BUG at", "BUG"),
        ("general protection fault", "Oops"),
        ("Oops", "Oops"),
        ("panicked at", "Rust panic"),
        ("rcu: INFO:", "RCU stall"),
        ("blocked for more than", "hung task"),
    ];
    const STARTS: &[(&str, &str)] = &[
        ("BUG:", "BUG"),
        ("WARNING:", "WARNING"),
        ("INFO:", "INFO (lockdep)"),
        ("Call Trace:", "Call Trace"),
        ("ODEBUG:", "debugobjects"),
    ];
    let msg = msg.trim_start();
    CONTAINS
        .iter()
        .find(|(p, _)| msg.contains(p))
        .or_else(|| STARTS.iter().find(|(p, _)| msg.starts_with(p)))
        .map(|(_, kind)| *kind)
}

fn ends_report(msg: &str) -> bool {
    msg.contains("---[ end trace") || msg.contains("---[ end Kernel panic")
}

/// Scans console lines and groups trigger lines into reports.
pub fn scan(lines: &[String]) -> Vec<Report> {
    let mut reports: Vec<Report> = Vec::new();
    let mut open: Option<Report> = None;
    let mut expecting = false;
    for (i, line) in lines.iter().enumerate() {
        let Some(msg) = kernel_message(line) else { continue };
        if msg.contains("pinio: expect-report begin") {
            expecting = true;
        } else if msg.contains("pinio: expect-report end") {
            expecting = false;
        }
        if let Some(report) = open.as_mut() {
            if report.lines.len() < MAX_LINES {
                report.lines.push(line.clone());
            }
            if ends_report(msg) || report.lines.len() >= MAX_LINES {
                reports.extend(open.take());
            }
            continue;
        }
        if let Some(kind) = trigger(msg) {
            let report = Report { kind, start: i, lines: vec![line.clone()], expected: expecting, known: None };
            if ends_report(msg) {
                reports.push(report);
            } else {
                open = Some(report);
            }
        }
    }
    reports.extend(open);
    mark_known(lines, &mut reports);
    reports
}

/// Names the reports that are a [`KNOWN`] kernel bug, with the reports that
/// continue one (a lockdep report longer than [`MAX_LINES`] goes on as a
/// `Call Trace` report).
fn mark_known(lines: &[String], reports: &mut [Report]) {
    let mut until: Option<(usize, &'static str)> = None;
    for r in reports.iter_mut() {
        if let Some((end, name)) = until
            && r.start < end
            && matches!(r.kind, "Call Trace" | "INFO (lockdep)")
        {
            r.known = Some(name);
            continue;
        }
        let end = (r.start + KNOWN_SPAN).min(lines.len());
        let span = &lines[r.start..end];
        if let Some(k) = KNOWN.iter().find(|k| k.signature.iter().all(|sig| span.iter().any(|l| l.contains(sig)))) {
            r.known = Some(k.name);
            until = Some((end, k.name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn the_known_vfio_kernfs_cycle_does_not_fail_and_other_lockdep_reports_do() {
        let mut text = String::from("[    1.000000] WARNING: possible circular locking dependency detected\n");
        for l in ["(&root->kernfs_rwsem){++++}", "(&vdev->memory_lock){++++}", "filldir64+0x225/0x5b0"] {
            text.push_str(&format!("[    1.000001]  {l}\n"));
        }
        for _ in 0..MAX_LINES {
            text.push_str("[    1.000002]  lock_acquire+0xeb/0x1f0\n");
        }
        text.push_str("[    1.000003]  msi_setup_device_data+0x85/0x220\n[    1.000004] Call Trace:\n[    1.000005]  dump_stack_lvl+0x67/0x90\n[    1.000006] ---[ end trace 0 ]---\n");
        text.push_str(
            "[    9.000000] WARNING: possible circular locking dependency detected\n[    9.000001]  (&other->lock)\n",
        );
        let r = scan(&lines(&text));
        assert_eq!(r.len(), 3, "{r:?}");
        assert!(!r[0].fails() && !r[1].fails(), "the known cycle and its call trace: {r:?}");
        assert!(r[2].fails(), "another cycle fails the run");
    }

    #[test]
    fn kernel_lines_only() {
        assert_eq!(kernel_message("[    1.234567] hello"), Some("hello"));
        assert_eq!(kernel_message("[12345.000001] BUG: x"), Some("BUG: x"));
        assert_eq!(kernel_message("WARNING: from a test program"), None);
        assert_eq!(kernel_message("[ok] not a stamp"), None);
        assert_eq!(kernel_message("out [x] more[    2.5] BUG: y"), Some("BUG: y"));
    }

    #[test]
    fn warn_is_one_report_until_end_trace() {
        let l = lines(
            "[    1.0] booting\n\
             [    2.0] ------------[ cut here ]------------\n\
             [    2.1] WARNING: CPU: 0 PID: 1 at x.rs:3 init+0x1\n\
             [    2.2] Call Trace:\n\
             [    2.3]  <TASK>\n\
             [    2.4] ---[ end trace 0000000000000000 ]---\n\
             [    3.0] fine again",
        );
        let r = scan(&l);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].kind, "WARNING");
        assert_eq!(r[0].start, 2);
        assert_eq!(r[0].lines.len(), 4);
        assert!(!r[0].expected);
    }

    #[test]
    fn user_output_is_ignored_and_expected_window_marks() {
        let l = lines(
            "WARNING: user program text\n\
             [    1.0] pinio: expect-report begin\n\
             [    1.1] BUG: KASAN: slab-use-after-free in f\n\
             [    1.2] ---[ end trace 0 ]---\n\
             [    1.3] pinio: expect-report end\n\
             [    1.4] INFO: task x blocked for more than 120 seconds.",
        );
        let r = scan(&l);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].kind, "KASAN");
        assert!(r[0].expected);
        assert_eq!(r[1].kind, "hung task");
        assert!(!r[1].expected);
    }

    #[test]
    fn boot_noise_is_not_a_report() {
        for msg in [
            "kasan: KernelAddressSanitizer initialized (generic)",
            "DMAR: [Firmware Bug]: x",
            "Run /init as init process",
        ] {
            assert_eq!(trigger(msg), None, "{msg}");
        }
    }
}
