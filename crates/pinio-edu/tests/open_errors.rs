//! Opening fails early, with a typed error, on any machine: these checks
//! happen before VFIO is touched, so they run on the host too.

use pinio_core::conformance::CountingRegistrar;
use pinio_core::{Device, Error};
use pinio_edu::{EduDevice, EduOptions};
use pinio_vfio::{PciAddress, VfioError};

#[test]
fn an_address_with_no_device_is_device_absent() {
    let bdf: PciAddress = "0000:fe:1f.7".parse().unwrap();
    let domain = pinio_copy::CopyRegistrar::domain();
    // In a domain of another backend, the domain is refused first.
    let e = EduDevice::open_in(&domain, &bdf, EduOptions::default()).unwrap_err();
    assert!(matches!(e, Error::WrongDomain { device_backend: "vfio", domain_backend: "copy" }), "{e}");
    // Opening in a fresh VFIO domain needs /dev/vfio/vfio, which the host lacks;
    // the guest tests check DeviceAbsent there.
    if std::path::Path::new("/dev/vfio/vfio").exists() {
        let e = EduDevice::open(&bdf, EduOptions::default()).unwrap_err();
        assert!(matches!(VfioError::find(&e), Some(VfioError::DeviceAbsent { .. })), "{e}");
    }
}

/// An edu cannot join a copy domain or any other backend's: the typed error
/// names both backends, before anything touches sysfs.
#[test]
fn a_domain_of_another_backend_is_wrong_domain() {
    let bdf: PciAddress = "0000:00:03.0".parse().unwrap();
    let copy = pinio_copy::CopyRegistrar::domain();
    let e = EduDevice::open_in(&copy, &bdf, EduOptions::default()).unwrap_err();
    assert!(matches!(e, Error::WrongDomain { device_backend: "vfio", domain_backend: "copy" }), "{e}");
    let (test, _) = CountingRegistrar::domain();
    let e = EduDevice::open_in(&test, &bdf, EduOptions::default()).unwrap_err();
    assert!(matches!(e, Error::WrongDomain { domain_backend: "test", .. }), "{e}");
    // A copy device of that copy domain is unaffected.
    let path = std::env::temp_dir().join(format!("pinio-edu-wrong-domain-{}", std::process::id()));
    std::fs::write(&path, [0u8; 512]).unwrap();
    let dev = pinio_copy::CopyDevice::open_in(&copy, &path, Default::default()).unwrap();
    assert_eq!(dev.domain().id(), copy.id());
    std::fs::remove_file(path).unwrap();
}
