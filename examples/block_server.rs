//! block_server: a tokio server that serves blocks of a file from pooled
//! registered memory, sent with io_uring `SEND_ZC`, and a client that checks
//! every byte.
//!
//! ```sh
//! cargo run --release -p pinio-examples --example block_server                 # server + client end to end, scratch file in /var/tmp
//! cargo run --release -p pinio-examples --example block_server -- make-file /var/tmp/blocks.dat 16777216
//! cargo run --release -p pinio-examples --example block_server -- serve /var/tmp/blocks.dat 127.0.0.1:7878
//! cargo run --release -p pinio-examples --example block_server -- client 127.0.0.1:7878 [REQUESTS]
//! ```
//!
//! # The path of a block
//!
//! 1. A connection's task takes a slice from a [`pinio::SlicePool`]: one
//!    region of registered memory cut into `BLOCK`-byte slices, shared by
//!    every connection (`take_async().await` sleeps while all are out).
//! 2. It reads the requested range of the file into the slice through its
//!    own io_uring queue (`O_DIRECT`, the region's fixed buffer) with an
//!    [`pinio::aio::AsyncQueue`] future woken by tokio's reactor
//!    ([`pinio::tokio::async_queue`]).
//! 3. It sends the slice with `IORING_OP_SEND_ZC` from the same fixed buffer
//!    ([`pinio::tokio::AsyncZcSender`], a [`pinio::uring::net::ZcSender`]
//!    whose ring fd tokio's reactor watches): the network stack takes the
//!    bytes straight from registered memory, no CPU copy in user space.
//! 4. The slice goes back to the pool only when the zero-copy notification
//!    says the kernel is done with the memory (not when the send's first
//!    completion arrives: the stack may still read the pages then).
//!
//! Over loopback the kernel copies anyway (the receiving socket cannot keep
//! references to the sender's pages) and its notification says so: the
//! summary reports those bytes apart (`kernel_copied_bytes`), next to
//! `bytes_copied`, the bytes pinio's own code copied, which is 0.
//!
//! # Protocol (little endian, over TCP)
//!
//! - Request, 16 bytes: `offset: u64`, `len: u32`, `reserved: u32` (0).
//!   `len == 0` asks for the file's size.
//! - Reply header, 16 bytes: `status: u32`, `len: u32`, `value: u64`, then,
//!   when `status == 0` and `len > 0`, exactly `len` bytes of the file at
//!   `offset`. Status 0 is success (`value` is the offset, or the file's
//!   size for a size request); status 1 is a refused request (`len` is 0,
//!   `value` is the code: 1 past the end, 2 longer than a block, 3
//!   misaligned for `O_DIRECT`, 4 reserved bits set); the connection stays
//!   open. Status 2 is a server-side IO error, after which the server closes
//!   the connection.
//!
//! # Queues and threads
//!
//! The runtime is multi-threaded (2 workers here). Each connection is one
//! task that owns one io_uring read queue and one `ZcSender` ring: a ring is
//! only ever used by the task that made it (io_uring's single-issuer
//! pattern), and the task may move between worker threads between polls
//! (the futures are `Send`). What is shared across threads is the device
//! (its domain and registered-buffer table, cloned into every ring) and
//! the slice pool, which is lock-free to take from and give to.
//!
//! The file holds a pattern of its offsets: 8-byte word `i` is
//! `splitmix64(i)`, so the client checks every byte it receives against the
//! offset it asked for (`make-file` writes such a file for `serve`).
use pinio::aio::AsyncQueue;
use pinio::tokio::AsyncZcSender;
use pinio::uring::net::ZcStats;
use pinio::{Device, Slice, SlicePool};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Largest block served at once: the size of a pool slice.
const BLOCK: usize = 64 << 10;
/// Size of the scratch file of the end-to-end run.
const FILE_SIZE: u64 = 16 << 20;
/// Slices in the pool: fewer than the client's connections, so takers wait.
const POOL_SLICES: usize = 4;
/// Client connections (tasks) of the end-to-end run.
const CONNECTIONS: usize = 8;
/// Requests per connection of the end-to-end run.
const REQUESTS: usize = 32;
const REQ_LEN: usize = 16;
const STATUS_OK: u32 = 0;
const STATUS_REFUSED: u32 = 1;
const STATUS_IO: u32 = 2;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The file's byte at `offset`.
fn expected(offset: u64) -> u8 {
    (splitmix(offset / 8) >> ((offset % 8) * 8)) as u8
}

/// Writes the pattern file of `size` bytes.
fn make_file(path: &std::path::Path, size: u64) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    for w in 0..size / 8 {
        f.write_all(&splitmix(w).to_le_bytes())?;
    }
    f.into_inner().map_err(|e| e.into_error())?.sync_all()
}

// ---------------------------------------------------------------- server

/// What the server counted, summed over connections.
#[derive(Default)]
struct ServerStats {
    blocks: u64,
    refused: u64,
    zc: ZcStats,
}

/// Why a request is refused, as its code in the reply.
fn refuse(dev: &dyn Device, offset: u64, len: u32, reserved: u32) -> Option<u64> {
    let caps = dev.capabilities();
    let size = caps.device_size;
    if reserved != 0 {
        return Some(4);
    }
    if offset.checked_add(len as u64).is_none_or(|end| end > size) {
        return Some(1);
    }
    if len as usize > BLOCK {
        return Some(2);
    }
    if !offset.is_multiple_of(caps.offset_align.max(1)) || !(len as u64).is_multiple_of(caps.len_align.max(1)) {
        return Some(3);
    }
    None
}

fn header(status: u32, len: u32, value: u64) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[0..4].copy_from_slice(&status.to_le_bytes());
    h[4..8].copy_from_slice(&len.to_le_bytes());
    h[8..16].copy_from_slice(&value.to_le_bytes());
    h
}

/// Gives a pool slice back, joined again with the part split off it.
/// Pieces that cannot be joined are dropped: the pool makes a dropped
/// slice anew when it runs dry.
fn give_back(pool: &SlicePool, head: Slice, rest: Option<Slice>) {
    let whole = match rest {
        Some(tail) => match head.merge(tail) {
            Ok(whole) => whole,
            Err(_) => return,
        },
        None => head,
    };
    let _ = pool.give(whole);
}

/// Serves one connection until the client closes it.
async fn serve_connection(
    dev: Arc<dyn Device>,
    pool: Arc<SlicePool>,
    stream: TcpStream,
    stats: Arc<Mutex<ServerStats>>,
) -> Result<(), BoxError> {
    // The socket twice: tokio's for requests and reply headers, the
    // sender's for SEND_ZC (one open socket; a header is in the socket's
    // buffer before its block's send starts, so they stay in order).
    let std_stream = stream.into_std()?;
    let zc_stream = std_stream.try_clone()?;
    let mut stream = TcpStream::from_std(std_stream)?;
    // SEND_ZC awaited in tokio's reactor on the sender's ring fd.
    let mut zc = AsyncZcSender::new(dev.domain(), zc_stream)?;
    // This connection's own read queue (its own ring), woken by tokio's reactor.
    let queue: AsyncQueue = pinio::tokio::async_queue(dev.queue(4)?)?;
    let (mut blocks, mut refused) = (0u64, 0u64);
    let mut req = [0u8; REQ_LEN];
    let result: Result<(), BoxError> = loop {
        match stream.read_exact(&mut req).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break Ok(()),
            Err(e) => break Err(e.into()),
        }
        let offset = u64::from_le_bytes(req[0..8].try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(req[8..12].try_into().expect("4 bytes"));
        let reserved = u32::from_le_bytes(req[12..16].try_into().expect("4 bytes"));
        if len == 0 && reserved == 0 {
            if let Err(e) = stream.write_all(&header(STATUS_OK, 0, dev.capabilities().device_size)).await {
                break Err(e.into());
            }
            continue;
        }
        if let Some(code) = refuse(&*dev, offset, len, reserved) {
            refused += 1;
            if let Err(e) = stream.write_all(&header(STATUS_REFUSED, 0, code)).await {
                break Err(e.into());
            }
            continue;
        }
        let len = len as usize;
        // 1. A slice of registered memory from the pool (waits while every
        //    slice is out), cut to the request's length.
        let whole = pool.take_async().await;
        let (slice, rest) = if len < whole.len() {
            match whole.split_at(len) {
                Ok((head, tail)) => (head, Some(tail)),
                Err(whole) => {
                    give_back(&pool, whole, None);
                    break Err("splitting a pool slice".into());
                }
            }
        } else {
            (whole, None)
        };
        // 2. The block, read from the file into it through io_uring.
        let slice = match queue.read_at(slice, offset).await {
            Ok((n, slice)) if n == len => slice,
            Ok((n, slice)) => {
                give_back(&pool, slice, rest);
                let _ = stream.write_all(&header(STATUS_IO, 0, 0)).await;
                break Err(format!("short read: {n} of {len} bytes at {offset}").into());
            }
            Err(e) => {
                if let Some(s) = e.slice {
                    give_back(&pool, s, rest);
                }
                let _ = stream.write_all(&header(STATUS_IO, 0, 0)).await;
                break Err(e.error.into());
            }
        };
        if let Err(e) = stream.write_all(&header(STATUS_OK, len as u32, offset)).await {
            give_back(&pool, slice, rest);
            break Err(e.into());
        }
        // 3. Sent from the registered buffer with SEND_ZC; 4. back to the
        //    pool after the notification.
        match zc.send(slice).await {
            Ok(sent) => give_back(&pool, sent.slice, rest),
            Err(e) => {
                if let Some(s) = e.slice {
                    give_back(&pool, s, rest);
                }
                break Err(e.error.into());
            }
        }
        blocks += 1;
    };
    let mut st = stats.lock().unwrap_or_else(|p| p.into_inner());
    st.blocks += blocks;
    st.refused += refused;
    let z = zc.sender().stats();
    st.zc.sends += z.sends;
    st.zc.bytes += z.bytes;
    st.zc.copied_sends += z.copied_sends;
    st.zc.copied_bytes += z.copied_bytes;
    st.zc.fixed_sends += z.fixed_sends;
    st.zc.notifications += z.notifications;
    result
}

/// The server: accepts connections, one task each, until `listener` fails.
async fn serve(
    dev: Arc<dyn Device>,
    pool: Arc<SlicePool>,
    listener: TcpListener,
    stats: Arc<Mutex<ServerStats>>,
    conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("block_server: accept: {e}");
                return;
            }
        };
        let (dev, pool, stats) = (dev.clone(), pool.clone(), stats.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = serve_connection(dev, pool, stream, stats).await {
                eprintln!("block_server: connection {peer}: {e}");
            }
        });
        conns.lock().unwrap_or_else(|p| p.into_inner()).push(task);
    }
}

// ---------------------------------------------------------------- client

/// Sends one request; returns the reply's header fields.
async fn request(s: &mut TcpStream, offset: u64, len: u32, reserved: u32) -> Result<(u32, u32, u64), BoxError> {
    let mut req = [0u8; REQ_LEN];
    req[0..8].copy_from_slice(&offset.to_le_bytes());
    req[8..12].copy_from_slice(&len.to_le_bytes());
    req[12..16].copy_from_slice(&reserved.to_le_bytes());
    s.write_all(&req).await?;
    let mut h = [0u8; 16];
    s.read_exact(&mut h).await?;
    let status = u32::from_le_bytes(h[0..4].try_into().expect("4 bytes"));
    let n = u32::from_le_bytes(h[4..8].try_into().expect("4 bytes"));
    Ok((status, n, u64::from_le_bytes(h[8..16].try_into().expect("8 bytes"))))
}

/// One client connection: `requests` random blocks, each checked byte by
/// byte against the pattern; then one misaligned request, which must be
/// refused. Returns (blocks verified, bytes verified).
async fn client_connection(addr: std::net::SocketAddr, seed: u64, requests: usize) -> Result<(u64, u64), BoxError> {
    let mut s = TcpStream::connect(addr).await?;
    let (status, _, size) = request(&mut s, 0, 0, 0).await?;
    if status != STATUS_OK || size < 4096 {
        return Err(format!("size request: status {status}, size {size}").into());
    }
    let pages = size / 4096;
    let mut rng = splitmix(seed);
    let (mut blocks, mut bytes) = (0u64, 0u64);
    let mut buf = vec![0u8; BLOCK];
    for _ in 0..requests {
        rng = splitmix(rng);
        let len_pages = 1 + rng % (BLOCK as u64 / 4096).min(pages);
        let offset = (rng >> 20) % (pages - len_pages + 1) * 4096;
        let len = (len_pages * 4096) as usize;
        let (status, n, value) = request(&mut s, offset, len as u32, 0).await?;
        if status != STATUS_OK || n as usize != len || value != offset {
            return Err(format!("request {offset}+{len}: status {status}, len {n}, value {value}").into());
        }
        s.read_exact(&mut buf[..len]).await?;
        if let Some(i) = (0..len).find(|&i| buf[i] != expected(offset + i as u64)) {
            return Err(format!(
                "byte {} of the file: got {:#04x}, expected {:#04x}",
                offset + i as u64,
                buf[i],
                expected(offset + i as u64)
            )
            .into());
        }
        blocks += 1;
        bytes += len as u64;
    }
    // Bad input gets a typed refusal, and the connection stays usable.
    let (status, _, code) = request(&mut s, 1, 4096, 0).await?;
    if status != STATUS_REFUSED || code != 3 {
        return Err(format!("a misaligned request: status {status}, code {code} (expected a refusal, code 3)").into());
    }
    let (status, _, code) = request(&mut s, size, 4096, 0).await?;
    if status != STATUS_REFUSED || code != 1 {
        return Err(format!("a request past the end: status {status}, code {code} (expected a refusal, code 1)").into());
    }
    Ok((blocks, bytes))
}

/// `connections` concurrent client tasks; returns (blocks, bytes) verified.
async fn client(addr: std::net::SocketAddr, connections: usize, requests: usize) -> Result<(u64, u64), BoxError> {
    let tasks: Vec<_> =
        (0..connections).map(|c| tokio::spawn(client_connection(addr, c as u64 + 1, requests))).collect();
    let (mut blocks, mut bytes) = (0, 0);
    for t in tasks {
        let (b, n) = t.await??;
        blocks += b;
        bytes += n;
    }
    Ok((blocks, bytes))
}

// ---------------------------------------------------------------- main

/// The device and the pool: one registration of `POOL_SLICES` blocks.
fn open(path: &std::path::Path) -> Result<(Arc<dyn Device>, Arc<SlicePool>), BoxError> {
    let dev: Arc<dyn Device> = Arc::from(pinio::open(&format!("uring:{}", path.display()))?);
    let pool = Arc::new(SlicePool::new(dev.alloc(POOL_SLICES * BLOCK)?, BLOCK)?);
    Ok((dev, pool))
}

/// Removes the scratch file when the example made it, however it ends.
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// No arguments: a scratch file, the server on 127.0.0.1:0, the client,
/// the summary.
async fn end_to_end() -> Result<(), BoxError> {
    let scratch = Scratch(std::path::PathBuf::from(format!("/var/tmp/pinio-block-server-{}.dat", std::process::id())));
    make_file(&scratch.0, FILE_SIZE)?;
    let (dev, pool) = open(&scratch.0)?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let stats = Arc::new(Mutex::new(ServerStats::default()));
    let conns = Arc::new(Mutex::new(Vec::new()));
    let server = tokio::spawn(serve(dev.clone(), pool.clone(), listener, stats.clone(), conns.clone()));
    println!(
        "serving {} ({} bytes) on {addr}: {} pool slices of {BLOCK} bytes, one registration",
        scratch.0.display(),
        FILE_SIZE,
        pool.capacity()
    );
    let (blocks, bytes) = client(addr, CONNECTIONS, REQUESTS).await?;
    server.abort();
    // The client closed its connections: their tasks end, each ZcSender
    // having waited for its last notification.
    let conns = std::mem::take(&mut *conns.lock().unwrap_or_else(|p| p.into_inner()));
    for c in conns {
        c.await?;
    }
    let st = std::mem::take(&mut *stats.lock().unwrap_or_else(|p| p.into_inner()));
    if st.blocks != blocks {
        return Err(format!("the server sent {} blocks, the client verified {blocks}", st.blocks).into());
    }
    if pool.available() != pool.capacity() {
        return Err(format!(
            "{} of {} pool slices did not come back",
            pool.capacity() - pool.available(),
            pool.capacity()
        )
        .into());
    }
    let z = st.zc;
    println!("{}\n  {}", dev.describe(), dev.stats());
    println!(
        "send_zc: sends {} bytes {} fixed_sends {} notifications {} kernel_copied_bytes {} (loopback: the kernel copies into the receiving socket)",
        z.sends, z.bytes, z.fixed_sends, z.notifications, z.copied_bytes
    );
    println!("requests refused {} (bad input, answered with a typed refusal)", st.refused);
    println!("pool slices back {}/{}", pool.available(), pool.capacity());
    println!(
        "blocks {blocks} verified ({bytes} bytes over {CONNECTIONS} connections), bytes_copied {}",
        dev.stats().bytes_copied
    );
    Ok(())
}

async fn run(args: &[String]) -> Result<(), BoxError> {
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] => end_to_end().await,
        ["make-file", path, size] => {
            let size: u64 = size.parse().map_err(|_| format!("SIZE must be a number of bytes, got {size:?}"))?;
            make_file(std::path::Path::new(path), size / 4096 * 4096)?;
            println!("{path}: {} bytes of the offset pattern", size / 4096 * 4096);
            Ok(())
        }
        ["serve", path, addr] => {
            let (dev, pool) = open(std::path::Path::new(path))?;
            let listener = TcpListener::bind(addr).await?;
            println!("serving {path} on {}", listener.local_addr()?);
            let stats = Arc::new(Mutex::new(ServerStats::default()));
            serve(dev, pool, listener, stats, Arc::new(Mutex::new(Vec::new()))).await;
            Ok(())
        }
        ["client", addr, rest @ ..] if rest.len() <= 1 => {
            let requests = match rest.first() {
                Some(n) => n.parse().map_err(|_| format!("REQUESTS must be a number, got {n:?}"))?,
                None => REQUESTS,
            };
            let addr = tokio::net::lookup_host(addr).await?.next().ok_or_else(|| format!("{addr}: no address"))?;
            let (blocks, bytes) = client(addr, CONNECTIONS, requests).await?;
            println!("blocks {blocks} verified ({bytes} bytes)");
            Ok(())
        }
        _ => Err("usage: block_server [make-file PATH SIZE | serve PATH ADDR | client ADDR [REQUESTS]]".into()),
    }
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_io().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("block_server: starting the runtime: {e}");
            return std::process::ExitCode::from(3);
        }
    };
    match rt.block_on(run(&args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("block_server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
