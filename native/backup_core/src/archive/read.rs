//! Reading archives: format detection, `verify`, `list`, and the streaming pass (`scan`) that
//! `extract` runs on too, so all of them (and `restore-check` and the Erlang restore, which
//! call `verify`/`extract`) reach the same verdict on the same file.
//!
//! Size: over 600 lines because the verdict is one rule (stream, tar headers, manifest
//! trailer, fingerprints) applied on one pass; split, each part would re-derive the others'
//! state.
//!
//! `verify` and `extract` first try a parallel pass over a `.tar.gz` this engine wrote
//! (`parallel.rs`: its unit index lets workers inflate on all cores while this module's tar
//! layer reads their output in order). That pass only ever ends in the serial pass's success,
//! byte for byte the same stream; anything else sends the archive through the serial pass,
//! whose verdict is the one reported. `list` is always serial (it streams entries to its caller
//! as it goes, which a discarded pass could not take back).
//!
//! The verdict: the compressed stream is intact (gzip CRC and length per member, zstd frame
//! checksums; zero padding after the gzip stream is accepted, as gzip and tar accept it, and so
//! is a skippable frame before the zstd frames); the tar stream is well formed (`tarread`) and
//! ends with its end-of-archive marker; every name follows the rules of `validate`; and when the
//! archive carries this engine's manifest (or announces one with the zstd marker frame that
//! `create` writes), the manifest holds exactly the entries read, every recorded field equal:
//! path, kind, size, mtime, mode, crc32 and link target. Nothing but zero blocks may follow.
//!
//! Memory is bounded whatever the archive claims (`limits`): nothing is kept per entry but a
//! 64-bit fingerprint of its record, the validator's name hashes and (for extract) the
//! directories and symlinks whose metadata is set at the end, all charged to one budget.

use super::control::JobControl;
use super::hashing::to_hex;
use super::hashing::MAX_CHECKPOINTS;
use super::limits::{Budget, BOOKKEEPING_CAP, LIST_CAP, MAX_LONG_NAME, ZSTD_WINDOW_LOG_MAX};
use super::manifest::{
    decode_checkpoints, decode_trailer_header_v, encode_record, ext_len, is_trailer_header,
    EntryKind, Locator, ManifestEntry,
};
use super::sha_resume::MIDSTATE_LEN;
use super::tarread::{EntryData, TarStream, BLOCK};
use super::validate::{Plan, Validator};
use super::Format;
use super::{MANIFEST_MARKER, SKIPPABLE_MARKER_MAGIC};
use crate::error::{Error, Result};
use crate::fsutil::{display_name, open_regular};
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

/// One entry as read from an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    /// Name in the archive, raw bytes (long GNU / pax names resolved).
    pub path: Vec<u8>,
    pub kind: EntryKind,
    /// Bytes of file data (the real size of a sparse file); 0 for other kinds.
    pub size: u64,
    pub mtime: i64,
    pub mode: u32,
    pub link: Option<Vec<u8>>,
    /// crc32 of the entry's data, computed while reading (0 for non-files).
    pub crc32: u32,
}

impl EntryInfo {
    pub fn path_lossy(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }

    /// The name, escaped for printing (see `fsutil::display_name`).
    pub fn path_display(&self) -> String {
        display_name(&self.path)
    }
}

/// What `verify` proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub format: Format,
    pub entries: u64,
    pub files: u64,
    /// Bytes of file data.
    pub bytes: u64,
    /// Size of the archive file.
    pub compressed_bytes: u64,
    /// Lower-case hex sha256 of the archive file.
    pub sha256: String,
    /// True when the archive carried our manifest and every record in it matched.
    pub manifest_checked: bool,
}

/// Marks errors of the archive *file* (disk), as opposed to errors of its content.
#[derive(Debug)]
struct DiskError(io::Error);

impl std::fmt::Display for DiskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for DiskError {}

/// Reads the archive file, hashing it (unless `sha` is `None`) and publishing compressed-byte
/// progress.
struct SourceReader<'a> {
    file: File,
    sha: Option<Sha256>,
    count: u64,
    ctl: &'a JobControl,
}

impl Read for SourceReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ctl.is_cancelled() {
            return Err(io::Error::other(DiskError(io::Error::other("cancelled"))));
        }
        let n = self
            .file
            .read(buf)
            .map_err(|e| io::Error::new(e.kind(), DiskError(e)))?;
        if let Some(sha) = &mut self.sha {
            sha.update(&buf[..n]);
        }
        self.count += n as u64;
        self.ctl.add_bytes(n as u64);
        Ok(n)
    }
}

/// Maps a read error to a typed one: a cancel or deadline wins, disk errors keep their I/O
/// reason, anything the decoder raised means the archive is bad.
fn map_err(path: &Path, ctl: &JobControl, what: &str, e: io::Error) -> Error {
    if let Some(stop) = ctl.stop_reason() {
        return stop;
    }
    let kind = e.kind();
    if e.get_ref().is_some_and(|i| i.is::<DiskError>()) {
        let inner = e
            .into_inner()
            .and_then(|b| b.downcast::<DiskError>().ok())
            .map(|d| d.0)
            .unwrap_or_else(|| io::Error::from(kind));
        return Error::io(path, inner);
    }
    Error::BadArchive(format!("{what}: {e}"))
}

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

fn is_skippable(magic: &[u8]) -> bool {
    magic.len() >= 4 && magic[0] & 0xf0 == 0x50 && magic[1..4] == [0x2a, 0x4d, 0x18]
}

/// The format by magic number (gzip `1f 8b`, a zstd frame `28 b5 2f fd` or a zstd skippable
/// frame `5? 2a 4d 18`), and whether the archive announces our manifest (zstd marker frame).
fn sniff(path: &Path) -> Result<(Format, bool)> {
    let mut f = open_regular(path)?;
    let mut head = [0u8; 8 + 64];
    let mut got = 0;
    while got < head.len() {
        match f.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    let head = &head[..got];
    if head.len() >= 2 && head[..2] == [0x1f, 0x8b] {
        return Ok((Format::Gzip, false));
    }
    if head.len() >= 4 && head[..4] == ZSTD_MAGIC {
        return Ok((Format::Zstd, false));
    }
    if is_skippable(head) {
        let marked = head.len() >= 8 + MANIFEST_MARKER.len()
            && head[..4] == SKIPPABLE_MARKER_MAGIC.to_le_bytes()
            && head[4..8] == (MANIFEST_MARKER.len() as u32).to_le_bytes()
            && &head[8..8 + MANIFEST_MARKER.len()] == MANIFEST_MARKER;
        return Ok((Format::Zstd, marked));
    }
    Err(Error::BadArchive("neither gzip nor zstd".into()))
}

/// The format by magic number.
pub fn detect_format(path: &Path) -> Result<Format> {
    sniff(path).map(|(f, _)| f)
}

/// gzip members one after another (as `MultiGzDecoder`), then either the end of the file or
/// zero bytes up to it (tape-style padding, which gzip and tar accept); anything else after
/// the last member is an error.
struct GzMembers<R: BufRead> {
    state: GzState<R>,
}

enum GzState<R: BufRead> {
    Member(Box<flate2::bufread::GzDecoder<R>>),
    Done,
}

impl<R: BufRead> GzMembers<R> {
    fn new(r: R) -> Self {
        GzMembers {
            state: GzState::Member(Box::new(flate2::bufread::GzDecoder::new(r))),
        }
    }
}

impl<R: BufRead> Read for GzMembers<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let dec = match &mut self.state {
                GzState::Member(d) => d,
                GzState::Done => return Ok(0),
            };
            let n = dec.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            // The member ended with its CRC and length checked: what follows it?
            let GzState::Member(dec) = std::mem::replace(&mut self.state, GzState::Done) else {
                return Ok(0);
            };
            let mut inner = dec.into_inner();
            let next = inner.fill_buf()?;
            match next.first() {
                None => return Ok(0),
                Some(0x1f) => {
                    self.state = GzState::Member(Box::new(flate2::bufread::GzDecoder::new(inner)));
                }
                Some(0) => loop {
                    let chunk = inner.fill_buf()?;
                    if chunk.is_empty() {
                        return Ok(0);
                    }
                    if chunk.iter().any(|&b| b != 0) {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "non-zero bytes after the zero padding of the gzip stream",
                        ));
                    }
                    let len = chunk.len();
                    inner.consume(len);
                },
                Some(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "trailing garbage after the gzip stream",
                    ))
                }
            }
        }
    }
}

/// Checks the whole archive: compressed stream integrity, tar structure, names, and every
/// manifest record when there is a manifest. Nothing is written.
pub fn verify(path: &Path, ctl: &JobControl) -> Result<VerifyReport> {
    scan(path, ctl, &mut NoVisit, Pass::Fastest { hash: true })
}

/// Calls `f` with every entry (its crc32 filled in) while verifying the archive; the verdict
/// is `verify`'s, known when the whole archive was read (so `f` may have seen entries of an
/// archive that turns out bad).
pub fn list_each(
    path: &Path,
    ctl: &JobControl,
    f: &mut dyn FnMut(&EntryInfo) -> Result<()>,
) -> Result<VerifyReport> {
    struct Each<'f>(&'f mut dyn FnMut(&EntryInfo) -> Result<()>);
    impl Visitor for Each<'_> {
        fn done(&mut self, info: &EntryInfo) -> Result<()> {
            (self.0)(info)
        }
    }
    // serial: a parallel pass that failed would have called `f` with entries already
    scan(path, ctl, &mut Each(f), Pass::Serial)
}

/// The entries of an archive (verified on the way), collected in memory up to `LIST_CAP`
/// bytes of names; `list_each` streams any number.
pub fn list(path: &Path, ctl: &JobControl) -> Result<Vec<EntryInfo>> {
    let mut out = Vec::new();
    let mut held = 0u64;
    list_each(path, ctl, &mut |e| {
        held += 64 + e.path.len() as u64 + e.link.as_ref().map_or(0, |l| l.len() as u64);
        if held > LIST_CAP {
            return Err(Error::LimitExceeded(format!(
                "more than {} MiB of entries to list; stream them with `zbackup list`",
                LIST_CAP >> 20
            )));
        }
        out.push(e.clone());
        Ok(())
    })?;
    Ok(out)
}

/// What a pass over an archive does with each entry.
pub(crate) trait Visitor {
    /// Before the entry's data: the validated plan and a reader of the data (which the visitor
    /// may read in whole, in part or not at all).
    fn entry(
        &mut self,
        _info: &EntryInfo,
        _plan: &Plan,
        _data: &mut EntryData<'_, '_>,
    ) -> Result<()> {
        Ok(())
    }
    /// After the data was read: the entry with its crc32.
    fn done(&mut self, _info: &EntryInfo) -> Result<()> {
        Ok(())
    }
    /// Forgets everything done so far: a parallel pass failed, a serial one follows.
    fn reset(&mut self) -> Result<()> {
        Ok(())
    }
}

/// How `scan` reads a `.tar.gz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    /// One stream, one thread (besides the reader, `list_each`).
    Serial,
    /// In parallel when the archive has a usable unit index (`parallel.rs`), else serially;
    /// `hash`: the report carries the file's sha256 (else an empty string).
    Fastest { hash: bool },
    /// Tests: the parallel pass with this many workers, its result as it is (`Err` when the
    /// archive has no usable index).
    #[cfg(test)]
    ParallelOnly { threads: usize },
}

struct NoVisit;
impl Visitor for NoVisit {}

/// Reads the archive, calling the visitor for each entry. Any damage is an error, found at the
/// latest when the stream ends (so callers that wrote something must discard it then).
///
/// With `Pass::Fastest` a `.tar.gz` with a usable unit index is first read in parallel
/// (`parallel.rs`). That pass either succeeds with exactly the serial pass's result (the proof
/// is in `parallel.rs`) or, whatever went wrong, is undone (`Visitor::reset`, the progress
/// counters set back) and the serial pass decides; only a cancel or deadline ends it at once.
pub(crate) fn scan(
    path: &Path,
    ctl: &JobControl,
    visit: &mut dyn Visitor,
    pass: Pass,
) -> Result<VerifyReport> {
    let hash = match pass {
        Pass::Serial => true,
        Pass::Fastest { hash } => hash,
        #[cfg(test)]
        Pass::ParallelOnly { threads } => {
            let plan = super::parallel::plan(path, ctl)
                .ok_or_else(|| Error::BadArchive("no usable unit index".into()))?;
            return scan_parallel(&plan, path, ctl, visit, threads, true);
        }
    };
    if matches!(pass, Pass::Fastest { .. }) {
        if let Some(plan) = super::parallel::plan(path, ctl) {
            let before = ctl.progress();
            let threads = super::pgzip::default_threads();
            match scan_parallel(&plan, path, ctl, visit, threads, hash) {
                Ok(report) => return Ok(report),
                Err(e) => {
                    if let Some(stop) = ctl.stop_reason() {
                        return Err(stop);
                    }
                    // the parallel pass's error is not the verdict (parallel.rs)
                    let _ = e;
                    ctl.rewind(before);
                    visit.reset()?;
                }
            }
        }
    }
    scan_serial(path, ctl, visit, hash)
}

/// The parallel pass (`parallel.rs`); any error means "read it serially".
fn scan_parallel(
    plan: &super::parallel::Plan,
    path: &Path,
    ctl: &JobControl,
    visit: &mut dyn Visitor,
    threads: usize,
    hash: bool,
) -> Result<VerifyReport> {
    ctl.set_totals(0, plan.len());
    let map = |e: io::Error| map_err(path, ctl, "gzip", e);
    let (counts, fin) = super::parallel::run(plan, ctl, threads, hash, |src| {
        let mut tar = TarStream::new(Box::new(src), ctl, &map);
        read_entries(&mut tar, ctl, false, visit)
    })?;
    Ok(VerifyReport {
        format: Format::Gzip,
        entries: counts.entries,
        files: counts.files,
        bytes: counts.bytes,
        compressed_bytes: fin.compressed,
        sha256: fin.sha256.unwrap_or_default(),
        manifest_checked: counts.manifest,
    })
}

/// The serial pass: one decoder over the file, in this thread.
fn scan_serial(
    path: &Path,
    ctl: &JobControl,
    visit: &mut dyn Visitor,
    hash: bool,
) -> Result<VerifyReport> {
    let (format, marked) = sniff(path)?;
    let file = open_regular(path)?;
    let total = file.metadata().map_err(|e| Error::io(path, e))?.len();
    ctl.set_totals(0, total);
    let mut src = SourceReader {
        file,
        sha: hash.then(Sha256::new),
        count: 0,
        ctl,
    };
    let what = match format {
        Format::Gzip => "gzip",
        Format::Zstd => "zstd",
    };
    let map = |e: io::Error| map_err(path, ctl, what, e);
    let counts = {
        let buffered = BufReader::with_capacity(256 << 10, &mut src);
        let decoder: Box<dyn Read + '_> = match format {
            Format::Gzip => Box::new(GzMembers::new(buffered)),
            Format::Zstd => {
                let mut d = zstd::stream::read::Decoder::with_buffer(buffered).map_err(&map)?;
                d.window_log_max(ZSTD_WINDOW_LOG_MAX).map_err(&map)?;
                Box::new(d)
            }
        };
        let mut tar = TarStream::new(decoder, ctl, &map);
        read_entries(&mut tar, ctl, marked, visit)?
    };
    Ok(VerifyReport {
        format,
        entries: counts.entries,
        files: counts.files,
        bytes: counts.bytes,
        compressed_bytes: src.count,
        sha256: src.sha.map(|s| to_hex(&s.finalize())).unwrap_or_default(),
        manifest_checked: counts.manifest,
    })
}

struct Counts {
    entries: u64,
    files: u64,
    bytes: u64,
    manifest: bool,
}

/// 64-bit fingerprint of a record in four 16-bit groups (name; kind and link; size and crc32;
/// mtime and mode), keyed per read, so a mismatch with the manifest can be named.
struct Fingerprints {
    key: RandomState,
    list: Vec<u64>,
}

impl Fingerprints {
    fn of(&self, e: &ManifestEntry) -> u64 {
        let group = |g: u8, parts: &[&[u8]]| -> u64 {
            let mut h = self.key.build_hasher();
            h.write_u8(g);
            for p in parts {
                h.write_usize(p.len());
                h.write(p);
            }
            h.finish() & 0xffff
        };
        let link = e.link.as_deref().unwrap_or(&[]);
        group(0, &[&e.path])
            | group(1, &[&[e.kind as u8], link]) << 16
            | group(2, &[&e.size.to_le_bytes(), &e.crc32.to_le_bytes()]) << 32
            | group(3, &[&e.mtime.to_le_bytes(), &e.mode.to_le_bytes()]) << 48
    }
}

fn record_of(e: &EntryInfo) -> ManifestEntry {
    ManifestEntry {
        path: e.path.clone(),
        kind: e.kind,
        size: e.size,
        mtime: e.mtime,
        mode: e.mode,
        crc32: e.crc32,
        link: e.link.clone(),
    }
}

fn read_entries(
    tar: &mut TarStream<'_>,
    ctl: &JobControl,
    marked: bool,
    visit: &mut dyn Visitor,
) -> Result<Counts> {
    let mut budget = Budget::new(BOOKKEEPING_CAP);
    let mut validator = Validator::new();
    let mut fps = Fingerprints {
        key: RandomState::new(),
        list: Vec::new(),
    };
    let mut seq = Sha256::new();
    let mut counts = Counts {
        entries: 0,
        files: 0,
        bytes: 0,
        manifest: false,
    };
    let mut record = Vec::new();
    while let Some(raw) = tar.next_entry()? {
        let plan = validator.check(&raw.info, &mut budget)?;
        budget.charge(8, counts.entries)?;
        let (mut info, mut data) = tar.data(raw);
        visit.entry(&info, &plan, &mut data)?;
        info.crc32 = data.finish()?;
        let rec = record_of(&info);
        fps.list.push(fps.of(&rec));
        record.clear();
        encode_record(&rec, &mut record);
        seq.update(&record);
        counts.entries += 1;
        if info.kind == EntryKind::File {
            counts.files += 1;
            counts.bytes += info.size;
        }
        visit.done(&info)?;
        ctl.add_files(1);
    }
    // Past the end-of-archive marker: our manifest trailer, if any, then only zero blocks up
    // to the end of the stream (which also checks the compressed format's own checksum).
    let mut block = [0u8; BLOCK];
    let mut version = 0;
    let mut located = false;
    while tar.read_block(&mut block)? {
        if block.iter().all(|&b| b == 0) {
            continue;
        }
        if !counts.manifest && is_trailer_header(&block) {
            version = check_manifest(tar, ctl, &block, &fps, seq.clone().finalize().into())?;
            counts.manifest = true;
            continue;
        }
        // A version 2 manifest may be followed by its locator block (manifest.rs).
        if version >= 2 && !located {
            if let Some(loc) = Locator::decode(&block) {
                if loc.entries != fps.list.len() as u64 {
                    return Err(Error::BadArchive(format!(
                        "manifest locator: {} entries, the archive has {}",
                        loc.entries,
                        fps.list.len()
                    )));
                }
                located = true;
                continue;
            }
        }
        return Err(Error::BadArchive(format!(
            "data after the end-of-archive marker (offset {})",
            tar.pos - BLOCK as u64
        )));
    }
    if marked && !counts.manifest {
        return Err(Error::BadArchive(
            "the archive announces a manifest (zbackup marker frame) but has none: \
             it was cut short"
                .into(),
        ));
    }
    Ok(counts)
}

/// Reads the manifest trailer (its header block is `header`) and compares each record with the
/// entry read at its position; returns the trailer's version.
fn check_manifest(
    tar: &mut TarStream<'_>,
    ctl: &JobControl,
    header: &[u8; BLOCK],
    fps: &Fingerprints,
    entries_digest: [u8; 32],
) -> Result<u32> {
    let bad = |m: String| Error::BadArchive(format!("manifest: {m}"));
    let (n, len, crc, version) = decode_trailer_header_v(header)?;
    if n != fps.list.len() as u64 {
        return Err(bad(format!(
            "it lists {n} entries, the archive has {}",
            fps.list.len()
        )));
    }
    let mut body = Body {
        tar,
        left: len,
        crc: crc32fast::Hasher::new(),
    };
    let mut seq = Sha256::new();
    let mut record = Vec::new();
    for (i, &fp) in fps.list.iter().enumerate() {
        ctl.check()?;
        let fixed: [u8; 29] = body.array()?;
        let kind = super::manifest::EntryKind::from_code(fixed[0])
            .ok_or_else(|| bad("unknown entry kind".into()))?;
        let le32 = |at: usize| {
            u32::from_le_bytes([fixed[at], fixed[at + 1], fixed[at + 2], fixed[at + 3]])
        };
        let le64 = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&fixed[at..at + 8]);
            b
        };
        let mode = le32(1);
        let mtime = i64::from_le_bytes(le64(5));
        let size = u64::from_le_bytes(le64(13));
        let crc32 = le32(21);
        let path = body.bytes(u64::from(le32(25)))?;
        let llen: [u8; 4] = body.array()?;
        let link = body.bytes(u64::from(u32::from_le_bytes(llen)))?;
        // identity and unit (versions 2 to 4): what a later set reuses, nothing the tar stream holds
        body.bytes(ext_len(version) as u64)?;
        let m = ManifestEntry {
            path,
            kind,
            size,
            // the tar header cannot hold a time before 1970: the writer stores 0 there
            mtime: mtime.max(0),
            mode,
            crc32,
            link: matches!(kind, EntryKind::Symlink | EntryKind::Hardlink).then_some(link),
        };
        let got = fps.of(&m);
        if got != fp {
            let differs: Vec<&str> = [
                "name",
                "type or link target",
                "size or crc32",
                "mtime or mode",
            ]
            .iter()
            .enumerate()
            .filter(|(g, _)| (got >> (16 * g)) & 0xffff != (fp >> (16 * g)) & 0xffff)
            .map(|(_, w)| *w)
            .collect();
            return Err(bad(format!(
                "entry {} ({}) does not match the archive: {} differ",
                i + 1,
                display_name(&m.path),
                differs.join(", ")
            )));
        }
        record.clear();
        encode_record(&m, &mut record);
        seq.update(&record);
    }
    if version >= 3 {
        // the sha256 checkpoints of the archive file (manifest.rs): well-formed, nothing more
        let n: [u8; 4] = body.array()?;
        let n = u64::from(u32::from_le_bytes(n));
        if n > MAX_CHECKPOINTS as u64 || n * MIDSTATE_LEN as u64 != body.left {
            return Err(bad("a sha256 checkpoint table of the wrong length".into()));
        }
        let mut table = Vec::with_capacity(body.left as usize);
        for _ in 0..n {
            let m: [u8; MIDSTATE_LEN] = body.array()?;
            table.extend_from_slice(&m);
        }
        decode_checkpoints(&table)?;
    }
    if body.left != 0 {
        return Err(bad("trailing bytes after its records".into()));
    }
    if body.crc.finalize() != crc {
        return Err(bad("crc32 mismatch".into()));
    }
    if <[u8; 32]>::from(seq.finalize()) != entries_digest {
        return Err(bad("its records do not match the archive's entries".into()));
    }
    let pad = super::manifest::trailer_padding(len);
    let mut zeros = [0u8; BLOCK];
    let padding = &mut zeros[..pad];
    tar.read_exact_or(padding, "manifest: truncated padding")?;
    if padding.iter().any(|&b| b != 0) {
        return Err(bad("non-zero padding".into()));
    }
    Ok(version)
}

/// The manifest body: exactly `left` more bytes, crc32 computed on the way.
struct Body<'t, 'a> {
    tar: &'t mut TarStream<'a>,
    left: u64,
    crc: crc32fast::Hasher,
}

impl Body<'_, '_> {
    fn take(&mut self, buf: &mut [u8]) -> Result<()> {
        if buf.len() as u64 > self.left {
            return Err(Error::BadArchive(
                "manifest: a record runs past its length".into(),
            ));
        }
        self.tar.read_exact_or(buf, "manifest: truncated")?;
        self.left -= buf.len() as u64;
        self.crc.update(buf);
        Ok(())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        self.take(&mut a)?;
        Ok(a)
    }

    fn bytes(&mut self, n: u64) -> Result<Vec<u8>> {
        if n > MAX_LONG_NAME || n > self.left {
            return Err(Error::BadArchive(format!(
                "manifest: a name of {n} bytes (at most {MAX_LONG_NAME}, {} left)",
                self.left
            )));
        }
        // n <= MAX_LONG_NAME: bounded
        let mut v = vec![0u8; n as usize];
        self.take(&mut v)?;
        Ok(v)
    }
}
