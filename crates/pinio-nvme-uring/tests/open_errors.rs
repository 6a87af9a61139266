//! Opening something that is not an NVMe generic namespace device is a
//! typed error naming what it is instead (host test: no NVMe needed).

use pinio_core::Error;
use pinio_nvme_uring::{NvmeUringDevice, NvmeUringError, NvmeUringOptions};

fn not_generic(path: &str) -> String {
    let e = NvmeUringDevice::open(path, NvmeUringOptions::default()).expect_err(path);
    match NvmeUringError::find(&e) {
        Some(NvmeUringError::NotGeneric { why, .. }) => why.clone(),
        _ => panic!("{path}: not a NotGeneric error: {e}"),
    }
}

#[test]
fn character_devices_of_other_classes_are_refused() {
    let why = not_generic("/dev/null");
    assert!(why.contains("of class mem") && why.contains("not nvme-generic"), "{why}");
}

#[test]
fn files_and_missing_paths_are_refused() {
    let file = std::env::temp_dir().join(format!("pinio-nvme-uring-open-{}", std::process::id()));
    std::fs::write(&file, b"x").unwrap();
    assert!(not_generic(file.to_str().unwrap()).contains("not a character device"));
    std::fs::remove_file(&file).unwrap();
    assert!(not_generic("/nonexistent/ng0n1").contains("No such file"));
}

#[test]
fn a_domain_of_another_backend_is_refused() {
    let (other, _releases) = pinio_core::conformance::CountingRegistrar::domain();
    let e = NvmeUringDevice::open_in(&other, "/dev/null", NvmeUringOptions::default()).expect_err("wrong domain");
    assert!(matches!(e, Error::WrongDomain { device_backend: "nvme-uring", .. }), "{e}");
}
