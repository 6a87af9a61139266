//! The IOMMU really isolates: edu DMA aimed at IOVAs outside every mapping
//! is blocked (a DMAR fault in the kernel log) and memory stays untouched.

mod common;

use common::{edu_lock, open_edu};
use pinio_core::{Device, Direction, DmaBuf};
use pinio_edu::EduOptions;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

/// Kernel log lines that appear from now on.
struct Kmsg(std::fs::File);

impl Kmsg {
    fn open() -> Kmsg {
        let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open("/dev/kmsg").unwrap();
        // SAFETY: lseek on an fd we own; SEEK_END skips the existing records.
        unsafe { libc::lseek(std::os::fd::AsRawFd::as_raw_fd(&f), 0, libc::SEEK_END) };
        Kmsg(f)
    }

    /// Waits up to `max` for a line containing every word of `words`.
    fn wait_for(&mut self, words: &[&str], max: Duration) -> Option<String> {
        let t = Instant::now();
        let mut seen = Vec::new();
        loop {
            let mut rec = vec![0u8; 8192];
            match self.0.read(&mut rec) {
                Ok(n) if n > 0 => {
                    let line = String::from_utf8_lossy(&rec[..n]).into_owned();
                    if words.iter().all(|w| line.contains(w)) {
                        return Some(line);
                    }
                    seen.push(line);
                }
                _ => {
                    if t.elapsed() > max {
                        eprintln!("kernel log meanwhile: {seen:#?}");
                        return None;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }
}

/// A buffer mapped, filled, then unmapped: the device aims a 4 KiB write at
/// its old IOVA. The bytes must not change, and the IOMMU must report a
/// fault. The same DMA at a mapped IOVA (control) does change memory.
#[test]
fn dma_outside_every_mapping_faults_and_leaves_memory_untouched() {
    let _g = edu_lock();
    let edu = open_edu(EduOptions::default());
    let mut q = edu.queue(1).unwrap();
    // Put a known pattern into edu's buffer.
    let src = edu.alloc(4096).unwrap();
    let mut s = src.slice_all().unwrap();
    s.fill(0x11);
    let (_, s) = q.write_at(s, 0).unwrap();
    drop(s);

    // Map a buffer of 0xAA, note its IOVA, unmap it (the buffer comes back).
    let mut buf = DmaBuf::new(4096).unwrap();
    buf.fill(0xaa);
    let victim = edu.register(buf).unwrap();
    let old_iova = victim.key().device_addr;
    let buf = victim.unregister().unwrap();

    let mut kmsg = Kmsg::open();
    // SAFETY: nothing is mapped at `old_iova` any more, so the device can
    // reach no memory through it; `buf` is no longer mapped anywhere.
    unsafe { edu.raw_dma(Direction::Read, old_iova, 0, 4096) }.unwrap();
    assert!(buf.iter().all(|&b| b == 0xaa), "the unmapped buffer was not written");
    let fault = kmsg.wait_for(&["DMAR", "fault"], Duration::from_secs(3));
    assert!(fault.is_some(), "the IOMMU reported no fault for IOVA {old_iova:#x}");
    eprintln!("fault reported: {}", fault.unwrap().trim());

    // An IOVA never mapped at all, just below edu's DMA limit.
    let never = (1 << 28) - 0x10_0000;
    // SAFETY: the allocator has handed out nothing this high (one 4 KiB
    // region exists, at the bottom of the space).
    unsafe { edu.raw_dma(Direction::Read, never, 0, 4096) }.unwrap();

    // Control: the same raw DMA at a mapped IOVA does land.
    let dst = edu.alloc(4096).unwrap();
    let iova = dst.key().device_addr;
    // SAFETY: no slice of `dst` exists, so no reference to its memory is live.
    unsafe { edu.raw_dma(Direction::Read, iova, 0, 4096) }.unwrap();
    let s = dst.slice_all().unwrap();
    assert!(s.iter().all(|&b| b == 0x11), "a mapped IOVA receives the DMA");
}

/// The other direction: edu reading from an unmapped IOVA gets none of the
/// bytes that used to be mapped there.
#[test]
fn device_cannot_read_unmapped_memory() {
    let _g = edu_lock();
    let edu = open_edu(EduOptions::default());
    let mut q = edu.queue(1).unwrap();
    let mut secret = DmaBuf::new(4096).unwrap();
    secret.fill(0x5e);
    let r = edu.register(secret).unwrap();
    let old = r.key().device_addr;
    let secret = r.unregister().unwrap();
    // Fill edu's buffer with 0x22 first.
    let a = edu.alloc(4096).unwrap();
    let mut s = a.slice_all().unwrap();
    s.fill(0x22);
    let (_, s) = q.write_at(s, 0).unwrap();
    drop(s);
    // SAFETY: edu reads (memory to device) from an IOVA nothing is mapped
    // at; no memory of this process can be written.
    unsafe { edu.raw_dma(Direction::Write, old, 0, 4096) }.unwrap();
    let (_, s) = q.read_at(a.slice_all().unwrap(), 0).unwrap();
    assert!(!s.contains(&0x5e), "no byte of the unmapped secret reached the device");
    assert!(secret.iter().all(|&b| b == 0x5e));
}
