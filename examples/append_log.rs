//! A small storage app on pinio: an append-only log of checksummed records,
//! written and scanned through registered buffers with O_DIRECT.
//!
//! ```sh
//! cargo run -p pinio-examples --example append_log -- uring:/var/tmp/log.dat 1000
//! cargo run -p pinio-examples --example append_log -- copy:/var/tmp/log.dat 1000
//! ```
//!
//! Records are packed into 4 KiB blocks (`len: u32, crc: u32, payload`);
//! full blocks are written with up to 16 writes in flight, each from its own
//! slice of one registered region, and slices come back to a free list as
//! their completions arrive. The scan reads the log back block by block and
//! checks every record. The device address space is fixed at open, so the
//! log file is created at its final size.
use pinio::{Completion, Op, Queue, Slice};

const BLOCK: usize = 4096;
const DEPTH: usize = 16;

fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
        }
    }
    !c
}

fn record(i: u64) -> Vec<u8> {
    format!("record {i}: {}", "x".repeat((i % 200) as usize)).into_bytes()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let spec = args.next().unwrap_or_else(|| "uring:pinio-log.dat".into());
    let n: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1000);
    let path = spec.split_once(':').map(|(_, p)| p).ok_or("expected BACKEND:PATH")?;
    std::fs::write(path, vec![0u8; ((n as usize * 220) / BLOCK + 2) * BLOCK])?;
    let dev = pinio::open(&spec)?;
    let region = dev.alloc(DEPTH * BLOCK)?;
    let mut free: Vec<Slice> = (0..DEPTH).map(|i| region.slice(i * BLOCK, BLOCK)).collect::<Result<_, _>>()?;
    let mut q = dev.queue(DEPTH)?;
    let mut done: Vec<Completion> = Vec::new();

    // Append: pack records into the current block; write it when full.
    let (mut block, mut used, mut next_block) = (free.pop().ok_or("no slice")?, 0usize, 0u64);
    let mut flush =
        |block: Slice, q: &mut Box<dyn Queue>, free: &mut Vec<Slice>, next: &mut u64| -> pinio::Result<()> {
            q.push(Op::write(block, *next * BLOCK as u64, *next)).map_err(|r| r.error)?;
            *next += 1;
            q.submit()?;
            if free.is_empty() {
                done.clear();
                q.wait(1, &mut done)?;
                for c in done.drain(..) {
                    c.result?;
                    free.push(c.slice);
                }
            }
            Ok(())
        };
    for i in 0..n {
        let rec = record(i);
        if used + 8 + rec.len() > BLOCK {
            block[used..].fill(0); // a zero length ends the block
            flush(block, &mut q, &mut free, &mut next_block)?;
            block = free.pop().ok_or("no free slice")?;
            used = 0;
        }
        block[used..used + 4].copy_from_slice(&(rec.len() as u32).to_le_bytes());
        block[used + 4..used + 8].copy_from_slice(&crc32(&rec).to_le_bytes());
        block[used + 8..used + 8 + rec.len()].copy_from_slice(&rec);
        used += 8 + rec.len();
    }
    block[used..].fill(0);
    flush(block, &mut q, &mut free, &mut next_block)?;
    let mut out = Vec::new();
    while q.in_flight() > 0 {
        q.wait(q.in_flight(), &mut out)?;
    }
    for c in out.drain(..) {
        c.result?;
        free.push(c.slice);
    }

    // Scan: read every block back and verify each record in order.
    let mut slice = free.pop().ok_or("no slice")?;
    let mut seen = 0u64;
    for b in 0..next_block {
        let (_, s) = q.read_at(slice, b * BLOCK as u64)?;
        let mut at = 0;
        while at + 8 <= BLOCK {
            let len = u32::from_le_bytes(s[at..at + 4].try_into()?) as usize;
            if len == 0 {
                break;
            }
            let crc = u32::from_le_bytes(s[at + 4..at + 8].try_into()?);
            let payload = &s[at + 8..at + 8 + len];
            if crc32(payload) != crc || payload != record(seen).as_slice() {
                return Err(format!("record {seen} in block {b} is corrupt").into());
            }
            seen += 1;
            at += 8 + len;
        }
        slice = s;
    }
    if seen != n {
        return Err(format!("scanned {seen} records, expected {n}").into());
    }
    println!("{}: appended and verified {n} records in {next_block} blocks; {}", dev.describe(), dev.stats());
    std::fs::remove_file(path)?;
    Ok(())
}
