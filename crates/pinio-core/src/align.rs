//! Alignment arithmetic shared by every backend.

use std::sync::OnceLock;

/// The system page size in bytes (`sysconf(_SC_PAGESIZE)`, read once).
pub fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no memory-safety preconditions.
        let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if v > 0 { v as usize } else { 4096 }
    })
}

/// Whether `value` is a multiple of `align` (`align` must be a power of two;
/// an alignment of 0 or 1 accepts everything).
pub const fn is_aligned(value: u64, align: u64) -> bool {
    align <= 1 || value & (align - 1) == 0
}

/// Rounds `value` down to a multiple of the power of two `align`.
pub const fn align_down(value: u64, align: u64) -> u64 {
    if align <= 1 { value } else { value & !(align - 1) }
}

/// Rounds `value` up to a multiple of the power of two `align`, or `None`
/// when that overflows.
pub const fn align_up(value: u64, align: u64) -> Option<u64> {
    if align <= 1 {
        return Some(value);
    }
    match value.checked_add(align - 1) {
        Some(v) => Some(v & !(align - 1)),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn align_laws(v in 0u64..u64::MAX / 2, shift in 0u32..30) {
            let a = 1u64 << shift;
            let up = align_up(v, a).unwrap();
            let down = align_down(v, a);
            prop_assert!(is_aligned(up, a) && is_aligned(down, a));
            prop_assert!(down <= v && v <= up);
            prop_assert!(up - down <= a);
            prop_assert_eq!(is_aligned(v, a), up == v);
        }
    }

    #[test]
    fn align_up_overflow_is_none() {
        assert_eq!(align_up(u64::MAX, 4096), None);
        assert_eq!(align_up(u64::MAX, 1), Some(u64::MAX));
    }
}
