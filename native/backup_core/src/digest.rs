//! sha256 + crc32 + size of a file in one streaming pass.

use crate::error::{Error, Result};
use sha2::{Digest as _, Sha256};
use std::io::Read;
use std::path::Path;

/// What one pass over a file yields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "nif", derive(rustler::NifMap), rustler(encode))]
pub struct Digest {
    /// Lower-case hex sha256, as `sha256sum` prints it and backup.json stores it.
    pub sha256: String,
    pub crc32: u32,
    pub size: u64,
}

/// Running sha256 + crc32 + byte count; fed by readers and writers alike.
#[derive(Default, Clone)]
pub struct Hasher {
    sha: Sha256,
    crc: crc32fast::Hasher,
    size: u64,
}

impl Hasher {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.sha.update(bytes);
        self.crc.update(bytes);
        self.size += bytes.len() as u64;
    }

    pub fn finish(self) -> Digest {
        Digest {
            sha256: hex(&self.sha.finalize()),
            crc32: self.crc.finalize(),
            size: self.size,
        }
    }
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    s
}

/// Digests the file at `path`, reading it once in 256 KiB blocks. Only regular files are read:
/// a directory is `eisdir`, a FIFO or device `not_regular_file` (never opened blocking).
pub fn file_digest(path: &Path) -> Result<Digest> {
    let mut file = match crate::fsutil::open_regular(path) {
        Ok(f) => f,
        Err(Error::NotRegularFile {
            what: "a directory",
            ..
        }) => {
            return Err(Error::io(
                path,
                std::io::Error::from(std::io::ErrorKind::IsADirectory),
            ))
        }
        Err(e) => return Err(e),
    };
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    Ok(hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Write;

    #[test]
    fn digest_of_known_content_matches_sha256sum() {
        let mut f = tempfile::NamedTempFile::new().expect("tempfile");
        f.write_all(b"abc").expect("write");
        let d = file_digest(f.path()).expect("digest");
        assert_eq!(
            d.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(d.crc32, 0x3524_41c2);
        assert_eq!(d.size, 3);
    }

    #[test]
    fn digest_of_missing_file_is_enoent_with_path() {
        let e = file_digest(Path::new("/nonexistent/zb")).expect_err("must fail");
        assert_eq!(e.reason(), "enoent");
        assert_eq!(e.path(), Some(Path::new("/nonexistent/zb")));
    }

    #[test]
    fn digest_of_directory_is_eisdir() {
        let d = tempfile::tempdir().expect("tempdir");
        assert_eq!(file_digest(d.path()).expect_err("dir").reason(), "eisdir");
    }

    proptest! {
        #[test]
        fn streaming_digest_equals_one_shot(data in proptest::collection::vec(any::<u8>(), 0..600_000)) {
            let mut f = tempfile::NamedTempFile::new().expect("tempfile");
            f.write_all(&data).expect("write");
            let d = file_digest(f.path()).expect("digest");
            let mut h = Hasher::new();
            h.update(&data);
            prop_assert_eq!(d, h.finish());
        }
    }
}
