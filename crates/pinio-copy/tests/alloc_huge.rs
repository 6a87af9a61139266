//! `Domain::alloc` (through `Device::alloc`): whole 2 MiB multiples come
//! 2 MiB-aligned with `MADV_HUGEPAGE`, other sizes as ordinary pages, and
//! no size is rounded up beyond whole pages.

use pinio_copy::{CopyDevice, CopyOptions};
use pinio_core::Device;

const HUGE: usize = 2 << 20;

/// The `VmFlags` line of the mapping holding `addr` in /proc/self/smaps.
fn vm_flags(addr: usize) -> String {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let mut inside = false;
    for line in smaps.lines() {
        if let Some((range, _)) = line.split_once(' ')
            && let Some((lo, hi)) = range.split_once('-')
            && let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
        {
            inside = (lo..hi).contains(&addr);
        } else if inside && let Some(flags) = line.strip_prefix("VmFlags:") {
            return flags.trim().to_string();
        }
    }
    panic!("no mapping holds {addr:#x}")
}

fn thp_compiled_in() -> bool {
    std::path::Path::new("/sys/kernel/mm/transparent_hugepage/enabled").exists()
}

#[test]
fn whole_huge_pages_are_aligned_and_advised_others_are_not() {
    let p = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("copy-huge-{}", std::process::id()));
    std::fs::write(&p, vec![0u8; 4096]).unwrap();
    let dev = CopyDevice::open(&p, CopyOptions::default()).unwrap();

    let big = dev.alloc(2 * HUGE).unwrap();
    assert_eq!(big.len(), 2 * HUGE);
    assert_eq!(big.as_ptr() as usize % HUGE, 0, "2 MiB-aligned");
    if thp_compiled_in() {
        let flags = vm_flags(big.as_ptr() as usize);
        assert!(flags.split(' ').any(|f| f == "hg"), "MADV_HUGEPAGE set: {flags}");
    }

    // 3 MiB: not a whole number of huge pages, so not rounded up to 4 MiB.
    let odd = dev.alloc(3 << 20).unwrap();
    assert_eq!(odd.len(), 3 << 20);
    if thp_compiled_in() {
        let flags = vm_flags(odd.as_ptr() as usize);
        assert!(!flags.split(' ').any(|f| f == "hg"), "no advice for other sizes: {flags}");
    }
    let small = dev.alloc(8192).unwrap();
    assert_eq!(small.len(), 8192);
    std::fs::remove_file(&p).unwrap();
}
