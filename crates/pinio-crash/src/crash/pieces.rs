//! The atomic pieces of a write: its intersections with the device's sectors,
//! the unit a crash may tear a write at.

/// The atomic pieces of the range `[off, off + len)`: its intersections
/// with the device's sectors of `sector` bytes, in order.
pub fn pieces(off: u64, len: u64, sector: u64) -> impl Iterator<Item = (u64, u64)> {
    let end = off + len;
    let first = off / sector;
    let last = end.div_ceil(sector);
    (first..last).map(move |s| {
        let a = (s * sector).max(off);
        let b = ((s + 1) * sector).min(end);
        (a, b - a)
    })
}

#[cfg(test)]
mod tests {
    use super::pieces;

    #[test]
    fn pieces_follow_sector_boundaries() {
        assert_eq!(pieces(0, 1024, 512).collect::<Vec<_>>(), [(0, 512), (512, 512)]);
        assert_eq!(pieces(100, 1000, 512).collect::<Vec<_>>(), [(100, 412), (512, 512), (1024, 76)]);
        assert_eq!(pieces(4096, 4096, 4096).count(), 1);
    }
}
