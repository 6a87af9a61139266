//! Three paths to one NVMe device, one boot (`cargo xtask vm bench`, or
//! `cargo xtask vm run -- <this binary>`): the same emulated disk and the
//! same registered buffers through
//!
//! 1. the kernel's block layer: pinio's `uring:` backend on `/dev/nvme0n1`
//!    (O_DIRECT, `READ_FIXED`/`WRITE_FIXED`), interrupt-driven and polled
//!    (`UringOptions::iopoll`: `IORING_SETUP_IOPOLL`, the same poll queues);
//! 2. NVMe passthrough: `nvme-uring:/dev/ng0n1` with fixed buffers
//!    (`IORING_URING_CMD_FIXED`), interrupt-driven and polled
//!    (`IORING_SETUP_IOPOLL` on the driver's poll queues);
//! 3. NVMe passthrough with plain (unregistered) buffers;
//! 4. pinio's userspace driver `nvme:` after the controller is bound to
//!    vfio-pci, MSI-X and polled completions.
//!
//! Workloads: 4 KiB random reads over the whole namespace at queue depth 1
//! and 32, 128 KiB sequential reads and writes at depth 4 (writes in the
//! last 16 MiB, saved before and restored after). Each run lasts a fixed
//! time; repeats are interleaved across every path (the controller moves
//! between the kernel and vfio-pci in every repeat). Reported per path and
//! workload: IOPS, latency percentiles (push to completion) and CPU time
//! per IO of the whole process (getrusage user + system), median over the
//! repeats with the min-max range, and ratios against the block path.
//! Under TCG the emulated controller's own work runs in QEMU's threads,
//! outside the guest: CPU per IO is the primary figure, IOPS mostly
//! measures the device model. JSON goes to `$PINIO_BENCH_OUT`.

use pinio_core::{Completion, Device, Direction, Op};
use pinio_nvme_uring::{NvmeUringDevice, NvmeUringOptions};
use pinio_uring::{UringDevice, UringOptions};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Writes go to the last this-many bytes of the namespace.
const WRITE_WINDOW: u64 = 16 << 20;

#[derive(Debug, Clone, Copy)]
struct Workload {
    name: &'static str,
    dir: Direction,
    io: usize,
    qd: usize,
    random: bool,
}

const WORKLOADS: [Workload; 4] = [
    Workload { name: "randread-4k-qd1", dir: Direction::Read, io: 4096, qd: 1, random: true },
    Workload { name: "randread-4k-qd32", dir: Direction::Read, io: 4096, qd: 32, random: true },
    Workload { name: "seqread-128k-qd4", dir: Direction::Read, io: 128 << 10, qd: 4, random: false },
    Workload { name: "seqwrite-128k-qd4", dir: Direction::Write, io: 128 << 10, qd: 4, random: false },
];

/// The paths, in table order; the first is the reference of the ratios.
const KERNEL_PATHS: [&str; 5] =
    ["block+uring fixed", "block+uring fixed IOPOLL", "passthru fixed", "passthru fixed IOPOLL", "passthru plain"];
const USER_PATHS: [&str; 2] = ["pinio-nvme MSI-X", "pinio-nvme polled"];

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// CPU seconds (user, system) of the whole process so far.
fn cpu() -> (f64, f64) {
    // SAFETY: zeroed is a valid rusage, which getrusage fills.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to our own struct.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (t(ru.ru_utime), t(ru.ru_stime))
}

/// One run.
#[derive(Debug, Clone, Default)]
struct Sample {
    ops: u64,
    wall: f64,
    user: f64,
    sys: f64,
    /// Push-to-completion latency of each operation, nanoseconds.
    lat_ns: Vec<u64>,
}

impl Sample {
    fn iops(&self) -> f64 {
        self.ops as f64 / self.wall
    }
    fn cpu_us(&self) -> f64 {
        (self.user + self.sys) / self.ops as f64 * 1e6
    }
}

/// Runs `w` on `dev` for `secs` seconds.
fn run(dev: &dyn Device, w: Workload, secs: f64, seed: u64) -> Result<Sample, String> {
    let size = dev.capabilities().device_size;
    let (base, span) = match w.dir {
        Direction::Read => (0, size),
        Direction::Write => (size - WRITE_WINDOW, WRITE_WINDOW),
    };
    let slots = span / w.io as u64;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut next_seq = 0u64;
    let mut offset = |rng: &mut StdRng| {
        let slot = if w.random {
            rng.random_range(0..slots)
        } else {
            next_seq += 1;
            (next_seq - 1) % slots
        };
        base + slot * w.io as u64
    };
    let region = dev.alloc(w.qd * w.io).map_err(|e| format!("alloc: {e}"))?;
    let mut q = dev.queue(w.qd).map_err(|e| format!("queue: {e}"))?;
    let mut started = vec![Instant::now(); w.qd];
    let mut out: Vec<Completion> = Vec::with_capacity(w.qd);
    let mut lat_ns = Vec::with_capacity(1 << 16);
    for (i, t) in started.iter_mut().enumerate() {
        let s = region.slice(i * w.io, w.io).map_err(|e| e.to_string())?;
        *t = Instant::now();
        q.push(Op::new(w.dir, s, offset(&mut rng), i as u64)).map_err(|r| r.error.to_string())?;
    }
    let (u0, s0) = cpu();
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let mut ops = 0u64;
    loop {
        out.clear();
        q.wait(1, &mut out).map_err(|e| format!("wait: {e}"))?;
        let now = Instant::now();
        let more = now < deadline;
        for c in out.drain(..) {
            let n = c.result.map_err(|e| format!("{}: {e}", w.name))?;
            if n != w.io {
                return Err(format!("short transfer: {n} of {}", w.io));
            }
            let tag = c.tag as usize;
            lat_ns.push(now.duration_since(started[tag]).as_nanos() as u64);
            ops += 1;
            if more {
                started[tag] = Instant::now();
                q.push(Op::new(w.dir, c.slice, offset(&mut rng), c.tag)).map_err(|r| r.error.to_string())?;
            }
        }
        if q.in_flight() == 0 {
            break;
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let (u1, s1) = cpu();
    Ok(Sample { ops, wall, user: u1 - u0, sys: s1 - s0, lat_ns })
}

/// Median, min and max.
fn spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1e3
}

fn nvme_addr() -> pinio_vfio::PciAddress {
    pinio_vfio::Sysfs::system()
        .first_with("class", "0x010802")
        .expect("no NVMe controller (class 0x010802) on the PCI bus")
}

fn driver_of(bdf: &pinio_vfio::PciAddress) -> Option<String> {
    std::fs::read_link(Path::new("/sys/bus/pci/devices").join(bdf.to_string()).join("driver"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
}

/// `(/dev/nvmeXn1, /dev/ngXn1)` once the kernel's nvme driver has the
/// controller live and shows both nodes.
fn kernel_nodes(bdf: &pinio_vfio::PciAddress) -> (PathBuf, PathBuf) {
    if driver_of(bdf).as_deref() != Some("nvme") {
        pinio_nvme::release_to_kernel(bdf).expect("hand the controller to the kernel");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let dir = Path::new("/sys/bus/pci/devices").join(bdf.to_string()).join("nvme");
        if let Some(c) = std::fs::read_dir(dir).ok().into_iter().flatten().flatten().next() {
            let name = c.file_name().to_string_lossy().into_owned();
            let live = std::fs::read_to_string(c.path().join("state")).unwrap_or_default().trim() == "live";
            let inst = name.trim_start_matches("nvme").to_string();
            let (block, generic) =
                (PathBuf::from(format!("/dev/nvme{inst}n1")), PathBuf::from(format!("/dev/ng{inst}n1")));
            if live && block.exists() && generic.exists() {
                return (block, generic);
            }
        }
        assert!(Instant::now() < deadline, "the kernel never showed namespace 1 of {bdf}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads (`data` None) or writes `[off, off + len)` in 512 KiB pieces.
fn move_window(dev: &dyn Device, off: u64, len: u64, data: Option<&[u8]>) -> Vec<u8> {
    let chunk = 512 << 10;
    let region = dev.alloc(chunk).expect("alloc");
    let mut q = dev.queue(1).expect("queue");
    let mut out = Vec::new();
    for at in (0..len).step_by(chunk) {
        let n = chunk.min((len - at) as usize);
        let mut s = region.slice(0, n).expect("slice");
        match data {
            None => {
                let (_, s) = q.read_at(s, off + at).expect("save the write window");
                out.extend_from_slice(&s);
            }
            Some(d) => {
                s.copy_from_slice(&d[at as usize..at as usize + n]);
                q.write_at(s, off + at).expect("restore the write window");
            }
        }
    }
    if data.is_some() {
        q.flush(pinio_core::FlushMode::Data).expect("flush");
    }
    out
}

fn measure(
    name: &str,
    dev: &dyn Device,
    secs: f64,
    r: usize,
    samples: &mut [Vec<Sample>],
    errors: &mut Vec<Value>,
    path_index: usize,
) {
    for (k, w) in WORKLOADS.iter().enumerate() {
        match run(dev, *w, secs, (r * 1000 + path_index * 10 + k) as u64) {
            Ok(s) => {
                eprintln!("{name:<24} {:<18} repeat {r}: {:>8.0} IOPS {:>7.1} us CPU/IO", w.name, s.iops(), s.cpu_us());
                samples[path_index * WORKLOADS.len() + k].push(s);
            }
            Err(e) => {
                eprintln!("{name:<24} {:<18} repeat {r}: FAILED: {e}", w.name);
                errors.push(json!({ "path": name, "workload": w.name, "repeat": r, "error": e }));
            }
        }
    }
}

fn main() {
    let (secs, reps) = (env_or("PINIO_NVME_BENCH_SECS", 2.0f64), env_or("PINIO_NVME_BENCH_REPEATS", 3usize));
    let bdf = nvme_addr();
    let paths: Vec<&str> = KERNEL_PATHS.iter().chain(USER_PATHS.iter()).copied().collect();
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); paths.len() * WORKLOADS.len()];
    let mut errors = Vec::new();
    let mut describe: Vec<String> = vec![String::new(); paths.len()];
    let poll_queues =
        std::fs::read_to_string("/sys/module/nvme/parameters/poll_queues").unwrap_or_default().trim().to_string();

    let (block_path, _) = kernel_nodes(&bdf);
    let saved = {
        let block = UringDevice::open(&block_path, UringOptions::default()).expect("uring on the block device");
        let size = block.capabilities().device_size;
        move_window(&block, size - WRITE_WINDOW, WRITE_WINDOW, None)
    };
    for r in 0..reps {
        let (block_path, generic) = kernel_nodes(&bdf);
        {
            // One uring domain: the block device and the passthrough devices
            // share its buffer table (the plain path has its own domain
            // without one).
            let block = UringDevice::open(&block_path, UringOptions::default()).expect("uring on the block device");
            let domain = block.domain().clone();
            let block_polled =
                UringDevice::open_in(&domain, &block_path, UringOptions { iopoll: true, ..Default::default() })
                    .expect("uring on the block device, IOPOLL");
            let fixed = NvmeUringDevice::open_in(&domain, &generic, NvmeUringOptions::default()).expect("passthrough");
            let polled =
                NvmeUringDevice::open_in(&domain, &generic, NvmeUringOptions { iopoll: true, ..Default::default() })
                    .expect("passthrough, IOPOLL");
            let plain =
                NvmeUringDevice::open(&generic, NvmeUringOptions { fixed_buffers: false, ..Default::default() })
                    .expect("passthrough, plain buffers");
            let devs: [&dyn Device; 5] = [&block, &block_polled, &fixed, &polled, &plain];
            for (i, d) in devs.iter().enumerate() {
                describe[i] = d.describe();
                measure(paths[i], *d, secs, r, &mut samples, &mut errors, i);
            }
        }
        for (j, completion) in
            [pinio_nvme::CompletionMode::Interrupt, pinio_nvme::CompletionMode::Poll].into_iter().enumerate()
        {
            let i = KERNEL_PATHS.len() + j;
            let opts = pinio_nvme::NvmeOptions { take_from_driver: true, completion, ..Default::default() };
            match pinio_nvme::NvmeDevice::open(&bdf, opts) {
                Ok(dev) => {
                    describe[i] = dev.describe();
                    measure(paths[i], &dev, secs, r, &mut samples, &mut errors, i);
                }
                Err(e) => errors.push(json!({ "path": paths[i], "repeat": r, "error": format!("open: {e}") })),
            }
        }
        pinio_nvme::release_to_kernel(&bdf).expect("hand the controller back");
    }
    let (block_path, _) = kernel_nodes(&bdf);
    {
        let block = UringDevice::open(&block_path, UringOptions::default()).expect("uring on the block device");
        let size = block.capabilities().device_size;
        move_window(&block, size - WRITE_WINDOW, WRITE_WINDOW, Some(&saved));
        assert!(move_window(&block, size - WRITE_WINDOW, WRITE_WINDOW, None) == saved, "the write window is restored");
    }

    let mut results = Vec::new();
    println!(
        "three paths to one NVMe device: median of {reps} interleaved repeats of {secs} s [min-max]; ratios against {}",
        paths[0]
    );
    println!(
        "{:<24} {:<18} {:>16} {:>22} {:>8} {:>8} {:>8} {:>8}",
        "path", "workload", "IOPS", "CPU us/IO", "p50 us", "p99 us", "p99.9", "CPU x"
    );
    for (k, w) in WORKLOADS.iter().enumerate() {
        let reference = &samples[k];
        let ref_cpu = (!reference.is_empty()).then(|| spread(reference.iter().map(Sample::cpu_us).collect()).0);
        let ref_iops = (!reference.is_empty()).then(|| spread(reference.iter().map(Sample::iops).collect()).0);
        for (i, name) in paths.iter().enumerate() {
            let ss = &samples[i * WORKLOADS.len() + k];
            if ss.is_empty() {
                continue;
            }
            let iops = spread(ss.iter().map(Sample::iops).collect());
            let cpu_us = spread(ss.iter().map(Sample::cpu_us).collect());
            let user_us = spread(ss.iter().map(|s| s.user / s.ops as f64 * 1e6).collect()).0;
            let sys_us = spread(ss.iter().map(|s| s.sys / s.ops as f64 * 1e6).collect()).0;
            let mut lat: Vec<u64> = ss.iter().flat_map(|s| s.lat_ns.iter().copied()).collect();
            lat.sort_unstable();
            let (p50, p99, p999) = (percentile(&lat, 0.5), percentile(&lat, 0.99), percentile(&lat, 0.999));
            let cpu_ratio = ref_cpu.map(|r| cpu_us.0 / r);
            let iops_ratio = ref_iops.map(|r| iops.0 / r);
            println!(
                "{name:<24} {:<18} {:>7.0} [{:.0}-{:.0}] {:>7.1} [{:.1}-{:.1}] {p50:>8.0} {p99:>8.0} {p999:>8.0} {:>8}",
                w.name,
                iops.0,
                iops.1,
                iops.2,
                cpu_us.0,
                cpu_us.1,
                cpu_us.2,
                cpu_ratio.map_or("-".into(), |r| format!("{r:.2}"))
            );
            results.push(json!({
                "path": name,
                "describe": describe[i],
                "workload": w.name,
                "dir": if w.dir == Direction::Read { "read" } else { "write" },
                "io_bytes": w.io,
                "qd": w.qd,
                "random": w.random,
                "iops_median": iops.0, "iops_min": iops.1, "iops_max": iops.2,
                "iops": ss.iter().map(Sample::iops).collect::<Vec<_>>(),
                "cpu_us_per_io_median": cpu_us.0, "cpu_us_per_io_min": cpu_us.1, "cpu_us_per_io_max": cpu_us.2,
                "cpu_us_per_io": ss.iter().map(Sample::cpu_us).collect::<Vec<_>>(),
                "user_us_per_io_median": user_us,
                "sys_us_per_io_median": sys_us,
                "latency_us": { "p50": p50, "p99": p99, "p999": p999, "samples": lat.len() },
                "cpu_ratio_vs_block": cpu_ratio,
                "iops_ratio_vs_block": iops_ratio,
                "ops": ss.iter().map(|s| s.ops).collect::<Vec<_>>(),
            }));
        }
    }
    let doc = json!({
        "bench": "nvme_paths",
        "workload": format!("{} s per run, {reps} repeats interleaved across paths, median [min-max]; writes in the last {} MiB (restored)", secs, WRITE_WINDOW >> 20),
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
        "cmdline": std::fs::read_to_string("/proc/cmdline").unwrap_or_default().trim(),
        "nvme_poll_queues": poll_queues,
        "results": results,
        "errors": errors,
    });
    let text = serde_json::to_string_pretty(&doc).expect("json");
    match std::env::var_os("PINIO_BENCH_OUT") {
        Some(p) => std::fs::write(&p, text).expect("write PINIO_BENCH_OUT"),
        None => println!("{text}"),
    }
    if !errors.is_empty() {
        eprintln!("{} runs failed", errors.len());
        std::process::exit(1);
    }
}
