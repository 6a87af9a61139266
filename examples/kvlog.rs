//! kvlog: a small log-structured key-value store on pinio, with group commit
//! and crash recovery, on any selection string.
//!
//! ```sh
//! cargo run --release -p pinio-examples --example kvlog -- load uring:/var/tmp/kv.dat --keys 100000 --value-size 100 --batch 64
//! cargo run --release -p pinio-examples --example kvlog -- verify uring:/var/tmp/kv.dat
//! cargo run --release -p pinio-examples --example kvlog -- bench copy:/var/tmp/kv.dat --keys 100000
//! ```
//!
//! - `load SPEC --keys N --value-size B --batch K` creates the store (for
//!   `copy:`/`uring:` paths the file is created or truncated to the size the
//!   store needs; any other device is used as it is and must be large
//!   enough), puts the keys `0..N` (decimal strings) with values derived
//!   from the key, flushes after every K puts and at the end, and after each
//!   completed flush prints `durable <last_key>`.
//! - `verify SPEC` recovers the store from the device alone, prints
//!   `recovered <n_keys>` and checks every value; on bad data it prints
//!   `bad <key>` and exits 1.
//! - `bench SPEC [--keys N] [--value-size B] [--batch K]` loads a store and
//!   recovers it, and reports puts/s, flushes/s and the recovery rate.
//!
//! Exit status: 0 success, 1 verify found bad or missing data (or no store),
//! 2 usage error (arguments, selection string, a device too small),
//! 3 a device or file error.
//!
//! Any selection string works, wrappers included: `kvlog load
//! record:/var/tmp/kv.log:uring:/var/tmp/kv.dat ...` records every write and
//! flush for `pinio crash-test` (docs/reliability.md). Test hooks: the
//! environment variable `KVLOG_BROKEN` breaks kvlog on purpose so that the
//! crash test can prove it catches the damage (see `broken`); never set it
//! otherwise.
//!
//! # On-device format (little endian)
//!
//! The device is cut into blocks of `BS` bytes: 4 KiB, or the device's
//! offset/length/memory alignment if larger (a power of two).
//!
//! - Block 0, the superblock, written and flushed once before any record:
//!   `"PINIOKVL"`, version, `BS`, a random 64-bit **epoch** (this store's
//!   identity), the store's size in blocks, the load parameters, a CRC-32.
//! - Then **batches**, one per group commit, each starting on a fresh block
//!   right after the previous batch: a 64-byte batch header (`"KVB1"`,
//!   flags, epoch, batch sequence number, the sequence number of its first
//!   record, record count, its length in blocks, payload bytes, CRC-32),
//!   then its records packed back to back (a record may cross block
//!   boundaries), then zeros up to the next block.
//! - A record: `"KVR1"`, flags, key length (u16), value length (u32),
//!   CRC-32 (of the whole record with this field zero), epoch, record
//!   sequence number, key, value.
//! - After the last batch, a closing batch with no records (flag `CLOSE`).
//!
//! Writes: a batch's blocks go out in chunks through up to 16 writes in
//! flight; the chunk holding its header goes last (its counts are known only
//! at the end). Then one `Queue::flush`, which drains this queue's writes
//! first, then `durable <key>`. The next batch starts on the block after the
//! last one: a block that was made durable is never written again.
//!
//! Recovery walks the chain of batch headers from block 1 (each header says
//! where the next batch starts) and checks every record: magic, epoch,
//! sequence numbers, lengths and checksum. A batch is only ever written
//! after the flush of the previous one returned, so after a crash only the
//! last batch can be incomplete (any subset of its blocks, torn at sector
//! boundaries): its valid prefix is kept and the rest dropped. A bad record
//! or header *followed* by any valid later batch (found by the chain, or by
//! probing the rest of the store for a header with a higher sequence number)
//! cannot be a torn tail: it is reported as corruption. Records and headers
//! of an earlier store on the same device carry another epoch and are never
//! accepted.
use pinio::{BackendKind, Completion, Device, FlushMode, Op, Queue, Region, Slice, Target};
use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const SUPER_MAGIC: &[u8; 8] = b"PINIOKVL";
const VERSION: u32 = 1;
const BATCH_MAGIC: &[u8; 4] = b"KVB1";
const REC_MAGIC: &[u8; 4] = b"KVR1";
const SUPER_LEN: usize = 64;
pub(crate) const BATCH_HDR: usize = 64;
const REC_HDR: usize = 32;
/// The flag of the batch `load` writes last.
pub(crate) const FLAG_CLOSE: u32 = 1;
/// Write slots, and so the most writes in flight at once.
const SLOTS: usize = 16;
/// Largest write or read of one operation.
const MAX_CHUNK: usize = 64 << 10;
/// Smallest read window of recovery.
const MIN_WINDOW: usize = 256 << 10;
const MIN_BLOCK: u64 = 4096;
const MAX_BLOCK: u64 = 1 << 20;
const MAX_VALUE: u64 = 16 << 20;
const MAX_KEYS: u64 = 1 << 40;
const MAX_BATCH_BYTES: u64 = 1 << 30;
const EINTR: i32 = 4;

pub(crate) const USAGE: &str = "usage:
  kvlog load <SPEC> --keys N --value-size B --batch K
  kvlog verify <SPEC>
  kvlog bench <SPEC> [--keys N] [--value-size B] [--batch K]   (defaults: 100000, 100, 64)
SPEC is a pinio selection string: copy:PATH or uring:PATH (load and bench create
or truncate the file to the store's size), or a device used as it is (nvme:...).
Exit status: 0 ok, 1 bad or missing data, 2 usage error, 3 device or file error.";

// ---------------------------------------------------------------- errors

/// Everything kvlog reports; each has its exit status.
#[derive(Debug)]
pub(crate) enum KvError {
    /// Bad command line.
    Usage(String),
    /// A selection string pinio refuses.
    Spec { spec: String, error: pinio::Error },
    /// The device cannot hold the store.
    TooSmall { spec: String, need: u64, have: u64 },
    /// A device operation failed.
    Device { context: String, error: pinio::Error },
    /// A file operation (creating, sizing) failed.
    File { context: String, error: std::io::Error },
    /// The store ran out of room (its size was computed wrong).
    Full { need: u64, capacity: u64 },
    /// No valid store on the device.
    NotAStore { spec: String, reason: String },
    /// A damaged record or batch before the end of the log.
    Corrupt { key: Option<String>, seq: u64, offset: u64, reason: String },
    /// A recovered key with a wrong or missing value.
    BadValue { key: String, reason: String },
}

impl KvError {
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            KvError::Usage(_) | KvError::Spec { .. } | KvError::TooSmall { .. } => 2,
            KvError::NotAStore { .. } | KvError::Corrupt { .. } | KvError::BadValue { .. } => 1,
            KvError::Device { .. } | KvError::File { .. } | KvError::Full { .. } => 3,
        }
    }

    /// The key a verification failure names, for the `bad` line.
    fn bad_key(&self) -> Option<String> {
        match self {
            KvError::Corrupt { key: Some(k), .. } | KvError::BadValue { key: k, .. } => Some(k.clone()),
            KvError::Corrupt { key: None, seq, .. } => Some(format!("record#{seq}")),
            _ => None,
        }
    }
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvError::Usage(m) => write!(f, "{m}"),
            KvError::Spec { spec, error } => write!(f, "selection string {spec:?}: {error}"),
            KvError::TooSmall { spec, need, have } => {
                write!(
                    f,
                    "{spec} holds {have} bytes but the store needs {need}; use a larger device or fewer/smaller keys"
                )
            }
            KvError::Device { context, error } => write!(f, "{context}: {error}"),
            KvError::File { context, error } => write!(f, "{context}: {error}"),
            KvError::Full { need, capacity } => write!(f, "store full: needs byte {need} of {capacity} (sizing error)"),
            KvError::NotAStore { spec, reason } => write!(f, "no kvlog store on {spec}: {reason}"),
            KvError::Corrupt { key, seq, offset, reason } => {
                let key = key.as_deref().map_or_else(|| "unreadable".to_string(), |k| format!("{k:?}"));
                write!(
                    f,
                    "corrupt record #{seq} (key {key}) at byte {offset}: {reason}; later batches are intact, so this is damage, not a torn tail"
                )
            }
            KvError::BadValue { key, reason } => write!(f, "key {key}: {reason}"),
        }
    }
}

impl std::error::Error for KvError {}

pub(crate) type Result<T, E = KvError> = std::result::Result<T, E>;

fn dev_err(context: impl Into<String>) -> impl FnOnce(pinio::Error) -> KvError {
    let context = context.into();
    move |error| KvError::Device { context, error }
}

fn file(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> KvError {
    let context = context.into();
    move |error| KvError::File { context, error }
}

// ---------------------------------------------------------------- command line

#[derive(Debug, Clone, Copy)]
pub(crate) struct Params {
    pub(crate) keys: u64,
    pub(crate) value_size: u64,
    pub(crate) batch: u64,
}

pub(crate) enum Cmd {
    Help,
    Load(String, Params),
    Verify(String),
    Bench(String, Params),
}

pub(crate) fn parse_args(args: &[String]) -> Result<Cmd> {
    let usage = |m: String| Err(KvError::Usage(m));
    let Some(cmd) = args.first() else { return usage("missing command (load, verify or bench)".into()) };
    if matches!(cmd.as_str(), "-h" | "--help" | "help") {
        return Ok(Cmd::Help);
    }
    if !matches!(cmd.as_str(), "load" | "verify" | "bench") {
        return usage(format!("unknown command {cmd:?} (expected load, verify or bench)"));
    }
    let (mut spec, mut keys, mut value_size, mut batch) = (None::<String>, None, None, None);
    let mut it = args[1..].iter();
    while let Some(a) = it.next() {
        if let Some(flag) = a.strip_prefix("--") {
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (flag, None),
            };
            if name == "help" {
                return Ok(Cmd::Help);
            }
            let slot = match name {
                "keys" => &mut keys,
                "value-size" => &mut value_size,
                "batch" => &mut batch,
                _ => return usage(format!("unknown option --{name}")),
            };
            if cmd == "verify" {
                return usage(format!("verify takes no options (got --{name}): the store describes itself"));
            }
            let Some(v) = inline.or_else(|| it.next().cloned()) else {
                return usage(format!("--{name} needs a value"));
            };
            let Ok(n) = v.parse::<u64>() else {
                return usage(format!("--{name} expects a non-negative integer, got {v:?}"));
            };
            if slot.replace(n).is_some() {
                return usage(format!("--{name} given twice"));
            }
        } else if a.starts_with('-') && a.len() > 1 {
            return usage(format!("unknown option {a}"));
        } else if spec.is_none() {
            spec = Some(a.clone());
        } else {
            return usage(format!("unexpected argument {a:?} (one SPEC only)"));
        }
    }
    let Some(spec) = spec else { return usage(format!("{cmd} needs a SPEC (e.g. uring:/var/tmp/kv.dat)")) };
    let params = |defaults: bool| -> Result<Params> {
        let need = |v: Option<u64>, name: &str, default: u64| match v {
            Some(v) => Ok(v),
            None if defaults => Ok(default),
            None => Err(KvError::Usage(format!("{cmd} needs --{name}"))),
        };
        let p = Params {
            keys: need(keys, "keys", 100_000)?,
            value_size: need(value_size, "value-size", 100)?,
            batch: need(batch, "batch", 64)?,
        };
        check_params(&p)?;
        Ok(p)
    };
    Ok(match cmd.as_str() {
        "load" => Cmd::Load(spec, params(false)?),
        "bench" => Cmd::Bench(spec, params(true)?),
        _ => Cmd::Verify(spec),
    })
}

pub(crate) fn check_params(p: &Params) -> Result<()> {
    let usage = |m: String| Err(KvError::Usage(m));
    if p.keys == 0 || p.keys > MAX_KEYS {
        return usage(format!("--keys must be between 1 and {MAX_KEYS}, got {}", p.keys));
    }
    if p.value_size > MAX_VALUE {
        return usage(format!("--value-size must be at most {MAX_VALUE} bytes, got {}", p.value_size));
    }
    if p.batch == 0 {
        return usage("--batch must be at least 1".into());
    }
    let bytes = batch_bytes(p.batch.min(p.keys), rec_max(p.keys, p.value_size));
    if bytes > MAX_BATCH_BYTES {
        return usage(format!(
            "a batch of {} records of up to {} bytes is {bytes} bytes; keep --batch * record size under {MAX_BATCH_BYTES}",
            p.batch,
            rec_max(p.keys, p.value_size)
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------- checksums, values, epochs

const CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// CRC-32 (IEEE), fed piece by piece.
struct Crc(u32);

impl Crc {
    fn new() -> Crc {
        Crc(!0)
    }

    fn update(mut self, data: &[u8]) -> Crc {
        for &b in data {
            self.0 = CRC_TABLE[((self.0 ^ b as u32) & 0xff) as usize] ^ (self.0 >> 8);
        }
        self
    }

    fn finish(self) -> u32 {
        !self.0
    }
}

fn crc32(data: &[u8]) -> u32 {
    Crc::new().update(data).finish()
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The value `load` puts under key `key`: `len` bytes of a hash stream
/// seeded by the key.
pub(crate) fn derive_value(key: u64, len: usize, out: &mut Vec<u8>) {
    out.clear();
    let mut state = splitmix(key ^ 0x6B76_6C6F_6721_0001);
    while out.len() < len {
        state = splitmix(state);
        let take = (len - out.len()).min(8);
        out.extend_from_slice(&state.to_le_bytes()[..take]);
    }
}

/// A random, non-zero store identity.
fn new_epoch() -> u64 {
    let mut b = [0u8; 8];
    let random =
        std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b)).is_ok();
    let mut e = u64::from_le_bytes(b);
    if !random {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        e = splitmix(t ^ ((std::process::id() as u64) << 32));
    }
    e.max(1)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn align_up(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}

// ---------------------------------------------------------------- format

/// The store's geometry, from the superblock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geometry {
    pub(crate) block: u64,
    pub(crate) epoch: u64,
    pub(crate) capacity_blocks: u64,
    pub(crate) params: Params,
}

impl Geometry {
    pub(crate) fn capacity_bytes(&self) -> u64 {
        self.capacity_blocks * self.block
    }

    fn rec_max(&self) -> usize {
        rec_max(self.params.keys, self.params.value_size)
    }

    fn encode(&self, out: &mut [u8]) {
        out[..SUPER_LEN].fill(0);
        out[0..8].copy_from_slice(SUPER_MAGIC);
        out[8..12].copy_from_slice(&VERSION.to_le_bytes());
        out[12..16].copy_from_slice(&(self.block as u32).to_le_bytes());
        out[16..24].copy_from_slice(&self.epoch.to_le_bytes());
        out[24..32].copy_from_slice(&self.capacity_blocks.to_le_bytes());
        out[32..40].copy_from_slice(&self.params.keys.to_le_bytes());
        out[40..48].copy_from_slice(&self.params.value_size.to_le_bytes());
        out[48..56].copy_from_slice(&self.params.batch.to_le_bytes());
        let crc = crc32(&out[..56]);
        out[56..60].copy_from_slice(&crc.to_le_bytes());
    }

    fn decode(b: &[u8]) -> std::result::Result<Geometry, String> {
        if b.len() < SUPER_LEN || &b[0..8] != SUPER_MAGIC {
            return Err(
                "no superblock magic at byte 0 (not made by kvlog load, or its first flush never completed)".into()
            );
        }
        if crc32(&b[..56]) != u32_at(b, 56) {
            return Err("the superblock's checksum does not match: it is damaged".into());
        }
        let version = u32_at(b, 8);
        if version != VERSION {
            return Err(format!("format version {version}, this kvlog reads version {VERSION}"));
        }
        let g = Geometry {
            block: u32_at(b, 12) as u64,
            epoch: u64_at(b, 16),
            capacity_blocks: u64_at(b, 24),
            params: Params { keys: u64_at(b, 32), value_size: u64_at(b, 40), batch: u64_at(b, 48) },
        };
        if !g.block.is_power_of_two() || g.block < MIN_BLOCK || g.block > MAX_BLOCK {
            return Err(format!("implausible block size {}", g.block));
        }
        check_params(&g.params).map_err(|e| format!("implausible parameters in the superblock: {e}"))?;
        if g.capacity_blocks < 2 || g.capacity_blocks.checked_mul(g.block).is_none() {
            return Err(format!("implausible size of {} blocks", g.capacity_blocks));
        }
        Ok(g)
    }
}

fn key_len_max(keys: u64) -> usize {
    (keys.max(1) - 1).to_string().len()
}

fn rec_max(keys: u64, value_size: u64) -> usize {
    REC_HDR + key_len_max(keys) + value_size as usize
}

fn batch_bytes(records: u64, rec_max: usize) -> u64 {
    BATCH_HDR as u64 + records.saturating_mul(rec_max as u64)
}

/// Blocks a store of `p` needs with blocks of `block` bytes: the
/// superblock, every batch at its largest, the closing batch.
fn capacity_blocks(p: &Params, block: u64) -> Option<u64> {
    let rec = rec_max(p.keys, p.value_size);
    let blocks = |k: u64| batch_bytes(k, rec).div_ceil(block);
    let full = (p.keys / p.batch).checked_mul(blocks(p.batch))?;
    let rest = if !p.keys.is_multiple_of(p.batch) { blocks(p.keys % p.batch) } else { 0 };
    full.checked_add(rest)?.checked_add(2)
}

/// The block size for a device: 4 KiB, or its alignment if larger.
fn block_size(d: &dyn Device) -> Result<u64> {
    let c = d.capabilities();
    let b = MIN_BLOCK.max(c.offset_align).max(c.len_align).max(c.mem_align).next_power_of_two();
    if b > MAX_BLOCK || c.max_transfer < b {
        let error = pinio::Error::Unsupported {
            what: format!("a device needing {b}-byte blocks with transfers of at most {} bytes", c.max_transfer),
            hint: format!("kvlog uses blocks of {MIN_BLOCK}..{MAX_BLOCK} bytes"),
        };
        return Err(KvError::Device { context: d.describe(), error });
    }
    Ok(b)
}

pub(crate) struct BatchHeader {
    pub(crate) flags: u32,
    pub(crate) epoch: u64,
    pub(crate) seq: u64,
    pub(crate) first_rec: u64,
    pub(crate) records: u32,
    pub(crate) blocks: u32,
    pub(crate) payload: u64,
}

impl BatchHeader {
    pub(crate) fn encode(&self, out: &mut [u8]) {
        out[..BATCH_HDR].fill(0);
        out[0..4].copy_from_slice(BATCH_MAGIC);
        out[4..8].copy_from_slice(&self.flags.to_le_bytes());
        out[8..16].copy_from_slice(&self.epoch.to_le_bytes());
        out[16..24].copy_from_slice(&self.seq.to_le_bytes());
        out[24..32].copy_from_slice(&self.first_rec.to_le_bytes());
        out[32..36].copy_from_slice(&self.records.to_le_bytes());
        out[36..40].copy_from_slice(&self.blocks.to_le_bytes());
        out[40..48].copy_from_slice(&self.payload.to_le_bytes());
        let crc = crc32(&out[..48]);
        out[48..52].copy_from_slice(&crc.to_le_bytes());
    }

    /// A header of the store `epoch`, if `b` holds a valid one.
    fn decode(b: &[u8], epoch: u64) -> Option<BatchHeader> {
        if &b[0..4] != BATCH_MAGIC || crc32(&b[..48]) != u32_at(b, 48) || u64_at(b, 8) != epoch {
            return None;
        }
        Some(BatchHeader {
            flags: u32_at(b, 4),
            epoch,
            seq: u64_at(b, 16),
            first_rec: u64_at(b, 24),
            records: u32_at(b, 32),
            blocks: u32_at(b, 36),
            payload: u64_at(b, 40),
        })
    }
}

pub(crate) fn record_header(epoch: u64, seq: u64, key: &[u8], value: &[u8]) -> [u8; REC_HDR] {
    let mut h = [0u8; REC_HDR];
    h[0..4].copy_from_slice(REC_MAGIC);
    h[6..8].copy_from_slice(&(key.len() as u16).to_le_bytes());
    h[8..12].copy_from_slice(&(value.len() as u32).to_le_bytes());
    h[16..24].copy_from_slice(&epoch.to_le_bytes());
    h[24..32].copy_from_slice(&seq.to_le_bytes());
    let crc = Crc::new().update(&h).update(key).update(value).finish();
    h[12..16].copy_from_slice(&crc.to_le_bytes());
    h
}

// ---------------------------------------------------------------- opening devices

fn file_path(spec: &str) -> Result<Option<String>> {
    let t = Target::parse(spec).map_err(|error| KvError::Spec { spec: spec.into(), error })?;
    Ok(matches!(t.backend, BackendKind::Copy | BackendKind::Uring).then_some(t.location))
}

fn open_device(spec: &str) -> Result<Box<dyn Device>> {
    pinio::open(spec).map_err(|error| match error {
        pinio::Error::InvalidTarget { .. } | pinio::Error::Unsupported { .. } => {
            KvError::Spec { spec: spec.into(), error }
        }
        error => KvError::Device { context: format!("opening {spec}"), error },
    })
}

/// Creates or truncates the regular file at `path` to `size` bytes and makes
/// that durable. Block devices are left as they are (`false`).
fn size_file(path: &str, size: u64) -> Result<bool> {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(m) = std::fs::metadata(path)
        && (m.file_type().is_block_device() || m.file_type().is_char_device())
    {
        return Ok(false);
    }
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(file(format!("creating {path}")))?;
    f.set_len(size).map_err(file(format!("sizing {path} to {size} bytes")))?;
    f.sync_all().map_err(file(format!("fsync of {path}")))?;
    let parent =
        std::path::Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    if let Ok(d) = std::fs::File::open(parent) {
        d.sync_all().map_err(file(format!("fsync of directory {}", parent.display())))?;
    }
    Ok(true)
}

// ---------------------------------------------------------------- the store

/// Where a value lives on the device.
#[derive(Debug, Clone, Copy)]
struct Loc {
    offset: u64,
    len: u32,
}

#[derive(Debug, Default, Clone)]
struct Counters {
    flushes: u64,
    flush_time: Duration,
    flush_max: Duration,
    writes: u64,
    bytes_written: u64,
    max_in_flight: usize,
}

/// One write slot being filled: `used` bytes of the device range starting
/// at `dev_off`.
struct Chunk {
    slot: usize,
    slice: Slice,
    dev_off: u64,
    used: usize,
}

struct OpenBatch {
    start: u64,
    first_rec: u64,
    records: u32,
    /// Device offset of the next byte of the batch.
    pos: u64,
}

/// The append side: write slots of one registered region, the batch being
/// filled.
struct Writer {
    region: Region,
    chunk: usize,
    block: u64,
    epoch: u64,
    /// End of the room for data batches (the last block is the closing batch's).
    data_end: u64,
    capacity: u64,
    free: Vec<usize>,
    cur: Option<Chunk>,
    /// The batch's first chunk, held back until its header is known.
    held: Option<Chunk>,
    batch: Option<OpenBatch>,
    next_block: u64,
    next_batch: u64,
    next_rec: u64,
    done: Vec<Completion>,
    counters: Counters,
}

impl Writer {
    fn new(dev: &dyn Device, geo: &Geometry) -> Result<Writer> {
        let caps = dev.capabilities();
        let rec = geo.rec_max();
        let batch_blocks = batch_bytes(geo.params.batch.min(geo.params.keys), rec).div_ceil(geo.block);
        let max_chunk = (MAX_CHUNK as u64).min(caps.max_transfer) / geo.block * geo.block;
        // Spread a batch over about 8 writes, at least one block each.
        let chunk = (batch_blocks.div_ceil(8) * geo.block).clamp(geo.block, max_chunk.max(geo.block)) as usize;
        let region = dev.alloc(SLOTS * chunk).map_err(dev_err_of(dev, "registering the write buffers"))?;
        Ok(Writer {
            region,
            chunk,
            block: geo.block,
            epoch: geo.epoch,
            data_end: (geo.capacity_blocks - 1) * geo.block,
            capacity: geo.capacity_bytes(),
            free: (0..SLOTS).rev().collect(),
            cur: None,
            held: None,
            batch: None,
            next_block: 1,
            next_batch: 0,
            next_rec: 0,
            done: Vec::new(),
            counters: Counters::default(),
        })
    }

    /// Moves finished writes back to the free slots, waiting for at least `min`.
    fn reap(&mut self, q: &mut dyn Queue, min: usize) -> Result<()> {
        self.done.clear();
        loop {
            match q.wait(min, &mut self.done) {
                Ok(_) => break,
                Err(e) if e.raw_os_error() == Some(EINTR) => continue,
                Err(e) => return Err(KvError::Device { context: "waiting for writes".into(), error: e }),
            }
        }
        for c in self.done.drain(..) {
            let want = c.slice.len();
            match c.result {
                Ok(n) if n == want => {}
                Ok(n) => {
                    let error = pinio::Error::Unsupported {
                        what: format!("a short write ({n} of {want} bytes at {})", c.dev_offset),
                        hint: "the device ended early".into(),
                    };
                    return Err(KvError::Device { context: "writing the log".into(), error });
                }
                Err(error) => {
                    return Err(KvError::Device {
                        context: format!("writing {want} bytes at {}", c.dev_offset),
                        error,
                    });
                }
            }
            self.free.push(c.tag as usize);
        }
        Ok(())
    }

    fn drain(&mut self, q: &mut dyn Queue) -> Result<()> {
        while q.in_flight() > 0 {
            let n = q.in_flight();
            self.reap(q, n)?;
        }
        Ok(())
    }

    /// A free slot, waiting for a write to finish if none is.
    fn slot(&mut self, q: &mut dyn Queue) -> Result<(usize, Slice)> {
        while self.free.is_empty() {
            if q.in_flight() == 0 {
                return Err(internal("no free write slot and no write in flight"));
            }
            self.reap(q, 1)?;
        }
        let slot = self.free.pop().unwrap_or_default();
        let slice = self.region.slice(slot * self.chunk, self.chunk).map_err(dev_err("leasing a write slot"))?;
        Ok((slot, slice))
    }

    /// Writes the first `len` bytes of `ch` (zero-padded from `used`).
    fn push(&mut self, q: &mut dyn Queue, ch: Chunk, len: usize) -> Result<()> {
        let Chunk { slot, mut slice, dev_off, used } = ch;
        slice[used..len].fill(0);
        let slice = if len < slice.len() {
            match slice.split_at(len) {
                Ok((head, _tail)) => head,
                Err(whole) => whole,
            }
        } else {
            slice
        };
        q.push(Op::write(slice, dev_off, slot as u64))
            .map_err(|r| KvError::Device { context: format!("writing {len} bytes at {dev_off}"), error: r.error })?;
        q.submit().map_err(dev_err("submitting writes"))?;
        self.counters.writes += 1;
        self.counters.bytes_written += len as u64;
        self.counters.max_in_flight = self.counters.max_in_flight.max(q.in_flight());
        Ok(())
    }

    fn append(&mut self, q: &mut dyn Queue, mut bytes: &[u8]) -> Result<()> {
        while !bytes.is_empty() {
            let chunk = self.chunk;
            let Some(cur) = self.cur.as_mut() else { return Err(internal("append without an open batch")) };
            let n = bytes.len().min(chunk - cur.used);
            cur.slice[cur.used..cur.used + n].copy_from_slice(&bytes[..n]);
            cur.used += n;
            bytes = &bytes[n..];
            if let Some(b) = self.batch.as_mut() {
                b.pos += n as u64;
            }
            if cur.used == chunk {
                let Some(full) = self.cur.take() else { return Err(internal("no current chunk")) };
                let next_off = full.dev_off + chunk as u64;
                if self.batch.as_ref().is_some_and(|b| b.start == full.dev_off) {
                    self.held = Some(full);
                } else {
                    self.push(q, full, chunk)?;
                }
                let (slot, slice) = self.slot(q)?;
                self.cur = Some(Chunk { slot, slice, dev_off: next_off, used: 0 });
            }
        }
        Ok(())
    }

    fn begin(&mut self, q: &mut dyn Queue) -> Result<()> {
        let start = self.next_block * self.block;
        let (slot, slice) = self.slot(q)?;
        self.cur = Some(Chunk { slot, slice, dev_off: start, used: 0 });
        self.batch = Some(OpenBatch { start, first_rec: self.next_rec, records: 0, pos: start });
        self.append(q, &[0u8; BATCH_HDR])
    }

    /// Appends a record; returns where its value is.
    fn put(&mut self, q: &mut dyn Queue, key: &[u8], value: &[u8]) -> Result<Loc> {
        if self.batch.is_none() {
            self.begin(q)?;
        }
        let pos = self.batch.as_ref().map_or(0, |b| b.pos);
        let end = pos + (REC_HDR + key.len() + value.len()) as u64;
        if end > self.data_end || key.len() > u16::MAX as usize || value.len() > MAX_VALUE as usize {
            return Err(KvError::Full { need: end, capacity: self.data_end });
        }
        let h = record_header(self.epoch, self.next_rec, key, value);
        self.append(q, &h)?;
        self.append(q, key)?;
        let offset = pos + (REC_HDR + key.len()) as u64;
        self.append(q, value)?;
        self.next_rec += 1;
        if let Some(b) = self.batch.as_mut() {
            b.records += 1;
        }
        Ok(Loc { offset, len: value.len() as u32 })
    }

    /// Writes the open batch's last chunks and its header (opening an empty
    /// batch first if none is open). The caller flushes.
    fn commit(&mut self, q: &mut dyn Queue, flags: u32) -> Result<()> {
        if self.batch.is_none() {
            self.begin(q)?;
        }
        let (Some(b), Some(mut cur)) = (self.batch.take(), self.cur.take()) else {
            return Err(internal("commit without a batch"));
        };
        let total = b.pos - b.start;
        let blocks = total.div_ceil(self.block);
        let limit = if flags & FLAG_CLOSE != 0 { self.capacity } else { self.data_end };
        if b.start + blocks * self.block > limit {
            return Err(KvError::Full { need: b.start + blocks * self.block, capacity: limit });
        }
        let header = BatchHeader {
            flags,
            epoch: self.epoch,
            seq: self.next_batch,
            first_rec: b.first_rec,
            records: b.records,
            blocks: blocks as u32,
            payload: total - BATCH_HDR as u64,
        };
        let last_len = align_up(cur.used as u64, self.block) as usize;
        match self.held.take() {
            Some(mut first) => {
                if cur.used > 0 {
                    self.push(q, cur, last_len)?;
                } else {
                    self.free.push(cur.slot);
                }
                header.encode(&mut first.slice[..BATCH_HDR]);
                self.push(q, first, self.chunk)?;
            }
            None => {
                header.encode(&mut cur.slice[..BATCH_HDR]);
                self.push(q, cur, last_len)?;
            }
        }
        self.next_block += blocks;
        self.next_batch += 1;
        Ok(())
    }
}

/// Test hooks that break kvlog on purpose, to prove that the crash test
/// (`pinio crash-test`, examples/tests/kvlog_crash.rs) catches what they
/// break: `KVLOG_BROKEN=ack-before-flush` acknowledges each batch (`durable
/// k`) once its writes completed, without flushing; `trust-tail` makes
/// recovery accept records whose checksum does not match. Several may be
/// given, separated by commas. Never set them outside such tests.
fn broken(hook: &str) -> bool {
    std::env::var("KVLOG_BROKEN").is_ok_and(|v| v.split(',').any(|h| h == hook))
}

fn internal(what: &str) -> KvError {
    KvError::Device {
        context: "kvlog".into(),
        error: pinio::Error::Unsupported { what: what.into(), hint: "a bug in kvlog".into() },
    }
}

fn dev_err_of(d: &dyn Device, what: &str) -> impl FnOnce(pinio::Error) -> KvError {
    dev_err(format!("{} on {}", what, d.describe()))
}

/// The read side: a window of the store in one registered region.
struct Reader {
    region: Region,
    win: Option<Slice>,
    start: u64,
    block: u64,
    end: u64,
    piece: usize,
    done: Vec<Completion>,
    reads: u64,
}

impl Reader {
    fn new(dev: &dyn Device, block: u64, end: u64, rec_max: usize) -> Result<Reader> {
        let size = align_up((MIN_WINDOW as u64).max(rec_max as u64 + 2 * block), block) as usize;
        let region = dev.alloc(size).map_err(dev_err_of(dev, "registering the read window"))?;
        let max = (MAX_CHUNK as u64).min(dev.capabilities().max_transfer) / block * block;
        Ok(Reader {
            region,
            win: None,
            start: 0,
            block,
            end,
            piece: max.max(block) as usize,
            done: Vec::new(),
            reads: 0,
        })
    }

    /// `len` bytes of the device at `off` (within the store).
    fn get(&mut self, q: &mut dyn Queue, off: u64, len: usize) -> Result<&[u8]> {
        let hit =
            self.win.as_ref().is_some_and(|w| off >= self.start && off + len as u64 <= self.start + w.len() as u64);
        if !hit {
            self.fill(q, off / self.block * self.block)?;
        }
        let Some(w) = self.win.as_ref() else { return Err(internal("no read window")) };
        let a = off.saturating_sub(self.start) as usize;
        if a + len > w.len() {
            return Err(internal("read beyond the store"));
        }
        Ok(&w[a..a + len])
    }

    fn fill(&mut self, q: &mut dyn Queue, start: u64) -> Result<()> {
        self.win = None;
        let total = (self.region.len() as u64).min(self.end.saturating_sub(start)) as usize;
        let mut off = 0;
        while off < total || q.in_flight() > 0 {
            while off < total && q.in_flight() < q.capacity() {
                let n = self.piece.min(total - off);
                let s = self.region.slice(off, n).map_err(dev_err("leasing the read window"))?;
                q.push(Op::read(s, start + off as u64, 0)).map_err(|r| KvError::Device {
                    context: format!("reading {n} bytes at {}", start + off as u64),
                    error: r.error,
                })?;
                self.reads += 1;
                off += n;
            }
            self.done.clear();
            match q.wait(1, &mut self.done) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(EINTR) => continue,
                Err(error) => return Err(KvError::Device { context: "waiting for reads".into(), error }),
            }
            for c in self.done.drain(..) {
                let want = c.slice.len();
                match c.result {
                    Ok(n) if n == want => {}
                    Ok(n) => {
                        let error = pinio::Error::Unsupported {
                            what: format!("a short read ({n} of {want} bytes at {})", c.dev_offset),
                            hint: "the device is smaller than the store".into(),
                        };
                        return Err(KvError::Device { context: "reading the log".into(), error });
                    }
                    Err(error) => {
                        return Err(KvError::Device {
                            context: format!("reading {want} bytes at {}", c.dev_offset),
                            error,
                        });
                    }
                }
            }
        }
        self.win = Some(self.region.slice(0, total.max(1)).map_err(dev_err("leasing the read window"))?);
        self.start = start;
        Ok(())
    }
}

/// What recovery found besides the keys.
#[derive(Debug, Default)]
struct ScanReport {
    batches: u64,
    records: u64,
    closed: bool,
    /// Why the log ends where it does, when it ends before a closing batch.
    torn: Option<String>,
    corruption: Option<Defect>,
}

#[derive(Debug)]
struct Defect {
    batch: u64,
    seq: u64,
    offset: u64,
    key: Option<String>,
    reason: String,
}

impl Defect {
    fn into_error(self) -> KvError {
        KvError::Corrupt { key: self.key, seq: self.seq, offset: self.offset, reason: self.reason }
    }
}

/// A log-structured key-value store on one device.
pub(crate) struct Store {
    pub(crate) dev: Box<dyn Device>,
    q: Box<dyn Queue>,
    pub(crate) geo: Geometry,
    index: HashMap<Vec<u8>, Loc>,
    writer: Option<Writer>,
    reader: Option<Reader>,
}

impl Store {
    /// Creates a store for `p` on `spec` and makes its superblock durable.
    pub(crate) fn create(spec: &str, p: Params) -> Result<Store> {
        let path = file_path(spec)?;
        let mut block = MIN_BLOCK;
        let too_big = || KvError::Usage(format!("a store of {} keys of {} bytes is too large", p.keys, p.value_size));
        let mut sized = None;
        let (dev, geo) = loop {
            let cap = capacity_blocks(&p, block).ok_or_else(too_big)?;
            let need = cap.checked_mul(block).ok_or_else(too_big)?;
            if let Some(path) = &path
                && sized != Some(need)
                && size_file(path, need)?
            {
                sized = Some(need);
            }
            let dev = open_device(spec)?;
            let b = block_size(&*dev)?;
            if b > block {
                block = b;
                continue;
            }
            let have = dev.capabilities().device_size;
            if have < need {
                return Err(KvError::TooSmall { spec: spec.into(), need, have });
            }
            break (dev, Geometry { block, epoch: new_epoch(), capacity_blocks: cap, params: p });
        };
        let mut q = dev.queue(SLOTS).map_err(dev_err_of(&*dev, "making a queue"))?;
        let mut w = Writer::new(&*dev, &geo)?;
        // The superblock, made durable before any record.
        let (slot, mut s) = w.slot(&mut *q)?;
        s.fill(0);
        geo.encode(&mut s);
        let s = if (geo.block as usize) < s.len() {
            s.split_at(geo.block as usize).map_or_else(|w| w, |(h, _)| h)
        } else {
            s
        };
        q.write_at(s, 0).map_err(|e| KvError::Device { context: "writing the superblock".into(), error: e.error })?;
        w.free.push(slot);
        q.flush(FlushMode::All).map_err(dev_err_of(&*dev, "flushing the superblock"))?;
        w.counters.flushes += 1;
        Ok(Store { dev, q, geo, index: HashMap::new(), writer: Some(w), reader: None })
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        let Some(w) = self.writer.as_mut() else { return Err(internal("put on a read-only store")) };
        let loc = w.put(&mut *self.q, key, value)?;
        self.index.insert(key.to_vec(), loc);
        Ok(())
    }

    /// Group commit: writes the open batch and flushes once. When it returns
    /// `Ok`, every put so far is durable.
    fn commit(&mut self, flags: u32) -> Result<()> {
        let Some(w) = self.writer.as_mut() else { return Err(internal("commit on a read-only store")) };
        w.commit(&mut *self.q, flags)?;
        let t = Instant::now();
        if !broken("ack-before-flush") {
            self.q
                .flush(FlushMode::Data)
                .map_err(|error| KvError::Device { context: format!("flushing {}", self.dev.describe()), error })?;
        }
        let took = t.elapsed();
        // The flush drained this queue; its completions carry each write's
        // outcome, which must be Ok as well.
        w.drain(&mut *self.q)?;
        w.counters.flushes += 1;
        w.counters.flush_time += took;
        w.counters.flush_max = w.counters.flush_max.max(took);
        Ok(())
    }

    /// Opens the store on `spec` and rebuilds its index from the log.
    fn open(spec: &str) -> Result<(Store, ScanReport)> {
        file_path(spec)?;
        let dev = open_device(spec)?;
        let mut q = dev.queue(SLOTS).map_err(dev_err_of(&*dev, "making a queue"))?;
        let bs = block_size(&*dev)?;
        let size = dev.capabilities().device_size;
        if size < bs {
            return Err(KvError::NotAStore {
                spec: spec.into(),
                reason: format!("the device holds only {size} bytes"),
            });
        }
        let region = dev.alloc(bs as usize).map_err(dev_err_of(&*dev, "registering a buffer"))?;
        let s = region.slice(0, bs as usize).map_err(dev_err("leasing a buffer"))?;
        let (_, s) = q
            .read_at(s, 0)
            .map_err(|e| KvError::Device { context: "reading the superblock".into(), error: e.error })?;
        let geo = Geometry::decode(&s).map_err(|reason| KvError::NotAStore { spec: spec.into(), reason })?;
        drop((s, region));
        if geo.block % bs != 0 {
            return Err(KvError::NotAStore {
                spec: spec.into(),
                reason: format!("its {}-byte blocks do not suit this device's {bs}-byte alignment", geo.block),
            });
        }
        if geo.capacity_bytes() > size {
            return Err(KvError::NotAStore {
                spec: spec.into(),
                reason: format!(
                    "truncated: the superblock says {} bytes, the device holds {size}",
                    geo.capacity_bytes()
                ),
            });
        }
        let reader = Reader::new(&*dev, geo.block, geo.capacity_bytes(), geo.rec_max())?;
        let mut store = Store { dev, q, geo, index: HashMap::new(), writer: None, reader: Some(reader) };
        let report = store.scan()?;
        Ok((store, report))
    }

    /// Walks the chain of batches; see the module's documentation.
    fn scan(&mut self) -> Result<ScanReport> {
        let geo = self.geo;
        let Some(r) = self.reader.as_mut() else { return Err(internal("scan without a reader")) };
        let q = &mut *self.q;
        let mut report = ScanReport::default();
        let (mut block, mut seq, mut next_rec) = (1u64, 0u64, 0u64);
        let mut first_defect: Option<Defect> = None;
        let rec_limit = geo.rec_max();
        while block < geo.capacity_blocks {
            let start = block * geo.block;
            let h = r.get(q, start, BATCH_HDR)?;
            let Some(h) = BatchHeader::decode(h, geo.epoch) else {
                report.torn = Some(format!("no valid batch header at block {block}"));
                break;
            };
            let end = start + BATCH_HDR as u64 + h.payload;
            let fits = h.blocks > 0
                && block + h.blocks as u64 <= geo.capacity_blocks
                && end <= start + h.blocks as u64 * geo.block;
            if h.seq != seq || h.first_rec != next_rec || !fits {
                report.torn = Some(format!("batch header at block {block} does not continue the chain"));
                break;
            }
            let mut off = start + BATCH_HDR as u64;
            let mut defect = None;
            for i in 0..h.records as u64 {
                let want = next_rec + i;
                let bad = |reason: String, key: Option<String>| {
                    Some(Defect { batch: seq, seq: want, offset: off, key, reason })
                };
                if off + REC_HDR as u64 > end {
                    defect = bad("the record runs past its batch".into(), None);
                    break;
                }
                let rh = r.get(q, off, REC_HDR)?;
                let (magic_ok, key_len, val_len) =
                    (&rh[0..4] == REC_MAGIC, u16_at(rh, 6) as usize, u32_at(rh, 8) as usize);
                let (crc, epoch, rseq) = (u32_at(rh, 12), u64_at(rh, 16), u64_at(rh, 24));
                let total = REC_HDR + key_len + val_len;
                let sane = magic_ok && total <= rec_limit && off + total as u64 <= end;
                let key = if magic_ok && key_len <= 20 && off + (REC_HDR + key_len) as u64 <= end {
                    let k = r.get(q, off + REC_HDR as u64, key_len)?;
                    std::str::from_utf8(k).ok().map(str::to_string)
                } else {
                    None
                };
                if !sane {
                    defect = bad("bad magic or length".into(), key);
                    break;
                }
                if epoch != geo.epoch {
                    defect = bad(format!("epoch {epoch:#x} is not this store's ({:#x})", geo.epoch), key);
                    break;
                }
                if rseq != want {
                    defect = bad(format!("sequence number {rseq}, expected {want}"), key);
                    break;
                }
                let body = r.get(q, off, total)?;
                let sum = Crc::new().update(&body[..12]).update(&[0; 4]).update(&body[16..]).finish();
                if sum != crc && !broken("trust-tail") {
                    defect = bad(format!("checksum {sum:#010x}, stored {crc:#010x}"), key);
                    break;
                }
                let k = body[REC_HDR..REC_HDR + key_len].to_vec();
                self.index.insert(k, Loc { offset: off + (REC_HDR + key_len) as u64, len: val_len as u32 });
                report.records += 1;
                off += total as u64;
            }
            if defect.is_none() && off != end {
                defect = Some(Defect {
                    batch: seq,
                    seq: next_rec + h.records as u64,
                    offset: off,
                    key: None,
                    reason: "the batch's payload length does not match its records".into(),
                });
            }
            if let Some(d) = defect
                && first_defect.is_none()
            {
                first_defect = Some(d);
            }
            report.batches += 1;
            block += h.blocks as u64;
            seq += 1;
            next_rec += h.records as u64;
            if h.flags & FLAG_CLOSE != 0 {
                report.closed = true;
                break;
            }
        }
        // A later batch proves that every batch before it was complete (it
        // was written only after their flush returned): look for one past
        // the end of the chain unless the log was closed.
        let later = if report.closed || block >= geo.capacity_blocks { None } else { probe(r, q, &geo, block, seq)? };
        match (first_defect, later) {
            (Some(mut d), later) if d.batch + 1 < seq || later.is_some() => {
                if let Some((b, s)) = later {
                    d.reason = format!("{}; batch {s} at block {b} was written after it", d.reason);
                }
                report.corruption = Some(d);
            }
            (Some(d), _) => {
                // The last batch was torn by a crash: keep its valid prefix
                // (the records after the defect were not applied).
                report.torn =
                    Some(format!("batch {} torn at record #{} (byte {}): {}", d.batch, d.seq, d.offset, d.reason));
            }
            (None, Some((b, s))) => {
                let why = report.torn.take().unwrap_or_default();
                let reason = format!("{why}, but batch {s} at block {b} was written after it");
                report.corruption =
                    Some(Defect { batch: seq, seq: next_rec, offset: block * geo.block, key: None, reason });
            }
            (None, None) => {}
        }
        Ok(report)
    }

    /// The value of `key`, read from the device.
    fn get(&mut self, key: &[u8]) -> Result<Option<&[u8]>> {
        let Some(loc) = self.index.get(key).copied() else { return Ok(None) };
        let Some(r) = self.reader.as_mut() else { return Err(internal("get without a reader")) };
        r.get(&mut *self.q, loc.offset, loc.len as usize).map(Some)
    }
}

/// The first valid header of this store at or after `from` with a sequence
/// number of at least `seq`: proof that batch `seq - 1` was complete.
fn probe(r: &mut Reader, q: &mut dyn Queue, geo: &Geometry, from: u64, seq: u64) -> Result<Option<(u64, u64)>> {
    for b in from..geo.capacity_blocks {
        let h = r.get(q, b * geo.block, BATCH_HDR)?;
        if let Some(h) = BatchHeader::decode(h, geo.epoch)
            && h.seq >= seq
        {
            return Ok(Some((b, h.seq)));
        }
    }
    Ok(None)
}

// ---------------------------------------------------------------- commands

pub(crate) fn say(out: &mut dyn Write, line: std::fmt::Arguments<'_>) -> Result<()> {
    out.write_fmt(line).and_then(|_| out.write_all(b"\n")).and_then(|_| out.flush()).map_err(file("writing to stdout"))
}

/// `load`: puts keys `0..N`, one flush per `K` puts, `durable <key>` after each.
fn load(spec: &str, p: Params, out: &mut dyn Write) -> Result<(Store, Duration)> {
    let mut store = Store::create(spec, p)?;
    let t = Instant::now();
    let mut value = Vec::with_capacity(p.value_size as usize);
    for k in 0..p.keys {
        derive_value(k, p.value_size as usize, &mut value);
        store.put(k.to_string().as_bytes(), &value)?;
        if (k + 1) % p.batch == 0 || k + 1 == p.keys {
            store.commit(0)?;
            say(out, format_args!("durable {k}"))?;
        }
    }
    let took = t.elapsed();
    store.commit(FLAG_CLOSE)?;
    Ok((store, took))
}

/// `verify`: recovery, then every value against the derived one.
fn verify(spec: &str, out: &mut dyn Write) -> Result<(u64, ScanReport)> {
    let (mut store, mut report) = Store::open(spec)?;
    let n = store.index.len() as u64;
    say(out, format_args!("recovered {n}"))?;
    if let Some(d) = report.corruption.take() {
        return Err(d.into_error());
    }
    let (keys, vsize) = (store.geo.params.keys, store.geo.params.value_size as usize);
    if n > keys {
        return Err(KvError::BadValue {
            key: format!("#{n}"),
            reason: format!("{n} keys recovered, the store was made for {keys}"),
        });
    }
    let mut want = Vec::with_capacity(vsize);
    for k in 0..n {
        derive_value(k, vsize, &mut want);
        let key = k.to_string();
        match store.get(key.as_bytes())? {
            None => {
                return Err(KvError::BadValue {
                    key,
                    reason: format!(
                        "missing, although {n} keys were recovered (load puts keys in order, so they must be 0..{n})"
                    ),
                });
            }
            Some(v) if v.len() != vsize => {
                return Err(KvError::BadValue { key, reason: format!("value of {} bytes, expected {vsize}", v.len()) });
            }
            Some(v) if v != want.as_slice() => {
                let at = v.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(0);
                return Err(KvError::BadValue {
                    key,
                    reason: format!("value differs from the derived one at byte {at}"),
                });
            }
            Some(_) => {}
        }
    }
    Ok((n, report))
}

fn bench(spec: &str, p: Params, out: &mut dyn Write) -> Result<()> {
    let (store, took) = load(spec, p, &mut std::io::sink())?;
    let desc = store.dev.describe();
    let (c, chunk) = store.writer.as_ref().map(|w| (w.counters.clone(), w.chunk)).unwrap_or_default();
    let block = store.geo.block;
    drop(store);
    let secs = took.as_secs_f64().max(1e-9);
    let commits = p.keys.div_ceil(p.batch);
    say(out, format_args!("kvlog bench on {desc}"))?;
    say(
        out,
        format_args!(
            "  {} puts of {}-byte values, one flush (FlushMode::Data) per {} puts; {block}-byte blocks, writes of up to {chunk} bytes, up to {} in flight",
            p.keys, p.value_size, p.batch, c.max_in_flight
        ),
    )?;
    say(
        out,
        format_args!(
            "puts/s     {:>12.0}   ({} puts in {secs:.3} s: wall time from the first put to the last durable flush, flushes included)",
            p.keys as f64 / secs,
            p.keys
        ),
    )?;
    let mean = c.flush_time.as_secs_f64() * 1e3 / c.flushes.max(1) as f64;
    say(
        out,
        format_args!(
            "flushes/s  {:>12.0}   ({commits} group commits in the same {secs:.3} s; mean flush {mean:.3} ms, slowest {:.3} ms)",
            commits as f64 / secs,
            c.flush_max.as_secs_f64() * 1e3
        ),
    )?;
    say(
        out,
        format_args!(
            "log        {:>12.1}   MB/s written ({} writes, {} bytes, superblock and closing batch included)",
            c.bytes_written as f64 / secs / 1e6,
            c.writes,
            c.bytes_written
        ),
    )?;
    let t = Instant::now();
    let (n, report) = verify(spec, &mut std::io::sink())?;
    let rs = t.elapsed().as_secs_f64().max(1e-9);
    say(
        out,
        format_args!(
            "recovery   {:>12.0}   keys/s ({n} keys in {} batches: open, scan and every value read back and checked in {rs:.3} s; closed: {})",
            n as f64 / rs,
            report.batches,
            report.closed
        ),
    )
}

fn run(args: &[String]) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match parse_args(args)? {
        Cmd::Help => say(&mut out, format_args!("{USAGE}")),
        Cmd::Load(spec, p) => {
            let (store, took) = load(&spec, p, &mut out)?;
            let _ = writeln!(
                std::io::stderr(),
                "kvlog: loaded {} keys into {} in {:.3} s",
                p.keys,
                store.dev.describe(),
                took.as_secs_f64()
            );
            Ok(())
        }
        Cmd::Verify(spec) => {
            let (n, report) = verify(&spec, &mut out)?;
            let end = if report.closed {
                "closed cleanly".to_string()
            } else {
                report.torn.unwrap_or_else(|| "ends at the store's end".into())
            };
            let _ = writeln!(
                std::io::stderr(),
                "kvlog: {n} keys verified ({} records in {} batches; log {end})",
                report.records,
                report.batches
            );
            Ok(())
        }
        Cmd::Bench(spec, p) => bench(&spec, p, &mut out),
    }
}

pub(crate) fn main() -> ExitCode {
    let mut args = Vec::new();
    for a in std::env::args_os().skip(1) {
        match a.into_string() {
            Ok(s) => args.push(s),
            Err(a) => {
                let _ = writeln!(std::io::stderr(), "kvlog: argument {a:?} is not valid UTF-8\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(key) = e.bad_key() {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "bad {key}");
                let _ = out.flush();
            }
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "kvlog: {e}");
            if matches!(e, KvError::Usage(_)) {
                let _ = writeln!(err, "{USAGE}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}
