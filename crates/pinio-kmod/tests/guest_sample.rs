//! Guest test of `/dev/Sample` from Rust: the reply lands in place in the caller's page, the
//! page is unpinned, and bad buffers get EFAULT / EINVAL without a kernel report.

mod common;

use common::{Checked, Mapping};
use std::fs::OpenOptions;
use std::io::Write;

fn sample() -> std::fs::File {
    OpenOptions::new().write(true).open("/dev/Sample").expect("open /dev/Sample")
}

#[test]
fn krishna_becomes_mohan() {
    let c = Checked::start();
    let mut page = Mapping::rw(4096);
    page.bytes()[..8].copy_from_slice(b"krishna\0");
    assert_eq!(sample().write(page.bytes()).unwrap(), 4096);
    assert_eq!(&page.bytes()[..6], b"Mohan\0");
    assert_eq!(&page.bytes()[6..8], b"a\0", "bytes after the reply are untouched");
    c.finish();
}

#[test]
fn bad_buffers_get_their_errno() {
    let c = Checked::start();
    let ro = Mapping::new(4096, libc::PROT_READ);
    // SAFETY: The mapping is readable for 4096 bytes.
    let ro_bytes = unsafe { std::slice::from_raw_parts(ro.ptr, 4096) };
    let e = sample().write(ro_bytes).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EFAULT), "read-only buffer: {e}");
    let mut page = Mapping::rw(4096);
    let e = sample().write(&page.bytes()[..5]).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "buffer shorter than the reply: {e}");
    c.finish();
}
