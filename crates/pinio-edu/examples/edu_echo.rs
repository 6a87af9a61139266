//! Echo a message through QEMU's `edu` device: the message goes from a
//! registered buffer into edu's on-board memory by DMA, and comes back by
//! DMA into a second buffer. The CPU copies no payload byte.
//!
//! Run it in the guest (it needs VFIO, an IOMMU and root):
//!
//! ```sh
//! RUSTFLAGS='-C target-feature=+crt-static' cargo build --release \
//!     --target x86_64-unknown-linux-gnu -p pinio-edu --example edu_echo
//! cargo xtask vm run -- target/x86_64-unknown-linux-gnu/release/examples/edu_echo "hello, DMA"
//! ```
//!
//! Optional second argument: the PCI address (default: the first edu found).

use pinio_core::{Device, Op};
use pinio_edu::{EduDevice, EduOptions};

/// The first edu (1234:11e8) on the PCI bus. `Sysfs` lists the bus without a page fault inside
/// the kernel's readdir, which lockdep would otherwise record against VFIO's locks.
fn find_edu() -> Option<String> {
    Some(pinio_vfio::Sysfs::system().first_with_ids(0x1234, 0x11e8)?.to_string())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let message = args.next().unwrap_or_else(|| "hello from pinio, through the IOMMU and back".into());
    let addr: pinio_vfio::PciAddress = match args.next().or_else(find_edu) {
        Some(a) => a.parse()?,
        None => {
            return Err(
                "no edu device (1234:11e8) on the PCI bus; run this in the guest: cargo xtask vm run -- ...".into()
            );
        }
    };
    if message.is_empty() || message.len() > 4096 {
        return Err(format!("the message must be 1..=4096 bytes (edu's buffer is 4 KiB); got {}", message.len()).into());
    }

    // Opening binds the device to vfio-pci, puts its IOMMU group into a new
    // VFIO container (the device's domain: an empty IOVA address space, so
    // the device can reach no memory at all yet), maps its registers (BAR0)
    // into this process and checks that it really is an edu.
    let edu = EduDevice::open(&addr, EduOptions::default())?;
    println!("opened {}", edu.describe());
    let info = edu.iommu_info()?;
    println!(
        "IOMMU: page sizes {:#x}, usable IOVA ranges {:x?}, {:?} mappings allowed",
        info.page_sizes, info.iova_ranges, info.dma_avail
    );

    // Registering maps each buffer into that address space with
    // VFIO_IOMMU_MAP_DMA, once, for every device of the domain. The kernel pins the pages (they can no longer be
    // moved or swapped out, so the translation stays valid) and writes IOMMU
    // page-table entries IOVA -> physical page. edu only understands 28-bit
    // addresses, so pinio picks IOVAs below 256 MiB; they have nothing to do
    // with the buffers' virtual addresses.
    let out = edu.alloc(4096)?;
    let back = edu.alloc(4096)?;
    println!(
        "outgoing buffer at virtual {:p} is IOVA {:#x}; return buffer at {:p} is IOVA {:#x}",
        out.as_ptr(),
        out.key().device_addr,
        back.as_ptr(),
        back.key().device_addr
    );

    // A slice owns its bytes: we write the message with the CPU (that is the
    // application producing data, not a copy made by the IO path).
    let len = message.len();
    let mut s = out.slice(0, len)?;
    s.copy_from_slice(message.as_bytes());

    // Handing the slice to the queue moves it there: while edu reads it, no
    // Rust code can touch those bytes. edu's DMA engine is told "copy `len`
    // bytes from IOVA x to your buffer"; the IOMMU translates x to our page.
    let mut q = edu.queue(2)?;
    let t = std::time::Instant::now();
    q.push(Op::write(s, 0, 1))?;
    let mut done = Vec::new();
    q.wait(1, &mut done)?;
    let pinio_core::Completion { result, slice, .. } = done.pop().ok_or("no completion")?;
    let written = result?;
    println!(
        "edu read {written} bytes from IOVA {:#x} into its buffer ({:?}, MSI completion)",
        slice.device_addr(),
        t.elapsed()
    );
    drop(slice);

    // The way back: edu writes its buffer to the return buffer's IOVA. Had
    // the IOVA not been mapped, the IOMMU would have blocked the write and
    // logged a DMAR fault instead of letting the device scribble on memory.
    let t = std::time::Instant::now();
    let (n, s) = q.read_at(back.slice(0, len)?, 0)?;
    println!("edu wrote {n} bytes back to IOVA {:#x} ({:?})", s.device_addr(), t.elapsed());
    let echoed = String::from_utf8_lossy(&s);
    println!("sent:   {message:?}");
    println!("echoed: {echoed:?}");
    let ok = echoed == message;
    drop(s);

    // Dropping the last handle and slice of a region unmaps it from the
    // IOMMU; dropping the device and its domain releases the group and
    // container.
    let stats = edu.stats();
    println!("stats: {stats}");
    if !ok {
        return Err("the echo differs from the message".into());
    }
    if stats.bytes_copied != 0 {
        return Err("the CPU copied payload bytes".into());
    }
    println!("ok: zero-copy echo through the IOMMU");
    Ok(())
}
