//! Deterministic noise: a pure function of (seed, key, time bucket), so the
//! simulation is the same however its clock is stepped.

/// splitmix64 over the three inputs.
pub fn hash(seed: u64, key: u64, bucket: u64) -> u64 {
    let mut z = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(key.wrapping_mul(0xBF58_476D_1CE4_E5B9))
        .wrapping_add(bucket.wrapping_mul(0x94D0_49BB_1331_11EB))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Uniform in [0, 1).
pub fn unit(seed: u64, key: u64, bucket: u64) -> f64 {
    (hash(seed, key, bucket) >> 11) as f64 / (1u64 << 53) as f64
}

/// A multiplier around 1.0, ± `spread` / 2.
pub fn around_one(seed: u64, key: u64, bucket: u64, spread: f64) -> f64 {
    1.0 + spread * (unit(seed, key, bucket) - 0.5)
}

/// A stable key for a name.
pub fn key(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_deterministic_and_centred() {
        assert_eq!(hash(1, 2, 3), hash(1, 2, 3));
        assert_ne!(hash(1, 2, 3), hash(1, 2, 4));
        let mean: f64 = (0..10_000).map(|b| around_one(7, 1, b, 0.2)).sum::<f64>() / 10_000.0;
        assert!((mean - 1.0).abs() < 0.005, "mean {mean}");
        assert!((0..10_000).all(|b| (0.9..1.1).contains(&around_one(7, 1, b, 0.2))));
    }
}
