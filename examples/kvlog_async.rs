//! kvlog_async: kvlog's `load` written with async/await on tokio: many tasks
//! put concurrently, and each group commit (one flush) acknowledges the puts
//! of many tasks. The store is kvlog's own (`kvlog.rs`, included as a
//! module: the same format code, the same recovery), so `kvlog verify`
//! checks what this loads.
//!
//! ```sh
//! cargo run --release -p pinio-examples --example kvlog_async -- load uring:/var/tmp/kv.dat --keys 100000 --value-size 100 --batch 64 --tasks 128
//! cargo run --release -p pinio-examples --example kvlog -- verify uring:/var/tmp/kv.dat
//! ```
//!
//! - `load SPEC --keys N --value-size B --batch K [--tasks T]`: as `kvlog
//!   load` (same options, same `durable <last_key>` line after each
//!   completed flush), with `T` writer tasks (default `2 * K`) on a
//!   multi-threaded runtime. Every other command (`verify`, `bench`,
//!   `--help`) is kvlog's own.
//!
//! # How it runs
//!
//! Each writer task takes the next key from a shared counter, derives its
//! value and awaits `put(key, value)`, which resolves once the record is
//! durable; then it takes another key. One committer task owns the log: it
//! receives the puts, orders them by key (so the log holds keys in order and
//! a crash leaves a prefix, as `kvlog verify` expects), and when it has the
//! batch's `B = min(K, T)` records (or the last key) it encodes the batch in
//! kvlog's format, copies it into slices of a [`pinio::SlicePool`] of
//! registered write buffers, writes them all at once through
//! [`pinio::aio::AsyncQueue::write_at`] futures, awaits one
//! [`pinio::aio::AsyncQueue::flush`] and only then acknowledges the batch's
//! puts (and prints `durable`). Puts arriving meanwhile wait in the channel
//! for the next batch: that is the group commit. A batch is written only
//! after the previous batch's flush returned, the rule kvlog's recovery
//! relies on (only the last batch can be torn).
//!
//! `T` tasks with one put each in flight fill a batch of `min(K, T)`
//! records: the store is made for batches of that size (its superblock says
//! so, and sizes the store for it).
//!
//! Queues and threads: one `AsyncQueue` (one io_uring ring on `uring:`),
//! used by the committer task and the write futures it spawns; the writer
//! tasks touch no queue, they talk to the committer through a channel, from
//! whichever worker thread runs them. The flush future waits for the
//! batch's writes without blocking, then runs the device's flush command
//! (`IORING_OP_FSYNC`, `fdatasync`) in the poll that finds them done, which
//! holds that worker thread for the command's duration; the other worker
//! keeps running the writer tasks meanwhile.
#[path = "kvlog.rs"]
mod kvlog;

use kvlog::{
    BATCH_HDR, BatchHeader, Cmd, FLAG_CLOSE, KvError, Params, Result, Store, derive_value, record_header, say,
};
use pinio::aio::AsyncQueue;
use pinio::{Device, FlushMode, SlicePool};
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// Most writes of one batch in flight at once, and write buffers.
const WRITE_SLOTS: usize = 16;
/// Largest write.
const MAX_CHUNK: usize = 64 << 10;
const MAX_TASKS: u64 = 4096;

/// One put, acknowledged once durable (or with the commit's error).
struct Put {
    key: u64,
    value: Vec<u8>,
    done: oneshot::Sender<std::result::Result<(), String>>,
}

/// The committer: the log's one writer.
struct Committer {
    dev: Arc<dyn Device>,
    q: AsyncQueue,
    pool: Arc<SlicePool>,
    block: u64,
    epoch: u64,
    capacity: u64,
    next_block: u64,
    next_batch: u64,
    next_rec: u64,
    commits: u64,
}

impl Committer {
    /// Writes one batch of `records` (a closing batch when `flags` has
    /// `FLAG_CLOSE`) and flushes it: when this returns `Ok`, they are durable.
    async fn commit(&mut self, records: &[(Vec<u8>, &[u8])], flags: u32) -> Result<()> {
        // The batch as kvlog lays it out: header, records, zeros to a block.
        let mut buf = vec![0u8; BATCH_HDR];
        for (i, (key, value)) in records.iter().enumerate() {
            buf.extend_from_slice(&record_header(self.epoch, self.next_rec + i as u64, key, value));
            buf.extend_from_slice(key);
            buf.extend_from_slice(value);
        }
        let payload = (buf.len() - BATCH_HDR) as u64;
        let blocks = (buf.len() as u64).div_ceil(self.block);
        let start = self.next_block * self.block;
        let limit = if flags & FLAG_CLOSE != 0 { self.capacity } else { self.capacity - self.block };
        if start + blocks * self.block > limit {
            return Err(KvError::Full { need: start + blocks * self.block, capacity: limit });
        }
        let header = BatchHeader {
            flags,
            epoch: self.epoch,
            seq: self.next_batch,
            first_rec: self.next_rec,
            records: records.len() as u32,
            blocks: blocks as u32,
            payload,
        };
        header.encode(&mut buf[..BATCH_HDR]);
        buf.resize((blocks * self.block) as usize, 0);

        // Every chunk in its own write future, all in flight together (the
        // queue holds back what does not fit and pushes it as room frees).
        let mut writes = tokio::task::JoinSet::new();
        for (i, chunk) in buf.chunks(self.pool.slice_len()).enumerate() {
            let mut slice = self.pool.take_async().await;
            let whole_len = slice.len();
            slice[..chunk.len()].copy_from_slice(chunk);
            let (slice, rest) = if chunk.len() < whole_len {
                match slice.split_at(chunk.len()) {
                    Ok((head, tail)) => (head, Some(tail)),
                    Err(_) => return Err(internal("splitting a write buffer")),
                }
            } else {
                (slice, None)
            };
            let (q, pool) = (self.q.clone(), self.pool.clone());
            let at = start + (i * whole_len) as u64;
            writes.spawn(async move {
                let len = slice.len();
                let r = q.write_at(slice, at).await;
                let (outcome, slice) = match r {
                    Ok((n, s)) if n == len => (Ok(()), Some(s)),
                    Ok((n, s)) => (Err(format!("a short write ({n} of {len} bytes at {at})")), Some(s)),
                    Err(e) => (Err(format!("writing {len} bytes at {at}: {}", e.error)), e.slice),
                };
                if let Some(s) = slice {
                    let whole = match rest {
                        Some(t) => s.merge(t).ok(),
                        None => Some(s),
                    };
                    if let Some(w) = whole {
                        let _ = pool.give(w);
                    }
                }
                outcome
            });
        }
        let mut failed = None;
        while let Some(r) = writes.join_next().await {
            let r = r.map_err(|e| format!("a write task: {e}")).and_then(|r| r);
            if let (Err(e), None) = (r, &failed) {
                failed = Some(e);
            }
        }
        if let Some(e) = failed {
            return Err(KvError::Device {
                context: self.dev.describe(),
                error: pinio::Error::Unsupported { what: e, hint: "the log's write failed".into() },
            });
        }
        // One flush for the whole batch: the group commit.
        self.q
            .flush(FlushMode::Data)
            .await
            .map_err(|error| KvError::Device { context: format!("flushing {}", self.dev.describe()), error })?;
        self.commits += 1;
        self.next_block += blocks;
        self.next_batch += 1;
        self.next_rec += records.len() as u64;
        Ok(())
    }
}

fn internal(what: &str) -> KvError {
    KvError::Device {
        context: "kvlog_async".into(),
        error: pinio::Error::Unsupported { what: what.into(), hint: "a bug in kvlog_async".into() },
    }
}

/// The committer's loop: receives puts, orders them by key, commits a batch
/// of `batch` records (or the last ones) at a time and acknowledges it.
async fn commit_loop(
    mut c: Committer,
    mut rx: mpsc::Receiver<Put>,
    keys: u64,
    batch: u64,
    out: &mut dyn Write,
) -> Result<Committer> {
    let mut waiting = std::collections::BTreeMap::new();
    let mut open: Vec<Put> = Vec::new();
    let mut next_key = 0u64;
    while next_key < keys {
        let Some(put) = rx.recv().await else { return Err(internal("the writer tasks stopped before the last key")) };
        waiting.insert(put.key, put);
        while let Some(put) = waiting.remove(&next_key) {
            open.push(put);
            next_key += 1;
            if open.len() as u64 == batch || next_key == keys {
                let keys_of: Vec<Vec<u8>> = open.iter().map(|p| p.key.to_string().into_bytes()).collect();
                let records: Vec<(Vec<u8>, &[u8])> =
                    keys_of.into_iter().zip(open.iter().map(|p| p.value.as_slice())).collect();
                let r = c.commit(&records, 0).await;
                drop(records);
                let ack = r.as_ref().map(drop).map_err(|e| e.to_string());
                let last = open.last().map_or(0, |p| p.key);
                for p in open.drain(..) {
                    let _ = p.done.send(ack.clone());
                }
                r?;
                say(out, format_args!("durable {last}"))?;
            }
        }
    }
    // The closing batch, as `kvlog load` ends its log.
    c.commit(&[], FLAG_CLOSE).await?;
    Ok(c)
}

/// `load` with `tasks` writer tasks.
async fn load(spec: &str, p: Params, tasks: u64, out: &mut dyn Write) -> Result<()> {
    let t = Instant::now();
    // The store made by kvlog itself: the file sized for its batches, the
    // superblock written and flushed.
    let Store { dev, geo, .. } = Store::create(spec, p)?;
    let dev: Arc<dyn Device> = Arc::from(dev);
    let err = |what: &str| {
        let ctx = format!("{what} on {}", dev.describe());
        move |error| KvError::Device { context: ctx, error }
    };
    let q = pinio::tokio::async_queue(dev.queue(WRITE_SLOTS).map_err(err("making a queue"))?)
        .map_err(err("making an async queue"))?;
    let caps = dev.capabilities();
    let chunk = ((MAX_CHUNK as u64).min(caps.max_transfer) / geo.block * geo.block).max(geo.block) as usize;
    let pool = Arc::new(
        SlicePool::new(dev.alloc(WRITE_SLOTS * chunk).map_err(err("registering the write buffers"))?, chunk)
            .map_err(err("cutting the write buffers"))?,
    );
    let committer = Committer {
        dev: dev.clone(),
        q,
        pool,
        block: geo.block,
        epoch: geo.epoch,
        capacity: geo.capacity_bytes(),
        next_block: 1,
        next_batch: 0,
        next_rec: 0,
        commits: 0,
    };

    let (tx, rx) = mpsc::channel::<Put>(tasks as usize);
    let next = Arc::new(AtomicU64::new(0));
    let value_size = p.value_size as usize;
    let writers: Vec<_> = (0..tasks)
        .map(|_| {
            let (tx, next) = (tx.clone(), next.clone());
            tokio::spawn(async move {
                let mut puts = 0u64;
                loop {
                    let key = next.fetch_add(1, Ordering::Relaxed);
                    if key >= p.keys {
                        return Ok::<u64, String>(puts);
                    }
                    let mut value = Vec::with_capacity(value_size);
                    derive_value(key, value_size, &mut value);
                    let (done, acked) = oneshot::channel();
                    tx.send(Put { key, value, done }).await.map_err(|_| "the committer stopped".to_string())?;
                    acked.await.map_err(|_| "the committer stopped".to_string())??;
                    puts += 1;
                }
            })
        })
        .collect();
    drop(tx);
    let c = commit_loop(committer, rx, p.keys, p.batch, out).await?;
    let mut puts = 0;
    for w in writers {
        puts += w.await.map_err(|e| internal(&format!("a writer task: {e}")))?.map_err(|e| internal(&e))?;
    }
    if puts != p.keys {
        return Err(internal(&format!("{puts} puts acknowledged for {} keys", p.keys)));
    }
    let _ = writeln!(
        std::io::stderr(),
        "kvlog_async: loaded {} keys into {} in {:.3} s: {tasks} tasks, {} group commits (one flush each) of up to {} puts",
        p.keys,
        dev.describe(),
        t.elapsed().as_secs_f64(),
        c.commits - 1,
        p.batch
    );
    Ok(())
}

/// `load ... [--tasks T]`: the options of `kvlog load`, plus `--tasks`.
fn parse_load(args: &[String]) -> Result<Option<(String, Params, u64)>> {
    let mut rest = Vec::new();
    let mut tasks = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = if a == "--tasks" {
            Some(it.next().cloned().ok_or_else(|| KvError::Usage("--tasks needs a value".into()))?)
        } else {
            a.strip_prefix("--tasks=").map(str::to_string)
        };
        match v {
            Some(v) => {
                let n = v.parse::<u64>().ok().filter(|n| (1..=MAX_TASKS).contains(n));
                let n = n.ok_or_else(|| KvError::Usage(format!("--tasks expects 1..={MAX_TASKS}, got {v:?}")))?;
                if tasks.replace(n).is_some() {
                    return Err(KvError::Usage("--tasks given twice".into()));
                }
            }
            None => rest.push(a.clone()),
        }
    }
    match kvlog::parse_args(&rest)? {
        Cmd::Load(spec, p) => {
            let tasks = tasks.unwrap_or((2 * p.batch).clamp(1, MAX_TASKS));
            // T tasks fill batches of min(K, T) records: the store is made for those.
            let p = Params { batch: p.batch.min(tasks), ..p };
            kvlog::check_params(&p)?;
            Ok(Some((spec, p, tasks)))
        }
        _ if tasks.is_some() => Err(KvError::Usage("--tasks is an option of load only".into())),
        _ => Ok(None),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os().skip(1).map(|a| a.to_string_lossy().into_owned()).collect();
    if args.first().map(String::as_str) != Some("load") {
        // verify, bench, help: kvlog's own.
        return kvlog::main();
    }
    let r = parse_load(&args).and_then(|parsed| {
        let Some((spec, p, tasks)) = parsed else { return Err(internal("load parsed as another command")) };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_io()
            .build()
            .map_err(|e| KvError::File { context: "starting the tokio runtime".into(), error: e })?;
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        rt.block_on(load(&spec, p, tasks, &mut out))
    });
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "kvlog_async: {e}");
            if matches!(e, KvError::Usage(_)) {
                let _ = writeln!(
                    err,
                    "{}\n  (kvlog_async load also takes --tasks T: writer tasks, default 2 * K)",
                    kvlog::USAGE
                );
            }
            ExitCode::from(e.exit_code())
        }
    }
}
