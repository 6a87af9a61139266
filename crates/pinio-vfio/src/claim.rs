//! [`DeviceClaim`]: a driver's hold on one PCI device of a domain.

use crate::VfioPci;
use std::sync::Arc;

/// A PCI device of a VFIO domain, taken by one driver
/// ([`crate::VfioRegistrar::attach`]).
///
/// Dropping it quiesces the device (interrupts off, bus mastering off, so
/// it can no longer reach memory) and frees it for another driver of the
/// same domain. The device's file and its group's place in the container
/// stay with the domain until the domain is gone: the container's IOMMU
/// mappings exist only while a group is attached, and regions of the domain
/// may outlive every driver.
pub struct DeviceClaim {
    pci: Arc<VfioPci>,
}

impl DeviceClaim {
    pub(crate) fn new(pci: Arc<VfioPci>) -> DeviceClaim {
        DeviceClaim { pci }
    }

    /// The device, for the driver's parts that reach its registers (keep
    /// those clones no longer than this claim).
    pub fn pci(&self) -> &Arc<VfioPci> {
        &self.pci
    }
}

impl std::ops::Deref for DeviceClaim {
    type Target = VfioPci;
    fn deref(&self) -> &VfioPci {
        &self.pci
    }
}

impl Drop for DeviceClaim {
    fn drop(&mut self) {
        self.pci.quiesce();
        self.pci.unclaim();
    }
}
