//! Registration cost per 4 KiB page: pinio's `EduDevice::register` (the
//! domain's checks and statistics, IOVA allocation, one
//! `VFIO_IOMMU_MAP_DMA`, the Region) against a raw
//! `VFIO_IOMMU_MAP_DMA` ioctl on the same container, same buffer, same boot.
//! Goal: pinio at most 1.1x raw.
//!
//! Runs in the guest (`cargo xtask vm bench`); writes JSON to the path in
//! `PINIO_BENCH_OUT`, or to stdout.

use pinio_core::{Device, DmaBuf, HugePages};
use pinio_edu::{CompletionMode, EduDevice, EduOptions};
use serde_json::json;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;
use vfio_bindings::bindings::vfio::{
    VFIO_BASE, VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_WRITE, VFIO_TYPE, vfio_iommu_type1_dma_map,
    vfio_iommu_type1_dma_unmap,
};

/// `_IO(VFIO_TYPE, VFIO_BASE + 13)` and `+ 14` (include/uapi/linux/vfio.h).
const MAP_DMA: libc::c_ulong = ((VFIO_TYPE as libc::c_ulong) << 8) | (VFIO_BASE as libc::c_ulong + 13);
const UNMAP_DMA: libc::c_ulong = ((VFIO_TYPE as libc::c_ulong) << 8) | (VFIO_BASE as libc::c_ulong + 14);

fn raw_map(fd: RawFd, iova: u64, buf: &DmaBuf) -> u64 {
    let m = vfio_iommu_type1_dma_map {
        argsz: std::mem::size_of::<vfio_iommu_type1_dma_map>() as u32,
        flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
        vaddr: buf.as_ptr() as u64,
        iova,
        size: buf.len() as u64,
    };
    let t = Instant::now();
    // SAFETY: maps `buf`, which stays alive and is not touched until the
    // unmap below; edu is never programmed with this IOVA.
    let r = unsafe { libc::ioctl(fd, MAP_DMA as _, &m) };
    let ns = t.elapsed().as_nanos() as u64;
    assert_eq!(r, 0, "raw VFIO_IOMMU_MAP_DMA: {}", std::io::Error::last_os_error());
    ns
}

fn raw_unmap(fd: RawFd, iova: u64, len: u64) {
    let mut u = vfio_iommu_type1_dma_unmap {
        argsz: std::mem::size_of::<vfio_iommu_type1_dma_unmap>() as u32,
        iova,
        size: len,
        ..Default::default()
    };
    // SAFETY: unmaps the range mapped by `raw_map`; the struct is ours.
    let r = unsafe { libc::ioctl(fd, UNMAP_DMA as _, &mut u) };
    assert_eq!(r, 0, "raw VFIO_IOMMU_UNMAP_DMA: {}", std::io::Error::last_os_error());
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::MAX, f64::min)
}

/// Maps the same prefaulted buffer `reps` times each way at the same IOVA
/// (where pinio's allocator put it), alternating which goes first so that
/// neither always follows the other's unmap.
fn case(edu: &EduDevice, name: &str, len: usize, huge: HugePages, reps: usize) -> serde_json::Value {
    let fd = edu.registrar().expect("a VFIO domain").container_fd().as_raw_fd();
    let mut buf = DmaBuf::builder(len).huge_pages(huge).populate(true).build().expect("buffer");
    let pages = (len / 4096) as f64;
    let (mut pinio, mut raw) = (Vec::new(), Vec::new());
    let mut iova = None;
    for rep in 0..=reps {
        let time_pinio = |buf: DmaBuf| {
            let t = Instant::now();
            let region = edu.register(buf).expect("pinio register");
            let ns = t.elapsed().as_nanos() as f64;
            let at = region.key().device_addr;
            (ns, at, region.unregister().expect("unregister"))
        };
        let (p, r);
        if rep % 2 == 0 {
            let (ns, at, b) = time_pinio(buf);
            (p, buf) = (ns, b);
            iova = Some(at);
            r = raw_map(fd, at, &buf) as f64;
            raw_unmap(fd, at, len as u64);
        } else {
            // The IOVA pinio used last: free in its allocator right now,
            // and nothing else registers meanwhile (one thread).
            let at = iova.expect("set by rep 0");
            r = raw_map(fd, at, &buf) as f64;
            raw_unmap(fd, at, len as u64);
            let (ns, at2, b) = time_pinio(buf);
            (p, buf) = (ns, b);
            assert_eq!(at2, at, "first fit gives the same IOVA back");
        }
        if rep > 0 {
            // Repetition 0 warms both paths up.
            pinio.push(p / pages);
            raw.push(r / pages);
        }
    }
    let (pm, rm) = (median(&mut pinio.clone()), median(&mut raw.clone()));
    // Each pair ran back to back, under the same load: the median of the
    // pairs' ratios is the statistic least disturbed by a busy host.
    let mut pairs: Vec<f64> = pinio.iter().zip(&raw).map(|(p, r)| p / r).collect();
    let pair_ratio = median(&mut pairs);
    json!({
        "case": name,
        "bytes": len,
        "pages_4k": len / 4096,
        "iova": iova,
        "huge_page_bytes": buf.huge_page_bytes(),
        "reps": reps,
        "pinio_ns_per_page": pinio,
        "raw_ns_per_page": raw,
        "pinio_median_ns_per_page": pm,
        "raw_median_ns_per_page": rm,
        "pinio_min_ns_per_page": min(&pinio),
        "raw_min_ns_per_page": min(&raw),
        "ratio": pm / rm,
        "median_pair_ratio": pair_ratio,
        "ratio_of_minima": min(&pinio) / min(&raw),
    })
}

fn main() {
    // `cargo bench` passes --bench; nothing else is expected.
    let sysfs = pinio_vfio::Sysfs::system();
    let pci =
        sysfs.first_with_ids(0x1234, 0x11e8).expect("no edu (1234:11e8): run in the guest with cargo xtask vm bench");
    let edu = EduDevice::open(&pci, EduOptions { take_from_driver: false, completion: CompletionMode::Poll })
        .expect("open edu");
    let cases = vec![
        case(&edu, "8 MiB, 4 KiB pages (prefaulted)", 8 << 20, HugePages::Never, 161),
        case(&edu, "8 MiB, transparent huge pages (prefaulted)", 8 << 20, HugePages::Transparent, 161),
        case(&edu, "4 KiB region (fixed cost per registration)", 4096, HugePages::Never, 801),
    ];
    let goal_met = cases[..2].iter().all(|c| c["median_pair_ratio"].as_f64().unwrap_or(f64::MAX) <= 1.1);
    let out = json!({
        "benchmark": "pinio-edu (VFIO domain) registration vs raw VFIO_IOMMU_MAP_DMA",
        "device": pci.to_string(),
        "unit": "ns per 4 KiB page (median of reps)",
        "goal": "pinio <= 1.1x raw for 8 MiB regions (median of back-to-back pair ratios)",
        "goal_met": goal_met,
        "cases": cases,
    });
    let text = serde_json::to_string_pretty(&out).unwrap();
    match std::env::var_os("PINIO_BENCH_OUT") {
        Some(p) => std::fs::write(&p, &text).unwrap_or_else(|e| panic!("writing {}: {e}", p.to_string_lossy())),
        None => println!("{text}"),
    }
    for c in out["cases"].as_array().unwrap() {
        eprintln!(
            "{}: pinio/raw per pair (median) {:.3}; medians {:.0} / {:.0} ns per page = {:.3}; minima {:.0} / {:.0} = {:.3}",
            c["case"],
            c["median_pair_ratio"],
            c["pinio_median_ns_per_page"],
            c["raw_median_ns_per_page"],
            c["ratio"],
            c["pinio_min_ns_per_page"],
            c["raw_min_ns_per_page"],
            c["ratio_of_minima"]
        );
    }
}
