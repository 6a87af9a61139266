//! The NVMe controller and edu in VFIO domains, in the guest: both in one
//! domain (one container) share every registration; in two domains each
//! refuses the other's regions; the nvme_to_edu flow moves a block with one
//! IOMMU mapping. The disk is left as each test found it.

mod common;

#[allow(dead_code)] // `main` and its helpers belong to the example.
#[path = "../examples/nvme_to_edu.rs"]
mod nvme_to_edu;

use common::{TAKE_IRQ, TAKE_POLL, Taken, edu_addr, kernel_block_device};
use pinio_core::{Device, Registration, conformance};
use pinio_edu::{CompletionMode, EduDevice, EduOptions};
use pinio_vfio::VfioRegistrar;
use std::io::Read;

const EDU_POLL: EduOptions = EduOptions { take_from_driver: false, completion: CompletionMode::Poll };

/// `conformance::shared_domain`: the controller and edu in one container,
/// one registration per region for both (it writes the first 512 bytes of
/// the disk, saved and restored around it). Both devices report the same
/// registrations, and the domain's container holds both groups.
#[test]
fn nvme_and_edu_in_one_domain_share_registrations() {
    let mut t = Taken::new(TAKE_POLL);
    t.save(0, 4096);
    let nvme = t.dev();
    let edu = EduDevice::open_in(nvme.domain(), &edu_addr(), EduOptions::default())
        .unwrap_or_else(|e| panic!("edu in the NVMe domain: {e}"));
    assert_eq!(edu.domain().id(), nvme.domain().id());
    let reg = VfioRegistrar::of(nvme.domain(), "nvme").unwrap();
    assert_eq!(reg.devices(), vec![t.bdf, edu_addr()], "both groups in one container");
    let (calls, pins) = (reg.vfio_stats(), nvme.domain().stats().pins);
    conformance::shared_domain(nvme, &edu).unwrap_or_else(|e| panic!("nvme first: {e}"));
    conformance::shared_domain(&edu, nvme).unwrap_or_else(|e| panic!("edu first: {e}"));
    let after = reg.vfio_stats();
    // Each run registers two regions, once each for both devices.
    assert_eq!(nvme.domain().stats().pins - pins, 4, "{}", nvme.domain().stats());
    assert_eq!(after.mappings, calls.mappings, "every mapping made was released: {after:?}");
    let (s, e) = (nvme.stats(), edu.stats());
    assert_eq!(
        (s.pins, s.unpins, s.bytes_pinned),
        (e.pins, e.unpins, e.bytes_pinned),
        "one domain, one set of registrations"
    );
    assert_eq!((s.bytes_copied, e.bytes_copied), (0, 0));
    drop(edu);
}

/// `conformance::foreign_region` across two domains: edu in its own
/// container, the controller in another; a slice of either's region is
/// refused by the other's queue with ForeignRegion, and handed back.
#[test]
fn nvme_and_edu_in_two_domains_refuse_each_others_regions() {
    let t = Taken::new(TAKE_IRQ);
    let nvme = t.dev();
    let edu = EduDevice::open(&edu_addr(), EDU_POLL).unwrap_or_else(|e| panic!("edu in its own domain: {e}"));
    assert_ne!(edu.domain().id(), nvme.domain().id());
    conformance::foreign_region(&edu, nvme).unwrap_or_else(|e| panic!("edu region, NVMe queue: {e}"));
    conformance::foreign_region(nvme, &edu).unwrap_or_else(|e| panic!("NVMe region, edu queue: {e}"));
    let (a, b) = (edu.registrar().unwrap().vfio_stats(), nvme.registrar().unwrap().vfio_stats());
    assert_eq!((a.devices, b.devices), (1, 1), "one device per container");
    drop(edu);
}

/// The example's flow: a block read by the controller into a region, DMAed
/// by edu out of the same region (and back into its second half). The
/// region costs exactly one registration and one VFIO_IOMMU_MAP_DMA (the
/// domain's and the kernel's counts), the CPU copies nothing, and edu
/// returns the bytes the kernel's own driver reads at LBA 0.
#[test]
fn nvme_to_edu_moves_a_block_with_one_mapping() {
    // The kernel's view of LBA 0, before the controller is taken (nothing
    // in this flow writes the disk).
    let expected = {
        let _g = common::lock();
        let disk = kernel_block_device(&common::nvme_addr());
        let mut b = vec![0u8; nvme_to_edu::BLOCK];
        std::fs::File::open(&disk)
            .and_then(|mut f| f.read_exact(&mut b))
            .unwrap_or_else(|e| panic!("reading {}: {e}", disk.display()));
        b
    };
    let t = Taken::new(TAKE_IRQ);
    let nvme = t.dev();
    let edu = EduDevice::open_in(nvme.domain(), &edu_addr(), EduOptions::default()).unwrap();
    let r = nvme_to_edu::move_block(nvme, &edu, 0).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{r:?}");
    assert!(r.block == expected, "the controller read other bytes than the kernel's driver at LBA 0");
    assert_eq!(&r.block[1080..1082], &[0x53, 0xef], "the scratch disk is ext4 (superblock magic at byte 1080)");
    assert!(r.echoed == r.block, "edu gave back other bytes than the controller wrote");
    assert_eq!((r.domain_pins, r.map_dma_calls, r.kernel_mappings, r.unmap_dma_calls), (1, 1, 1, 1), "{r:?}");
    assert_eq!((r.nvme.bytes_copied, r.edu.bytes_copied), (0, 0));
    assert_eq!((r.nvme.bytes_read, r.edu.bytes_written, r.edu.bytes_read), (4096, 4096, 4096));
    assert_eq!((r.nvme.pins, r.edu.pins), (1, 1), "both devices report the domain's one registration");
    assert!(r.iova + 2 * nvme_to_edu::BLOCK as u64 <= 1 << 28, "IOVA {:#x} within edu's mask", r.iova);
    drop(edu);
}

/// A region registered before edu joins the domain works for edu too: the
/// mapping is the container's, not a device's.
#[test]
fn a_region_registered_before_edu_joined_serves_edu() {
    let t = Taken::new(TAKE_POLL);
    let nvme = t.dev();
    let region = nvme.alloc(4096).unwrap();
    assert!(matches!(region.key().registration, Registration::Own(_)));
    let edu = EduDevice::open_in(nvme.domain(), &edu_addr(), EDU_POLL).unwrap();
    let mut q = edu.queue(1).unwrap();
    let mut s = region.slice(0, 100).unwrap();
    s.copy_from_slice(&conformance::pattern(9, 100));
    let (_, s) = q.write_at(s, 0).unwrap();
    drop(s);
    let (_, back) = q.read_at(region.slice(100, 100).unwrap(), 0).unwrap();
    assert!(back[..] == conformance::pattern(9, 100)[..]);
    drop((back, q, region, edu));
}
