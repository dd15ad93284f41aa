//! Test data shared by the suites and by the crate's unit tests (`archive::testdata`: pgzip.rs,
//! hashing/props.rs).

/// `n` bytes of xorshift noise from `seed`: incompressible, and the same on every run.
pub fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
