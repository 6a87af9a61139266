//! Register a buffer, write it to a file, read it back: the copy backend.
//! Run: cargo run -p pinio-copy --example copy_minimal [PATH]
use pinio_copy::{CopyDevice, CopyOptions};
use pinio_core::Device;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "pinio-copy-example.dat".into());
    std::fs::write(&path, vec![0u8; 1 << 20])?; // a 1 MiB device address space
    let dev = CopyDevice::open(&path, CopyOptions::default())?;
    let region = dev.alloc(8192)?; // a registered (here: unpinned) buffer
    let mut q = dev.queue(4)?;
    let mut out = region.slice(0, 4096)?;
    out.copy_from_slice(&[0xab; 4096]);
    let (n, out) = q.write_at(out, 12288)?; // memory -> device at offset 12 KiB
    let (m, back) = q.read_at(region.slice(4096, 4096)?, 12288)?; // device -> memory
    assert_eq!(&out[..], &back[..]);
    println!("wrote {n}, read back {m} identical bytes; {}", dev.stats());
    std::fs::remove_file(&path)?;
    Ok(())
}
