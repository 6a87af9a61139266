//! Errors of `NvmeDevice::open` that need no VFIO: they run on the host.

use pinio_core::Error;
use pinio_nvme::{NvmeDevice, NvmeOptions};
use pinio_vfio::{PciAddress, VfioError};

#[test]
fn a_controller_cannot_join_another_backends_domain() {
    let bdf: PciAddress = "0000:01:00.0".parse().unwrap();
    let copy = pinio_copy::CopyRegistrar::domain();
    let e = NvmeDevice::open_in(&copy, &bdf, NvmeOptions::default()).expect_err("a copy domain");
    assert!(matches!(e, Error::WrongDomain { device_backend: "nvme", domain_backend: "copy" }), "{e}");
}

#[test]
fn an_absent_device_is_named_with_its_sysfs_path() {
    let bdf: PciAddress = "0000:fe:1f.7".parse().unwrap();
    let e = pinio_nvme::release_to_kernel(&bdf).expect_err("absent");
    assert!(matches!(VfioError::find(&e), Some(VfioError::DeviceAbsent { .. })), "{e}");
    assert!(e.to_string().contains("/sys/bus/pci/devices/0000:fe:1f.7"), "{e}");
    // Opening needs /dev/vfio/vfio for the new domain, which the host lacks.
    if std::path::Path::new("/dev/vfio/vfio").exists() {
        let e =
            NvmeDevice::open(&bdf, NvmeOptions { take_from_driver: true, ..Default::default() }).expect_err("absent");
        assert!(matches!(VfioError::find(&e), Some(VfioError::DeviceAbsent { .. })), "{e}");
    } else {
        let e = NvmeDevice::open(&bdf, NvmeOptions::default()).expect_err("no VFIO on this machine");
        assert!(matches!(VfioError::find(&e), Some(VfioError::Vfio { .. })), "{e}");
        assert!(e.to_string().contains("/dev/vfio/vfio"), "{e}");
    }
}
