//! Typed backend selection with options, in a new domain or an existing one.

use crate::{BackendKind, Target};
use pinio_core::{Device, Domain, Error, Result};

/// What to do when registration is refused by the locked-memory limit.
///
/// # Example
///
/// ```
/// # #[cfg(feature = "uring")] { // the example needs the uring backend
/// use pinio::{Device, OnRegistrationRefused};
/// # let path = std::path::Path::new("/var/tmp").join(format!("pinio-doc-{}-refused", std::process::id()));
/// let dev = pinio::Builder::parse(&format!("uring:{}", path.display()))?
///     .create(1 << 20)
///     .on_registration_refused(OnRegistrationRefused::Fallback) // never fail for RLIMIT_MEMLOCK
///     .open()?;
/// let region = dev.alloc(1 << 20)?; // registered, or unregistered with a warning and a statistic
/// println!("ops run unregistered so far: {}", dev.stats().unregistered_fallbacks);
/// # drop((region, dev)); std::fs::remove_file(&path).ok();
/// # }
/// # Ok::<(), pinio::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnRegistrationRefused {
    /// Fail with `Error::MemlockLimit`, naming the limit and the bytes asked.
    #[default]
    Fail,
    /// Carry on unregistered (io_uring: plain READ/WRITE), warn once, and
    /// count the fallbacks in the statistics.
    Fallback,
}

/// An option of [`Builder`], for the error that names one a backend lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    Direct,
    Writable,
    Create,
    BounceBytes,
    Strict,
    FixedBuffers,
    OnRegistrationRefused,
    ArenaBytes,
    RingEntries,
    Sqpoll,
    PollCompletions,
    TakeFromDriver,
    Iopoll,
}

impl Opt {
    fn name(self) -> &'static str {
        match self {
            Opt::Direct => "direct",
            Opt::Writable => "writable",
            Opt::Create => "create",
            Opt::BounceBytes => "bounce_bytes",
            Opt::Strict => "strict",
            Opt::FixedBuffers => "fixed_buffers",
            Opt::OnRegistrationRefused => "on_registration_refused",
            Opt::ArenaBytes => "arena_bytes",
            Opt::RingEntries => "ring_entries",
            Opt::Sqpoll => "sqpoll",
            Opt::PollCompletions => "poll_completions",
            Opt::TakeFromDriver => "take_from_driver",
            Opt::Iopoll => "iopoll",
        }
    }

    /// Whether the option belongs to the domain (set when the domain is
    /// made) rather than to one device.
    fn is_domain_option(self) -> bool {
        matches!(self, Opt::FixedBuffers | Opt::OnRegistrationRefused | Opt::ArenaBytes)
    }
}

/// The options each backend has.
fn options_of(kind: BackendKind) -> &'static [Opt] {
    match kind {
        BackendKind::Copy => &[Opt::Direct, Opt::Writable, Opt::Create, Opt::BounceBytes, Opt::Strict],
        BackendKind::Uring => &[
            Opt::Direct,
            Opt::Writable,
            Opt::Create,
            Opt::FixedBuffers,
            Opt::OnRegistrationRefused,
            Opt::ArenaBytes,
            Opt::RingEntries,
            Opt::Sqpoll,
            Opt::Iopoll,
        ],
        BackendKind::Kmod => &[],
        BackendKind::Vfio | BackendKind::Nvme => &[Opt::PollCompletions, Opt::TakeFromDriver],
        BackendKind::NvmeUring => &[Opt::Writable, Opt::FixedBuffers, Opt::RingEntries, Opt::Iopoll],
    }
}

/// Opens a device with options, in a new domain or in an existing one.
///
/// An option the selected backend does not have is refused at [`Builder::open`]
/// with [`Error::Unsupported`] naming it and the options that backend takes
/// (nothing is silently ignored). Each backend crate also has its own typed
/// options (`pinio::uring::UringOptions`, `pinio::copy::CopyOptions`, …)
/// offering exactly what that backend has.
///
/// ```
/// # #[cfg(feature = "uring")] { // the example needs the uring backend
/// use pinio::Device;
/// # let dir = std::path::Path::new("/var/tmp");
/// # let (data, log) = (dir.join(format!("pinio-doc-{}-data", std::process::id())), dir.join(format!("pinio-doc-{}-log", std::process::id())));
/// let dev = pinio::Builder::parse(&format!("uring:{}", data.display()))?
///     .create(1 << 20)                        // make the file if it is missing
///     .fixed_buffers(true)
///     .on_registration_refused(pinio::OnRegistrationRefused::Fallback)
///     .open()?;
/// // A second file whose queues accept the regions of the first:
/// let log = pinio::Builder::parse(&format!("uring:{}", log.display()))?.create(0).direct(true).open_in(dev.domain())?;
/// assert_eq!(dev.domain().id(), log.domain().id());
/// // An option the backend lacks is refused, not ignored:
/// let refused = pinio::Builder::parse("copy:/var/tmp/x")?.sqpoll(Some(10)).open();
/// assert!(matches!(refused, Err(pinio::Error::Unsupported { .. })));
/// # drop((dev, log)); std::fs::remove_file(&data).ok(); std::fs::remove_file(dir.join(format!("pinio-doc-{}-log", std::process::id()))).ok();
/// # }
/// # Ok::<(), pinio::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    target: Target,
    set: Vec<Opt>,
    direct: Option<bool>,
    writable: bool,
    create: Option<u64>,
    bounce_bytes: usize,
    strict: bool,
    fixed_buffers: bool,
    refused: OnRegistrationRefused,
    arena_bytes: usize,
    ring_entries: u32,
    sqpoll: Option<u32>,
    poll_completions: bool,
    take_from_driver: bool,
    iopoll: bool,
}

impl Builder {
    /// Options for `target`, each at its backend's default.
    pub fn new(target: Target) -> Builder {
        Builder {
            target,
            set: Vec::new(),
            direct: None,
            writable: true,
            create: None,
            bounce_bytes: 1 << 20,
            strict: false,
            fixed_buffers: true,
            refused: OnRegistrationRefused::Fail,
            arena_bytes: 0,
            ring_entries: 128,
            sqpoll: None,
            poll_completions: false,
            take_from_driver: false,
            iopoll: false,
        }
    }

    /// Parses a selection string (`BACKEND:LOCATION`).
    pub fn parse(spec: &str) -> Result<Builder> {
        Ok(Builder::new(Target::parse(spec)?))
    }

    /// The target.
    pub fn target(&self) -> &Target {
        &self.target
    }

    fn with(mut self, opt: Opt) -> Builder {
        if !self.set.contains(&opt) {
            self.set.push(opt);
        }
        self
    }

    /// copy, uring: open with O_DIRECT. Default: `uring` yes, `copy` no.
    pub fn direct(mut self, direct: bool) -> Builder {
        self.direct = Some(direct);
        self.with(Opt::Direct)
    }

    /// copy, uring: open read-only when false. Default true.
    pub fn writable(mut self, writable: bool) -> Builder {
        self.writable = writable;
        self.with(Opt::Writable)
    }

    /// copy, uring: create the file if it is missing, and make it at least
    /// `size` bytes long (sparse; a larger file is left as it is; `0` only
    /// creates). A created or extended file and its directory entry are
    /// synced before `open` returns. A block device is never resized: a
    /// `size` beyond it is refused. Default: the file must exist.
    pub fn create(mut self, size: u64) -> Builder {
        self.create = Some(size);
        self.with(Opt::Create)
    }

    /// copy: bounce buffer size per worker thread (default 1 MiB).
    pub fn bounce_bytes(mut self, bytes: usize) -> Builder {
        self.bounce_bytes = bytes;
        self.with(Opt::BounceBytes)
    }

    /// copy: enforce the alignment the uring backend will require of this
    /// target (memory, offsets and lengths as O_DIRECT needs them, from
    /// `statx(STATX_DIOALIGN)`), even when not opened with O_DIRECT, so
    /// that code tested on `copy:` does not break on `uring:` because of
    /// alignment. Default false.
    pub fn strict(mut self, strict: bool) -> Builder {
        self.strict = strict;
        self.with(Opt::Strict)
    }

    /// uring (domain option): READ_FIXED/WRITE_FIXED from registered
    /// buffers (default) or plain READ/WRITE, for comparisons.
    pub fn fixed_buffers(mut self, fixed: bool) -> Builder {
        self.fixed_buffers = fixed;
        self.with(Opt::FixedBuffers)
    }

    /// uring (domain option): what to do when RLIMIT_MEMLOCK refuses a
    /// registration.
    pub fn on_registration_refused(mut self, policy: OnRegistrationRefused) -> Builder {
        self.refused = policy;
        self.with(Opt::OnRegistrationRefused)
    }

    /// uring (domain option): register one arena of `bytes` when the domain
    /// is made; `Device::alloc` hands out pieces of it.
    pub fn arena_bytes(mut self, bytes: usize) -> Builder {
        self.arena_bytes = bytes;
        self.with(Opt::ArenaBytes)
    }

    /// uring: submission-queue entries per ring (default 128).
    pub fn ring_entries(mut self, entries: u32) -> Builder {
        self.ring_entries = entries;
        self.with(Opt::RingEntries)
    }

    /// uring: a kernel polling thread per ring, idle after `idle_ms`.
    /// Off by default: with few CPUs it costs more than it saves.
    pub fn sqpoll(mut self, idle_ms: Option<u32>) -> Builder {
        self.sqpoll = idle_ms;
        self.with(Opt::Sqpoll)
    }

    /// vfio, nvme: spin on the device instead of waiting for its interrupt.
    pub fn poll_completions(mut self, poll: bool) -> Builder {
        self.poll_completions = poll;
        self.with(Opt::PollCompletions)
    }

    /// vfio, nvme: take the device from the kernel driver it is bound to.
    pub fn take_from_driver(mut self, take: bool) -> Builder {
        self.take_from_driver = take;
        self.with(Opt::TakeFromDriver)
    }

    /// uring, nvme-uring: polled completions (`IORING_SETUP_IOPOLL`; the
    /// kernel's nvme driver needs poll queues, `nvme.poll_queues=N`, to
    /// really poll). uring needs O_DIRECT for it (the default; with
    /// `direct(false)` the open is refused). Default false.
    pub fn iopoll(mut self, iopoll: bool) -> Builder {
        self.iopoll = iopoll;
        self.with(Opt::Iopoll)
    }

    /// Refuses options the backend does not have, and domain options when
    /// joining an existing domain.
    fn check_options(&self, joining: bool) -> Result<()> {
        let kind = self.target.backend;
        let known = options_of(kind);
        if let Some(opt) = self.set.iter().find(|o| !known.contains(o)) {
            let takes = if known.is_empty() {
                "it takes none".to_string()
            } else {
                format!("it takes {}", known.iter().map(|o| o.name()).collect::<Vec<_>>().join(", "))
            };
            return Err(Error::Unsupported {
                what: format!("option `{}` for the {kind} backend", opt.name()),
                hint: format!("remove it; {takes}"),
            });
        }
        if joining && let Some(opt) = self.set.iter().find(|o| o.is_domain_option()) {
            return Err(Error::Unsupported {
                what: format!("option `{}` when opening a device in an existing domain", opt.name()),
                hint: "it belongs to the domain and is set when the domain is made (by the first open)".into(),
            });
        }
        Ok(())
    }

    /// Opens the device in a new domain of its backend.
    pub fn open(self) -> Result<Box<dyn Device>> {
        self.check_options(false)?;
        let wrappers = self.target.wrappers.clone();
        crate::wrappers::apply(&wrappers, self.open_device(None)?)
    }

    /// Opens the device in `domain`, whose regions it then accepts: register
    /// once, use the region on every device of the domain. The domain must
    /// belong to the same backend family (`vfio` and `nvme` share VFIO
    /// domains), else [`Error::WrongDomain`].
    pub fn open_in(self, domain: &Domain) -> Result<Box<dyn Device>> {
        self.check_options(true)?;
        let wrappers = self.target.wrappers.clone();
        crate::wrappers::apply(&wrappers, self.open_device(Some(domain))?)
    }

    fn open_device(self, domain: Option<&Domain>) -> Result<Box<dyn Device>> {
        let loc = self.target.location.as_str();
        match self.target.backend {
            BackendKind::Copy => {
                let opts = pinio_copy::CopyOptions {
                    direct: self.direct.unwrap_or(false),
                    writable: self.writable,
                    bounce_bytes: self.bounce_bytes,
                    create: self.create,
                    strict: self.strict,
                };
                Ok(match domain {
                    Some(d) => Box::new(pinio_copy::CopyDevice::open_in(d, loc, opts)?),
                    None => Box::new(pinio_copy::CopyDevice::open(loc, opts)?),
                })
            }
            #[cfg(feature = "uring")]
            BackendKind::Uring => {
                let opts = pinio_uring::UringOptions {
                    direct: self.direct.unwrap_or(true),
                    fixed_buffers: self.fixed_buffers,
                    registration: match self.refused {
                        OnRegistrationRefused::Fail => pinio_uring::RegistrationPolicy::Fail,
                        OnRegistrationRefused::Fallback => pinio_uring::RegistrationPolicy::Fallback,
                    },
                    arena_bytes: self.arena_bytes,
                    ring_entries: self.ring_entries,
                    sqpoll: self.sqpoll,
                    iopoll: self.iopoll,
                    writable: self.writable,
                    create: self.create,
                    ..pinio_uring::UringOptions::default()
                };
                Ok(match domain {
                    Some(d) => Box::new(pinio_uring::UringDevice::open_in(d, loc, opts)?),
                    None => Box::new(pinio_uring::UringDevice::open(loc, opts)?),
                })
            }
            #[cfg(feature = "kmod")]
            BackendKind::Kmod => Ok(match domain {
                Some(d) => Box::new(pinio_kmod::KmodDevice::open_in(d, loc)?),
                None => Box::new(pinio_kmod::KmodDevice::open(loc)?),
            }),
            #[cfg(feature = "vfio")]
            BackendKind::Vfio => {
                let opts =
                    pinio_edu::EduOptions { take_from_driver: self.take_from_driver, completion: self.completion() };
                let pci = pci_address(loc)?;
                Ok(match domain {
                    Some(d) => Box::new(pinio_edu::EduDevice::open_in(d, &pci, opts)?),
                    None => Box::new(pinio_edu::EduDevice::open(&pci, opts)?),
                })
            }
            #[cfg(feature = "nvme")]
            BackendKind::Nvme => {
                let opts = pinio_nvme::NvmeOptions {
                    take_from_driver: self.take_from_driver,
                    completion: self.completion(),
                    ..pinio_nvme::NvmeOptions::default()
                };
                let pci = pci_address(loc)?;
                Ok(match domain {
                    Some(d) => Box::new(pinio_nvme::NvmeDevice::open_in(d, &pci, opts)?),
                    None => Box::new(pinio_nvme::NvmeDevice::open(&pci, opts)?),
                })
            }
            #[cfg(feature = "nvme-uring")]
            BackendKind::NvmeUring => {
                let opts = pinio_nvme_uring::NvmeUringOptions {
                    fixed_buffers: self.fixed_buffers,
                    iopoll: self.iopoll,
                    ring_entries: self.ring_entries,
                    writable: self.writable,
                };
                Ok(match domain {
                    Some(d) => Box::new(pinio_nvme_uring::NvmeUringDevice::open_in(d, loc, opts)?),
                    None => Box::new(pinio_nvme_uring::NvmeUringDevice::open(loc, opts)?),
                })
            }
            #[allow(unreachable_patterns)]
            other => Err(not_built(other)),
        }
    }

    #[cfg(feature = "vfio")]
    fn completion(&self) -> pinio_vfio::CompletionMode {
        if self.poll_completions { pinio_vfio::CompletionMode::Poll } else { pinio_vfio::CompletionMode::Interrupt }
    }
}

/// The typed PCI address of a `vfio:`/`nvme:` location.
#[cfg(feature = "vfio")]
fn pci_address(location: &str) -> Result<pinio_vfio::PciAddress> {
    location.parse::<pinio_vfio::PciAddress>().map_err(Error::from)
}

fn not_built(kind: BackendKind) -> Error {
    let hint = format!("enable the cargo feature \"{kind}\" of the pinio crate");
    Error::Unsupported { what: format!("the {kind} backend in this build of pinio"), hint }
}

/// The backends compiled into this build.
///
/// ```
/// let built = pinio::available_backends();
/// assert!(built.contains(&pinio::BackendKind::Copy)); // always there
/// ```
pub fn available_backends() -> Vec<BackendKind> {
    let mut v = vec![BackendKind::Copy];
    if cfg!(feature = "uring") {
        v.push(BackendKind::Uring);
    }
    if cfg!(feature = "kmod") {
        v.push(BackendKind::Kmod);
    }
    if cfg!(feature = "vfio") {
        v.push(BackendKind::Vfio);
    }
    if cfg!(feature = "nvme") {
        v.push(BackendKind::Nvme);
    }
    if cfg!(feature = "nvme-uring") {
        v.push(BackendKind::NvmeUring);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_a_backend_lacks_are_refused_by_name() {
        let e = Builder::parse("kmod:/dev/pinio").unwrap().direct(true).open().err().unwrap();
        let s = e.to_string();
        assert!(s.contains("`direct`") && s.contains("kmod") && s.contains("takes none"), "{s}");
        let e = Builder::parse("copy:/var/tmp/x").unwrap().sqpoll(Some(5)).open().err().unwrap();
        let s = e.to_string();
        assert!(s.contains("`sqpoll`") && s.contains("direct, writable, create, bounce_bytes, strict"), "{s}");
        for b in [Builder::parse("kmod:/dev/pinio").unwrap(), Builder::parse("nvme:0000:00:04.0").unwrap()] {
            let e = b.create(1 << 20).open().err().unwrap();
            assert!(e.to_string().contains("`create`"), "{e}");
        }
        let e = Builder::parse("uring:/var/tmp/x").unwrap().strict(true).open().err().unwrap();
        assert!(e.to_string().contains("`strict`") && e.to_string().contains("uring"), "{e}");
    }

    #[test]
    fn passthrough_takes_its_own_options_and_refuses_others() {
        let e = Builder::parse("nvme-uring:/dev/ng0n1").unwrap().sqpoll(Some(5)).open().err().unwrap();
        let s = e.to_string();
        assert!(s.contains("`sqpoll`") && s.contains("writable, fixed_buffers, ring_entries, iopoll"), "{s}");
        let e = Builder::parse("copy:/var/tmp/x").unwrap().iopoll(true).open().err().unwrap();
        assert!(e.to_string().contains("`iopoll`"), "{e}");
        #[cfg(feature = "uring")]
        {
            // uring takes iopoll too, with O_DIRECT only: buffered is refused
            // by the backend, with the fix.
            let p = scratch("iopoll-buffered");
            std::fs::write(&p, [0u8; 4096]).unwrap();
            let e = Builder::parse(&format!("uring:{}", p.display())).unwrap().iopoll(true).direct(false).open();
            let e = e.err().unwrap();
            let s = e.to_string();
            assert!(s.contains("IOPOLL") && s.contains("needs O_DIRECT") && s.contains("direct: true"), "{s}");
            std::fs::remove_file(&p).unwrap();
        }
        #[cfg(feature = "nvme-uring")]
        {
            // Its options pass the check; /dev/null is then refused by the backend, by name.
            let e =
                Builder::parse("nvme-uring:/dev/null").unwrap().iopoll(true).fixed_buffers(false).open().err().unwrap();
            let s = e.to_string();
            assert!(s.contains("not an NVMe generic character device") && s.contains("not nvme-generic"), "{s}");
        }
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("pinio-builder-{name}-{}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    #[test]
    fn create_makes_the_file_with_its_size() {
        let p = scratch("create-copy");
        let dev =
            Builder::parse(&format!("copy:{}", p.display())).unwrap().create(1 << 20).strict(true).open().unwrap();
        assert_eq!((dev.size(), std::fs::metadata(&p).unwrap().len()), (1 << 20, 1 << 20));
        assert!(
            dev.capabilities().offset_align > 1 && dev.capabilities().mem_align > 1,
            "strict: {:?}",
            dev.capabilities()
        );
        drop(dev);
        std::fs::remove_file(&p).unwrap();
        #[cfg(feature = "uring")]
        {
            let p = scratch("create-uring");
            // Buffered: the temporary directory may be a tmpfs.
            let dev = Builder::parse(&format!("uring:{}", p.display()))
                .unwrap()
                .create(2 << 20)
                .direct(false)
                .open()
                .unwrap();
            assert_eq!((dev.size(), std::fs::metadata(&p).unwrap().len()), (2 << 20, 2 << 20));
            let domain = dev.domain().clone();
            let q = scratch("create-uring-2");
            let other = Builder::parse(&format!("uring:{}", q.display()))
                .unwrap()
                .create(4096)
                .direct(false)
                .open_in(&domain)
                .unwrap();
            assert_eq!(other.size(), 4096, "create is the device's own option, allowed when joining a domain");
            drop((dev, other));
            std::fs::remove_file(&p).unwrap();
            std::fs::remove_file(&q).unwrap();
        }
        // Without create a missing file is an error.
        let e = Builder::parse(&format!("copy:{}", scratch("missing").display())).unwrap().open().err().unwrap();
        assert!(matches!(&e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound), "{e}");
    }

    #[test]
    fn domain_options_are_refused_when_joining_a_domain() {
        let domain = pinio_copy::CopyRegistrar::domain();
        let e = Builder::parse("uring:/var/tmp/x").unwrap().arena_bytes(1 << 20).open_in(&domain).err().unwrap();
        assert!(e.to_string().contains("`arena_bytes` when opening a device in an existing domain"), "{e}");
    }
}
