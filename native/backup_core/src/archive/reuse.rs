//! Reading the previous set's archive (PREV) for reuse (issue 15): its index, found without
//! inflating the archive, and what a unit must satisfy before its bytes are copied.
//!
//! PREV is untrusted. What is used of it:
//! * the tail (`Locator`, manifest.rs): the last 530 bytes of a `.tar.gz` this engine wrote are
//!   a stored block holding the locator, the empty final block and the gzip trailer; the
//!   locator names the unit holding the end-of-archive marker and the manifest, which is
//!   inflated on its own (`UnitReader`, which also proves that unit byte-aligned, below) and
//!   read record by record (names bounded, nothing kept but the records of one unit at a time;
//!   a unit of more than `MAX_UNIT_ENTRIES` entries is ignored; the body's crc32 checked);
//! * for each unit the new set would reuse (create.rs), three checks, none of which inflates:
//!   1. its files are unchanged on disk (name, kind, size, mode, mtime and ctime to the
//!      nanosecond, inode);
//!   2. the crc32 of what it must inflate to -- the tar headers this run would write for those
//!      files, their data with the crc32 PREV records for each, zero padding -- combined
//!      (`crc32_combine`) equals the unit's recorded crc32 and length;
//!   3. the bytes copied have the crc32 the manifest records for the unit's compressed bytes
//!      (version 3). The hash thread of the output reads every copied range for the archive's
//!      sha256 anyway; it checks this crc32 on the same pass, and a mismatch makes `create`
//!      write the archive again without that unit (create.rs), so a damaged PREV never ends
//!      up in a set.
//! * the same three checks for a *prefix* of a unit (version 4): when only the unit's first
//!   entries are unchanged, its bytes up to the sync point after the last of them (recorded
//!   per entry, [`UnitEnd`](super::manifest::UnitEnd)) are a unit of their own; checks 2 and 3
//!   use the lengths and crc32s recorded for that point, which must lie inside the unit;
//! * and for a *tail* (plan.rs), the unit's bytes between two recorded points: their lengths
//!   and crc32s follow from the two points' (`UnitEnd::span_to`); the 32 KiB of input before
//!   the tail are this run's own entries, each of which must have the length and crc32 its
//!   bytes have in PREV between its two points.
//!
//! What this trusts: that PREV's units were written by this engine (each a byte-aligned run
//! with no back-reference before it and no final block, and so is each of its prefixes up to
//! a recorded sync point, while what follows a sync point refers back at most 32 KiB: pgzip.rs),
//! as its gzip header,
//! locator, manifest version and crc32s say. A flipped or truncated byte anywhere in a unit,
//! its record or the manifest is caught (crc32 over the compressed bytes, the record's fields
//! and the body); a file forged to pass all three would also have to forge consistent crc32s,
//! which protects nothing anyone who can write the backup directory could not do directly to
//! the new set. (Until this version each unit was inflated and compared byte for byte: the
//! same guarantee against damage at about twice the cost of copying the archive.)
//!
//! How "on its own and byte-aligned" is checked where PREV is inflated (the tail unit): the
//! unit is inflated as a raw deflate stream without dictionary (a back-reference before its
//! start is an error of the inflater), then the 5 bytes of an empty *final stored* block are
//! fed after it, and the inflater must end exactly at their end. If the unit stopped mid-block
//! or off a byte boundary, those 5 bytes would be read as something else; none ends the stream
//! exactly there. A unit that ends with a final block ends the stream before the sentinel.
//!
//! Anything that fails makes that unit's files be compressed from the source again; a PREV
//! that is missing, not ours, encrypted, without an index (older archives), of manifest version
//! 2 (no crc32 of the compressed bytes) or whose index is damaged is simply not used. Reading
//! stays within fixed memory; every loop checks cancel.

use super::control::JobControl;
use super::hashing::MAX_CHECKPOINTS;
use super::limits::MAX_LONG_NAME;
use super::manifest::decode_checkpoints;
use super::manifest::{
    decode_trailer_header_v, ext_len, EntryExt, EntryKind, Locator, ManifestEntry, Unit, EXT_LEN,
};
use super::pgzip::GZ_HEADER;
use super::sha_resume::{Midstate, MIDSTATE_LEN};
use flate2::{Decompress, FlushDecompress, Status};
use std::cmp::Ordering;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// An empty final stored block: fed after a unit to prove it ends on a block boundary.
pub(crate) const SENTINEL: [u8; 5] = [0x01, 0x00, 0x00, 0xff, 0xff];
/// Bytes after the tail unit: stored block header, locator, empty final block, trailer.
pub(crate) const TAIL: u64 = 5 + 512 + 5 + 8;
/// Entries of one unit a reader holds at most.
pub(crate) const MAX_UNIT_ENTRIES: usize = 4096;
const READ_BUF: usize = 256 << 10;

/// A previous archive whose index was found.
pub(crate) struct Prev {
    pub(crate) file: Arc<File>,
    locator: Locator,
}

impl Prev {
    /// Opens PREV and reads its locator; `Err(why)` when it cannot be used.
    pub(crate) fn open(path: &Path) -> std::result::Result<Prev, String> {
        let file = crate::fsutil::open_regular(path).map_err(|e| format!("{e}"))?;
        let len = file
            .metadata()
            .map_err(|e| format!("cannot stat it: {e}"))?
            .len();
        if len < GZ_HEADER.len() as u64 + TAIL {
            return Err("not an archive made by this engine (too short)".into());
        }
        let mut head = [0u8; 10];
        file.read_exact_at(&mut head, 0)
            .map_err(|e| format!("read error: {e}"))?;
        if head[..2] != GZ_HEADER[..2] {
            return Err("not a gzip file (an encrypted set's archive is not reused)".into());
        }
        if head != GZ_HEADER {
            return Err("not an archive made by this engine (gzip header)".into());
        }
        let mut tail = [0u8; TAIL as usize];
        file.read_exact_at(&mut tail, len - TAIL)
            .map_err(|e| format!("read error: {e}"))?;
        let stored_header = [0x00, 0x00, 0x02, 0xff, 0xfd];
        if tail[..5] != stored_header || tail[517..522] != SENTINEL {
            return Err("no reuse index (made by an older version, or not by this engine)".into());
        }
        let locator = Locator::decode(&tail[5..517])
            .ok_or_else(|| "no reuse index (bad locator block)".to_string())?;
        let u = locator.unit;
        if u.offset < GZ_HEADER.len() as u64
            || u.offset.checked_add(u.len) != Some(len - TAIL)
            || u.ulen < 1024 + 512
        {
            return Err("damaged reuse index (locator out of place)".into());
        }
        Ok(Prev {
            file: Arc::new(file),
            locator,
        })
    }

    /// The unit holding the end-of-archive marker and the manifest, as the locator names it.
    pub(crate) fn tail_unit(&self) -> Unit {
        self.locator.unit
    }

    /// The manifest records, streamed from the tail unit.
    pub(crate) fn records<'c>(
        &self,
        ctl: &'c JobControl,
    ) -> std::result::Result<Records<'c>, String> {
        let mut r = UnitReader::new(Arc::clone(&self.file), self.locator.unit, ctl);
        let mut zeros = [0u8; 1024];
        read_exact(&mut r, &mut zeros)?;
        if zeros.iter().any(|&b| b != 0) {
            return Err("damaged reuse index (no end-of-archive marker)".into());
        }
        let mut header = [0u8; 512];
        read_exact(&mut r, &mut header)?;
        let (n, len, crc, version) = decode_trailer_header_v(&header).map_err(|e| e.to_string())?;
        if version < 2 {
            return Err("no reuse index (manifest version 1)".into());
        }
        if n != self.locator.entries {
            return Err("damaged reuse index (entry counts differ)".into());
        }
        Ok(Records {
            r,
            left: n,
            body_left: len,
            crc_want: crc,
            crc: crc32fast::Hasher::new(),
            ext_len: ext_len(version),
            // version 2 has no checkpoint table
            table_read: version < 3,
            checkpoints: Vec::new(),
            version,
        })
    }
}

impl Prev {
    /// The sha256 checkpoints PREV recorded of itself (read through its whole index).
    pub(crate) fn checkpoints(
        &self,
        ctl: &JobControl,
    ) -> std::result::Result<Vec<Midstate>, String> {
        let mut r = self.records(ctl)?;
        while r.next_record()?.is_some() {}
        Ok(std::mem::take(&mut r.checkpoints))
    }
}

fn read_exact(r: &mut impl Read, buf: &mut [u8]) -> std::result::Result<(), String> {
    r.read_exact(buf).map_err(|e| format!("reuse index: {e}"))
}

/// The manifest records of PREV, one at a time.
pub(crate) struct Records<'c> {
    r: UnitReader<'c>,
    left: u64,
    body_left: u64,
    crc_want: u32,
    crc: crc32fast::Hasher,
    ext_len: usize,
    table_read: bool,
    /// The archive's sha256 checkpoints, once every record was read.
    checkpoints: Vec<Midstate>,
    version: u32,
}

impl Records<'_> {
    /// Whether a later set may reuse the units: versions 3 and 4 record the crc32 of their
    /// compressed bytes, which the copy is checked against (version 2 is only read).
    pub(crate) fn reusable(&self) -> std::result::Result<(), String> {
        if self.version < 3 {
            return Err(format!(
                "no reuse index usable by this version (manifest version {}: no crc32 of the \
                 compressed units)",
                self.version
            ));
        }
        Ok(())
    }

    fn take(&mut self, buf: &mut [u8]) -> std::result::Result<(), String> {
        if buf.len() as u64 > self.body_left {
            return Err("damaged reuse index (record past the body)".into());
        }
        read_exact(&mut self.r, buf)?;
        self.body_left -= buf.len() as u64;
        self.crc.update(buf);
        Ok(())
    }

    fn bytes(&mut self, n: u32) -> std::result::Result<Vec<u8>, String> {
        if u64::from(n) > MAX_LONG_NAME {
            return Err("damaged reuse index (name too long)".into());
        }
        let mut v = vec![0u8; n as usize];
        self.take(&mut v)?;
        Ok(v)
    }

    /// The next record; `Ok(None)` after the last one (whose body crc32 then matched).
    pub(crate) fn next_record(
        &mut self,
    ) -> std::result::Result<Option<(ManifestEntry, EntryExt)>, String> {
        if self.left == 0 {
            if !self.table_read {
                // versions 3 and 4: the sha256 checkpoints end the body
                self.table_read = true;
                let mut n = [0u8; 4];
                self.take(&mut n)?;
                let n = u32::from_le_bytes(n) as usize;
                if n > MAX_CHECKPOINTS || (n * MIDSTATE_LEN) as u64 != self.body_left {
                    return Err("damaged reuse index (checkpoint table)".into());
                }
                let mut table = vec![0u8; n * MIDSTATE_LEN];
                self.take(&mut table)?;
                self.checkpoints = decode_checkpoints(&table).map_err(|e| e.to_string())?;
            }
            if self.body_left != 0 || self.crc.clone().finalize() != self.crc_want {
                return Err("damaged reuse index (manifest crc32)".into());
            }
            return Ok(None);
        }
        self.left -= 1;
        let mut fixed = [0u8; 29];
        self.take(&mut fixed)?;
        let kind = EntryKind::from_code(fixed[0])
            .ok_or_else(|| "damaged reuse index (entry kind)".to_string())?;
        let le32 = |at: usize| {
            u32::from_le_bytes([fixed[at], fixed[at + 1], fixed[at + 2], fixed[at + 3]])
        };
        let le64 = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&fixed[at..at + 8]);
            b
        };
        let path = self.bytes(le32(25))?;
        let mut l = [0u8; 4];
        self.take(&mut l)?;
        let link = self.bytes(u32::from_le_bytes(l))?;
        let mut ext = [0u8; EXT_LEN];
        let ext = &mut ext[..self.ext_len];
        self.take(ext)?;
        let ext = EntryExt::decode(ext);
        if !in_place(&ext, self.r.unit.offset) {
            return Err("damaged reuse index (a unit out of place)".into());
        }
        let e = ManifestEntry {
            path,
            kind,
            size: u64::from_le_bytes(le64(13)),
            mtime: i64::from_le_bytes(le64(5)),
            mode: le32(1),
            crc32: le32(21),
            link: matches!(kind, EntryKind::Symlink | EntryKind::Hardlink).then_some(link),
        };
        Ok(Some((e, ext)))
    }
}

/// Whether the unit a record names (and the end recorded in it) lies where units can: after
/// the gzip header and before the tail unit at `tail_at`, with no sum overflowing. The records
/// are PREV's word only; their offsets are used to read and copy before anything is checked
/// against a crc32, so this is what keeps those reads and copies inside PREV's units. (Whether
/// the unit's bytes are what the record says is for the crc32 checks, as before.)
fn in_place(ext: &EntryExt, tail_at: u64) -> bool {
    let Some(u) = ext.unit else { return true };
    let inside = |len: u64| u.offset.checked_add(len).is_some_and(|end| end <= tail_at);
    u.offset >= GZ_HEADER.len() as u64
        && u.len > 0
        && inside(u.len)
        && ext.end.is_none_or(|e| inside(e.len))
}

/// Inflates one unit of a file on its own, then proves it ended on a byte-aligned block
/// boundary (module doc). Output beyond the unit's recorded length is an error.
pub(crate) struct UnitReader<'c> {
    file: Arc<File>,
    unit: Unit,
    pos: u64,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    dec: Decompress,
    sentinel: bool,
    done: bool,
    ctl: &'c JobControl,
}

impl<'c> UnitReader<'c> {
    pub(crate) fn new(file: Arc<File>, unit: Unit, ctl: &'c JobControl) -> Self {
        UnitReader {
            file,
            unit,
            pos: 0,
            buf: Vec::new(),
            start: 0,
            end: 0,
            dec: Decompress::new(false),
            sentinel: false,
            done: false,
            ctl,
        }
    }

    fn bad(msg: &str) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
    }
}

impl Read for UnitReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if self.done {
                return Ok(0);
            }
            if self.ctl.is_cancelled() {
                return Err(io::Error::other("cancelled"));
            }
            if self.start == self.end {
                if self.pos < self.unit.len {
                    let n = (self.unit.len - self.pos).min(READ_BUF as u64) as usize;
                    self.buf.resize(n, 0);
                    self.file
                        .read_exact_at(&mut self.buf[..n], self.unit.offset + self.pos)?;
                    self.pos += n as u64;
                    self.start = 0;
                    self.end = n;
                } else if !self.sentinel {
                    self.buf.clear();
                    self.buf.extend_from_slice(&SENTINEL);
                    self.sentinel = true;
                    self.start = 0;
                    self.end = SENTINEL.len();
                } else {
                    return Err(Self::bad("the unit does not end on a block boundary"));
                }
            }
            let (in0, out0) = (self.dec.total_in(), self.dec.total_out());
            let status = self
                .dec
                .decompress(&self.buf[self.start..self.end], out, FlushDecompress::None)
                .map_err(|e| Self::bad(&format!("inflate: {e}")))?;
            let used = (self.dec.total_in() - in0) as usize;
            let made = (self.dec.total_out() - out0) as usize;
            self.start += used;
            if self.dec.total_out() > self.unit.ulen {
                return Err(Self::bad(
                    "the unit inflates to more than its recorded length",
                ));
            }
            if status == Status::StreamEnd {
                if !self.sentinel || self.start != self.end {
                    return Err(Self::bad(
                        "the unit ends with a final block or off a boundary",
                    ));
                }
                self.done = true;
            }
            if made > 0 {
                return Ok(made);
            }
            if used == 0 && !self.done {
                return Err(Self::bad("the inflater made no progress"));
            }
        }
    }
}

/// `p` without trailing slashes (`/` itself kept); no copy, as `walk_cmp` runs per walked entry.
fn trim_slashes(p: &[u8]) -> &[u8] {
    let mut end = p.len();
    while end > 1 && p[end - 1] == b'/' {
        end -= 1;
    }
    &p[..end]
}

/// Order of two archive names in the walk (`create`): component by component, bytewise, a
/// directory right before what it holds.
pub(crate) fn walk_cmp(a: &[u8], b: &[u8]) -> Ordering {
    let (a, b) = (trim_slashes(a), trim_slashes(b));
    a.split(|&c| c == b'/').cmp(b.split(|&c| c == b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::manifest::UnitEnd;

    #[test]
    fn units_named_by_records_must_lie_between_the_header_and_the_tail_unit() {
        let ext = |offset: u64, len: u64, end: Option<(u64, u64)>| EntryExt {
            unit: Some(Unit {
                offset,
                len,
                ulen: 1000,
                crc: 0,
                zcrc: 0,
            }),
            end: end.map(|(len, ulen)| UnitEnd {
                len,
                ulen,
                crc: 0,
                zcrc: 0,
            }),
            ..EntryExt::default()
        };
        let tail_at = 10_000;
        assert!(in_place(&EntryExt::default(), tail_at), "no unit recorded");
        assert!(in_place(&ext(10, 500, None), tail_at));
        assert!(
            in_place(&ext(9_500, 500, Some((500, 1000))), tail_at),
            "up to the tail"
        );
        assert!(
            !in_place(&ext(9_501, 500, None), tail_at),
            "into the tail unit"
        );
        assert!(
            !in_place(&ext(3, 500, None), tail_at),
            "inside the gzip header"
        );
        assert!(!in_place(&ext(10, 0, None), tail_at), "empty");
        assert!(
            !in_place(&ext(u64::MAX - 10, 500, None), tail_at),
            "offset + len overflows"
        );
        assert!(
            !in_place(&ext(10, 500, Some((9_991, 10))), tail_at),
            "end in the tail unit"
        );
        assert!(
            !in_place(&ext(10, 500, Some((u64::MAX, 10))), tail_at),
            "offset + end overflows"
        );
    }

    #[test]
    fn walk_order_puts_a_directory_before_its_contents_and_siblings_bytewise() {
        assert_eq!(walk_cmp(b"./", b"./a"), Ordering::Less);
        assert_eq!(walk_cmp(b"./a/", b"./a/b"), Ordering::Less);
        // bytewise './a.x' < './a/b', but the walk visits the directory ./a first
        assert_eq!(walk_cmp(b"./a/b", b"./a.x"), Ordering::Less);
        assert_eq!(walk_cmp(b"./a/", b"./a"), Ordering::Equal);
        assert_eq!(walk_cmp(b"./b", b"./a/z"), Ordering::Greater);
    }
}
