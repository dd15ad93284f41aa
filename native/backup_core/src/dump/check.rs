//! The one rule for "is this database dump good", applied by the restore (before it touches
//! the database, and again while it feeds psql) and by `zbackup restore-check`:
//!
//! 1. the file is a complete gzip stream (every member's CRC and length check out; concatenated
//!    members are read as `gunzip` reads them, anything else after a member is refused);
//! 2. the SQL is not empty and starts with pg_dump's `-- PostgreSQL database dump` header line
//!    (within its first 4 KiB);
//! 3. it names its schema in a `CREATE SCHEMA "<name>"` within its first 64 KiB (the restore
//!    compares that name with the site's schema; `--quote-all-identifiers` quotes it);
//! 4. it ends with pg_dump's `-- PostgreSQL database dump complete` line (within its last
//!    4 KiB: pg_dump 17.6 and later write an `\unrestrict` line after it).
//!
//! A broken gzip stream, a truncated file, an empty or foreign SQL text and a missing trailer are
//! `bad_dump`; a missing `CREATE SCHEMA` is `no_schema`. Whatever the file holds (one line of
//! gigabytes included), only the first 64 KiB and the last 4 KiB of the SQL are kept.

use crate::archive::JobControl;
use crate::error::{Error, Result};
use crate::fsutil::open_regular;
use crate::term::Bytes;
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

/// `CREATE SCHEMA` must be within this many bytes of the start of the SQL.
pub const HEAD_SIZE: usize = 64 * 1024;
/// pg_dump's header must start within this many bytes.
pub const HEADER_WITHIN: usize = 4096;
/// The "dump complete" line must be within this many bytes of the end.
pub const TAIL_SIZE: usize = 4096;

/// The header line (the trailer line starts with the same words, so the line end counts).
const HEADER: &[u8] = b"-- PostgreSQL database dump\n";
const COMPLETE: &[u8] = b"-- PostgreSQL database dump complete";
const CREATE_SCHEMA: &[u8] = b"CREATE SCHEMA \"";
const READ_BLOCK: usize = 256 * 1024;

/// What a good dump holds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "nif", derive(rustler::NifMap), rustler(encode))]
pub struct DumpReport {
    /// The schema of the `CREATE SCHEMA` (unquoted: `""` is `"`).
    pub schema: Bytes,
    /// Bytes of SQL (inflated).
    pub size: u64,
}

/// The rule, fed the inflated SQL as it streams by.
#[derive(Debug)]
pub struct DumpRule {
    head: Vec<u8>,
    tail: Vec<u8>,
    total: u64,
}

impl Default for DumpRule {
    fn default() -> Self {
        Self::new()
    }
}

impl DumpRule {
    pub fn new() -> Self {
        // Both windows are allocated once: the tail holds at most 3 * TAIL_SIZE - 1 bytes
        // before it is cut back (below), the head never more than HEAD_SIZE.
        DumpRule {
            head: Vec::with_capacity(HEAD_SIZE),
            tail: Vec::with_capacity(3 * TAIL_SIZE),
            total: 0,
        }
    }

    /// Takes the next piece of SQL; keeps at most `HEAD_SIZE + 2 * TAIL_SIZE` bytes of it.
    pub fn update(&mut self, data: &[u8]) {
        if self.head.len() < HEAD_SIZE {
            let take = data.len().min(HEAD_SIZE - self.head.len());
            self.head.extend_from_slice(&data[..take]);
        }
        if data.len() >= TAIL_SIZE {
            self.tail.clear();
            self.tail.extend_from_slice(&data[data.len() - TAIL_SIZE..]);
        } else {
            self.tail.extend_from_slice(data);
            if self.tail.len() > 2 * TAIL_SIZE {
                self.tail.drain(..self.tail.len() - TAIL_SIZE);
            }
        }
        self.total += data.len() as u64;
    }

    /// The verdict on the SQL seen so far, taken as the whole dump.
    pub fn verdict(&self) -> Result<DumpReport> {
        if self.total == 0 {
            return Err(Error::BadDump("the SQL is empty".into()));
        }
        let start = &self.head[..self.head.len().min(HEADER_WITHIN)];
        if find(start, HEADER).is_none() {
            return Err(Error::BadDump(
                "not a pg_dump SQL dump (no \"PostgreSQL database dump\" header)".into(),
            ));
        }
        let end = &self.tail[self.tail.len().saturating_sub(TAIL_SIZE)..];
        if find(end, COMPLETE).is_none() {
            return Err(Error::BadDump(
                "the SQL does not end with pg_dump's \"dump complete\" line: unfinished".into(),
            ));
        }
        match schema_of(&self.head) {
            Some(schema) => Ok(DumpReport {
                schema: Bytes(schema),
                size: self.total,
            }),
            None => Err(Error::NoSchema(format!(
                "no CREATE SCHEMA in the first {} KiB of the SQL",
                HEAD_SIZE / 1024
            ))),
        }
    }

    /// Bytes held now (for the bound's test).
    #[cfg(test)]
    fn held(&self) -> usize {
        self.head.capacity() + self.tail.capacity()
    }
}

/// The name in the first `CREATE SCHEMA "<name>"` (with `""` for `"`), when it is complete.
fn schema_of(head: &[u8]) -> Option<Vec<u8>> {
    let at = find(head, CREATE_SCHEMA)? + CREATE_SCHEMA.len();
    let mut name = Vec::new();
    let mut i = at;
    while i < head.len() {
        if head[i] == b'"' {
            if head.get(i + 1) == Some(&b'"') {
                name.push(b'"');
                i += 2;
                continue;
            }
            return (!name.is_empty()).then_some(name);
        }
        name.push(head[i]);
        i += 1;
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads the whole dump at `path` and applies the rule.
pub fn check(path: &Path, ctl: &JobControl) -> Result<DumpReport> {
    open(path, ctl)?.stream(ctl, |_| Ok::<(), Error>(()))
}

/// The inflated SQL of a `.sql.gz`, read in blocks; progress counts compressed bytes.
pub(super) struct Sql<'a> {
    path: &'a Path,
    gz: MultiGzDecoder<BufReader<Counted<'a>>>,
}

pub(super) fn open<'a>(path: &'a Path, ctl: &'a JobControl) -> Result<Sql<'a>> {
    let file = open_regular(path)?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    ctl.set_totals(1, size);
    let counted = Counted { file, ctl };
    Ok(Sql {
        path,
        gz: MultiGzDecoder::new(BufReader::with_capacity(READ_BLOCK, counted)),
    })
}

impl Sql<'_> {
    /// Inflates the whole dump through the rule, handing every block to `each` after the rule
    /// saw it (`check` drops it, `feed` writes it to psql); the rule's verdict at the end. Stops
    /// at the first error of the stream, of `each` or of the job (cancel, deadline).
    pub fn stream<E: From<Error>>(
        &mut self,
        ctl: &JobControl,
        mut each: impl FnMut(&[u8]) -> std::result::Result<(), E>,
    ) -> std::result::Result<DumpReport, E> {
        let mut rule = DumpRule::new();
        let mut buf = vec![0u8; READ_BLOCK];
        loop {
            ctl.check()?;
            let n = self.read(&mut buf)?;
            if n == 0 {
                break;
            }
            rule.update(&buf[..n]);
            each(&buf[..n])?;
        }
        Ok(rule.verdict()?)
    }

    /// The next inflated bytes (0 at the end of the last member). A damaged or truncated gzip
    /// stream is `bad_dump`; an error of the disk keeps its own reason.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        loop {
            match self.gz.read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(match e.kind() {
                        io::ErrorKind::InvalidInput
                        | io::ErrorKind::InvalidData
                        | io::ErrorKind::UnexpectedEof => {
                            Error::BadDump(format!("not a complete gzip stream: {e}"))
                        }
                        _ => Error::io(self.path, e),
                    })
                }
            }
        }
    }
}

/// The dump file, counting what is read as the job's progress.
struct Counted<'a> {
    file: File,
    ctl: &'a JobControl,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.ctl.add_bytes(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::PathBuf;

    const GOOD: &[u8] = b"--\n-- PostgreSQL database dump\n--\n\n\\restrict abc\n\n\
        SET statement_timeout = 0;\nCREATE SCHEMA \"public\";\n\
        CREATE TABLE \"public\".\"rsc\" (\"id\" integer);\n\
        --\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict abc\n\n";

    fn gz(body: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(body).expect("write");
        e.finish().expect("finish")
    }

    fn file(dir: &Path, bytes: &[u8]) -> PathBuf {
        let p = dir.join("site-1.sql.gz");
        std::fs::write(&p, bytes).expect("write");
        p
    }

    fn verdict(bytes: &[u8]) -> Result<DumpReport> {
        let d = tempfile::tempdir().expect("tmp");
        check(&file(d.path(), bytes), &JobControl::new())
    }

    fn reason(bytes: &[u8]) -> &'static str {
        verdict(bytes).expect_err("refused").reason()
    }

    #[test]
    fn a_complete_pg_dump_passes_and_names_its_schema() {
        let r = verdict(&gz(GOOD)).expect("good");
        assert_eq!(*r.schema, *b"public");
        assert_eq!(r.size, GOOD.len() as u64);
    }

    #[test]
    fn a_quoted_quote_in_the_schema_name_is_unquoted() {
        let sql = String::from_utf8_lossy(GOOD).replace("\"public\"", "\"we\"\"ird\"");
        assert_eq!(
            *verdict(&gz(sql.as_bytes())).expect("good").schema,
            *b"we\"ird"
        );
    }

    #[test]
    fn concatenated_gzip_members_are_read_as_gunzip_reads_them() {
        let (a, b) = GOOD.split_at(40);
        let mut two = gz(a);
        two.extend(gz(b));
        assert_eq!(verdict(&two).expect("good").size, GOOD.len() as u64);
    }

    #[test]
    fn a_missing_header_is_bad_dump() {
        let sql = String::from_utf8_lossy(GOOD).replacen("-- PostgreSQL database dump\n", "", 1);
        assert_eq!(reason(&gz(sql.as_bytes())), "bad_dump");
    }

    #[test]
    fn a_header_beyond_the_first_4_kib_is_bad_dump() {
        let mut sql = vec![b'\n'; HEADER_WITHIN];
        sql.extend_from_slice(GOOD);
        assert_eq!(reason(&gz(&sql)), "bad_dump");
    }

    #[test]
    fn a_missing_trailer_is_bad_dump() {
        let cut = find(GOOD, b"--\n-- PostgreSQL database dump complete").expect("trailer");
        assert_eq!(reason(&gz(&GOOD[..cut])), "bad_dump");
    }

    #[test]
    fn a_trailer_followed_by_more_than_4_kib_is_bad_dump() {
        let mut sql = GOOD.to_vec();
        sql.extend(std::iter::repeat_n(b'x', TAIL_SIZE));
        assert_eq!(reason(&gz(&sql)), "bad_dump");
    }

    #[test]
    fn a_missing_create_schema_is_no_schema() {
        let sql = String::from_utf8_lossy(GOOD).replace("CREATE SCHEMA \"public\";\n", "");
        assert_eq!(reason(&gz(sql.as_bytes())), "no_schema");
    }

    #[test]
    fn a_create_schema_beyond_the_first_64_kib_is_no_schema() {
        let sql = String::from_utf8_lossy(GOOD).replace(
            "CREATE SCHEMA",
            &format!("{}CREATE SCHEMA", "-- filler\n".repeat(HEAD_SIZE / 10)),
        );
        assert_eq!(reason(&gz(sql.as_bytes())), "no_schema");
    }

    #[test]
    fn a_truncated_gzip_stream_is_bad_dump() {
        let body: Vec<u8> = GOOD
            .iter()
            .copied()
            .chain((0..100_000u32).flat_map(|i| format!("INSERT {i};\n").into_bytes()))
            .collect();
        let whole = gz(&body);
        assert_eq!(reason(&whole[..whole.len() / 2]), "bad_dump");
        // Only the 8-byte gzip trailer (CRC and length) missing.
        assert_eq!(reason(&gz(GOOD)[..gz(GOOD).len() - 8]), "bad_dump");
    }

    #[test]
    fn a_flipped_byte_is_bad_dump() {
        let mut bytes = gz(GOOD);
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x55;
        assert_eq!(reason(&bytes), "bad_dump");
    }

    #[test]
    fn empty_sql_and_an_empty_file_are_bad_dump() {
        assert_eq!(reason(&gz(b"")), "bad_dump");
        assert_eq!(reason(b""), "bad_dump");
    }

    #[test]
    fn gzip_garbage_and_plain_sql_are_bad_dump() {
        assert_eq!(
            reason(b"\x1f\x8b\x08\x00garbage garbage garbage"),
            "bad_dump"
        );
        assert_eq!(reason(GOOD), "bad_dump");
        let mut trailing = gz(GOOD);
        trailing.extend_from_slice(b"trailing junk");
        assert_eq!(reason(&trailing), "bad_dump");
    }

    #[test]
    fn a_missing_file_keeps_its_io_reason() {
        let e = check(Path::new("/nonexistent/x.sql.gz"), &JobControl::new()).expect_err("no");
        assert_eq!(e.reason(), "enoent");
    }

    #[test]
    fn a_cancelled_check_stops() {
        let ctl = JobControl::new();
        ctl.cancel();
        let d = tempfile::tempdir().expect("tmp");
        let e = check(&file(d.path(), &gz(GOOD)), &ctl).expect_err("cancelled");
        assert_eq!(e.reason(), "cancelled");
    }

    /// One line of 26 MiB (no newline anywhere), fed in pieces of every size: the rule keeps
    /// its two windows and never grows them.
    #[test]
    fn a_huge_line_is_held_within_the_head_and_tail_bounds() {
        let mut rule = DumpRule::new();
        rule.update(&GOOD[..find(GOOD, b"--\n-- PostgreSQL database dump complete").unwrap_or(0)]);
        let piece = vec![b'x'; 1 << 20];
        for i in 0..168 {
            let n = [1, 7, 4095, 4096, 4097, 65_536, 1 << 20][i % 7];
            rule.update(&piece[..n]);
            assert_eq!(rule.held(), HEAD_SIZE + 3 * TAIL_SIZE);
        }
        rule.update(b"\n--\n-- PostgreSQL database dump complete\n--\n");
        assert_eq!(*rule.verdict().expect("good").schema, *b"public");
        assert_eq!(rule.held(), HEAD_SIZE + 3 * TAIL_SIZE);
    }
}
