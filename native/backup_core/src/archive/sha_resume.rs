//! A sha256 that can be saved and resumed at 64-byte boundaries (`Midstate`), so a set whose
//! first bytes are a verified copy of the previous set's need not hash them again (issue 15:
//! the sha256 of the output, which backup.json needs, was the bottleneck of an unchanged set).
//!
//! Hand-written part, and why: `sha2` 0.10 offers no way to read or restore a hasher's state.
//! It does export the compression function (`sha2::compress256`, with the SHA-NI/AVX paths),
//! which does all the hashing here; what is written by hand is only the buffering of partial
//! blocks and the final padding of FIPS 180-4, section 5.1.1 (0x80, zeros, the bit length as a
//! big-endian u64). A test compares it with `sha2::Sha256` on many lengths and split points.

use sha2::digest::generic_array::GenericArray;

const INIT: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// The state of a sha256 after exactly `len` bytes, `len` a multiple of 64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Midstate {
    pub len: u64,
    pub state: [u32; 8],
}

/// Bytes of an encoded `Midstate`.
pub const MIDSTATE_LEN: usize = 40;

impl Midstate {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.len.to_le_bytes());
        for w in self.state {
            out.extend_from_slice(&w.to_le_bytes());
        }
    }

    /// `None` unless `b` is 40 bytes with a length that is a multiple of 64.
    pub fn decode(b: &[u8]) -> Option<Midstate> {
        if b.len() != MIDSTATE_LEN {
            return None;
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(&b[..8]);
        let len = u64::from_le_bytes(len);
        let mut state = [0u32; 8];
        for (i, w) in state.iter_mut().enumerate() {
            let at = 8 + 4 * i;
            *w = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        }
        (len % 64 == 0).then_some(Midstate { len, state })
    }
}

/// A running sha256.
#[derive(Clone)]
pub struct Sha256Stream {
    state: [u32; 8],
    /// Bytes hashed, including the buffered ones.
    len: u64,
    buf: [u8; 64],
    fill: usize,
}

impl Default for Sha256Stream {
    fn default() -> Self {
        Self::new()
    }
}

impl Sha256Stream {
    pub fn new() -> Self {
        Self::resume(Midstate {
            len: 0,
            state: INIT,
        })
    }

    /// Goes on from a saved state.
    pub fn resume(m: Midstate) -> Self {
        Sha256Stream {
            state: m.state,
            len: m.len,
            buf: [0; 64],
            fill: 0,
        }
    }

    /// Bytes hashed so far.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The state, when a whole number of blocks has been hashed.
    pub fn midstate(&self) -> Option<Midstate> {
        (self.fill == 0).then_some(Midstate {
            len: self.len,
            state: self.state,
        })
    }

    fn block(&mut self, b: &[u8]) {
        sha2::compress256(
            &mut self.state,
            std::slice::from_ref(GenericArray::from_slice(b)),
        );
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if self.fill > 0 {
            let n = (64 - self.fill).min(data.len());
            self.buf[self.fill..self.fill + n].copy_from_slice(&data[..n]);
            self.fill += n;
            data = &data[n..];
            if self.fill < 64 {
                return;
            }
            let b = self.buf;
            self.block(&b);
            self.fill = 0;
        }
        let mut blocks = data.chunks_exact(64);
        for b in &mut blocks {
            self.block(b);
        }
        let rest = blocks.remainder();
        self.buf[..rest.len()].copy_from_slice(rest);
        self.fill = rest.len();
    }

    pub fn finalize(mut self) -> [u8; 32] {
        let bits = self.len.wrapping_mul(8);
        let mut pad = [0u8; 128];
        pad[0] = 0x80;
        // the padding ends the message at a multiple of 64 with 8 bytes of length
        let n = if self.fill < 56 {
            64 - self.fill
        } else {
            128 - self.fill
        };
        pad[n - 8..n].copy_from_slice(&bits.to_be_bytes());
        let len = self.len;
        self.update(&pad[..n]);
        self.len = len;
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip(self.state) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sha2::{Digest as _, Sha256};

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn matches_sha2_on_every_length_around_the_padding_edges() {
        for n in (0..300).chain([1000, 4095, 4096, 4097, 100_000]) {
            let d = data(n);
            let mut s = Sha256Stream::new();
            s.update(&d);
            assert_eq!(s.finalize()[..], Sha256::digest(&d)[..], "length {n}");
        }
    }

    #[test]
    fn a_saved_and_resumed_state_gives_the_same_digest() {
        let d = data(1 << 20);
        let mut a = Sha256Stream::new();
        a.update(&d[..64 * 1000]);
        let m = a.midstate().expect("at a block boundary");
        let mut bytes = Vec::new();
        m.encode(&mut bytes);
        let m2 = Midstate::decode(&bytes).expect("decodes");
        assert_eq!(m, m2);
        let mut b = Sha256Stream::resume(m2);
        b.update(&d[64 * 1000..]);
        assert_eq!(b.finalize()[..], Sha256::digest(&d)[..]);
        let mut odd = Sha256Stream::new();
        odd.update(&d[..65]);
        assert_eq!(odd.midstate(), None, "no state mid-block");
        let mut bad = bytes.clone();
        bad[0] = 1; // length 65 + 64k: not a block boundary
        assert_eq!(Midstate::decode(&bad), None);
    }

    proptest! {
        #[test]
        fn any_split_of_the_input_gives_sha2s_digest(
            n in 0usize..5000,
            cuts in prop::collection::vec(0usize..5000, 0..6),
        ) {
            let d = data(n);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(n)).collect();
            cuts.sort_unstable();
            let mut s = Sha256Stream::new();
            let mut at = 0;
            for c in cuts.into_iter().chain([n]) {
                s.update(&d[at..c]);
                at = c;
            }
            prop_assert_eq!(&s.finalize()[..], &Sha256::digest(&d)[..]);
        }
    }
}
