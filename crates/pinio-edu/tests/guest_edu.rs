//! edu through VFIO in the guest: open, identity, registration, DMA round
//! trips in both completion modes, ordering, and the generic conformance
//! checks. Every edu DMA takes 100 ms of virtual time: counts stay small.

mod common;

use common::{driver_of, edu_addr, edu_lock, open_edu};
use pinio_core::conformance::{self, Plan};
use pinio_core::{Device, DmaBuf, HugePages, Op, align_up};
use pinio_edu::{CompletionMode, EduDevice, EduOptions};
use pinio_vfio::{VfioError, VfioRegistrar};
use std::os::fd::AsRawFd;

const POLL: EduOptions = EduOptions { take_from_driver: false, completion: CompletionMode::Poll };

/// An edu with no driver is bound to vfio-pci by `open` (driver_override +
/// drivers_probe), whatever happened earlier in this boot.
#[test]
fn open_binds_an_unbound_device() {
    let _g = edu_lock();
    common::require_guest();
    let bdf = edu_addr();
    let dev = std::path::Path::new("/sys/bus/pci/devices").join(bdf.to_string());
    if driver_of(&bdf).is_some() {
        std::fs::write(dev.join("driver/unbind"), bdf.to_string()).unwrap();
    }
    std::fs::write(dev.join("driver_override"), "\n").unwrap();
    assert_eq!(driver_of(&bdf), None, "unbound before the test");
    let edu = open_edu(EduOptions::default());
    assert_eq!(driver_of(&bdf).as_deref(), Some("vfio-pci"));
    assert_eq!(std::fs::read_to_string(dev.join("driver_override")).unwrap().trim(), "vfio-pci");
    drop(edu);
}

#[test]
fn open_binds_to_vfio_pci_and_reports_the_iommu() {
    let _g = edu_lock();
    let edu = open_edu(EduOptions::default());
    assert_eq!(driver_of(&edu_addr()).as_deref(), Some("vfio-pci"));
    let info = edu.iommu_info().unwrap();
    assert_eq!(info.page_sizes & 0x1000, 0x1000, "4 KiB IOMMU pages: {info:?}");
    assert!(info.iova_ranges.iter().any(|&(s, e)| s == 0 && e >= 1 << 28), "low IOVAs usable: {info:?}");
    assert!(info.dma_avail.unwrap_or(0) > 0, "{info:?}");
    let caps = edu.capabilities();
    assert_eq!((caps.backend, caps.device_size, caps.max_transfer, caps.cpu_copies), ("vfio", 4096, 4096, false));
    assert!(caps.max_pinned_bytes.unwrap() <= 1 << 28);
    assert!(edu.describe().contains(&edu_addr().to_string()) && edu.describe().contains("MSI"), "{}", edu.describe());
    let caps = edu.capabilities();
    assert_eq!((caps.sharing, caps.register_align), (pinio_core::RegistrationSharing::Domain, 4096));
    assert!(matches!(edu.queue(caps.max_queue_depth + 1), Err(pinio_core::Error::QueueTooDeep { .. })));
    let reg = edu.registrar().unwrap();
    assert_eq!((reg.dma_bits(), reg.devices()), (28, vec![edu_addr()]));
}

fn plan(seed: u64) -> Plan {
    Plan { sizes: vec![1, 7, 100, 511, 1000, 2049, 4095, 4096], unaligned: true, seed, depth: 4, window: (0, 4096) }
}

#[test]
fn round_trips_with_msi_completions() {
    let _g = edu_lock();
    let edu = open_edu(EduOptions::default());
    let r = conformance::round_trips(&edu, &plan(0x5eed)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.sizes, 8);
    let s = edu.stats();
    assert_eq!((s.bytes_copied, s.errors), (0, 0), "{s}");
    assert_eq!(s.bytes_read, s.bytes_written);
    assert_eq!(s.pins, s.unpins, "every region was unregistered: {s}");
}

#[test]
fn round_trips_with_polled_completions() {
    let _g = edu_lock();
    let edu = open_edu(POLL);
    assert!(edu.describe().contains("polled"));
    assert!(edu.queue(1).unwrap().event_fd().is_none(), "no interrupt, no eventfd");
    let p = Plan { sizes: vec![3, 600, 4096], ..plan(0xb0b) };
    conformance::round_trips(&edu, &p).unwrap_or_else(|e| panic!("{e}"));
}

/// A flush is a drain (edu's buffer does not outlive the device): the
/// writes pushed before it have completed when it returns, in both
/// completion modes, and their completions wait for the next poll.
#[test]
fn flush_drains_in_both_completion_modes() {
    let _g = edu_lock();
    for opts in [EduOptions::default(), POLL] {
        let edu = open_edu(opts);
        assert_eq!(edu.capabilities().persistence, pinio_core::Persistence::None);
        conformance::flush_drains(&edu).unwrap_or_else(|e| panic!("{:?}: {e}", opts.completion));
        assert_eq!(edu.stats().errors, 0);
    }
}

#[test]
fn bad_inputs_get_typed_errors() {
    let _g = edu_lock();
    let edu = open_edu(EduOptions::default());
    conformance::bad_inputs(&edu).unwrap_or_else(|e| panic!("{e}"));
    assert!(edu.queue(0).is_err());
}

#[test]
fn two_threads_share_the_one_engine() {
    let _g = edu_lock();
    let edu = open_edu(EduOptions::default());
    conformance::concurrent_round_trips(&edu, 2, &[100, 2000]).unwrap_or_else(|e| panic!("{e}"));
}

/// Four writes queued at once run one after another and complete in order;
/// the eventfd signals before `poll` is called.
#[test]
fn queued_operations_complete_in_order_and_signal_the_eventfd() {
    let _g = edu_lock();
    let edu = open_edu(EduOptions::default());
    let region = edu.alloc(4096).unwrap();
    let mut q = edu.queue(4).unwrap();
    let fd = q.event_fd().expect("MSI mode has an eventfd").as_raw_fd();
    let data = conformance::pattern(42, 4096);
    for i in 0..4 {
        let mut s = region.slice(i * 1024, 1024).unwrap();
        s.copy_from_slice(&data[i * 1024..(i + 1) * 1024]);
        q.push(Op::write(s, (i * 1024) as u64, i as u64)).unwrap();
    }
    assert_eq!(q.submit().unwrap(), 4);
    // Sleep in poll(2) on the eventfd as an epoll user would.
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd on this stack frame.
    let r = unsafe { libc::poll(&mut p, 1, 5000) };
    assert_eq!(r, 1, "the MSI eventfd became readable");
    let mut out = Vec::new();
    while out.len() < 4 {
        q.wait(1, &mut out).unwrap();
    }
    let tags: Vec<u64> = out.iter().map(|c| c.tag).collect();
    assert_eq!(tags, vec![0, 1, 2, 3], "single engine, FIFO order");
    drop(out);
    // Read the whole buffer back into another region.
    let back = edu.alloc(4096).unwrap();
    let (n, s) = q.read_at(back.slice_all().unwrap(), 0).unwrap();
    assert_eq!(n, 4096);
    assert_eq!(&s[..], &data[..]);
}

/// A 64 MiB region is one IOMMU mapping (the kernel's count of mappings left
/// drops by one, and the domain made one VFIO_IOMMU_MAP_DMA call), its IOVA
/// is below edu's 28-bit mask, and DMA reaches its last page.
#[test]
fn a_large_region_is_mapped_once() {
    let _g = edu_lock();
    let edu = open_edu(EduOptions::default());
    let before = edu.query_iommu().unwrap().dma_avail.expect("kernel reports DMA mappings left");
    let calls = edu.registrar().unwrap().vfio_stats();
    let len = 64 << 20;
    let region = edu.register(DmaBuf::builder(len).populate(true).build().unwrap()).unwrap();
    let after = edu.query_iommu().unwrap().dma_avail.unwrap();
    assert_eq!(before - after, 1, "one mapping for {len} bytes");
    let now = edu.registrar().unwrap().vfio_stats();
    assert_eq!((now.map_dma_calls - calls.map_dma_calls, now.mappings - calls.mappings), (1, 1), "{now:?}");
    assert!(matches!(region.key().registration, pinio_core::Registration::Own(_)), "{:?}", region.key());
    let iova = region.key().device_addr;
    assert!(iova + len as u64 <= 1 << 28, "IOVA {iova:#x} within the DMA mask");
    let mut q = edu.queue(2).unwrap();
    let mut s = region.slice(len - 4096, 4096).unwrap();
    let data = conformance::pattern(7, 4096);
    s.copy_from_slice(&data);
    let (_, s) = q.write_at(s, 0).unwrap();
    drop(s);
    let (_, s) = q.read_at(region.slice(len - 8192, 4096).unwrap(), 0).unwrap();
    assert_eq!(&s[..], &data[..]);
    drop((s, q));
    region.unregister().unwrap();
    assert_eq!(edu.query_iommu().unwrap().dma_avail.unwrap(), before, "unregistering gave the mapping back");
}

/// A transparent-huge-page region gets an IOVA aligned like its virtual
/// address modulo 2 MiB, so the IOMMU can use 2 MiB pages.
#[test]
fn huge_page_regions_get_huge_aligned_iovas() {
    let _g = edu_lock();
    let edu = open_edu(POLL);
    let buf = DmaBuf::builder(4 << 20).huge_pages(HugePages::Transparent).populate(true).build().unwrap();
    assert_eq!(buf.as_ptr() as u64 % (2 << 20), 0);
    let region = edu.register(buf).unwrap();
    assert_eq!(region.key().device_addr % (2 << 20), 0, "{:?}", region.key());
    let mut q = edu.queue(1).unwrap();
    let off = (2 << 20) + 4000;
    let mut s = region.slice(off, 300).unwrap();
    s.fill(0x5a);
    let (_, s) = q.write_at(s, 3000).unwrap();
    drop(s);
    let (_, s) = q.read_at(region.slice(100, 300).unwrap(), 3000).unwrap();
    assert!(s.iter().all(|&b| b == 0x5a));
    assert_eq!(align_up(region.len() as u64, 4096), Some(4 << 20));
}

/// A region whose slice is in flight cannot be unregistered: the IOMMU
/// mapping stays until the transfer is back, then goes.
#[test]
fn a_region_in_flight_stays_mapped() {
    let _g = edu_lock();
    let edu = open_edu(EduOptions::default());
    let before = edu.query_iommu().unwrap().dma_avail.unwrap();
    let region = edu.alloc(4096).unwrap();
    let mut q = edu.queue(1).unwrap();
    q.push(Op::read(region.slice(0, 4096).unwrap(), 0, 1)).unwrap();
    q.submit().unwrap();
    let region = match region.unregister() {
        Err(pinio_core::UnregisterError::Busy { region, outstanding: 1 }) => region,
        other => panic!("expected Busy with the slice in flight, got {other:?}"),
    };
    assert_eq!(edu.query_iommu().unwrap().dma_avail.unwrap(), before - 1, "still mapped");
    let mut out = Vec::new();
    q.wait(1, &mut out).unwrap();
    out[0].result.as_ref().unwrap();
    drop(out);
    region.unregister().unwrap();
    assert_eq!(edu.query_iommu().unwrap().dma_avail.unwrap(), before, "unmapped once the slice came back");
}

/// Slices of an edu region are refused by another device's queue, and the
/// other way round (a copy-backend device on a scratch file stands in for
/// "another device": the guest has one edu).
#[test]
fn foreign_regions_are_refused_both_ways() {
    let _g = edu_lock();
    let edu = open_edu(EduOptions::default());
    let path = std::env::temp_dir().join(format!("pinio-vfio-foreign-{}", std::process::id()));
    std::fs::write(&path, vec![0u8; 8192]).unwrap();
    let other = pinio_copy::CopyDevice::open(&path, pinio_copy::CopyOptions::default()).unwrap();
    conformance::foreign_region(&edu, &other).unwrap_or_else(|e| panic!("edu region, copy queue: {e}"));
    conformance::foreign_region(&other, &edu).unwrap_or_else(|e| panic!("copy region, edu queue: {e}"));
    std::fs::remove_file(path).unwrap();
}

/// A second driver of the same device in the same domain is refused; once
/// the first is gone the domain hands the device out again (it stays in the
/// container while the domain lives), and a region registered before still
/// works with the new driver.
#[test]
fn one_driver_per_device_in_a_domain_and_reopening_in_it() {
    let _g = edu_lock();
    let edu = open_edu(EduOptions::default());
    let domain = edu.domain().clone();
    let e = EduDevice::open_in(&domain, &edu_addr(), EduOptions::default()).unwrap_err();
    assert!(matches!(VfioError::find(&e), Some(VfioError::DeviceInUse { .. })), "{e}");
    let region = edu.alloc(4096).unwrap();
    let mut q = edu.queue(1).unwrap();
    let mut s = region.slice(0, 64).unwrap();
    s.fill(0x3c);
    let (_, s) = q.write_at(s, 0).unwrap();
    drop((q, s, edu));
    let again =
        EduDevice::open_in(&domain, &edu_addr(), POLL).unwrap_or_else(|e| panic!("reopening in the domain: {e}"));
    assert_eq!(VfioRegistrar::of(&domain, "vfio").unwrap().devices(), vec![edu_addr()], "the device joined once");
    let mut q = again.queue(1).unwrap();
    let (_, s) = q.read_at(region.slice(64, 64).unwrap(), 0).unwrap();
    assert!(s.iter().all(|&b| b == 0x3c), "edu's buffer and the old region both still work");
}

/// A domain whose DMA limit exceeds edu's 28-bit mask refuses edu, saying
/// why, before the device is bound or opened.
#[test]
fn a_domain_wider_than_edus_mask_is_refused() {
    let _g = edu_lock();
    common::require_guest();
    let wide = VfioRegistrar::domain(pinio_vfio::VfioDomainOptions { dma_bits: 39 }).unwrap();
    let e = EduDevice::open_in(&wide, &edu_addr(), EduOptions::default()).unwrap_err();
    assert!(
        matches!(VfioError::find(&e), Some(VfioError::DmaMaskTooSmall { device_bits: 28, domain_bits: 39, .. })),
        "{e}"
    );
    assert!(e.to_string().contains("dma_bits: 28"), "{e}");
    assert_eq!(VfioRegistrar::of(&wide, "vfio").unwrap().devices(), vec![], "nothing joined");
    // Registering in a domain with no device is refused too.
    let r = wide.alloc(4096).unwrap_err();
    assert!(matches!(VfioError::find(&r), Some(VfioError::NoDevice)), "{r}");
}
