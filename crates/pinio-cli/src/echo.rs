//! `pinio echo TARGET`: a pattern through the device and back.

use crate::CliResult;
use clap::Args;

/// Arguments of `pinio echo`.
#[derive(Args)]
pub struct EchoArgs {
    /// Device selection string, e.g. kmod:/dev/pinio or uring:/var/tmp/f.
    target: String,
    /// Bytes per transfer.
    #[arg(long, default_value_t = 4096)]
    size: usize,
    /// Device offset.
    #[arg(long, default_value_t = 0)]
    offset: u64,
}

pub fn run(a: EchoArgs) -> CliResult {
    let dev = pinio::open(&a.target)?;
    let caps = dev.capabilities().clone();
    let len = pinio::align_up(a.size as u64, caps.len_align.max(1)).ok_or("size overflows")? as usize;
    let region = dev.alloc(2 * len)?;
    let mut q = dev.queue(2)?;
    let mut out = region.slice(0, len)?;
    let seed = std::process::id() as u8;
    for (i, b) in out.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(seed);
    }
    let (w, out) = q.write_at(out, a.offset)?;
    let (r, back) = q.read_at(region.slice(len, len)?, a.offset)?;
    if out[..] != back[..] {
        let at = out.iter().zip(back.iter()).position(|(x, y)| x != y).unwrap_or(0);
        return Err(format!("echo mismatch at byte {at}: wrote {:#04x}, read {:#04x}", out[at], back[at]).into());
    }
    println!("{}: wrote {w} and read back {r} identical bytes at offset {:#x}", dev.describe(), a.offset);
    println!("stats: {}", dev.stats());
    // Queue, slices and region gone: every pin is released.
    drop((out, back, q, region));
    let after = dev.stats();
    println!("released: pins {}, unpins {}, {} B pinned now", after.pins, after.unpins, after.bytes_pinned);
    if after.pins != after.unpins || after.bytes_pinned != 0 {
        return Err(format!("pins not balanced after release: {after}").into());
    }
    Ok(())
}
