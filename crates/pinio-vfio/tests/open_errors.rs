//! Opening fails early, with a typed error, on any machine: these checks
//! happen before VFIO is touched, so they run on the host too.

use pinio_vfio::{EduDevice, VfioError, VfioOptions};

fn open_err(addr: &str) -> VfioError {
    let Err(e) = EduDevice::open(addr, VfioOptions::default()) else { panic!("{addr}: opened") };
    match e {
        pinio_core::Error::Backend { backend: "vfio", source } => *source.downcast::<VfioError>().expect("a VfioError"),
        other => panic!("{addr}: not a vfio error: {other}"),
    }
}

#[test]
fn malformed_addresses_are_refused_before_sysfs() {
    for bad in ["", "3.0", "0000:00:03", "0000:00:03.0 ", "vfio:0000:00:3.0", "kmod:/dev/pinio"] {
        assert!(matches!(open_err(bad), VfioError::InvalidAddress { .. }), "{bad:?}");
    }
}

#[test]
fn an_address_with_no_device_is_device_absent() {
    let e = open_err("vfio:0000:fe:1f.7");
    assert!(matches!(e, VfioError::DeviceAbsent { ref bdf, .. } if bdf == "0000:fe:1f.7"), "{e}");
}
