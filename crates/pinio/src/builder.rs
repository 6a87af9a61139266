//! Typed backend selection.

use pinio_core::{BackendKind, Device, Error, Result, Target};

/// What to do when registration is refused by the locked-memory limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnRegistrationRefused {
    /// Fail with `Error::MemlockLimit`, naming the limit and the bytes asked.
    #[default]
    Fail,
    /// Carry on unregistered (io_uring: plain READ/WRITE), warn once, and
    /// count the fallbacks in the statistics.
    Fallback,
}

/// Opens a device with options. Options a backend does not have are ignored
/// by it (for example `direct` by the kernel-module backend).
///
/// ```no_run
/// let dev = pinio::Builder::parse("uring:/var/tmp/data")?
///     .fixed_buffers(true)
///     .on_registration_refused(pinio::OnRegistrationRefused::Fallback)
///     .open()?;
/// # Ok::<(), pinio::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    target: Target,
    direct: Option<bool>,
    writable: bool,
    bounce_bytes: usize,
    fixed_buffers: bool,
    refused: OnRegistrationRefused,
    arena_bytes: usize,
    ring_entries: u32,
    sqpoll: Option<u32>,
    poll_completions: bool,
    take_from_driver: bool,
}

impl Builder {
    /// Options for `target`, each at its backend's default.
    pub fn new(target: Target) -> Builder {
        Builder {
            target,
            direct: None,
            writable: true,
            bounce_bytes: 1 << 20,
            fixed_buffers: true,
            refused: OnRegistrationRefused::Fail,
            arena_bytes: 0,
            ring_entries: 128,
            sqpoll: None,
            poll_completions: false,
            take_from_driver: false,
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

    /// File backends: open with O_DIRECT. Default: `uring` yes, `copy` no.
    pub fn direct(mut self, direct: bool) -> Builder {
        self.direct = Some(direct);
        self
    }

    /// File backends: open read-only when false. Default true.
    pub fn writable(mut self, writable: bool) -> Builder {
        self.writable = writable;
        self
    }

    /// Copy backend: bounce buffer size per queue (default 1 MiB).
    pub fn bounce_bytes(mut self, bytes: usize) -> Builder {
        self.bounce_bytes = bytes;
        self
    }

    /// io_uring: READ_FIXED/WRITE_FIXED from registered buffers (default)
    /// or plain READ/WRITE, for comparisons.
    pub fn fixed_buffers(mut self, fixed: bool) -> Builder {
        self.fixed_buffers = fixed;
        self
    }

    /// io_uring: what to do when RLIMIT_MEMLOCK refuses a registration.
    pub fn on_registration_refused(mut self, policy: OnRegistrationRefused) -> Builder {
        self.refused = policy;
        self
    }

    /// io_uring: register one arena of `bytes` at open; `Device::alloc`
    /// hands out pieces of it.
    pub fn arena_bytes(mut self, bytes: usize) -> Builder {
        self.arena_bytes = bytes;
        self
    }

    /// io_uring: submission-queue entries per ring (default 128).
    pub fn ring_entries(mut self, entries: u32) -> Builder {
        self.ring_entries = entries;
        self
    }

    /// io_uring: a kernel polling thread per ring, idle after `idle_ms`.
    /// Off by default: with few CPUs it costs more than it saves.
    pub fn sqpoll(mut self, idle_ms: Option<u32>) -> Builder {
        self.sqpoll = idle_ms;
        self
    }

    /// VFIO and NVMe: spin on the device instead of waiting for its interrupt.
    pub fn poll_completions(mut self, poll: bool) -> Builder {
        self.poll_completions = poll;
        self
    }

    /// VFIO and NVMe: take the device from the kernel driver it is bound to.
    pub fn take_from_driver(mut self, take: bool) -> Builder {
        self.take_from_driver = take;
        self
    }

    /// Opens the device.
    pub fn open(self) -> Result<Box<dyn Device>> {
        let loc = self.target.location.as_str();
        match self.target.backend {
            BackendKind::Copy => {
                let opts = pinio_copy::CopyOptions {
                    direct: self.direct.unwrap_or(false),
                    writable: self.writable,
                    bounce_bytes: self.bounce_bytes,
                };
                Ok(Box::new(pinio_copy::CopyDevice::open(loc, opts)?))
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
                    writable: self.writable,
                };
                Ok(Box::new(pinio_uring::UringDevice::open(loc, opts)?))
            }
            #[cfg(feature = "kmod")]
            BackendKind::Kmod => Ok(Box::new(pinio_kmod::KmodDevice::open(loc)?)),
            #[cfg(feature = "vfio")]
            BackendKind::Vfio => {
                let opts = pinio_vfio::VfioOptions {
                    take_from_driver: self.take_from_driver,
                    completion: if self.poll_completions {
                        pinio_vfio::CompletionMode::Poll
                    } else {
                        pinio_vfio::CompletionMode::Interrupt
                    },
                };
                Ok(Box::new(pinio_vfio::EduDevice::open(loc, opts)?))
            }
            #[cfg(feature = "nvme")]
            BackendKind::Nvme => {
                let opts = pinio_nvme::NvmeOptions {
                    take_from_driver: self.take_from_driver,
                    completion: if self.poll_completions {
                        pinio_vfio::CompletionMode::Poll
                    } else {
                        pinio_vfio::CompletionMode::Interrupt
                    },
                    ..pinio_nvme::NvmeOptions::default()
                };
                Ok(Box::new(pinio_nvme::NvmeDevice::open(loc, opts)?))
            }
            #[allow(unreachable_patterns)]
            other => Err(not_built(other)),
        }
    }
}

fn not_built(kind: BackendKind) -> Error {
    let hint = format!("enable the cargo feature \"{kind}\" of the pinio crate");
    Error::Unsupported { what: format!("the {kind} backend in this build of pinio"), hint }
}

/// The backends compiled into this build.
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
    v
}
