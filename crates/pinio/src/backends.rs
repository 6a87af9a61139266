//! The backend crates, re-exported inline as modules of the facade, each
//! behind its cargo feature (badged on docs.rs). `copy` and `uring` have
//! examples that run on the host; the others need a kernel with `pinio.ko`
//! or an IOMMU with the device bound, so their examples are compiled only.

/// The `copy:` backend: `pread`/`pwrite` through bounce buffers, the
/// baseline every zero-copy path is compared with.
///
/// # Example
///
/// ```
/// use pinio::copy::{CopyDevice, CopyOptions};
/// use pinio::{Device, Queue};
/// # let path = std::env::temp_dir().join(format!("pinio-doc-{}-copy", std::process::id()));
/// let dev = CopyDevice::open(&path, CopyOptions { create: Some(1 << 20), ..Default::default() })?;
/// let region = dev.alloc(4096)?;
/// let mut q = dev.queue(8)?;
/// let mut s = region.slice(0, 4096)?;
/// s.fill(7);
/// let (_, s) = q.write_at(s, 0)?;
/// let (n, s) = q.read_at(s, 0)?;
/// assert_eq!((n, s[4095]), (4096, 7));
/// // Every byte crossed the CPU twice per operation: page cache <-> bounce buffer <-> slice.
/// assert_eq!(dev.stats().bytes_copied, 2 * 2 * 4096);
/// # drop((s, q, region, dev)); std::fs::remove_file(&path).ok();
/// # Ok::<(), pinio::Error>(())
/// ```
#[doc(inline)]
pub use pinio_copy as copy;

/// The `uring:` backend: io_uring registered (fixed) buffers with
/// `O_DIRECT`, and `SEND_ZC` over TCP.
///
/// # Example
///
/// ```
/// use pinio::uring::{UringDevice, UringOptions};
/// use pinio::{Device, Queue};
/// // O_DIRECT needs a file system that has it: /var/tmp, not tmpfs.
/// # let path = std::path::Path::new("/var/tmp").join(format!("pinio-doc-{}-uring", std::process::id()));
/// let dev = UringDevice::open(&path, UringOptions { create: Some(1 << 20), ..Default::default() })?;
/// let region = dev.alloc(1 << 20)?;                 // one fixed-buffer registration
/// let mut q = dev.queue(32)?;
/// let mut s = region.slice(0, 4096)?;
/// s.fill(7);
/// let (_, s) = q.write_at(s, 0)?;                   // WRITE_FIXED, straight from the region
/// let (n, s) = q.read_at(s, 0)?;                    // READ_FIXED, straight into it
/// assert_eq!((n, s[0]), (4096, 7));
/// assert_eq!(dev.stats().bytes_copied, 0);           // zero-copy
/// # drop((s, q, region, dev)); std::fs::remove_file(&path).ok();
/// # Ok::<(), pinio::Error>(())
/// ```
#[cfg(feature = "uring")]
#[cfg_attr(docsrs, doc(cfg(feature = "uring")))]
#[doc(inline)]
pub use pinio_uring as uring;

/// The `kmod:` backend: pinio's kernel module (`/dev/pinio`), which pins
/// regions with `pin_user_pages` and moves data with an echo DMA engine.
///
/// # Example
///
/// Needs `pinio.ko` loaded (`cargo xtask vm run -- pinio echo kmod:/dev/pinio`
/// runs the same in pinio's guest).
///
/// ```no_run
/// use pinio::kmod::KmodDevice;
/// use pinio::{Device, Queue};
/// let dev = KmodDevice::open("/dev/pinio")?;        // one session: one domain
/// let half = pinio::open_in(dev.domain(), "kmod:/dev/pinio#1/2")?; // a channel in it
/// let region = dev.alloc(1 << 20)?;                // pinned once, for both
/// let mut s = region.slice(0, 4096)?;
/// s.fill(7);
/// let (_, s) = dev.queue(4)?.write_at(s, 0)?;      // the DMA engine reads the pinned page
/// let (n, s) = half.queue(4)?.read_at(s, 0)?;      // and another window fills it
/// assert_eq!(n, 4096);
/// assert_eq!(dev.stats().bytes_copied, 0);
/// # drop(s);
/// # Ok::<(), pinio::Error>(())
/// ```
#[cfg(feature = "kmod")]
#[cfg_attr(docsrs, doc(cfg(feature = "kmod")))]
#[doc(inline)]
pub use pinio_kmod as kmod;

/// The VFIO platform: containers as domains, IOMMU mapping, PCI binding.
///
/// # Example
///
/// Needs an IOMMU and the device bound to `vfio-pci` (or `take_from_driver`).
///
/// ```no_run
/// use pinio::vfio::{VfioDomainOptions, VfioRegistrar};
/// use pinio::Device;
/// let domain = VfioRegistrar::domain(VfioDomainOptions::default())?; // one container
/// let edu = pinio::open_in(&domain, "vfio:0000:00:01.0")?;
/// let nvme = pinio::open_in(&domain, "nvme:0000:01:00.0")?;
/// let region = domain.alloc(4096)?;   // one IOMMU mapping, reached by both devices
/// assert_eq!(edu.domain().id(), nvme.domain().id());
/// # drop(region);
/// # Ok::<(), pinio::Error>(())
/// ```
#[cfg(feature = "vfio")]
#[cfg_attr(docsrs, doc(cfg(feature = "vfio")))]
#[doc(inline)]
pub use pinio_vfio as vfio;

/// The `vfio:` backend: a userspace driver for QEMU's `edu` DMA device.
///
/// # Example
///
/// Needs QEMU's `-device edu` and an IOMMU (pinio's guest has both).
///
/// ```no_run
/// use pinio::edu::{EduDevice, EduOptions};
/// use pinio::{Device, Queue};
/// let edu = EduDevice::open(&"0000:00:01.0".parse()?, EduOptions::default())?;
/// let region = edu.alloc(4096)?;
/// let mut q = edu.queue(4)?;
/// let mut s = region.slice(0, 5)?;
/// s.copy_from_slice(b"hello");
/// let (_, s) = q.write_at(s, 0)?; // edu's DMA engine reads the slice through the IOMMU
/// let (_, s) = q.read_at(s, 0)?;  // and writes it back
/// assert_eq!(&s[..], b"hello");
/// # Ok::<(), pinio::Error>(())
/// ```
#[cfg(feature = "vfio")]
#[cfg_attr(docsrs, doc(cfg(feature = "vfio")))]
#[doc(inline)]
pub use pinio_edu as edu;

/// The `nvme:` backend: a userspace NVMe driver over VFIO.
///
/// # Example
///
/// Needs an NVMe controller the kernel may give up, and an IOMMU.
///
/// ```no_run
/// use pinio::nvme::{NvmeDevice, NvmeOptions};
/// use pinio::{Device, Queue};
/// let opts = NvmeOptions { take_from_driver: true, ..Default::default() };
/// let nvme = NvmeDevice::open(&"0000:01:00.0".parse()?, opts)?;
/// let region = nvme.alloc(1 << 20)?;
/// let mut q = nvme.queue(32)?;               // one NVMe submission/completion queue pair
/// let (n, _s) = q.read_at(region.slice(0, 4096)?, 0)?; // LBA 0, by DMA into the region
/// assert_eq!(n, 4096);
/// # Ok::<(), pinio::Error>(())
/// ```
#[cfg(feature = "nvme")]
#[cfg_attr(docsrs, doc(cfg(feature = "nvme")))]
#[doc(inline)]
pub use pinio_nvme as nvme;

/// The `nvme-uring:` backend: NVMe commands through io_uring passthrough
/// on a namespace's generic character device, with the uring domain's
/// fixed buffers.
///
/// # Example
///
/// Needs an NVMe namespace bound to the kernel's nvme driver, and root.
///
/// ```no_run
/// use pinio::nvme_uring::{NvmeUringDevice, NvmeUringOptions};
/// use pinio::{Device, Queue};
/// let ns = NvmeUringDevice::open("/dev/ng0n1", NvmeUringOptions::default())?;
/// let block = pinio::open_in(ns.domain(), "uring:/dev/nvme0n1")?; // the same buffer table
/// let region = ns.alloc(1 << 20)?;                // one registration for both
/// let (n, s) = ns.queue(32)?.read_at(region.slice(0, 4096)?, 0)?; // NVMe Read, IORING_URING_CMD_FIXED
/// let (m, _s) = block.queue(1)?.read_at(s, 0)?;   // READ_FIXED through the block layer
/// assert_eq!((n, m), (4096, 4096));
/// # Ok::<(), pinio::Error>(())
/// ```
#[cfg(feature = "nvme-uring")]
#[cfg_attr(docsrs, doc(cfg(feature = "nvme-uring")))]
#[doc(inline)]
pub use pinio_nvme_uring as nvme_uring;
