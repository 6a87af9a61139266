//! Wild addresses: where no user buffer can be, for the calls that must refuse them.

use crate::rng::Rng;

/// Addresses no user buffer can be at: kernel addresses, non-canonical ones, the first pages
/// (below `vm.mmap_min_addr`), the end of the address space.
pub(crate) fn wild_addr(rng: &mut Rng) -> u64 {
    match rng.below(8) {
        0 => 0,
        1 => rng.range(1, 0xffff),
        2 => 0xffff_8880_0000_0000 + rng.below(1 << 30),
        3 => 0xffff_ffff_8100_0000 + rng.below(1 << 24),
        4 => 0x8000_0000_0000_0000 | rng.next_u64() >> 2,
        5 => 0x0000_8000_0000_0000 + rng.below(1 << 20),
        6 => u64::MAX - rng.below(4096),
        _ => 0xdead_0000_0000_0000 | rng.below(1 << 40),
    }
}

/// Whether `wild_addr`-style `a` is a kernel (or non-canonical) address rather than a low user one.
pub(crate) fn is_kernel_or_noncanonical(a: u64) -> bool {
    a >= 0x0000_8000_0000_0000
}
