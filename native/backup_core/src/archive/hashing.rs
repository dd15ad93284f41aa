//! A `Write` adaptor that computes the sha256 and byte count of everything written through it,
//! so an archive's digest (backup.json needs it) costs no second read pass.

use sha2::{Digest as _, Sha256};
use std::io::{self, Write};

pub struct Sha256Writer<W: Write> {
    inner: W,
    sha: Sha256,
    count: u64,
}

impl<W: Write> Sha256Writer<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            sha: Sha256::new(),
            count: 0,
        }
    }

    /// Bytes written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Returns the inner writer, the lower-case hex sha256 and the byte count. Does not flush.
    pub fn finish(self) -> (W, String, u64) {
        let digest = self.sha.finalize();
        (self.inner, to_hex(&digest), self.count)
    }
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

impl<W: Write> Write for Sha256Writer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_writer_matches_known_digest_of_abc() {
        let mut w = Sha256Writer::new(Vec::new());
        w.write_all(b"a").expect("write");
        w.write_all(b"bc").expect("write");
        let (inner, hex, n) = w.finish();
        assert_eq!(inner, b"abc");
        assert_eq!(n, 3);
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
