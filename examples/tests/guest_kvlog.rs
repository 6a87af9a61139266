//! kvlog on the guest's NVMe namespace (`nvme:BDF`, pinio's userspace
//! driver), run as a user runs it: load then verify, and `kill -9` during a
//! load then verify (every key up to the last `durable` line recovered).
//!
//! Run by `cargo xtask test` in the guest, as root, with PINIO_GUEST=1. The
//! namespace is the guest's scratch disk, holding real data: the test reads
//! the range the store will cover through the kernel's nvme driver first,
//! hands the controller to vfio-pci for kvlog, writes the range back through
//! pinio afterwards (also when the test fails), returns the controller to
//! the kernel and checks, through the kernel again, that the disk reads as
//! it did. `KVLOG_TEST_SEED` picks the kill points (default: from the
//! clock, printed with every failure).

use pinio::nvme::{NvmeDevice, NvmeOptions, release_to_kernel};
use pinio::vfio::{PciAddress, Sysfs};
use pinio::{Device, FlushMode};

mod support;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::text;

/// The kvlog example, built as a binary of this package (guest/kvlog.rs).
const KVLOG: &str = env!("CARGO_BIN_EXE_kvlog-guest");

/// The store of every run: the same geometry, so one saved range covers
/// all of them.
const KEYS: u64 = 20_000;
const VALUE_SIZE: u64 = 100;
const BATCH: u64 = 50;

/// Bytes a kvlog store of these parameters covers from offset 0, by its
/// documented format (examples/kvlog.rs): 4 KiB blocks (the NVMe block
/// size is smaller), the superblock, every batch at its largest (a 64-byte
/// header, records of a 32-byte header, the key, the value), the closing
/// batch.
fn store_bytes(keys: u64, value_size: u64, batch: u64) -> u64 {
    const BLOCK: u64 = 4096;
    let rec_max = 32 + (keys - 1).to_string().len() as u64 + value_size;
    let blocks = |records: u64| (64 + records * rec_max).div_ceil(BLOCK);
    let rest = if !keys.is_multiple_of(batch) { blocks(keys % batch) } else { 0 };
    ((keys / batch) * blocks(batch) + rest + 2) * BLOCK
}

/// The range saved and checked: the store, plus 1 MiB past its end that
/// kvlog must leave alone.
fn saved_len() -> u64 {
    store_bytes(KEYS, VALUE_SIZE, BATCH).next_multiple_of(1 << 20) + (1 << 20)
}

fn require_guest() {
    assert_eq!(std::env::var("PINIO_GUEST").as_deref(), Ok("1"), "guest tests run in the QEMU guest: cargo xtask test");
}

/// The guest's NVMe controller (class 0x010802; 0000:01:00.0 in xtask's VM, behind a root port).
fn nvme_addr() -> PciAddress {
    require_guest();
    Sysfs::system().first_with("class", "0x010802").expect("no NVMe controller (class 0x010802) on the guest's PCI bus")
}

fn driver_of(bdf: &PciAddress) -> Option<String> {
    std::fs::read_link(Path::new("/sys/bus/pci/devices").join(bdf.to_string()).join("driver"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
}

/// Hands the controller back to the kernel and waits until nvme has it.
fn give_back(bdf: &PciAddress) {
    release_to_kernel(bdf).unwrap_or_else(|e| panic!("handing {bdf} back to the kernel: {e}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while driver_of(bdf).as_deref() != Some("nvme") {
        assert!(Instant::now() < deadline, "{bdf} did not rebind to nvme (driver now {:?})", driver_of(bdf));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The kernel's block device of namespace 1 of `bdf`, once nvme shows it.
fn kernel_block_device(bdf: &PciAddress) -> PathBuf {
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

/// `len` bytes from the start of namespace 1, read through the kernel.
fn kernel_read(bdf: &PciAddress, len: u64) -> Vec<u8> {
    let path = kernel_block_device(bdf);
    let mut f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    f.seek(SeekFrom::Start(0)).unwrap();
    let mut out = vec![0u8; len as usize];
    f.read_exact(&mut out).unwrap_or_else(|e| panic!("reading {len} bytes of {}: {e}", path.display()));
    out
}

/// The disk, taken from the kernel for kvlog; dropping it writes the saved
/// bytes back through pinio and gives the controller back.
struct Disk {
    bdf: PciAddress,
    saved: Vec<u8>,
}

impl Disk {
    /// Saves the range kvlog will use (read by the kernel's driver), then
    /// binds the controller to vfio-pci, where kvlog's `nvme:` selection
    /// string finds it (it takes no device from another driver).
    fn take() -> Disk {
        let bdf = nvme_addr();
        let saved = kernel_read(&bdf, saved_len());
        Sysfs::system().bind_vfio_pci(&bdf, true).unwrap_or_else(|e| panic!("binding {bdf} to vfio-pci: {e}"));
        Disk { bdf, saved }
    }

    fn spec(&self) -> String {
        format!("nvme:{}", self.bdf)
    }

    /// Writes the saved bytes back and makes them durable.
    fn restore(&self) -> pinio::Result<()> {
        let dev = NvmeDevice::open(&self.bdf, NvmeOptions { take_from_driver: true, ..NvmeOptions::default() })?;
        let max = dev.capabilities().max_transfer as usize;
        let region = dev.alloc(max)?;
        let mut q = dev.queue(1)?;
        for (i, chunk) in self.saved.chunks(max).enumerate() {
            let mut s = region.slice(0, chunk.len())?;
            s.copy_from_slice(chunk);
            q.write_at(s, (i * max) as u64)?;
        }
        q.flush(FlushMode::Data)
    }

    /// Bytes past the store that kvlog must not have touched, read through
    /// pinio while the controller is still on vfio-pci.
    fn check_untouched_past_the_store(&self) {
        let from = store_bytes(KEYS, VALUE_SIZE, BATCH) as usize;
        let dev =
            NvmeDevice::open(&self.bdf, NvmeOptions::default()).unwrap_or_else(|e| panic!("opening {}: {e}", self.bdf));
        let max = dev.capabilities().max_transfer as usize;
        let region = dev.alloc(max).unwrap();
        let mut q = dev.queue(1).unwrap();
        let mut at = from;
        while at < self.saved.len() {
            let n = max.min(self.saved.len() - at);
            let s = region.slice(0, n).unwrap();
            let (_, s) =
                q.read_at(s, at as u64).unwrap_or_else(|e| panic!("reading {n} bytes at {at} past the store: {e}"));
            if let Some(i) = (0..n).find(|&i| s[i] != self.saved[at + i]) {
                panic!("kvlog wrote byte {} of the namespace, past its store of {from} bytes", at + i);
            }
            at += n;
        }
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        let restored = self.restore();
        if std::thread::panicking() {
            if let Err(e) = restored {
                eprintln!("restoring the first {} bytes of {}: {e}", self.saved.len(), self.bdf);
            }
            let _ = release_to_kernel(&self.bdf);
            return;
        }
        restored.unwrap_or_else(|e| panic!("restoring the first {} bytes of {}: {e}", self.saved.len(), self.bdf));
        give_back(&self.bdf);
        let now = kernel_read(&self.bdf, self.saved.len() as u64);
        if let Some(i) = (0..now.len()).find(|&i| now[i] != self.saved[i]) {
            panic!("after the restore, byte {i} of {} reads {:#04x}, was {:#04x}", self.bdf, now[i], self.saved[i]);
        }
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(KVLOG).args(args).output().unwrap_or_else(|e| panic!("starting kvlog {args:?}: {e}"))
}

fn params() -> [String; 6] {
    [
        "--keys".into(),
        KEYS.to_string(),
        "--value-size".into(),
        VALUE_SIZE.to_string(),
        "--batch".into(),
        BATCH.to_string(),
    ]
}

/// The `recovered n` of a verify run.
fn recovered(o: &Output) -> u64 {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("recovered ")?.parse().ok())
        .unwrap_or_else(|| panic!("no `recovered n` line:\n{}", text(o)))
}

/// splitmix64: the seeded generator of kill points.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn seed() -> u64 {
    std::env::var("KVLOG_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    })
}

/// Starts `load`, kills it with SIGKILL once it has printed its
/// `kill_after`-th `durable` line (plus a random few milliseconds, to land
/// inside a batch); returns the last `durable` key it printed and whether
/// the kill ended it.
fn load_and_kill(spec: &str, kill_after: u64, rng: &mut Rng) -> (Option<u64>, bool) {
    let mut args = vec!["load".to_string(), spec.to_string()];
    args.extend(params());
    let mut child = Command::new(KVLOG)
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting kvlog load");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let (mut last, mut seen, mut killed) = (None, 0, false);
    while let Some(Ok(line)) = lines.next() {
        if let Some(k) = line.strip_prefix("durable ") {
            last = Some(k.parse::<u64>().unwrap_or_else(|_| panic!("bad durable line {line:?}")));
            seen += 1;
            if seen == kill_after {
                std::thread::sleep(Duration::from_micros(rng.below(5000)));
                killed = child.kill().is_ok();
                break;
            }
        }
    }
    // Whatever it printed before it died is still in the pipe.
    for line in lines.map_while(Result::ok) {
        if let Some(k) = line.strip_prefix("durable ") {
            last = Some(k.parse().expect("a key"));
        }
    }
    let status = child.wait().expect("waiting for load");
    (last, killed && !status.success())
}

#[test]
fn kvlog_on_nvme_loads_verifies_and_recovers_after_kill_9() {
    let disk = Disk::take();
    let spec = disk.spec();
    eprintln!("kvlog on {spec}: {KEYS} keys, stores of {} bytes from offset 0", store_bytes(KEYS, VALUE_SIZE, BATCH));

    // Load, then verify.
    let mut args = vec!["load", spec.as_str()];
    let p = params();
    args.extend(p.iter().map(String::as_str));
    let o = run(&args);
    assert!(o.status.success(), "load {spec}:\n{}", text(&o));
    let durable: Vec<u64> =
        String::from_utf8_lossy(&o.stdout).lines().filter_map(|l| l.strip_prefix("durable ")?.parse().ok()).collect();
    let expected: Vec<u64> = (1..=KEYS / BATCH).map(|b| b * BATCH - 1).collect();
    assert_eq!(durable, expected, "one `durable` line per batch:\n{}", text(&o));
    let v = run(&["verify", &spec]);
    assert!(v.status.success(), "verify {spec}:\n{}", text(&v));
    assert_eq!(recovered(&v), KEYS, "{}", text(&v));

    // kill -9 during a load, then verify.
    let seed = seed();
    let mut rng = Rng(seed);
    let batches = KEYS / BATCH;
    let mut killed_mid_load = 0;
    for round in 0..3 {
        let kill_after = 1 + rng.below(batches * 3 / 4);
        let (last, killed) = load_and_kill(&spec, kill_after, &mut rng);
        let last = last.unwrap_or_else(|| panic!("seed {seed}, round {round}: no durable line before the kill"));
        killed_mid_load += killed as u32;
        let v = run(&["verify", &spec]);
        assert!(
            v.status.success(),
            "seed {seed}, round {round} (killed after durable line {kill_after}, last durable key {last}):\n{}",
            text(&v)
        );
        let n = recovered(&v);
        assert!(
            n > last,
            "seed {seed}, round {round}: recovered {n} keys but key {last} was reported durable:\n{}",
            text(&v)
        );
        assert!(n <= KEYS, "{}", text(&v));
        eprintln!("round {round}: killed after durable line {kill_after} (last durable key {last}); recovered {n}");
    }
    assert!(killed_mid_load > 0, "seed {seed}: no round killed the load before it finished");
    disk.check_untouched_past_the_store();
    drop(disk);
}
