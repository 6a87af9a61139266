//! One block from the NVMe disk to QEMU's edu device, through one
//! registered region, with one IOMMU mapping and no CPU copy.
//!
//! Both PCI devices are opened in one VFIO domain (one container, one IOVA
//! address space). The region is registered once: one `VFIO_IOMMU_MAP_DMA`
//! puts it at one IOVA that both devices reach. The NVMe controller writes
//! the block into the region by DMA, and edu's DMA engine reads the same
//! bytes out of it; edu then writes its buffer back into the second half of
//! the region, to show what it got. Nothing is written to the disk.
//!
//! Run it in the guest (it needs VFIO, an IOMMU and root):
//!
//! ```sh
//! RUSTFLAGS='-C target-feature=+crt-static' cargo build --release \
//!     --target x86_64-unknown-linux-gnu -p pinio-nvme --example nvme_to_edu
//! cargo xtask vm run -- target/x86_64-unknown-linux-gnu/release/examples/nvme_to_edu
//! ```
//!
//! Optional arguments: the NVMe controller's and edu's PCI addresses
//! (default: the first of each on the bus). The controller is taken from
//! the kernel's nvme driver and handed back at the end.
//!
//! `guest_domain::nvme_to_edu_moves_a_block_with_one_mapping` runs
//! [`move_block`] of this file and checks its numbers.

use pinio_core::{Device, StatsSnapshot};
use pinio_edu::{EduDevice, EduOptions};
use pinio_nvme::{NvmeDevice, NvmeOptions};
use pinio_vfio::{PciAddress, VfioRegistrar};
use std::error::Error;

/// Bytes moved: one 4 KiB block (edu's whole buffer).
pub const BLOCK: usize = 4096;

/// What moving one block did.
pub struct Report {
    /// The bytes the NVMe controller wrote into the region.
    pub block: Vec<u8>,
    /// The bytes edu wrote back after reading them from the region.
    pub echoed: Vec<u8>,
    /// The region's IOVA, the same for both devices.
    pub iova: u64,
    /// Registrations made in the domain during the flow.
    pub domain_pins: u64,
    /// `VFIO_IOMMU_MAP_DMA` calls made during the flow.
    pub map_dma_calls: u64,
    /// `VFIO_IOMMU_UNMAP_DMA` calls for the region (after the flow's
    /// queues were dropped, which unmap their NVMe rings).
    pub unmap_dma_calls: u64,
    /// Mappings the kernel counted for the region (its `dma_avail` before
    /// registering, minus while registered).
    pub kernel_mappings: u64,
    /// The NVMe device's counters over the flow.
    pub nvme: StatsSnapshot,
    /// edu's counters over the flow.
    pub edu: StatsSnapshot,
}

/// Moves the block at `offset` of the disk to edu: NVMe -> region -> edu
/// -> the region's second half. `nvme` and `edu` must be devices of one
/// domain.
pub fn move_block(nvme: &NvmeDevice, edu: &EduDevice, offset: u64) -> Result<Report, Box<dyn Error>> {
    let domain = nvme.domain();
    if edu.domain().id() != domain.id() {
        return Err(format!(
            "the devices are in two domains ({} and {}): open edu with EduDevice::open_in(nvme.domain(), ..)",
            domain.id(),
            edu.domain().id()
        )
        .into());
    }
    let vfio = VfioRegistrar::of(domain, "nvme")?;
    // Queues first: an NVMe queue pair maps its rings (the driver's own
    // memory), and only the region's mapping is to be counted.
    let mut nq = nvme.queue(1)?;
    let mut eq = edu.queue(1)?;
    let (calls0, dom0, nvme0, edu0) = (vfio.vfio_stats(), domain.stats(), nvme.stats(), edu.stats());
    let avail0 = vfio.query_iommu()?.dma_avail.ok_or("the kernel does not report DMA mappings left")?;

    // One registration for both devices: one VFIO_IOMMU_MAP_DMA.
    let region = domain.alloc(2 * BLOCK)?;
    let avail1 = vfio.query_iommu()?.dma_avail.ok_or("the kernel does not report DMA mappings left")?;
    let iova = region.key().device_addr;

    // NVMe -> region: the controller DMAs the block to the IOVA.
    let (n, s) = nq.read_at(region.slice(0, BLOCK)?, offset)?;
    // region -> edu: edu's DMA engine reads the same bytes at the same IOVA.
    let (w, s) = eq.write_at(s, 0)?;
    // edu -> region: its buffer comes back into the second half.
    let (r, echo) = eq.read_at(region.slice(BLOCK, BLOCK)?, 0)?;
    if (n, w, r) != (BLOCK, BLOCK, BLOCK) {
        return Err(format!("short transfers: NVMe read {n}, edu took {w}, edu gave back {r}").into());
    }
    let (block, echoed) = (s.to_vec(), echo.to_vec());
    drop((s, echo, nq, eq));
    let (calls1, dom1) = (vfio.vfio_stats(), domain.stats());
    region.unregister()?;
    let calls2 = vfio.vfio_stats();
    Ok(Report {
        block,
        echoed,
        iova,
        domain_pins: dom1.pins - dom0.pins,
        map_dma_calls: calls1.map_dma_calls - calls0.map_dma_calls,
        unmap_dma_calls: calls2.unmap_dma_calls - calls1.unmap_dma_calls,
        kernel_mappings: avail0.saturating_sub(avail1) as u64,
        nvme: nvme.stats().since(&nvme0),
        edu: edu.stats().since(&edu0),
    })
}

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Report")
            .field("bytes", &self.block.len())
            .field("echo_matches", &(self.echoed == self.block))
            .field("iova", &format_args!("{:#x}", self.iova))
            .field("domain_pins", &self.domain_pins)
            .field("map_dma_calls", &self.map_dma_calls)
            .field("unmap_dma_calls", &self.unmap_dma_calls)
            .field("kernel_mappings", &self.kernel_mappings)
            .field("nvme", &self.nvme)
            .field("edu", &self.edu)
            .finish()
    }
}

fn find_pci(attr: &str, value: &str) -> Option<String> {
    pinio_vfio::Sysfs::system().first_with(attr, value).map(|a| a.to_string())
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let nvme_pci: PciAddress = args
        .next()
        .or_else(|| find_pci("class", "0x010802"))
        .ok_or("no NVMe controller on the PCI bus; run this in the guest")?
        .parse()?;
    let edu_pci: PciAddress = args
        .next()
        .or_else(|| find_pci("device", "0x11e8"))
        .ok_or("no edu (1234:11e8) on the PCI bus; run this in the guest")?
        .parse()?;
    let outcome = (|| -> Result<(), Box<dyn Error>> {
        // The controller opens a new domain; edu joins it: its IOMMU group
        // goes into the same container.
        let nvme = NvmeDevice::open(&nvme_pci, NvmeOptions { take_from_driver: true, ..Default::default() })?;
        let edu = EduDevice::open_in(nvme.domain(), &edu_pci, EduOptions::default())?;
        println!("{}", nvme.describe());
        println!("{}", edu.describe());
        println!("domain: {}", nvme.domain().describe());
        let r = move_block(&nvme, &edu, 0)?;
        println!("region at IOVA {:#x}, reached there by both devices", r.iova);
        println!("NVMe read {} bytes at LBA 0 into it; edu read them out by DMA and wrote them back", r.block.len());
        if r.block.len() > 1081 && r.block[1080..1082] == [0x53, 0xef] {
            println!("the block holds an ext4 superblock (magic 0xef53 at byte 1080)");
        }
        println!("nvme stats: {}", r.nvme);
        println!("edu stats:  {}", r.edu);
        println!("nvme bytes_copied {}", r.nvme.bytes_copied);
        println!("edu bytes_copied {}", r.edu.bytes_copied);
        println!("domain pins for the region {}", r.domain_pins);
        println!(
            "VFIO_IOMMU_MAP_DMA calls for the region {} (kernel mappings {}), VFIO_IOMMU_UNMAP_DMA {}",
            r.map_dma_calls, r.kernel_mappings, r.unmap_dma_calls
        );
        if r.echoed != r.block {
            return Err("edu gave back other bytes than the NVMe controller wrote".into());
        }
        if r.nvme.bytes_copied != 0 || r.edu.bytes_copied != 0 {
            return Err("the CPU copied payload bytes".into());
        }
        if (r.domain_pins, r.map_dma_calls, r.kernel_mappings) != (1, 1, 1) {
            return Err("expected exactly one registration and one IOMMU mapping for the region".into());
        }
        println!("ok: NVMe -> region -> edu with one mapping and no CPU copy");
        Ok(())
    })();
    // Everything of the domain is dropped: the controller can go back.
    pinio_nvme::release_to_kernel(&nvme_pci)?;
    println!("handed {nvme_pci} back to the kernel");
    outcome
}
