//! The tar layer of the reader: 512-byte blocks in, entries out, with every declared length
//! checked before it is used.
//!
//! Size: every header kind (ustar, GNU long names and sparse maps, PAX) with its limits, in one
//! place, so that no path through the reader skips a bound.
//!
//! Why not `tar::Archive` (which this engine used before): it reads GNU long names and PAX
//! records into memory whatever size they declare (a 1 GiB long name cost 2-3 GB and aborted
//! the VM), makes up the zeros of sparse holes in a reader of its own that no cancel check
//! reaches (a 2^60-byte hole never ended), ends at end of input as if the end-of-archive marker
//! were there (a truncated archive read as complete), and splits PAX records at newlines (a
//! name with a newline in it is misread). It has no hook for any of these. So the block-level
//! state machine is written here, about 400 lines; every field of a header is still parsed by
//! the `tar` crate's `Header`, `GnuHeader` and `GnuSparseHeader` (octal, base-256, checksum
//! field).
//!
//! Rules: the end-of-archive marker (two zero blocks) is required; a header's checksum must
//! match (GNU tar's unsigned or signed sum); `L`/`K` data is at most `MAX_LONG_NAME` bytes and
//! PAX data `MAX_PAX` bytes, refused before reading; a GNU sparse map has at most
//! `MAX_SPARSE_SEGMENTS` segments, in order, inside a real size of at most `MAX_SPARSE_SIZE`;
//! PAX sparse formats (`GNU.sparse.*`) are refused, not misread. Holes are never materialised:
//! readers get them as `Chunk::Hole(n)` and their crc32 is computed in O(log n).

use super::control::JobControl;
use super::limits::{MAX_LONG_NAME, MAX_PAX, MAX_SPARSE_SEGMENTS, MAX_SPARSE_SIZE};
use super::manifest::EntryKind;
use super::read::EntryInfo;
use crate::error::{Error, Result};
use std::io::{self, Read};

pub(crate) const BLOCK: usize = 512;
const SCRATCH: usize = 64 << 10;

fn bad(msg: impl Into<String>) -> Error {
    Error::BadArchive(msg.into())
}

/// Maps an error of the underlying (decompressing) reader to a typed error.
pub(crate) type MapErr<'a> = &'a dyn Fn(io::Error) -> Error;

/// The uncompressed tar stream, read block by block.
pub(crate) struct TarStream<'a> {
    inner: Box<dyn Read + 'a>,
    ctl: &'a JobControl,
    map: MapErr<'a>,
    /// Bytes consumed so far.
    pub(crate) pos: u64,
    scratch: Vec<u8>,
}

/// An entry's header, resolved (extensions applied), before its data is read.
pub(crate) struct RawEntry {
    pub(crate) info: EntryInfo,
    /// Bytes of data stored in the stream after the header(s).
    stored: u64,
    /// Data segments `(offset, length)` of a sparse file; `None` for a plain entry.
    sparse: Option<Vec<(u64, u64)>>,
}

/// What `EntryData::next_chunk` yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunk {
    /// This many bytes of data were put at the start of the buffer.
    Data(usize),
    /// A hole of this many zero bytes (sparse files): nothing is put in the buffer.
    Hole(u64),
    End,
}

impl<'a> TarStream<'a> {
    pub(crate) fn new(inner: Box<dyn Read + 'a>, ctl: &'a JobControl, map: MapErr<'a>) -> Self {
        TarStream {
            inner,
            ctl,
            map,
            pos: 0,
            scratch: vec![0; SCRATCH],
        }
    }

    /// Reads some bytes into `buf` (not empty); 0 only at the end of the stream.
    fn read_some(&mut self, buf: &mut [u8]) -> Result<usize> {
        loop {
            match self.inner.read(buf) {
                Ok(n) => {
                    self.pos += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err((self.map)(e)),
            }
        }
    }

    /// Fills `buf` completely; returns the bytes read (less only at the end of the stream).
    fn read_full(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut got = 0;
        while got < buf.len() {
            let n = self.read_some(&mut buf[got..])?;
            if n == 0 {
                break;
            }
            got += n;
        }
        Ok(got)
    }

    /// Fills `buf` or fails with `BadArchive(msg)`.
    pub(crate) fn read_exact_or(&mut self, buf: &mut [u8], msg: &str) -> Result<()> {
        self.ctl.check()?;
        if self.read_full(buf)? < buf.len() {
            Err(bad(msg))
        } else {
            Ok(())
        }
    }

    /// One block; `false` at the end of the stream. A partial block is an error.
    pub(crate) fn read_block(&mut self, block: &mut [u8; BLOCK]) -> Result<bool> {
        self.ctl.check()?;
        match self.read_full(block)? {
            0 => Ok(false),
            BLOCK => Ok(true),
            n => Err(bad(format!(
                "truncated: the stream ends {n} bytes into a 512-byte block at offset {}",
                self.pos - n as u64
            ))),
        }
    }

    /// Reads and drops `n` bytes, checking for cancel on the way.
    fn skip(&mut self, mut n: u64, what: &str) -> Result<()> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let r = (|| -> Result<()> {
            while n > 0 {
                self.ctl.check()?;
                let want = n.min(scratch.len() as u64) as usize;
                let got = self.read_some(&mut scratch[..want])?;
                if got == 0 {
                    return Err(bad(format!("truncated: the stream ends inside {what}")));
                }
                n -= got as u64;
            }
            Ok(())
        })();
        self.scratch = scratch;
        r
    }

    /// Skips the zero padding after `len` bytes of data.
    fn skip_padding(&mut self, len: u64) -> Result<()> {
        let pad = (BLOCK as u64 - len % BLOCK as u64) % BLOCK as u64;
        self.skip(pad, "padding")
    }

    /// The data of an extension entry (`L`, `K`, `x`, `g`), at most `cap` bytes.
    fn read_extension(&mut self, size: u64, cap: u64, what: &str) -> Result<Vec<u8>> {
        if size > cap {
            return Err(Error::LimitExceeded(format!(
                "{what} of {size} bytes (at most {cap} are read)"
            )));
        }
        // size <= cap (at most 1 MiB), so this allocation is bounded
        let mut data = vec![0u8; size as usize];
        if self.read_full(&mut data)? < data.len() {
            return Err(bad(format!("truncated: the stream ends inside a {what}")));
        }
        self.skip_padding(size)?;
        Ok(data)
    }

    /// The next entry, or `None` at the end-of-archive marker (both zero blocks read).
    pub(crate) fn next_entry(&mut self) -> Result<Option<RawEntry>> {
        let mut ext = Extensions::default();
        let mut block = [0u8; BLOCK];
        loop {
            let at = self.pos;
            if !self.read_block(&mut block)? {
                return Err(bad(if at == 0 {
                    "empty: no tar data at all".to_string()
                } else {
                    format!(
                        "truncated: no end-of-archive marker (the tar stream ends at offset {at})"
                    )
                }));
            }
            if block.iter().all(|&b| b == 0) {
                if !ext.is_empty() {
                    return Err(bad(
                        "an extension header (long name, PAX) is not followed by its entry",
                    ));
                }
                if !self.read_block(&mut block)? {
                    return Err(bad(format!(
                        "truncated: the end-of-archive marker at offset {at} has one zero block of two"
                    )));
                }
                if !block.iter().all(|&b| b == 0) {
                    return Err(bad(format!("a lone zero block at offset {at}")));
                }
                return Ok(None);
            }
            let header = tar::Header::from_byte_slice(&block);
            check_checksum(&block, header, at)?;
            let size = header
                .entry_size()
                .map_err(|e| bad(format!("header at offset {at}: {e}")))?;
            match block[156] {
                b'L' => {
                    if ext.long_name.is_some() {
                        return Err(bad("two long names for one entry"));
                    }
                    let d = self.read_extension(size, MAX_LONG_NAME, "GNU long name")?;
                    ext.long_name = Some(until_nul(d));
                }
                b'K' => {
                    if ext.long_link.is_some() {
                        return Err(bad("two long link names for one entry"));
                    }
                    let d = self.read_extension(size, MAX_LONG_NAME, "GNU long link name")?;
                    ext.long_link = Some(until_nul(d));
                }
                b'x' | b'X' => {
                    if ext.pax.is_some() {
                        return Err(bad("two PAX headers for one entry"));
                    }
                    let d = self.read_extension(size, MAX_PAX, "PAX header")?;
                    ext.pax = Some(Pax::parse(&d)?);
                }
                b'g' => {
                    // Global records are read and checked, but no value of theirs applies here
                    // (none of the keys this reader uses is meaningful globally).
                    let d = self.read_extension(size, MAX_PAX, "PAX global header")?;
                    Pax::parse(&d)?;
                }
                typ => return self.entry(&block, typ, size, at, ext).map(Some),
            }
        }
    }

    fn entry(
        &mut self,
        block: &[u8; BLOCK],
        typ: u8,
        header_size: u64,
        at: u64,
        ext: Extensions,
    ) -> Result<RawEntry> {
        let header = tar::Header::from_byte_slice(block);
        let field = |e: io::Error| bad(format!("header at offset {at}: {e}"));
        let kind = match typ {
            b'0' | 0 | b'7' | b'S' => EntryKind::File,
            b'5' => EntryKind::Dir,
            b'2' => EntryKind::Symlink,
            b'1' => EntryKind::Hardlink,
            _ => EntryKind::Other,
        };
        let pax = ext.pax.unwrap_or_default();
        let path = pax
            .path
            .or(ext.long_name)
            .unwrap_or_else(|| header.path_bytes().into_owned());
        let link = match kind {
            EntryKind::Symlink | EntryKind::Hardlink => Some(
                pax.linkpath
                    .or(ext.long_link)
                    .or_else(|| header.link_name_bytes().map(|l| l.into_owned()))
                    .unwrap_or_default(),
            ),
            _ => None,
        };
        let stored = pax.size.unwrap_or(header_size);
        let mtime = match pax.mtime {
            Some(t) => t,
            None => i64::try_from(header.mtime().map_err(field)?)
                .map_err(|_| bad(format!("header at offset {at}: mtime out of range")))?,
        };
        let mode = header.mode().map_err(field)?;
        let (size, sparse) = if typ == b'S' {
            let (real, segs) = self.sparse_map(block, stored, at)?;
            (real, Some(segs))
        } else if kind == EntryKind::File {
            (stored, None)
        } else {
            (0, None)
        };
        Ok(RawEntry {
            info: EntryInfo {
                path,
                kind,
                size,
                mtime,
                mode,
                link,
                crc32: 0,
            },
            stored,
            sparse,
        })
    }

    /// The segment map of an old-GNU sparse entry (`S`): the header's four slots and the
    /// extension blocks that follow it. Returns (real size, segments).
    fn sparse_map(
        &mut self,
        block: &[u8; BLOCK],
        stored: u64,
        at: u64,
    ) -> Result<(u64, Vec<(u64, u64)>)> {
        let header = tar::Header::from_byte_slice(block);
        let gnu = header
            .as_gnu()
            .ok_or_else(|| bad(format!("sparse entry at offset {at} without a GNU header")))?;
        let real = gnu
            .real_size()
            .map_err(|e| bad(format!("sparse entry at offset {at}: {e}")))?;
        if real > MAX_SPARSE_SIZE {
            return Err(Error::LimitExceeded(format!(
                "sparse file of {real} bytes at offset {at} (at most {MAX_SPARSE_SIZE})"
            )));
        }
        let mut segs = Vec::new();
        let mut end = 0u64;
        let mut data = 0u64;
        let mut add = |s: &tar::GnuSparseHeader| -> Result<()> {
            if s.offset.iter().all(|&b| b == 0) && s.numbytes.iter().all(|&b| b == 0) {
                return Ok(());
            }
            let off = s
                .offset()
                .map_err(|e| bad(format!("sparse map at offset {at}: {e}")))?;
            let len = s
                .length()
                .map_err(|e| bad(format!("sparse map at offset {at}: {e}")))?;
            let seg_end = off
                .checked_add(len)
                .filter(|&e| off >= end && e <= real)
                .ok_or_else(|| {
                    bad(format!(
                        "sparse map at offset {at}: segments out of order or past the real size"
                    ))
                })?;
            data += len;
            if data > stored {
                return Err(bad(format!(
                    "sparse map at offset {at}: more data than stored"
                )));
            }
            end = seg_end;
            if len > 0 {
                if segs.len() >= MAX_SPARSE_SEGMENTS {
                    return Err(Error::LimitExceeded(format!(
                        "sparse map at offset {at} has more than {MAX_SPARSE_SEGMENTS} segments"
                    )));
                }
                segs.push((off, len));
            }
            Ok(())
        };
        for s in gnu.sparse.iter() {
            add(s)?;
        }
        let mut extended = gnu.is_extended();
        let mut ext_blocks = 0usize;
        while extended {
            ext_blocks += 1;
            if ext_blocks > MAX_SPARSE_SEGMENTS / 21 + 1 {
                return Err(Error::LimitExceeded(format!(
                    "sparse map at offset {at} has more than {MAX_SPARSE_SEGMENTS} segments"
                )));
            }
            let mut ext = tar::GnuExtSparseHeader::new();
            if !self.read_block(ext.as_mut_bytes())? {
                return Err(bad(format!(
                    "truncated: the sparse map at offset {at} is cut short"
                )));
            }
            for s in ext.sparse.iter() {
                add(s)?;
            }
            extended = ext.is_extended();
        }
        if data != stored {
            return Err(bad(format!(
                "sparse map at offset {at}: {data} bytes of segments, {stored} stored"
            )));
        }
        Ok((real, segs))
    }

    /// The entry and its data reader; every entry's data must be read (or drained) through it
    /// before the next `next_entry`.
    pub(crate) fn data<'t>(&'t mut self, e: RawEntry) -> (EntryInfo, EntryData<'t, 'a>) {
        let plain = e.info.kind == EntryKind::File;
        let sparse = e.sparse.is_some();
        let data = EntryData {
            stored_left: e.stored,
            stored: e.stored,
            segs: e.sparse.unwrap_or_default(),
            sparse,
            seg: 0,
            logical: 0,
            size: if plain { e.info.size } else { 0 },
            crc: crc32fast::Hasher::new(),
            tar: self,
        };
        (e.info, data)
    }
}

/// Reads one entry's data: `Chunk::Data` for stored bytes, `Chunk::Hole` for the holes of a
/// sparse file. Checks for cancel at every chunk, whatever the entry type.
pub(crate) struct EntryData<'t, 'a> {
    tar: &'t mut TarStream<'a>,
    stored_left: u64,
    stored: u64,
    segs: Vec<(u64, u64)>,
    sparse: bool,
    seg: usize,
    /// Bytes of the file produced so far (data and holes).
    logical: u64,
    /// The file's size (0 for entries that are not files: their data is skipped).
    size: u64,
    crc: crc32fast::Hasher,
}

impl EntryData<'_, '_> {
    pub(crate) fn next_chunk(&mut self, buf: &mut [u8]) -> Result<Chunk> {
        self.tar.ctl.check()?;
        if buf.is_empty() {
            return Err(Error::InvalidArgument("empty read buffer".into()));
        }
        if !self.sparse {
            if self.logical >= self.size {
                return Ok(Chunk::End);
            }
            let want = (self.size - self.logical).min(buf.len() as u64) as usize;
            return self.read_data(&mut buf[..want]);
        }
        loop {
            match self.segs.get(self.seg).copied() {
                Some((off, len)) => {
                    if self.logical < off {
                        return Ok(self.hole(off - self.logical));
                    }
                    let left = off + len - self.logical;
                    if left == 0 {
                        self.seg += 1;
                        continue;
                    }
                    let want = left.min(buf.len() as u64) as usize;
                    return self.read_data(&mut buf[..want]);
                }
                None if self.logical < self.size => return Ok(self.hole(self.size - self.logical)),
                None => return Ok(Chunk::End),
            }
        }
    }

    fn read_data(&mut self, buf: &mut [u8]) -> Result<Chunk> {
        let n = self.tar.read_some(buf)?;
        if n == 0 {
            return Err(bad(format!(
                "truncated: the stream ends {} bytes into an entry of {}",
                self.stored - self.stored_left,
                self.stored
            )));
        }
        self.crc.update(&buf[..n]);
        self.stored_left -= n as u64;
        self.logical += n as u64;
        Ok(Chunk::Data(n))
    }

    fn hole(&mut self, n: u64) -> Chunk {
        self.crc.combine(&zeros_crc(n));
        self.logical += n;
        Chunk::Hole(n)
    }

    /// Reads what the caller left, skips data of non-file entries and the padding; returns the
    /// crc32 of the file's content.
    pub(crate) fn finish(mut self) -> Result<u32> {
        let mut buf = std::mem::take(&mut self.tar.scratch);
        let r = (|| -> Result<()> {
            while self.next_chunk(&mut buf)? != Chunk::End {}
            Ok(())
        })();
        self.tar.scratch = buf;
        r?;
        let left = self.stored_left;
        self.tar.skip(left, "an entry's data")?;
        self.tar.skip_padding(self.stored)?;
        Ok(self.crc.finalize())
    }
}

/// A crc32 state of `n` zero bytes, by doubling: O(log n) combines, whatever `n`.
pub fn zeros_crc(mut n: u64) -> crc32fast::Hasher {
    const UNIT: usize = 4096;
    let zeros = [0u8; UNIT];
    let mut out = crc32fast::Hasher::new();
    out.update(&zeros[..(n % UNIT as u64) as usize]);
    n /= UNIT as u64;
    let mut power = crc32fast::Hasher::new();
    power.update(&zeros);
    while n > 0 {
        if n & 1 == 1 {
            out.combine(&power);
        }
        n >>= 1;
        if n > 0 {
            let p = power.clone();
            power.combine(&p);
        }
    }
    out
}

fn check_checksum(block: &[u8; BLOCK], header: &tar::Header, at: u64) -> Result<()> {
    let stored = header
        .cksum()
        .map_err(|e| bad(format!("header at offset {at}: {e}")))?;
    let (mut unsigned, mut signed) = (8 * 32u32, 8 * 32i64);
    for (i, &b) in block.iter().enumerate() {
        if !(148..156).contains(&i) {
            unsigned += u32::from(b);
            signed += i64::from(b as i8);
        }
    }
    if stored == unsigned || i64::from(stored) == signed {
        Ok(())
    } else {
        Err(bad(format!("header at offset {at}: checksum mismatch")))
    }
}

/// GNU tar reads long names as C strings.
fn until_nul(mut d: Vec<u8>) -> Vec<u8> {
    if let Some(i) = d.iter().position(|&b| b == 0) {
        d.truncate(i);
    }
    d
}

#[derive(Default)]
struct Extensions {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Option<Pax>,
}

impl Extensions {
    fn is_empty(&self) -> bool {
        self.long_name.is_none() && self.long_link.is_none() && self.pax.is_none()
    }
}

/// The PAX keys this reader applies.
#[derive(Default)]
struct Pax {
    path: Option<Vec<u8>>,
    linkpath: Option<Vec<u8>>,
    size: Option<u64>,
    mtime: Option<i64>,
}

impl Pax {
    /// Parses `"<len> <key>=<value>\n"` records by their length prefix (values may hold
    /// newlines).
    fn parse(data: &[u8]) -> Result<Pax> {
        let mut pax = Pax::default();
        let mut rest = data;
        while !rest.is_empty() {
            let sp = rest
                .iter()
                .take(20)
                .position(|&b| b == b' ')
                .ok_or_else(|| bad("PAX record without a length"))?;
            let len: usize = std::str::from_utf8(&rest[..sp])
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad("PAX record with a bad length"))?;
            if len <= sp + 1 || len > rest.len() || rest[len - 1] != b'\n' {
                return Err(bad("PAX record length does not match its content"));
            }
            let record = &rest[sp + 1..len - 1];
            rest = &rest[len..];
            let eq = record
                .iter()
                .position(|&b| b == b'=')
                .ok_or_else(|| bad("PAX record without '='"))?;
            let (key, value) = (&record[..eq], &record[eq + 1..]);
            // An empty value removes the key (POSIX): the header's own field applies.
            let value = (!value.is_empty()).then(|| value.to_vec());
            match key {
                b"path" => pax.path = value,
                b"linkpath" => pax.linkpath = value,
                b"size" => pax.size = value.map(|v| parse_u64(&v, "size")).transpose()?,
                b"mtime" => pax.mtime = value.map(|v| parse_time(&v)).transpose()?,
                k if k.starts_with(b"GNU.sparse.") => {
                    return Err(bad(
                        "PAX sparse file (GNU.sparse.*): not supported; extract it with GNU tar",
                    ))
                }
                _ => {}
            }
        }
        Ok(pax)
    }
}

fn parse_u64(v: &[u8], key: &str) -> Result<u64> {
    std::str::from_utf8(v)
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("PAX {key} is not a number")))
}

/// `[-]seconds[.fraction]`: the whole seconds.
fn parse_time(v: &[u8]) -> Result<i64> {
    let s = std::str::from_utf8(v).map_err(|_| bad("PAX mtime is not a number"))?;
    let whole = s.split('.').next().unwrap_or("");
    let (neg, digits) = match whole.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, whole),
    };
    let n: i64 = Some(digits)
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| bad("PAX mtime is not a number"))?;
    Ok(if neg { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_of_zero_runs_matches_the_direct_computation() {
        for n in [
            0u64,
            1,
            4095,
            4096,
            4097,
            3 * 4096 + 5,
            1 << 20,
            (1 << 20) + 1,
        ] {
            let mut direct = crc32fast::Hasher::new();
            direct.update(&vec![0u8; n as usize]);
            assert_eq!(zeros_crc(n).finalize(), direct.finalize(), "n = {n}");
        }
        // and a huge one is instant
        let started = std::time::Instant::now();
        let _ = zeros_crc(1 << 60).finalize();
        assert!(started.elapsed().as_millis() < 100);
    }

    #[test]
    fn pax_records_are_split_by_length_so_values_may_hold_newlines() {
        let rec = |k: &str, v: &str| {
            let body = format!(" {k}={v}\n");
            let mut len = body.len() + 1;
            while len != body.len() + len.to_string().len() {
                len = body.len() + len.to_string().len();
            }
            format!("{len}{body}")
        };
        let data = format!("{}{}", rec("path", "a\nb"), rec("mtime", "-12.5"));
        let pax = Pax::parse(data.as_bytes()).expect("parsed");
        assert_eq!(pax.path.as_deref(), Some(&b"a\nb"[..]));
        assert_eq!(pax.mtime, Some(-12));
        assert!(Pax::parse(b"99 path=x\n").is_err());
        assert!(Pax::parse(b"abc").is_err());
        assert!(Pax::parse(b"30 GNU.sparse.major=1\n").is_err());
    }
}
