//! The same emulated NVMe disk, one boot, three paths (`cargo xtask vm
//! bench`, or `cargo xtask vm run -- <this binary>`):
//!
//! 1. the kernel's nvme driver with pinio's io_uring backend (O_DIRECT,
//!    fixed buffers) on the namespace's block device;
//! 2. the kernel's nvme driver with pinio's copy backend (pread through a
//!    bounce buffer, O_DIRECT so that the page cache does not answer);
//! 3. pinio's userspace NVMe driver (polled, then MSI-X completions),
//!    after taking the controller from the kernel;
//! 4. doorbell batching: the same driver, polled, random reads at QD32 with
//!    one doorbell write per batch against one per command, doorbell writes
//!    per IO counted by the driver ([`NvmeDevice::doorbells`]).
//!
//! Random 4 KiB reads over the whole namespace and random 4 KiB writes in
//! its last 16 MiB (saved before and restored after each phase: the disk
//! carries the guest's ext4 scratch file system), at queue depth 1 and 32,
//! each run for a fixed time, repeated and interleaved within each phase;
//! IOPS and CPU time per IO (getrusage, user + system, whole process).
//! Results go to `$PINIO_BENCH_OUT` as JSON (and a table to stdout). The
//! controller is handed back to the kernel at the end.

use pinio_core::{Completion, Device, Direction, Op};
use pinio_nvme::{CompletionMode, DoorbellMode, NvmeDevice, NvmeOptions};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const IO: usize = 4096;
/// (direction, queue depth) of each measurement.
const CASES: [(Direction, usize); 4] =
    [(Direction::Read, 1), (Direction::Read, 32), (Direction::Write, 1), (Direction::Write, 32)];
/// Writes go to the last this-many bytes of the namespace.
const WRITE_WINDOW: u64 = 16 << 20;

fn dir_name(d: Direction) -> &'static str {
    match d {
        Direction::Read => "read",
        Direction::Write => "write",
    }
}

fn secs_per_run() -> f64 {
    std::env::var("PINIO_NVME_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(2.0)
}

fn repeats() -> usize {
    std::env::var("PINIO_NVME_BENCH_REPEATS").ok().and_then(|s| s.parse().ok()).unwrap_or(3)
}

/// CPU seconds (user, system) of the whole process so far.
fn cpu() -> (f64, f64) {
    // SAFETY: getrusage fills the struct we pass; zeroed is a valid rusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to our own struct.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (t(ru.ru_utime), t(ru.ru_stime))
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    ops: u64,
    wall: f64,
    user: f64,
    sys: f64,
}

impl Sample {
    fn iops(&self) -> f64 {
        self.ops as f64 / self.wall
    }
    fn cpu_us_per_io(&self) -> f64 {
        (self.user + self.sys) / self.ops as f64 * 1e6
    }
}

/// Random 4 KiB reads (whole device) or writes (the write window) at depth
/// `qd` for `secs` seconds.
fn run(dev: &dyn Device, dir: Direction, qd: usize, secs: f64, seed: u64) -> Result<Sample, String> {
    run_batched(dev, dir, qd, 1, secs, seed)
}

/// [`run`], each wait returning once at least `min_reap` completions (or
/// all in flight) are in: the completions of one wait are replaced by one
/// batch of pushes, handed over at the next wait's submit.
fn run_batched(
    dev: &dyn Device,
    dir: Direction,
    qd: usize,
    min_reap: usize,
    secs: f64,
    seed: u64,
) -> Result<Sample, String> {
    let size = dev.capabilities().device_size;
    let (base, span) = match dir {
        Direction::Read => (0, size),
        Direction::Write => (size - WRITE_WINDOW, WRITE_WINDOW),
    };
    let slots = span / IO as u64;
    let op = |s, off: u64, tag| match dir {
        Direction::Read => Op::read(s, base + off, tag),
        Direction::Write => Op::write(s, base + off, tag),
    };
    let mut rng = StdRng::seed_from_u64(seed);
    let region = dev.alloc(qd * IO).map_err(|e| format!("alloc: {e}"))?;
    let mut q = dev.queue(qd).map_err(|e| format!("queue: {e}"))?;
    let mut out: Vec<Completion> = Vec::with_capacity(qd);
    // Warm up: one op per slot.
    for i in 0..qd {
        let s = region.slice(i * IO, IO).map_err(|e| e.to_string())?;
        q.push(op(s, rng.random_range(0..slots) * IO as u64, i as u64)).map_err(|r| r.error.to_string())?;
    }
    let (u0, s0) = cpu();
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let mut ops = 0u64;
    loop {
        out.clear();
        q.wait(min_reap, &mut out).map_err(|e| format!("wait: {e}"))?;
        let more = Instant::now() < deadline;
        for c in out.drain(..) {
            let n = c.result.map_err(|e| format!("{}: {e}", dir_name(dir)))?;
            if n != IO {
                return Err(format!("short {}: {n}", dir_name(dir)));
            }
            ops += 1;
            if more {
                q.push(op(c.slice, rng.random_range(0..slots) * IO as u64, 0)).map_err(|r| r.error.to_string())?;
            }
        }
        if q.in_flight() == 0 {
            break;
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let (u1, s1) = cpu();
    Ok(Sample { ops, wall, user: u1 - u0, sys: s1 - s0 })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Reads `[off, off + len)` in 512 KiB pieces.
fn save(dev: &dyn Device, off: u64, len: u64) -> Result<Vec<u8>, String> {
    let chunk = 512 << 10;
    let region = dev.alloc(chunk).map_err(|e| e.to_string())?;
    let mut q = dev.queue(1).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(len as usize);
    for at in (0..len).step_by(chunk) {
        let s = region.slice(0, chunk.min((len - at) as usize)).map_err(|e| e.to_string())?;
        let (_, s) = q.read_at(s, off + at).map_err(|e| format!("saving {:#x}: {e}", off + at))?;
        out.extend_from_slice(&s);
    }
    Ok(out)
}

/// Writes `data` back at `off`.
fn restore(dev: &dyn Device, off: u64, data: &[u8]) -> Result<(), String> {
    let chunk = 512 << 10;
    let region = dev.alloc(chunk).map_err(|e| e.to_string())?;
    let mut q = dev.queue(1).map_err(|e| e.to_string())?;
    for (i, piece) in data.chunks(chunk).enumerate() {
        let mut s = region.slice(0, piece.len()).map_err(|e| e.to_string())?;
        s.copy_from_slice(piece);
        q.write_at(s, off + (i * chunk) as u64)
            .map_err(|e| format!("restoring {:#x}: {e}", off + (i * chunk) as u64))?;
    }
    Ok(())
}

/// Runs every (backend, case) of a phase `repeats` times, interleaved;
/// the write window is saved first and restored after (through the
/// phase's first device).
fn phase(devs: &[(&str, &dyn Device)], results: &mut Vec<Value>) {
    let (secs, reps) = (secs_per_run(), repeats());
    let window = devs[0].1.capabilities().device_size - WRITE_WINDOW;
    let saved = save(devs[0].1, window, WRITE_WINDOW).expect("save the write window");
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); devs.len() * CASES.len()];
    for r in 0..reps {
        for (d, (name, dev)) in devs.iter().enumerate() {
            for (k, &(dir, qd)) in CASES.iter().enumerate() {
                match run(*dev, dir, qd, secs, (r * 100 + d * 10 + k) as u64) {
                    Ok(s) => {
                        eprintln!(
                            "{name} {} qd{qd} repeat {r}: {:.0} IOPS, {:.1} us CPU/IO",
                            dir_name(dir),
                            s.iops(),
                            s.cpu_us_per_io()
                        );
                        samples[d * CASES.len() + k].push(s);
                    }
                    Err(e) => {
                        eprintln!("{name} {} qd{qd} repeat {r}: FAILED: {e}", dir_name(dir));
                        results.push(json!({ "backend": name, "dir": dir_name(dir), "qd": qd, "error": e }));
                    }
                }
            }
        }
    }
    restore(devs[0].1, window, &saved).expect("restore the write window");
    for (d, (name, dev)) in devs.iter().enumerate() {
        for (k, &(dir, qd)) in CASES.iter().enumerate() {
            let ss = &samples[d * CASES.len() + k];
            if ss.is_empty() {
                continue;
            }
            let iops = median(ss.iter().map(Sample::iops).collect());
            let cpu_us = median(ss.iter().map(Sample::cpu_us_per_io).collect());
            let user_us = median(ss.iter().map(|s| s.user / s.ops as f64 * 1e6).collect());
            let sys_us = median(ss.iter().map(|s| s.sys / s.ops as f64 * 1e6).collect());
            println!(
                "{name:<22} {:<5} qd{qd:<3} {iops:>9.0} IOPS  {cpu_us:>8.1} us CPU/IO (user {user_us:.1}, sys {sys_us:.1})",
                dir_name(dir)
            );
            results.push(json!({
                "backend": name,
                "describe": dev.describe(),
                "dir": dir_name(dir),
                "qd": qd,
                "io_bytes": IO,
                "iops_median": iops,
                "iops": ss.iter().map(Sample::iops).collect::<Vec<_>>(),
                "cpu_us_per_io_median": cpu_us,
                "user_us_per_io_median": user_us,
                "sys_us_per_io_median": sys_us,
                "ops": ss.iter().map(|s| s.ops).collect::<Vec<_>>(),
                "bytes_copied": dev.stats().bytes_copied,
            }));
        }
    }
}

/// Doorbell batching (docs/benchmarks.md): 4 KiB random reads at QD32 on
/// pinio's driver, polled, with one doorbell per batch against one per
/// command ([`DoorbellMode`]), each with waits for at least 1 and at least
/// 8 completions; repeats interleaved, the controller reopened for each
/// run (the mode is an open option). Doorbell writes counted by the driver.
fn doorbell_phase(bdf: &pinio_vfio::PciAddress, results: &mut Vec<Value>) {
    const QD: usize = 32;
    let (secs, reps) = (secs_per_run(), repeats());
    let modes = [("per-batch", DoorbellMode::PerBatch), ("per-command", DoorbellMode::PerCommand)];
    let reaps = [1usize, 8];
    // (sample, sq doorbells, cq doorbells) per (mode, reap).
    let mut got: Vec<Vec<(Sample, u64, u64)>> = vec![Vec::new(); modes.len() * reaps.len()];
    for r in 0..reps {
        for (m, &(mname, mode)) in modes.iter().enumerate() {
            for (k, &min_reap) in reaps.iter().enumerate() {
                let opts = NvmeOptions {
                    take_from_driver: true,
                    completion: CompletionMode::Poll,
                    doorbells: mode,
                    ..Default::default()
                };
                let dev = NvmeDevice::open(bdf, opts).expect("open the controller with pinio-nvme");
                let before = dev.doorbells();
                match run_batched(&dev, Direction::Read, QD, min_reap, secs, (r * 100 + m * 10 + k) as u64) {
                    Ok(s) => {
                        let after = dev.doorbells();
                        let (sq, cq) = (after.sq - before.sq, after.cq - before.cq);
                        eprintln!(
                            "doorbells {mname} reap>={min_reap} repeat {r}: {:.0} IOPS, {:.1} us CPU/IO, {:.3} SQ + {:.3} CQ doorbells/IO",
                            s.iops(),
                            s.cpu_us_per_io(),
                            sq as f64 / s.ops as f64,
                            cq as f64 / s.ops as f64
                        );
                        got[m * reaps.len() + k].push((s, sq, cq));
                    }
                    Err(e) => {
                        eprintln!("doorbells {mname} reap>={min_reap} repeat {r}: FAILED: {e}");
                        results.push(
                            json!({ "bench": "doorbells", "doorbells": mname, "min_reap": min_reap, "error": e }),
                        );
                    }
                }
            }
        }
    }
    for (m, &(mname, _)) in modes.iter().enumerate() {
        for (k, &min_reap) in reaps.iter().enumerate() {
            let ss = &got[m * reaps.len() + k];
            if ss.is_empty() {
                continue;
            }
            let iops: Vec<f64> = ss.iter().map(|(s, _, _)| s.iops()).collect();
            let cpu: Vec<f64> = ss.iter().map(|(s, _, _)| s.cpu_us_per_io()).collect();
            let sq: Vec<f64> = ss.iter().map(|(s, sq, _)| *sq as f64 / s.ops as f64).collect();
            let cq: Vec<f64> = ss.iter().map(|(s, _, cq)| *cq as f64 / s.ops as f64).collect();
            let (iops_m, cpu_m, sq_m, cq_m) =
                (median(iops.clone()), median(cpu.clone()), median(sq.clone()), median(cq.clone()));
            println!(
                "pinio-nvme (poll) doorbells {mname:<11} read qd{QD} reap>={min_reap}: {iops_m:>9.0} IOPS  {cpu_m:>8.1} us CPU/IO  {sq_m:.3} SQ + {cq_m:.3} CQ doorbells/IO"
            );
            results.push(json!({
                "bench": "doorbells",
                "backend": "pinio-nvme (poll)",
                "doorbells": mname,
                "dir": "read",
                "qd": QD,
                "min_reap": min_reap,
                "io_bytes": IO,
                "iops_median": iops_m,
                "iops": iops,
                "cpu_us_per_io_median": cpu_m,
                "cpu_us_per_io": cpu,
                "sq_doorbells_per_io_median": sq_m,
                "sq_doorbells_per_io": sq,
                "cq_doorbells_per_io_median": cq_m,
                "cq_doorbells_per_io": cq,
                "ops": ss.iter().map(|(s, _, _)| s.ops).collect::<Vec<_>>(),
            }));
        }
    }
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

/// The block device of namespace 1, once the kernel's nvme driver shows it.
fn block_device(bdf: &pinio_vfio::PciAddress) -> PathBuf {
    if driver_of(bdf).as_deref() != Some("nvme") {
        pinio_nvme::release_to_kernel(bdf).expect("hand the controller to the kernel");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
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
            let p = PathBuf::from("/dev").join(n);
            if p.exists() {
                return p;
            }
        }
        assert!(Instant::now() < deadline, "the kernel never showed namespace 1 of {bdf}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn main() {
    // `cargo bench` passes --bench; nothing else is taken from argv.
    let bdf = nvme_addr();
    let mut results = Vec::new();

    let disk = block_device(&bdf);
    eprintln!("phase 1: kernel nvme driver, {}", disk.display());
    {
        let uring = pinio_uring::UringDevice::open(&disk, pinio_uring::UringOptions::default())
            .expect("uring on the block device");
        let copy = pinio_copy::CopyDevice::open(&disk, pinio_copy::CopyOptions { direct: true, ..Default::default() })
            .expect("copy on the block device");
        phase(&[("kernel-nvme+uring", &uring), ("kernel-nvme+copy", &copy)], &mut results);
    }

    eprintln!("phase 2: pinio's userspace driver on {bdf}");
    for (name, completion) in
        [("pinio-nvme (poll)", CompletionMode::Poll), ("pinio-nvme (MSI-X)", CompletionMode::Interrupt)]
    {
        let opts = NvmeOptions { take_from_driver: true, completion, ..Default::default() };
        let dev = NvmeDevice::open(&bdf, opts).expect("open the controller with pinio-nvme");
        phase(&[(name, &dev)], &mut results);
    }
    eprintln!("phase 3: doorbell batching on {bdf}");
    doorbell_phase(&bdf, &mut results);
    pinio_nvme::release_to_kernel(&bdf).expect("hand the controller back");

    let doc = json!({
        "bench": "nvme_compare",
        "workload": format!("random {IO}-byte reads over the whole namespace and writes in its last {} MiB, {} s per run, {} repeats, median", WRITE_WINDOW >> 20, secs_per_run(), repeats()),
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
        "cmdline": std::fs::read_to_string("/proc/cmdline").unwrap_or_default().trim(),
        "results": results,
    });
    let text = serde_json::to_string_pretty(&doc).expect("json");
    match std::env::var_os("PINIO_BENCH_OUT") {
        Some(p) => std::fs::write(&p, text).expect("write PINIO_BENCH_OUT"),
        None => println!("{text}"),
    }
}
