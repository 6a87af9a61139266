//! Typed backend selection.

use pinio_core::{BackendKind, Device, Error, Result, Target};

/// Opens a device with options. Options a backend does not have are ignored
/// by it (for example `direct` by the kernel-module backend).
///
/// ```no_run
/// let dev = pinio::Builder::parse("copy:/var/tmp/data")?.direct(true).open()?;
/// # Ok::<(), pinio::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    target: Target,
    direct: Option<bool>,
    writable: bool,
    bounce_bytes: usize,
    fixed_buffers: bool,
}

impl Builder {
    /// Options for `target`.
    pub fn new(target: Target) -> Builder {
        Builder { target, direct: None, writable: true, bounce_bytes: 1 << 20, fixed_buffers: true }
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

    /// io_uring backend: READ_FIXED/WRITE_FIXED from registered buffers
    /// (default) or plain READ/WRITE, for comparisons.
    pub fn fixed_buffers(mut self, fixed: bool) -> Builder {
        self.fixed_buffers = fixed;
        self
    }

    /// Copy backend: bounce buffer size per queue.
    pub fn bounce_bytes(mut self, bytes: usize) -> Builder {
        self.bounce_bytes = bytes;
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
            other => Err(not_built(other)),
        }
    }
}

fn not_built(kind: BackendKind) -> Error {
    Error::Unsupported {
        what: format!("the {kind} backend in this build of pinio"),
        hint: format!("enable the cargo feature \"{kind}\" of the pinio crate"),
    }
}

/// The backends compiled into this build.
pub fn available_backends() -> Vec<BackendKind> {
    vec![BackendKind::Copy]
}
