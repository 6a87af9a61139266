//! Errors of `NvmeDevice::open` that need no VFIO: they run on the host.

use pinio_nvme::{NvmeDevice, NvmeOptions};
use pinio_vfio::VfioError;

#[test]
fn a_malformed_address_is_named_with_the_expected_form() {
    for bad in ["", "nvme:", "00:04.0", "nvme:0000:00:20.0", "0000:0g:04.0", "uring:/dev/nvme0n1"] {
        let e = NvmeDevice::open(bad, NvmeOptions::default()).expect_err(bad);
        assert!(matches!(VfioError::find(&e), Some(VfioError::InvalidAddress { .. })), "{bad:?}: {e}");
        assert!(e.to_string().contains("DDDD:BB:DD.F"), "{e}");
    }
}

#[test]
fn an_absent_device_is_named_with_its_sysfs_path() {
    let e = NvmeDevice::open("nvme:0000:fe:1f.7", NvmeOptions { take_from_driver: true, ..Default::default() }).expect_err("absent");
    assert!(matches!(VfioError::find(&e), Some(VfioError::DeviceAbsent { .. })), "{e}");
    assert!(e.to_string().contains("/sys/bus/pci/devices/0000:fe:1f.7"), "{e}");
    let e = pinio_nvme::release_to_kernel("0000:fe:1f.7").expect_err("absent");
    assert!(e.to_string().contains("0000:fe:1f.7"), "{e}");
}
