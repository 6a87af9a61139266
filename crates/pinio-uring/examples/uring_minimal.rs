//! Register a buffer with the io_uring backend, write it with O_DIRECT, read
//! it back into another part of the same registered buffer, compare.
//! `cargo run -p pinio-uring --example uring_minimal [FILE]` (default: a file in the temp dir).
use pinio_core::{Device, DmaBuf};
use pinio_uring::{UringDevice, UringOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path =
        std::env::args().nth(1).map(Into::into).unwrap_or_else(|| std::env::temp_dir().join("pinio-uring-minimal"));
    std::fs::write(&path, vec![0u8; 1 << 20])?; // a 1 MiB target made of written blocks
    let dev = UringDevice::open(&path, UringOptions::default())?; // O_DIRECT, fixed buffers
    let region = dev.register(DmaBuf::new(2 * 4096)?)?; // pinned once, slot in the fixed-buffer table
    let mut q = dev.queue(4)?;
    let mut out = region.slice(0, 4096)?;
    out.copy_from_slice(&[b'p'; 4096]);
    let (_, out) = q.write_at(out, 8192)?; // WRITE_FIXED from the first page
    let (n, back) = q.read_at(region.slice(4096, 4096)?, 8192)?; // READ_FIXED into the second
    assert_eq!(&back[..n], &out[..], "read back what was written");
    println!("{}: wrote and read back {n} bytes; {}", dev.describe(), dev.stats());
    std::fs::remove_file(&path)?;
    Ok(())
}
