//! The /dev/Sample demonstration in Rust: hand the kernel a page holding "krishna"; pinio.ko
//! pins the page, reads the greeting, writes "Mohan" in place and unpins it.
//!
//! `cargo run -p pinio-kmod --example sample_demo` (in the guest, with pinio.ko loaded)
//! prints `data is Mohan`.

use std::fs::OpenOptions;
use std::io::Write;

fn main() -> std::io::Result<()> {
    // One page-aligned page, like posix_memalign(4096, 4096) in the C version.
    let layout = std::alloc::Layout::from_size_align(4096, 4096).expect("valid layout");
    // SAFETY: The layout has a non-zero size.
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
    assert!(!ptr.is_null(), "out of memory");
    // SAFETY: `ptr` is a fresh, zeroed allocation of 4096 bytes that only this slice uses.
    let page = unsafe { std::slice::from_raw_parts_mut(ptr, 4096) };
    page[..7].copy_from_slice(b"krishna");

    let mut dev = OpenOptions::new().write(true).open("/dev/Sample")?;
    let n = dev.write(page)?;
    assert_eq!(n, 4096, "short write to /dev/Sample");

    let end = page.iter().position(|&b| b == 0).unwrap_or(page.len());
    println!("data is {}", String::from_utf8_lossy(&page[..end]));
    // SAFETY: `ptr` was allocated above with `layout` and the slice is no longer used.
    unsafe { std::alloc::dealloc(ptr, layout) };
    Ok(())
}
