//! The copy backend's domain: registration pins nothing.

use pinio_core::{DmaBuf, Domain, RegionKey, Registrar, Registration, Result};

/// The registrar of a copy domain. The copy backend moves bytes through a
/// bounce buffer with `pread`/`pwrite`, so a "registration" is only the
/// region's bookkeeping: nothing is pinned and no device reaches the memory.
#[derive(Debug, Default)]
pub struct CopyRegistrar;

impl CopyRegistrar {
    /// A new domain for copy devices.
    pub fn domain() -> Domain {
        Domain::new(CopyRegistrar)
    }
}

// SAFETY: nothing is registered, so no device can reach any memory through
// this registrar; the copy queue reads and writes slices it owns with the
// CPU (the DMA ownership rule of pinio_core::domain, rule 1).
unsafe impl Registrar for CopyRegistrar {
    fn backend(&self) -> &'static str {
        "copy"
    }

    fn register(&self, buf: &mut DmaBuf) -> Result<RegionKey> {
        Ok(RegionKey { registration: Registration::None, device_addr: buf.as_ptr() as u64 })
    }

    fn unregister(&self, _key: RegionKey, _buf: &DmaBuf) -> Result<()> {
        Ok(())
    }

    fn describe(&self) -> String {
        "copy: nothing pinned".into()
    }
}
