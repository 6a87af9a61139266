//! Takes an NVMe controller from the kernel, prints what Identify says,
//! reads its first 4 KiB (read-only), and hands it back. Without an
//! address, the first NVMe controller (PCI class 0x010802) in sysfs.
//!
//! ```sh
//! RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --target x86_64-unknown-linux-gnu -p pinio-nvme --example nvme_info
//! cargo xtask vm run -- target/x86_64-unknown-linux-gnu/release/examples/nvme_info [0000:01:00.0]
//! ```

use pinio_core::Device;
use pinio_nvme::{CompletionMode, NvmeDevice, NvmeOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: pinio_vfio::PciAddress = match std::env::args().nth(1) {
        Some(a) => a.parse()?,
        None => pinio_vfio::Sysfs::system()
            .first_with("class", "0x010802")
            .ok_or("no NVMe controller (PCI class 0x010802) in sysfs; usage: nvme_info [DDDD:BB:DD.F]")?,
    };
    let opts = NvmeOptions { take_from_driver: true, completion: CompletionMode::Interrupt, ..Default::default() };
    {
        let nvme = NvmeDevice::open(&addr, opts)?;
        println!("{}", nvme.describe());
        let (c, ns, cap) = (nvme.controller_info(), nvme.namespace_info(), nvme.cap());
        println!(
            "model {:?}, serial {:?}, firmware {:?}, MDTS {}, {} namespace(s)",
            c.model, c.serial, c.firmware, c.mdts, c.namespaces
        );
        println!("namespace 1: {} blocks of {} B = {} MiB", ns.blocks, ns.block_size, ns.bytes() >> 20);
        println!("CAP: {cap:?}");
        let region = nvme.alloc(4096)?;
        let mut q = nvme.queue(1)?;
        let (_, s) = q.read_at(region.slice_all()?, 0)?;
        let nonzero = s.iter().filter(|&&b| b != 0).count();
        println!("LBA 0..8: {nonzero} non-zero bytes of 4096; first 16: {:02x?}", &s[..16]);
        println!("{}", nvme.stats());
    }
    pinio_nvme::release_to_kernel(&addr)?;
    println!("handed {addr} back to the kernel");
    Ok(())
}
