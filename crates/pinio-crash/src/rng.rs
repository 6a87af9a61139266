//! SplitMix64: the one random stream of this crate, fixed forever so that a
//! seed printed today replays the same crash states and faults tomorrow.

/// A SplitMix64 generator (Steele, Lea, Flood 2014).
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> SplitMix {
        SplitMix(seed)
    }

    /// The generator of item `index` of the stream `seed`: independent of
    /// every other item, so one item replays without the others.
    pub fn for_item(seed: u64, index: u64) -> SplitMix {
        let mut g = SplitMix(seed ^ 0x5045_4E49_4F43_5253);
        let a = g.next_u64();
        SplitMix(a ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { ((self.next_u64() as u128 * n as u128) >> 64) as u64 }
    }

    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

#[cfg(test)]
mod tests {
    use super::SplitMix;

    #[test]
    fn the_stream_is_fixed() {
        // The published first output of SplitMix64 seeded with 0.
        assert_eq!(SplitMix::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
        let (mut a, mut b) = (SplitMix::for_item(7, 3), SplitMix::for_item(7, 3));
        assert_eq!(a.next_u64(), b.next_u64());
        assert_ne!(SplitMix::for_item(7, 3).next_u64(), SplitMix::for_item(7, 4).next_u64());
        let mut g = SplitMix::new(1);
        assert!((0..1000).all(|_| g.below(10) < 10));
        assert_eq!(g.below(0), 0);
    }
}
