//! The manifest: one record per archive entry (path, kind, size, mtime, mode, crc32 of the data),
//! returned in the `Summary` and stored in the archive itself as a *trailer*.
//!
//! Where it lives: after tar's end-of-archive marker (two zero blocks), inside the same
//! compressed stream, as a 512-byte block starting with `TRAILER_MAGIC` followed by the encoded
//! records padded to a 512-byte boundary. Tar readers stop at the end-of-archive marker, so GNU
//! tar (`-x`, `-t`, `-d`), Python's tarfile and OTP's erl_tar extract exactly the original tree
//! and nothing else (tests/archive_interop.rs proves each), while `verify` reads on past the
//! marker and checks every file's crc32 against it. `gzip -t`/`zstd -t` see one valid stream.
//! (GNU tar's `--ignore-zeros` would read into the trailer and warn; no Zotonic code uses it.)
//!
//! Trailer header block: magic (16) | version u32 LE | entries u64 LE | body length u64 LE |
//! body crc32 u32 LE | zeros. Body, per entry: kind u8 | mode u32 | mtime i64 | size u64 |
//! crc32 u32 | path length u32 | path bytes | link length u32 | link bytes (all LE).
//!
//! Version 2 (written since issue 15; version 1 is still read) appends to each record what a
//! later set needs to reuse the entry's compressed bytes ([`EntryExt`], 52 bytes): the rest of
//! the entry's identity on disk (mtime nanoseconds, inode, ctime) and its *unit*: offset and
//! length of the compressed bytes holding its tar header and data (a byte-aligned run with no
//! back-reference before it, shared by the small entries grouped into it), and the length and
//! crc32 of their uncompressed bytes (all zero when the entry has no unit). In a `.tar.gz`
//! the trailer is followed by a [`Locator`] block, written as the last stored block of the
//! stream so a reader finds it at a fixed distance from the end of the file and can inflate
//! the manifest without reading the archive (see `reuse.rs`).
//!
//! Version 3 adds to the extension the crc32 of the unit's compressed bytes (56 bytes) and
//! ends the body with the archive's sha256 checkpoints (`encode_checkpoints`). Version 4 adds
//! where the entry's bytes end inside its unit ([`UnitEnd`], 80 bytes in all): the unit's
//! compressed bytes up to the sync point after the entry's tar header, data and padding
//! (pgzip.rs), which inflate on their own to the unit's first entries, with the lengths and
//! crc32s of those bytes and of what they inflate to (all zero when there is no such point),
//! so a later set can reuse the unchanged first entries of a unit whose later ones changed.
//! Versions 1 to 4 are read; only 3 and 4 are reused.

use super::hashing::{CHECKPOINT, MAX_CHECKPOINTS};
use super::sha_resume::{Midstate, MIDSTATE_LEN};
use crate::error::{Error, Result};

pub const TRAILER_MAGIC: &[u8; 16] = b"ZBACKUP-MANIFEST";
/// The version written.
pub const VERSION: u32 = 4;
/// Bytes of [`EntryExt`] after each version 4 record (52 in version 2, 56 in version 3).
pub const EXT_LEN: usize = 80;

/// Bytes of [`EntryExt`] after each record of a trailer of `version` (0 before version 2).
pub fn ext_len(version: u32) -> usize {
    match version {
        0 | 1 => 0,
        2 => 52,
        3 => 56,
        _ => EXT_LEN,
    }
}
pub const LOCATOR_MAGIC: &[u8; 16] = b"ZBACKUP-LOCATOR1";

/// Where an entry's tar header and data are in the compressed stream (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Unit {
    pub offset: u64,
    pub len: u64,
    pub ulen: u64,
    pub crc: u32,
    /// crc32 of the `len` compressed bytes (version 3; 0 in a version 2 record or a locator).
    pub zcrc: u32,
}

/// Where an entry's bytes end inside its unit (version 4): the unit's first `len` compressed
/// bytes (crc32 `zcrc`) end at a sync point right after the entry and inflate on their own to
/// the unit's first `ulen` bytes (crc32 `crc`), the entry's last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UnitEnd {
    pub ulen: u64,
    pub len: u64,
    pub crc: u32,
    pub zcrc: u32,
}

impl UnitEnd {
    /// A unit's start: nothing before it.
    pub const START: UnitEnd = UnitEnd {
        ulen: 0,
        len: 0,
        crc: 0,
        zcrc: 0,
    };

    /// The bytes of a unit from this end to a later end `to` of the same unit, as lengths and
    /// crc32s of their own (compressed and uncompressed); `None` unless `to` is after `self`.
    pub fn span_to(&self, to: &UnitEnd) -> Option<UnitEnd> {
        if to.ulen <= self.ulen || to.len <= self.len {
            return None;
        }
        let (ulen, len) = (to.ulen - self.ulen, to.len - self.len);
        Some(UnitEnd {
            ulen,
            len,
            crc: crc32_after(self.crc, to.crc, ulen),
            zcrc: crc32_after(self.zcrc, to.zcrc, len),
        })
    }

    /// Where this end moves when the bytes of `span` are appended after it.
    pub fn then(&self, span: &UnitEnd) -> UnitEnd {
        let join = |a: u32, alen: u64, b: u32, blen: u64| {
            let mut h = crc32fast::Hasher::new_with_initial_len(a, alen);
            h.combine(&crc32fast::Hasher::new_with_initial_len(b, blen));
            h.finalize()
        };
        UnitEnd {
            ulen: self.ulen + span.ulen,
            len: self.len + span.len,
            crc: join(self.crc, self.ulen, span.crc, span.ulen),
            zcrc: join(self.zcrc, self.len, span.zcrc, span.len),
        }
    }

    /// The unit made of the first bytes of `u` up to this end.
    pub fn prefix_of(&self, u: &Unit) -> Unit {
        Unit {
            offset: u.offset,
            len: self.len,
            ulen: self.ulen,
            crc: self.crc,
            zcrc: self.zcrc,
        }
    }

    /// The end of a whole unit.
    pub fn whole(u: &Unit) -> Self {
        UnitEnd {
            ulen: u.ulen,
            len: u.len,
            crc: u.crc,
            zcrc: u.zcrc,
        }
    }
}

/// The crc32 of B, from the crc32s of A and of A followed by B, and B's length: crc32 is
/// linear, crc32(AB) = crc32(A) shifted by |B| bytes (what `crc32_combine` computes with a zero
/// second crc32) xor crc32(B).
pub fn crc32_after(crc_a: u32, crc_ab: u32, len_b: u64) -> u32 {
    let mut shifted = crc32fast::Hasher::new_with_initial_len(crc_a, 0);
    shifted.combine(&crc32fast::Hasher::new_with_initial_len(0, len_b));
    crc_ab ^ shifted.finalize()
}

/// What versions 2 to 4 add to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EntryExt {
    pub mtime_nsec: u32,
    pub ino: u64,
    pub ctime: i64,
    pub ctime_nsec: u32,
    /// `None` when the entry's bytes cannot be reused (no unit recorded).
    pub unit: Option<Unit>,
    /// Where the entry's bytes end in its unit (version 4); `None` when not recorded.
    pub end: Option<UnitEnd>,
}

impl EntryExt {
    pub fn encode(&self, body: &mut Vec<u8>) {
        let u = self.unit.unwrap_or_default();
        body.extend_from_slice(&self.mtime_nsec.to_le_bytes());
        body.extend_from_slice(&self.ino.to_le_bytes());
        body.extend_from_slice(&self.ctime.to_le_bytes());
        body.extend_from_slice(&self.ctime_nsec.to_le_bytes());
        body.extend_from_slice(&u.offset.to_le_bytes());
        body.extend_from_slice(&u.len.to_le_bytes());
        body.extend_from_slice(&u.ulen.to_le_bytes());
        body.extend_from_slice(&u.crc.to_le_bytes());
        body.extend_from_slice(&u.zcrc.to_le_bytes());
        let e = self.end.filter(|_| self.unit.is_some()).unwrap_or_default();
        body.extend_from_slice(&e.ulen.to_le_bytes());
        body.extend_from_slice(&e.len.to_le_bytes());
        body.extend_from_slice(&e.crc.to_le_bytes());
        body.extend_from_slice(&e.zcrc.to_le_bytes());
    }

    /// Decodes the extension of a version 2 (52 bytes), 3 (56) or 4 (80) record; the caller
    /// took `ext_len(version)` bytes. Missing fields read as 0.
    pub fn decode(b: &[u8]) -> Self {
        let mut a = [0u8; EXT_LEN];
        let n = b.len().min(EXT_LEN);
        a[..n].copy_from_slice(&b[..n]);
        let b = &a;
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(a)
        };
        let unit = Unit {
            offset: u64_at(24),
            len: u64_at(32),
            ulen: u64_at(40),
            crc: u32_at(48),
            zcrc: u32_at(52),
        };
        let end = UnitEnd {
            ulen: u64_at(56),
            len: u64_at(64),
            crc: u32_at(72),
            zcrc: u32_at(76),
        };
        let unit = (unit.len > 0).then_some(unit);
        EntryExt {
            mtime_nsec: u32_at(0),
            ino: u64_at(4),
            ctime: u64_at(12) as i64,
            ctime_nsec: u32_at(20),
            unit,
            end: (unit.is_some() && end.len > 0).then_some(end),
        }
    }
}

/// The block after a `.tar.gz`'s manifest trailer: where the unit holding the end-of-archive
/// marker and the trailer is. Layout: magic (16) | unit offset u64 | len u64 | ulen u64 |
/// crc32 u32 | entries u64 | zeros (all LE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locator {
    pub unit: Unit,
    pub entries: u64,
}

impl Locator {
    pub fn encode(&self) -> [u8; 512] {
        let mut b = [0u8; 512];
        b[..16].copy_from_slice(LOCATOR_MAGIC);
        b[16..24].copy_from_slice(&self.unit.offset.to_le_bytes());
        b[24..32].copy_from_slice(&self.unit.len.to_le_bytes());
        b[32..40].copy_from_slice(&self.unit.ulen.to_le_bytes());
        b[40..44].copy_from_slice(&self.unit.crc.to_le_bytes());
        b[44..52].copy_from_slice(&self.entries.to_le_bytes());
        b
    }

    /// `None` unless `b` is a well-formed locator block (magic, zero padding).
    pub fn decode(b: &[u8]) -> Option<Self> {
        if b.len() != 512 || &b[..16] != LOCATOR_MAGIC || b[52..].iter().any(|&x| x != 0) {
            return None;
        }
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(a)
        };
        Some(Locator {
            unit: Unit {
                offset: u64_at(16),
                len: u64_at(24),
                ulen: u64_at(32),
                crc: u32::from_le_bytes([b[40], b[41], b[42], b[43]]),
                zcrc: 0,
            },
            entries: u64_at(44),
        })
    }
}

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Hardlink,
    /// Anything else a foreign archive holds (fifo, device, ...); never extracted.
    Other,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Dir => "dir",
            EntryKind::Symlink => "symlink",
            EntryKind::Hardlink => "hardlink",
            EntryKind::Other => "other",
        }
    }

    fn code(self) -> u8 {
        match self {
            EntryKind::File => 0,
            EntryKind::Dir => 1,
            EntryKind::Symlink => 2,
            EntryKind::Hardlink => 3,
            EntryKind::Other => 4,
        }
    }

    pub(crate) fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            0 => EntryKind::File,
            1 => EntryKind::Dir,
            2 => EntryKind::Symlink,
            3 => EntryKind::Hardlink,
            4 => EntryKind::Other,
            _ => return None,
        })
    }
}

/// One archive entry as the manifest records it. `path` is the name in the archive, raw bytes
/// (non-UTF-8 names survive); `crc32` is of the file data as stored (0 for non-files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    pub path: Vec<u8>,
    pub kind: EntryKind,
    pub size: u64,
    pub mtime: i64,
    pub mode: u32,
    pub crc32: u32,
    pub link: Option<Vec<u8>>,
}

impl ManifestEntry {
    pub fn path_lossy(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
}

/// Appends the trailer-body record of `e` to `body`.
pub fn encode_record(e: &ManifestEntry, body: &mut Vec<u8>) {
    body.push(e.kind.code());
    body.extend_from_slice(&e.mode.to_le_bytes());
    body.extend_from_slice(&e.mtime.to_le_bytes());
    body.extend_from_slice(&e.size.to_le_bytes());
    body.extend_from_slice(&e.crc32.to_le_bytes());
    body.extend_from_slice(&(e.path.len() as u32).to_le_bytes());
    body.extend_from_slice(&e.path);
    let link = e.link.as_deref().unwrap_or(&[]);
    body.extend_from_slice(&(link.len() as u32).to_le_bytes());
    body.extend_from_slice(link);
}

/// The trailer's header block, for a body of `len` bytes holding `entries` records, whose
/// crc32 is `crc`. The body follows it, zero-padded to a 512-byte boundary (`trailer_padding`).
pub fn trailer_header(entries: u64, len: u64, crc: u32) -> [u8; 512] {
    trailer_header_v(entries, len, crc, 1)
}

/// `trailer_header` of a given version.
pub fn trailer_header_v(entries: u64, len: u64, crc: u32, version: u32) -> [u8; 512] {
    let mut out = [0u8; 512];
    out[..16].copy_from_slice(TRAILER_MAGIC);
    out[16..20].copy_from_slice(&version.to_le_bytes());
    out[20..28].copy_from_slice(&entries.to_le_bytes());
    out[28..36].copy_from_slice(&len.to_le_bytes());
    out[36..40].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Zero bytes after a trailer body of `len` bytes.
pub fn trailer_padding(len: u64) -> usize {
    ((512 - len % 512) % 512) as usize
}

/// The version 1 trailer bytes (a multiple of 512) for `entries`.
pub fn encode_trailer(entries: &[ManifestEntry]) -> Vec<u8> {
    let mut body = Vec::with_capacity(entries.len() * 64);
    for e in entries {
        encode_record(e, &mut body);
    }
    let len = body.len() as u64;
    let mut out = trailer_header(entries.len() as u64, len, crc32fast::hash(&body)).to_vec();
    out.extend_from_slice(&body);
    out.resize(out.len() + trailer_padding(len), 0);
    out
}

fn bad(msg: &str) -> Error {
    Error::BadArchive(format!("manifest trailer: {msg}"))
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(bad("truncated"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
}

/// Is this 512-byte block the start of a trailer?
pub fn is_trailer_header(block: &[u8]) -> bool {
    block.len() >= 16 && &block[..16] == TRAILER_MAGIC
}

/// Decodes the trailer header block; returns (entries, body length, body crc).
pub fn decode_trailer_header(block: &[u8]) -> Result<(u64, u64, u32)> {
    decode_trailer_header_v(block).map(|(n, len, crc, _)| (n, len, crc))
}

/// Decodes the trailer header block; returns (entries, body length, body crc, version).
pub fn decode_trailer_header_v(block: &[u8]) -> Result<(u64, u64, u32, u32)> {
    if !is_trailer_header(block) || block.len() < 40 {
        return Err(bad("bad magic"));
    }
    let mut c = Cursor(&block[16..40]);
    let version = u32::from_le_bytes(c.arr()?);
    if !(1..=VERSION).contains(&version) {
        return Err(bad(&format!("unknown version {version}")));
    }
    let n = u64::from_le_bytes(c.arr()?);
    let len = u64::from_le_bytes(c.arr()?);
    let crc = u32::from_le_bytes(c.arr()?);
    if block.len() >= 512 && block[40..512].iter().any(|&b| b != 0) {
        return Err(bad("non-zero bytes in its header block"));
    }
    Ok((n, len, crc, version))
}

/// Decodes a trailer body (already checked against its length) of a version 1 trailer.
pub fn decode_body(body: &[u8], n: u64, crc: u32) -> Result<Vec<ManifestEntry>> {
    decode_body_v(body, n, crc, 1).map(|v| v.into_iter().map(|(e, _)| e).collect())
}

/// Decodes a trailer body of any version; version 1 records have no extension.
pub fn decode_body_v(
    body: &[u8],
    n: u64,
    crc: u32,
    version: u32,
) -> Result<Vec<(ManifestEntry, Option<EntryExt>)>> {
    if crc32fast::hash(body) != crc {
        return Err(bad("crc32 mismatch"));
    }
    let mut c = Cursor(body);
    let mut out = Vec::new();
    for _ in 0..n {
        let [k] = c.arr::<1>()?;
        let kind = EntryKind::from_code(k).ok_or_else(|| bad("unknown entry kind"))?;
        let mode = u32::from_le_bytes(c.arr()?);
        let mtime = i64::from_le_bytes(c.arr()?);
        let size = u64::from_le_bytes(c.arr()?);
        let crc32 = u32::from_le_bytes(c.arr()?);
        let plen = u32::from_le_bytes(c.arr()?) as usize;
        let path = c.take(plen)?.to_vec();
        let llen = u32::from_le_bytes(c.arr()?) as usize;
        let link = c.take(llen)?;
        let ext = if version >= 2 {
            Some(EntryExt::decode(c.take(ext_len(version))?))
        } else {
            None
        };
        out.push((
            ManifestEntry {
                path,
                kind,
                size,
                mtime,
                mode,
                crc32,
                link: if matches!(kind, EntryKind::Symlink | EntryKind::Hardlink) {
                    Some(link.to_vec())
                } else {
                    None
                },
            },
            ext,
        ));
    }
    if version >= 3 {
        let [a, b, c3, d] = c.arr::<4>()?;
        let count = u32::from_le_bytes([a, b, c3, d]) as usize;
        if count.checked_mul(MIDSTATE_LEN) != Some(c.0.len()) {
            return Err(bad("sha256 checkpoint table of the wrong length"));
        }
        decode_checkpoints(c.take(count * MIDSTATE_LEN)?)?;
    }
    if !c.0.is_empty() {
        return Err(bad("trailing bytes"));
    }
    Ok(out)
}

/// The end of a version 3 or 4 body: the sha256 checkpoints of the archive file (`sha_resume.rs`),
/// count u32 LE then each as `Midstate::encode` writes it.
pub fn encode_checkpoints(cps: &[Midstate], body: &mut Vec<u8>) {
    body.extend_from_slice(&(cps.len() as u32).to_le_bytes());
    for m in cps {
        m.encode(body);
    }
}

/// Decodes the checkpoints of a table body (without its count): each at a multiple of
/// `CHECKPOINT`, ascending, at most `MAX_CHECKPOINTS`.
pub fn decode_checkpoints(b: &[u8]) -> Result<Vec<Midstate>> {
    if b.len() % MIDSTATE_LEN != 0 || b.len() / MIDSTATE_LEN > MAX_CHECKPOINTS {
        return Err(bad("sha256 checkpoint table too long"));
    }
    let mut out: Vec<Midstate> = Vec::with_capacity(b.len() / MIDSTATE_LEN);
    for chunk in b.chunks_exact(MIDSTATE_LEN) {
        let m = Midstate::decode(chunk).ok_or_else(|| bad("bad sha256 checkpoint"))?;
        if m.len == 0 || m.len % CHECKPOINT != 0 || out.last().is_some_and(|p| p.len >= m.len) {
            return Err(bad("sha256 checkpoints out of place"));
        }
        out.push(m);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn a_span_between_two_ends_has_the_crc32s_of_its_own_bytes_and_appends_back(
            a in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            b in proptest::collection::vec(proptest::num::u8::ANY, 1..300),
            z in proptest::collection::vec(proptest::num::u8::ANY, 1..300),
            za in 0usize..300,
        ) {
            // `a`/`b` stand for inflated bytes, `z` (cut at `za`) for compressed ones
            let za = za.min(z.len() - 1);
            let end = |u: &[u8], c: &[u8]| UnitEnd {
                ulen: u.len() as u64,
                len: c.len() as u64,
                crc: crc32fast::hash(u),
                zcrc: crc32fast::hash(c),
            };
            let ab = [a.clone(), b.clone()].concat();
            let first = end(&a, &z[..za]);
            let both = end(&ab, &z);
            let span = first.span_to(&both).expect("a span");
            proptest::prop_assert_eq!(span, end(&b, &z[za..]));
            proptest::prop_assert_eq!(first.then(&span), both);
            proptest::prop_assert_eq!(UnitEnd::START.then(&both), both);
            proptest::prop_assert!(both.span_to(&first).is_none());
        }
    }

    #[test]
    fn trailer_roundtrips_non_utf8_paths_and_links() {
        let entries = vec![
            ManifestEntry {
                path: b"./a\xff\xfe".to_vec(),
                kind: EntryKind::File,
                size: 5,
                mtime: -3,
                mode: 0o644,
                crc32: 77,
                link: None,
            },
            ManifestEntry {
                path: b"./l".to_vec(),
                kind: EntryKind::Symlink,
                size: 0,
                mtime: 1,
                mode: 0o777,
                crc32: 0,
                link: Some(b"a\xff\xfe".to_vec()),
            },
        ];
        let t = encode_trailer(&entries);
        assert_eq!(t.len() % 512, 0);
        let (n, len, crc) = decode_trailer_header(&t[..512]).expect("header");
        let body = &t[512..512 + len as usize];
        assert_eq!(decode_body(body, n, crc).expect("body"), entries);
        let mut bad_body = body.to_vec();
        bad_body[3] ^= 1;
        assert_eq!(
            decode_body(&bad_body, n, crc).map_err(|e| e.reason()),
            Err("bad_archive")
        );
    }

    fn sample_ext(end: Option<UnitEnd>) -> EntryExt {
        EntryExt {
            mtime_nsec: 999_999_999,
            ino: u64::MAX - 3,
            ctime: -7,
            ctime_nsec: 5,
            unit: Some(Unit {
                offset: 10,
                len: 1 << 40,
                ulen: (1 << 41) + 3,
                crc: 0xdead_beef,
                zcrc: 0x0bad_f00d,
            }),
            end,
        }
    }

    /// A body of `version` holding `records`, with `ext_len(version)` bytes of extension each
    /// (the first bytes of the version 4 encoding: the older layouts are its prefixes) and an
    /// empty checkpoint table from version 3 on.
    fn body_of(records: &[(ManifestEntry, EntryExt)], version: u32) -> Vec<u8> {
        let mut body = Vec::new();
        for (e, x) in records {
            encode_record(e, &mut body);
            let mut ext = Vec::new();
            x.encode(&mut ext);
            assert_eq!(ext.len(), EXT_LEN);
            body.extend_from_slice(&ext[..ext_len(version)]);
        }
        if version >= 3 {
            encode_checkpoints(&[], &mut body);
        }
        body
    }

    #[test]
    fn version_4_records_round_trip_with_and_without_an_end_and_version_3_still_reads() {
        let e = ManifestEntry {
            path: b"./d/a.txt".to_vec(),
            kind: EntryKind::File,
            size: 700,
            mtime: 1_700_000_000,
            mode: 0o644,
            crc32: 12345,
            link: None,
        };
        let end = UnitEnd {
            ulen: 1536,
            len: 777,
            crc: 0x1234_5678,
            zcrc: 0x9abc_def0,
        };
        let records = vec![
            (e.clone(), sample_ext(Some(end))),
            (e.clone(), sample_ext(None)),
            (e.clone(), EntryExt::default()),
        ];
        let body = body_of(&records, 4);
        let back = decode_body_v(&body, 3, crc32fast::hash(&body), 4).expect("v4");
        let got: Vec<(ManifestEntry, EntryExt)> = back
            .into_iter()
            .map(|(e, x)| (e, x.expect("an extension")))
            .collect();
        assert_eq!(got, records);
        // a version 3 body (56 bytes of extension) reads with no end
        let body3 = body_of(&records, 3);
        assert_eq!(body3.len() + 3 * 24, body.len());
        let back3 = decode_body_v(&body3, 3, crc32fast::hash(&body3), 3).expect("v3");
        assert_eq!(back3[0].1.expect("ext").unit, records[0].1.unit);
        assert!(back3.iter().all(|(_, x)| x.expect("ext").end.is_none()));
        // and a version 2 body (52) with no crc32 of the compressed bytes either
        let body2 = body_of(&records, 2);
        let back2 = decode_body_v(&body2, 3, crc32fast::hash(&body2), 2).expect("v2");
        assert_eq!(back2[0].1.expect("ext").unit.expect("unit").zcrc, 0);
        // the header of a version 4 trailer reads back, a version 5 one is refused
        let h = trailer_header_v(3, body.len() as u64, crc32fast::hash(&body), 4);
        assert_eq!(decode_trailer_header_v(&h).expect("v4 header").3, 4);
        let h5 = trailer_header_v(3, body.len() as u64, crc32fast::hash(&body), 5);
        assert!(decode_trailer_header_v(&h5).is_err());
    }
}
