//! Echo through any pinio device: write a message from registered memory
//! into the device, read it back into another part of that memory, compare.
//!
//! ```sh
//! cargo run -p pinio-examples --example echo -- copy:/var/tmp/echo.dat   # any file
//! cargo run -p pinio-examples --example echo -- uring:/var/tmp/echo.dat  # O_DIRECT + fixed buffers
//! # in the guest (cargo xtask vm run -- ...):
//! #   ... --example echo -- kmod:/dev/pinio        (our kernel module's DMA engine)
//! #   ... --example echo -- vfio:0000:00:03.0      (QEMU's edu device behind an IOMMU)
//! ```
//!
//! The same dozen lines run on all of them. What differs is who moves the
//! bytes: the CPU (copy), the storage device via the kernel's block layer
//! (uring), a kernel worker standing in for a DMA engine (kmod), or a PCI
//! device through the IOMMU (vfio). The statistics at the end tell which:
//! "CPU-copied" is 0 when the device moved the bytes itself.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let spec = std::env::args().nth(1).unwrap_or_else(|| "copy:pinio-echo.dat".into());
    if let Some(path) = spec.strip_prefix("copy:").or_else(|| spec.strip_prefix("uring:"))
        && !std::path::Path::new(path).exists()
    {
        std::fs::write(path, vec![0u8; 1 << 20])?; // a 1 MiB device address space
    }
    // 1. Open the device. Capabilities say what it needs of us.
    let dev = pinio::open(&spec)?;
    let caps = dev.capabilities();
    println!("{} — memory alignment {} B, offset alignment {} B", dev.describe(), caps.mem_align, caps.offset_align);

    // 2. Register memory once: pinned (or IOMMU-mapped) from now on, so the
    //    device can reach it without the kernel copying anything.
    let unit = caps.len_align.max(caps.mem_align).max(512) as usize;
    let region = dev.alloc(2 * unit)?;

    // 3. Fill one slice with a message. A slice owns its bytes; while an
    //    operation is in flight the queue owns the slice, so nothing else
    //    can touch memory the device is using.
    let mut msg = region.slice(0, unit)?;
    msg.fill(b'.');
    msg[..28].copy_from_slice(b"hello from registered memory");
    let mut q = dev.queue(4)?;

    // 4. Memory -> device, then device -> memory (a different slice).
    let (_, msg) = q.write_at(msg, 0)?;
    let (_, back) = q.read_at(region.slice(unit, unit)?, 0)?;
    assert_eq!(&msg[..], &back[..], "the device returned different bytes");
    println!("echoed: {:?}", String::from_utf8_lossy(&back[..28]));
    println!("stats: {}", dev.stats());
    Ok(())
}
