//! Targets other than a file on ext4: tmpfs (no real O_DIRECT) and a loop
//! device with direct IO (block device: size from BLKGETSIZE64, alignment
//! from the logical block size).

mod common;

use common::Scratch;
use pinio_core::conformance::{self, Plan};
use pinio_core::{Device, Error};
use pinio_file::FileTarget;
use pinio_uring::{FileDevice, UringDevice, UringOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

#[test]
fn tmpfs_without_real_direct_io_is_unsupported() {
    let shm = Path::new("/dev/shm");
    let Ok(fs) = std::fs::metadata(shm) else {
        eprintln!("SKIP: no /dev/shm on this machine");
        return;
    };
    assert!(fs.is_dir());
    let f = Scratch::in_dir(shm, "tmpfs", 1 << 20);
    // Only meaningful where statx reports no DIO alignment (tmpfs).
    if FileTarget::open(&f.path, true, false).is_ok_and(|t| t.dio.is_some()) {
        eprintln!("SKIP: /dev/shm reports real direct IO here");
        return;
    }
    match UringDevice::open(&f.path, UringOptions::default()) {
        Err(Error::Unsupported { what, hint }) => {
            assert!(what.contains("/dev/shm"), "{what}");
            assert!(hint.contains("tmpfs") || hint.contains("copy backend"), "{hint}");
        }
        other => panic!("O_DIRECT on tmpfs must be refused, got {other:?}"),
    }
    // Buffered IO works there and says that the CPU copies.
    let dev = UringDevice::open(&f.path, UringOptions { direct: false, ..UringOptions::default() }).unwrap();
    assert!(dev.capabilities().cpu_copies);
    conformance::round_trips(&dev, &Plan { sizes: vec![4096, 65536], ..Plan::default() }).unwrap();
}

/// A loop device over a file, detached on drop.
struct LoopDevice {
    dev: PathBuf,
}

impl LoopDevice {
    fn attach(file: &Path) -> Option<LoopDevice> {
        let out = Command::new("losetup").args(["-f", "--show", "--direct-io=on"]).arg(file).output().ok()?;
        if !out.status.success() {
            eprintln!("losetup failed: {}", String::from_utf8_lossy(&out.stderr));
            return None;
        }
        let dev = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
        Some(LoopDevice { dev })
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.dev).status();
        // A detach while the kernel still holds the device (a ring being torn
        // down) is deferred until the last close; wait for it briefly.
        let name = self.dev.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let backing = PathBuf::from(format!("/sys/block/{name}/loop/backing_file"));
        for _ in 0..50 {
            if !backing.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

#[test]
fn loop_device_with_direct_io() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP: loop devices need root");
        return;
    }
    let f = Scratch::new("loop", 32 << 20);
    let Some(lo) = LoopDevice::attach(&f.path) else {
        eprintln!("SKIP: losetup is not available or has no free loop device");
        return;
    };
    let dev = UringDevice::open(&lo.dev, UringOptions::default()).unwrap();
    let caps = dev.capabilities().clone();
    assert_eq!(caps.device_size, 32 << 20, "size from BLKGETSIZE64, not fstat");
    assert!(caps.offset_align >= 512 && caps.mem_align >= 512, "{caps:?}");
    let plan = Plan { sizes: vec![512, 4096, 65536, 1 << 20, 8 << 20], ..Plan::default() };
    conformance::round_trips(&dev, &plan).unwrap();
    conformance::bad_inputs(&dev).unwrap();
    let s = dev.stats();
    assert_eq!((s.bytes_copied, s.unregistered_fallbacks), (0, 0), "{s}");
    // A block device's size is the device's: resizing is refused, typed.
    let refused = |e: Error| matches!(&e, Error::Unsupported { hint, .. } if hint == "a block device's size is the device's; resize the device itself");
    assert!(refused(dev.set_len(16 << 20).unwrap_err()));
    assert!(refused(dev.grow(64 << 20).unwrap_err()));
    assert!(refused(dev.allocate(32 << 20, 4096).unwrap_err()));
    assert_eq!(
        (dev.allocate(0, 4096).unwrap(), dev.grow(4096).unwrap(), dev.refresh_size().unwrap()),
        (32 << 20, 32 << 20, 32 << 20)
    );
    assert!(refused(
        UringDevice::open(&lo.dev, UringOptions { create: Some(64 << 20), ..UringOptions::default() }).unwrap_err()
    ));
    // Strict copy on the block device requires what uring does.
    let copy =
        pinio_copy::CopyDevice::open(&lo.dev, pinio_copy::CopyOptions { strict: true, ..Default::default() }).unwrap();
    let c = copy.capabilities();
    assert_eq!((c.mem_align, c.offset_align, c.len_align), (caps.mem_align, caps.offset_align, caps.len_align));
    drop(copy);
    drop(dev);
    drop(lo);
}
