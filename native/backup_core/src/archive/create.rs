//! `create`: a directory tree or an explicit list of files into `.tar.gz` / `.tar.zst`.
//!
//! Size: the walk, the reuse of a previous archive's units and the sink that writes them share
//! one entry order and one offset bookkeeping (what to copy is planned in plan.rs; where each
//! entry ends in its unit is settled here, as the writer reports it).
//!
//! In `.tar.gz` output every entry's tar header and data are compressed as part of a *unit*
//! (pgzip.rs): a directory, a symlink and a file of `SOLO` bytes or more are a unit each, and
//! smaller files are grouped into units of about `GROUP` bytes (a unit also ends before a
//! directory). The manifest records each entry's unit and identity (manifest.rs), and the
//! locator block after it lets a later set find it. With a previous archive (`create_reusing`,
//! `zbackup archive --reuse`), every unit of it whose entries are all unchanged on disk (same
//! names in the same order, same size, mtime and ctime to the nanosecond, inode, mode) and
//! which passes the check of `reuse.rs` is copied into the output instead of read and
//! compressed again; everything else is compressed as usual. Inside a group, a sync point
//! follows every entry (pgzip.rs) and the manifest records where each entry's bytes end in its
//! unit (manifest version 4): when only the first entries of a unit of PREV are unchanged, its
//! bytes up to the sync point after the last of them are copied as a unit of their own (a
//! *prefix* unit, checked the same way); after a changed entry and 32 KiB of unchanged ones
//! compressed anew, the rest of PREV's unit is copied to end the unit being written (a *tail*,
//! plan.rs), and the rest is compressed as usual.

use super::control::{JobControl, StopSignal};
use super::hashing::{Base, Finished, OffloadWriter, MAX_MISMATCHED};
use super::manifest::{
    encode_checkpoints, encode_record, trailer_header_v, trailer_padding, EntryExt, EntryKind,
    Locator, ManifestEntry, Unit, UnitEnd, VERSION,
};
use super::pgzip::{GzOptions, ParallelGzWriter, RawUnit, SyncPoint, UnitInfo, DEFAULT_CHUNK};
use super::plan::{end_inside, inflates_to, Match, Planner, Step, Tail, TarBytes, WINDOW};
#[cfg(feature = "cli")]
use super::pzstd::ParallelZstdWriter;
use super::reuse::Prev;
use super::sha_resume::Midstate;
use super::tarread::zeros_crc;
use super::tarw::{pad, write_end, write_header, HeaderInfo, BLOCK};
use super::{Format, TmpFile};
use crate::error::{Error, Result};
use std::collections::{HashSet, VecDeque};
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// A file this large or larger is a unit of its own. Every unit starts deflate without a
/// window, which cost about 1.3 KB per unit on text (a text tree of 150 KiB files came out
/// 3.1% larger than `tar -czf` with 64 KiB; grouping up to 512 KiB keeps it within 2%).
pub const SOLO: u64 = 512 << 10;
/// Smaller files are grouped into units of about this many bytes.
pub const GROUP: u64 = 512 << 10;

/// What to archive.
#[derive(Debug, Clone)]
pub enum Source {
    /// A whole tree, like `tar -C DIR -c .`: entries `./`, `./a`, `./a/b`, ... in sorted order
    /// (bytewise, per directory); symlinks stored as links, never followed.
    Dir(PathBuf),
    /// Explicit entries, in the given order, not recursed into: (name in the archive, path on
    /// disk). Names are raw bytes, e.g. `config-site/config/priv/zotonic_site.config`.
    List(Vec<(Vec<u8>, PathBuf)>),
}

/// How to archive.
#[derive(Debug, Clone, Copy)]
pub struct ArchiveOptions {
    pub format: Format,
    /// Compression threads; 0 = one per core.
    pub threads: usize,
    /// Compression level; `None` = the format's default (gzip 6, zstd 3). gzip 0..=9, zstd 1..=19.
    pub level: Option<i32>,
    /// Uncompressed bytes per parallel gzip chunk.
    pub chunk_size: usize,
    /// fsync the output before renaming it into place (default true: a backup must survive a
    /// crash right after it is reported done).
    pub fsync: bool,
}

impl Default for ArchiveOptions {
    fn default() -> Self {
        ArchiveOptions {
            format: Format::Gzip,
            threads: 0,
            level: None,
            chunk_size: DEFAULT_CHUNK,
            fsync: true,
        }
    }
}

impl ArchiveOptions {
    /// The parallel gzip settings these options stand for; a level outside 0..=9 is an error
    /// (never clamped), for archives and dumps alike.
    pub fn gz_options(&self) -> Result<GzOptions> {
        let level = self.level.unwrap_or(6);
        if !(0..=9).contains(&level) {
            return Err(Error::InvalidArgument(format!(
                "gzip level {level} not in 0..9"
            )));
        }
        Ok(GzOptions {
            threads: self.threads,
            level: level as u32,
            chunk_size: self.chunk_size,
        })
    }
}

/// What `create` (or `dump::gzip_command`: one file, nothing skipped) did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Entries written (files, dirs, links).
    pub files: u64,
    /// Bytes of file data archived.
    pub bytes_in: u64,
    /// Size of the archive file.
    pub bytes_out: u64,
    /// Lower-case hex sha256 of the archive file.
    pub sha256: String,
    /// Entries left out or archived imperfectly, with why (path lossily as UTF-8).
    pub skipped: Vec<(String, String)>,
    pub seconds: f64,
    /// What a previous archive contributed, when one was given.
    pub reuse: Option<ReuseSummary>,
}

/// What reusing a previous archive did.
#[derive(Debug, Clone, Default)]
pub struct ReuseSummary {
    /// Why the previous archive was not used at all (missing, foreign, encrypted, no index).
    pub unusable: Option<String>,
    /// Entries whose compressed bytes were copied, and their file data bytes.
    pub reused_entries: u64,
    pub reused_bytes: u64,
    /// Units copied, and their compressed bytes.
    pub reused_units: u64,
    pub reused_compressed: u64,
    /// Of those, the units that were the first entries of a unit of the previous archive whose
    /// later entries changed (up to a sync point), and their compressed bytes.
    pub prefix_units: u64,
    pub prefix_compressed: u64,
    /// Tails: the rest of a unit of the previous archive after a changed entry, copied into a
    /// unit after 32 KiB of its entries compressed anew (plan.rs), and their compressed bytes
    /// (also in `reused_compressed`, not in `reused_units`).
    pub tail_pieces: u64,
    pub tail_compressed: u64,
    /// Units of the previous archive that matched unchanged files but failed their check, so
    /// their files were compressed again; the first few with why.
    pub rejected_units: u64,
    pub rejected: Vec<(String, String)>,
    /// How the copied bytes got into the output: cloned (shared extents), copied in the kernel
    /// (`copy_file_range`: the ends of cloned units), or read once, checked and written (where
    /// the file system does not clone).
    pub cloned_bytes: u64,
    pub copied_bytes: u64,
    pub written_bytes: u64,
    /// Bytes of empty deflate blocks written to align units for cloning.
    pub padding_bytes: u64,
    /// Leading bytes of the archive that were a verified copy of the previous one, whose
    /// sha256 state came from its checkpoints instead of hashing them again.
    pub sha256_resumed_bytes: u64,
}

/// How the reused bytes got into the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "nif", derive(rustler::NifUnitEnum))]
pub enum CopyMethod {
    /// Shared extents (FICLONERANGE) only.
    Clone,
    /// Both: the unaligned ends of units were copied.
    CloneAndCopyFileRange,
    CopyFileRange,
    /// Read (for the check) and written: where the file system does not clone, while the
    /// sha256 is resumed (an unchanged set).
    Write,
    /// Both: written while the sha256 was resumed, copied in the kernel once it was computed.
    WriteAndCopyFileRange,
    /// Nothing was reused.
    None,
}

impl CopyMethod {
    /// As the CLI prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            CopyMethod::Clone => "clone",
            CopyMethod::CloneAndCopyFileRange => "clone+copy_file_range",
            CopyMethod::CopyFileRange => "copy_file_range",
            CopyMethod::Write => "write",
            CopyMethod::WriteAndCopyFileRange => "write+copy_file_range",
            CopyMethod::None => "none",
        }
    }
}

impl ReuseSummary {
    /// Whether the previous archive could be used at all.
    pub fn used(&self) -> bool {
        self.unusable.is_none()
    }

    /// An archive clones (and copies the ends) where its output's file system shares extents
    /// (`write_archive`); else it writes what the hash thread only checks and copies in the
    /// kernel what it hashes too (`hashing::OffloadWriter`), so cloned and written bytes never
    /// come together.
    pub fn method(&self) -> CopyMethod {
        match (
            self.cloned_bytes > 0,
            self.copied_bytes > 0,
            self.written_bytes > 0,
        ) {
            (true, false, _) => CopyMethod::Clone,
            (true, true, _) => CopyMethod::CloneAndCopyFileRange,
            (false, true, true) => CopyMethod::WriteAndCopyFileRange,
            (false, true, false) => CopyMethod::CopyFileRange,
            (false, false, true) => CopyMethod::Write,
            (false, false, false) => CopyMethod::None,
        }
    }
}

/// Rejections kept with their reason.
const REJECTED_KEPT: usize = 20;

pub(super) struct Item {
    pub(super) name: Vec<u8>,
    pub(super) path: PathBuf,
    pub(super) meta: Metadata,
}

pub(super) fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// One step of the walk: an entry to archive, or one left out and why.
pub(super) enum Walked {
    Item(Item),
    Skipped(String, String),
}

/// What to archive, in archive order, with lstat metadata, one entry at a time: the walk keeps
/// only the directories on the current path in memory, never the whole tree.
pub(super) fn walk(source: &Source) -> Result<Box<dyn Iterator<Item = Walked> + '_>> {
    match source {
        Source::Dir(root) => {
            // The root itself is followed when it is a symlink (`tar -C DIR` does the same; a
            // site's files/archive may be a link to another disk); nothing below it is.
            let meta = fs::metadata(root).map_err(|e| Error::io(root, e))?;
            if !meta.is_dir() {
                return Err(Error::io(
                    root,
                    io::Error::from(io::ErrorKind::NotADirectory),
                ));
            }
            let first = Walked::Item(Item {
                name: b"./".to_vec(),
                path: root.clone(),
                meta,
            });
            let walker = walkdir::WalkDir::new(root)
                .min_depth(1)
                .follow_links(false)
                .sort_by(|a, b| a.file_name().as_bytes().cmp(b.file_name().as_bytes()));
            let rest = walker.into_iter().filter_map(move |entry| {
                let entry = match entry {
                    Ok(e) => e,
                    Err(e) => {
                        let p = e
                            .path()
                            .map(|p| p.display().to_string())
                            .unwrap_or_default();
                        return Some(Walked::Skipped(p, format!("unreadable: {e}")));
                    }
                };
                let rel = entry.path().strip_prefix(root).ok()?;
                let mut name = b"./".to_vec();
                name.extend_from_slice(rel.as_os_str().as_bytes());
                let meta = match entry.metadata() {
                    Ok(m) => m,
                    Err(e) => return Some(Walked::Skipped(lossy(&name), format!("vanished: {e}"))),
                };
                if meta.is_dir() {
                    name.push(b'/');
                }
                Some(Walked::Item(Item {
                    name,
                    path: entry.into_path(),
                    meta,
                }))
            });
            Ok(Box::new(std::iter::once(first).chain(rest)))
        }
        Source::List(list) => {
            if list.iter().any(|(name, _)| name.is_empty()) {
                return Err(Error::InvalidArgument("empty archive name".into()));
            }
            Ok(Box::new(list.iter().map(
                |(name, path)| match fs::symlink_metadata(path) {
                    Ok(meta) => Walked::Item(Item {
                        name: name.clone(),
                        path: path.clone(),
                        meta,
                    }),
                    Err(e) => Walked::Skipped(lossy(name), format!("vanished: {e}")),
                },
            )))
        }
    }
}

/// Manifest records past this many bytes move from memory to the spill file.
const MANIFEST_SPILL_AT: usize = 4 << 20;

/// The manifest trailer as it is built: its records in memory up to MANIFEST_SPILL_AT bytes,
/// then in an unnamed temp file in the output's directory (`O_TMPFILE`, or created and
/// unlinked at once by `tempfile`: nothing is left behind and no name can be planted), so
/// memory stays bounded whatever the number of entries.
struct ManifestWriter {
    mem: Vec<u8>,
    spill: Option<File>,
    spill_dir: PathBuf,
    entries: u64,
    len: u64,
    crc: crc32fast::Hasher,
}

impl ManifestWriter {
    fn new(spill_dir: PathBuf) -> Self {
        ManifestWriter {
            mem: Vec::new(),
            spill: None,
            spill_dir,
            entries: 0,
            len: 0,
            crc: crc32fast::Hasher::new(),
        }
    }

    fn push(&mut self, e: &ManifestEntry, ext: &EntryExt) -> io::Result<()> {
        let start = self.mem.len();
        encode_record(e, &mut self.mem);
        ext.encode(&mut self.mem);
        self.crc.update(&self.mem[start..]);
        self.len += (self.mem.len() - start) as u64;
        self.entries += 1;
        if self.mem.len() >= MANIFEST_SPILL_AT {
            let f = match &mut self.spill {
                Some(f) => f,
                None => self.spill.insert(tempfile::tempfile_in(&self.spill_dir)?),
            };
            f.write_all(&self.mem)?;
            self.mem.clear();
        }
        Ok(())
    }

    /// Writes the trailer: header block, records, the output's sha256 checkpoints so far,
    /// padding.
    fn write_to(mut self, checkpoints: &[Midstate], out: &mut impl Write) -> io::Result<()> {
        let start = self.mem.len();
        encode_checkpoints(checkpoints, &mut self.mem);
        self.crc.update(&self.mem[start..]);
        self.len += (self.mem.len() - start) as u64;
        out.write_all(&trailer_header_v(
            self.entries,
            self.len,
            self.crc.finalize(),
            VERSION,
        ))?;
        if let Some(mut f) = self.spill.take() {
            f.seek(SeekFrom::Start(0))?;
            io::copy(&mut f, out)?;
        }
        out.write_all(&self.mem)?;
        out.write_all(&vec![0u8; trailer_padding(self.len)])
    }
}

/// The compressing layer over the hashed output file.
enum Sink {
    Gz(Box<ParallelGzWriter<OffloadWriter<File>>>),
    #[cfg(feature = "cli")]
    Zst(Box<ParallelZstdWriter<OffloadWriter<File>>>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Gz(w) => w.write(buf),
            #[cfg(feature = "cli")]
            Sink::Zst(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Gz(w) => w.flush(),
            #[cfg(feature = "cli")]
            Sink::Zst(w) => w.flush(),
        }
    }
}

impl Sink {
    /// Free space in the compressor's current chunk, to read file data straight into.
    fn spare(&mut self) -> io::Result<&mut [u8]> {
        match self {
            Sink::Gz(w) => w.spare(),
            #[cfg(feature = "cli")]
            Sink::Zst(w) => w.spare(),
        }
    }

    fn commit(&mut self, n: usize) -> io::Result<()> {
        match self {
            Sink::Gz(w) => w.commit(n),
            #[cfg(feature = "cli")]
            Sink::Zst(w) => w.commit(n),
        }
    }

    fn new(
        file: File,
        opts: &ArchiveOptions,
        base: Option<Base>,
        stop: StopSignal,
    ) -> io::Result<Sink> {
        // sha256 and the write syscalls run on their own thread
        let mut out = OffloadWriter::with_base(file, base)?;
        out.set_stop(stop);
        match opts.format {
            Format::Gzip => {
                // The one gzip level rule, for archives and dumps alike.
                let gz = opts.gz_options().map_err(|e| match e {
                    Error::InvalidArgument(m) => io::Error::new(io::ErrorKind::InvalidInput, m),
                    e => io::Error::other(e.to_string()),
                })?;
                let mut w = ParallelGzWriter::new(out, gz)?;
                w.set_segmented(true);
                Ok(Sink::Gz(Box::new(w)))
            }
            #[cfg(not(feature = "cli"))]
            Format::Zstd => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "zstd archives are written by zbackup only",
            )),
            #[cfg(feature = "cli")]
            Format::Zstd => {
                let level = opts.level.unwrap_or(3);
                if !(1..=19).contains(&level) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("zstd level {level} not in 1..19"),
                    ));
                }
                let threads = match opts.threads {
                    0 => super::pgzip::default_threads(),
                    n => n,
                };
                let mut w = ParallelZstdWriter::new(out, threads, level)?;
                // Announces the manifest trailer, so a copy cut at a frame boundary is known
                // to be incomplete (see read.rs).
                w.write_skippable(super::SKIPPABLE_MARKER_MAGIC, super::MANIFEST_MARKER)?;
                Ok(Sink::Zst(Box::new(w)))
            }
        }
    }

    /// Finishes the archive; gives up once `stop` says so (see `finish_spliced_unless`).
    fn finish(self, stop: &dyn Fn() -> bool) -> io::Result<(Finished<File>, u64)> {
        let (out, padding) = match self {
            Sink::Gz(w) => {
                let padding = w.padding_bytes;
                ((*w).finish()?.0, padding)
            }
            #[cfg(feature = "cli")]
            Sink::Zst(w) => ((*w).finish()?.0, 0),
        };
        Ok((out.finish_spliced_unless(stop)?, padding))
    }

    /// Ends the current unit (gz only).
    fn cut(&mut self) -> io::Result<()> {
        match self {
            Sink::Gz(w) => w.cut().map(|_| ()),
            #[cfg(feature = "cli")]
            Sink::Zst(_) => Ok(()),
        }
    }

    /// The gzip writer, when the output is gzip.
    fn gz(&mut self) -> Option<&mut ParallelGzWriter<OffloadWriter<File>>> {
        match self {
            Sink::Gz(w) => Some(w.as_mut()),
            #[cfg(feature = "cli")]
            Sink::Zst(_) => None,
        }
    }

    /// The unit the next byte goes into (gz only).
    fn unit_id(&self) -> Option<u64> {
        match self {
            Sink::Gz(w) => Some(w.unit_id()),
            #[cfg(feature = "cli")]
            Sink::Zst(_) => None,
        }
    }

    fn unit_len(&self) -> u64 {
        match self {
            Sink::Gz(w) => w.unit_len(),
            #[cfg(feature = "cli")]
            Sink::Zst(_) => 0,
        }
    }

    fn pop_unit(&mut self) -> Option<UnitInfo> {
        match self {
            Sink::Gz(w) => w.pop_unit(),
            #[cfg(feature = "cli")]
            Sink::Zst(_) => None,
        }
    }

    /// A sync point at the current input position (gz only): the unit's input bytes before it.
    fn sync(&mut self) -> io::Result<Option<u64>> {
        match self {
            Sink::Gz(w) => w.sync(),
            #[cfg(feature = "cli")]
            Sink::Zst(_) => Ok(None),
        }
    }

    fn pop_sync(&mut self) -> Option<SyncPoint> {
        match self {
            Sink::Gz(w) => w.pop_sync(),
            #[cfg(feature = "cli")]
            Sink::Zst(_) => None,
        }
    }

    fn drain_all(&mut self) -> io::Result<()> {
        match self {
            Sink::Gz(w) => w.drain_all(),
            #[cfg(feature = "cli")]
            Sink::Zst(_) => Ok(()),
        }
    }
}

/// Archives `source` into `out`, via `out.tmp` renamed into place on success. The tmp file is
/// removed on any error and on cancel (`Error::Cancelled`). Progress is published in `ctl`.
pub fn create(
    source: &Source,
    out: &Path,
    opts: &ArchiveOptions,
    ctl: &JobControl,
) -> Result<Summary> {
    create_reusing(source, out, opts, None, ctl)
}

fn ext_of(meta: &Metadata) -> EntryExt {
    EntryExt {
        mtime_nsec: meta.mtime_nsec() as u32,
        ino: meta.ino(),
        ctime: meta.ctime(),
        ctime_nsec: meta.ctime_nsec() as u32,
        unit: None,
        end: None,
    }
}

/// Memory the first walk may spend keeping its entries for the archive (`count_totals`):
/// an entry costs `size_of::<Walked>()` (about 230 bytes, most of it its `statx`) plus its name and
/// path, so some 90,000 entries of a site's `files/archive` fit.
const KEEP_BYTES: usize = 32 << 20;

/// What the first walk found: the totals for the progress, and its entries while they fit in
/// the budget it was given.
struct Counted {
    files: u64,
    bytes: u64,
    kept: Option<Vec<Walked>>,
}

/// The first pass: totals for the progress (the Erlang side turns them into percent, so they
/// are needed before the work). The entries it walked are kept for the archive while they fit
/// in `keep_bytes` (`KEEP_BYTES`), so such a tree is walked (one `statx` per entry, about 3 us
/// each on a warm cache) once, not twice; a larger one is walked again, in fixed memory.
/// A file is opened and `fstat`ed when its bytes are read either way; what the kept entries
/// change is how long before an entry is written the walk's metadata (a directory's header, a
/// reused file's identity) was taken: up to the run's length, not moments (a reused file
/// changed meanwhile is archived as it was then, and its new identity makes the next set
/// compress it).
fn count_totals(source: &Source, ctl: &JobControl, keep_bytes: usize) -> Result<Counted> {
    let (mut files, mut bytes) = (0u64, 0u64);
    let mut kept = Some(Vec::new());
    let mut spent = 0usize;
    for w in walk(source)? {
        if files % 1024 == 0 {
            ctl.check()?;
        }
        if let Walked::Item(item) = &w {
            files += 1;
            if item.meta.is_file() {
                bytes += item.meta.len();
            }
        }
        if let Some(k) = kept.as_mut() {
            spent += std::mem::size_of::<Walked>()
                + match &w {
                    Walked::Item(i) => i.name.len() + i.path.as_os_str().len(),
                    Walked::Skipped(p, why) => p.len() + why.len(),
                };
            if spent <= keep_bytes {
                k.push(w);
            } else {
                kept = None;
            }
        }
    }
    Ok(Counted { files, bytes, kept })
}

fn reject(reuse: &mut ReuseSummary, what: String, why: String) {
    reuse.rejected_units += 1;
    if reuse.rejected.len() < REJECTED_KEPT {
        reuse.rejected.push((what, why));
    }
}

/// Probes whether `out_dir`'s file system clones ranges of `src`: the block size if it does.
fn clone_probe(src: &File, out_dir: &Path) -> Option<u64> {
    let probe = tempfile::tempfile_in(out_dir).ok()?;
    let bs = crate::fsutil::clone_block(&probe);
    let len = src.metadata().ok()?.len();
    if len < bs {
        return None;
    }
    crate::fsutil::clone_range(src, 0, &probe, 0, bs).ok()?;
    Some(bs)
}

/// Where a waiting entry's bytes end in its unit.
enum EndAt {
    /// Known already (a unit copied from PREV), or not recorded.
    Known(Option<UnitEnd>),
    /// At this many input bytes of the unit: its end, or a sync point there.
    At(u64),
    /// In a tail copied from PREV, which started at `from` of PREV's unit and at the sync
    /// point at `at` input bytes of this unit: where it ended in PREV (`to`), moved by as much.
    Moved {
        at: u64,
        from: UnitEnd,
        to: Option<UnitEnd>,
    },
}

/// Entries waiting for their unit to be written (gz: its offset is known only then).
struct Waiting {
    queue: VecDeque<(ManifestEntry, EntryExt, Option<u64>, EndAt)>,
    unit: Option<UnitInfo>,
    /// A sync point taken from the writer but not yet matched with an entry.
    sync: Option<SyncPoint>,
}

impl Waiting {
    /// Moves every entry whose unit is written into the manifest, in order.
    fn settle(&mut self, sink: &mut Sink, manifest: &mut ManifestWriter) -> io::Result<()> {
        while let Some((_, _, id, _)) = self.queue.front() {
            let id = *id;
            if let Some(id) = id {
                let u = loop {
                    match self.unit {
                        Some(u) if u.id >= id => break Some(u),
                        _ => match sink.pop_unit() {
                            Some(u) => self.unit = Some(u),
                            None => break None,
                        },
                    }
                };
                match u {
                    Some(u) if u.id == id => {}
                    Some(_) => {
                        return Err(io::Error::other("an entry's unit was never written"));
                    }
                    None => return Ok(()),
                }
            }
            if let Some((e, mut x, id, end)) = self.queue.pop_front() {
                if let (Some(id), Some(u)) = (id, self.unit) {
                    let unit = Unit {
                        offset: u.offset,
                        len: u.len,
                        ulen: u.ulen,
                        crc: u.crc,
                        zcrc: u.zcrc,
                    };
                    x.unit = Some(unit);
                    x.end = match end {
                        EndAt::Known(end) => end,
                        EndAt::At(at) if at == u.ulen => Some(UnitEnd::whole(&unit)),
                        EndAt::At(at) => self.sync_at(sink, id, at),
                        EndAt::Moved { at, from, to } => {
                            let span = to.and_then(|to| from.span_to(&to));
                            match (self.sync_at(sink, id, at), span) {
                                (Some(s), Some(span)) => {
                                    let end = s.then(&span);
                                    Some(if end.ulen == u.ulen {
                                        UnitEnd::whole(&unit)
                                    } else {
                                        end
                                    })
                                }
                                _ => None,
                            }
                        }
                    };
                }
                manifest.push(&e, &x)?;
            }
        }
        Ok(())
    }

    /// Queues `items`, copied from PREV into unit `id` with their `records`, for the manifest
    /// (each one's end from its record by `end_of`), and books them as reused in the progress
    /// and `reuse`; their file data bytes.
    fn copied(
        &mut self,
        items: &[Item],
        records: Vec<(ManifestEntry, EntryExt)>,
        id: u64,
        ctl: &JobControl,
        reuse: &mut ReuseSummary,
        end_of: impl Fn(&EntryExt) -> EndAt,
    ) -> u64 {
        let mut bytes = 0;
        for (item, (rec, x)) in items.iter().zip(records) {
            bytes += rec.size;
            ctl.add_bytes(rec.size);
            ctl.add_files(1);
            reuse.reused_entries += 1;
            reuse.reused_bytes += rec.size;
            let end = end_of(&x);
            self.queue
                .push_back((rec, ext_of(&item.meta), Some(id), end));
        }
        bytes
    }

    /// The sync point of unit `id` (written out) at input offset `at`, if there is one; the
    /// writer reports them in order, so the ones before are dropped (the one found is kept: the
    /// entries of a tail ask for the sync point at its start after the entry that ends there).
    fn sync_at(&mut self, sink: &mut Sink, id: u64, at: u64) -> Option<UnitEnd> {
        loop {
            let s = match self.sync {
                Some(s) => s,
                None => *self.sync.insert(sink.pop_sync()?),
            };
            match (s.unit, s.ulen).cmp(&(id, at)) {
                std::cmp::Ordering::Less => self.sync = None,
                std::cmp::Ordering::Equal => {
                    return Some(UnitEnd {
                        ulen: s.ulen,
                        len: s.len,
                        crc: s.crc,
                        zcrc: s.zcrc,
                    });
                }
                std::cmp::Ordering::Greater => return None,
            }
        }
    }
}

/// PREV's bytes of `u` as a raw piece of the output; the hash thread checks them against
/// `u.zcrc` as it reads them (reuse.rs, check 3).
fn from_prev(p: &Prev, u: Unit) -> RawUnit<OffloadWriter<File>> {
    let src = Arc::clone(&p.file);
    RawUnit {
        write: Box::new(move |o: &mut OffloadWriter<File>| {
            o.splice(src, u.offset, u.len, Some(u.zcrc))
        }),
        src_offset: u.offset,
        len: u.len,
        ulen: u.ulen,
        crc: u.crc,
        zcrc: u.zcrc,
    }
}

/// The entries last compressed into the open unit that are, byte for byte, consecutive
/// entries of one unit of PREV: a tail of that unit may follow them when they hold 32 KiB or
/// more (plan.rs).
struct Window {
    /// This set's unit they are in.
    unit: u64,
    /// PREV's unit (its offset), and the index in it of the entry after them.
    prev: u64,
    next: usize,
    /// Their tar bytes.
    bytes: u64,
}

impl Window {
    /// The window after an entry was compressed into unit `wrote.0` as tar bytes `wrote.1`
    /// (`None`: not written into a group), `tag` saying what it was in PREV.
    fn after(
        w: Option<Window>,
        wrote: Option<(u64, TarBytes)>,
        tag: Option<Match>,
    ) -> Option<Window> {
        let ((unit, tar), m) = wrote.zip(tag)?;
        if tar != m.tar {
            return None;
        }
        Some(match w {
            Some(w) if w.unit == unit && w.prev == m.prev && w.next == m.index => Window {
                next: w.next + 1,
                bytes: w.bytes + tar.len,
                ..w
            },
            _ => Window {
                unit,
                prev: m.prev,
                next: m.index + 1,
                bytes: tar.len,
            },
        })
    }

    /// Whether `t` may follow in `open`, the unit being filled.
    fn fits(&self, t: &Tail, open: Option<u64>) -> bool {
        open == Some(self.unit)
            && self.prev == t.unit.offset
            && self.next == t.first
            && self.bytes >= WINDOW
    }
}

/// `create`, reusing the compressed bytes of `prev` (a `.tar.gz` this engine wrote) for the
/// files it holds unchanged (module doc). A `prev` that cannot be used is reported in
/// `Summary::reuse` and the archive made as without it.
///
/// The copied bytes are checked against their recorded crc32 while the output's sha256 is
/// computed (reuse.rs); when some fail, this archive is discarded and written again without
/// those units (and, should that fail too, without `prev`): damage in `prev` costs time,
/// never a damaged set.
pub fn create_reusing(
    source: &Source,
    out: &Path,
    opts: &ArchiveOptions,
    prev: Option<&Path>,
    ctl: &JobControl,
) -> Result<Summary> {
    let started = Instant::now();
    let mut reuse = prev.map(|_| ReuseSummary::default());
    let mut prev = match (prev, &mut reuse) {
        (Some(p), Some(r)) => {
            let opened = if opts.format != Format::Gzip || !matches!(source, Source::Dir(_)) {
                Err("reuse is for .tar.gz archives of a directory".to_string())
            } else {
                // records() reads the index's header: why it cannot be used is known early
                Prev::open(p).and_then(|prev| prev.records(ctl)?.reusable().map(|_| prev))
            };
            opened.map_err(|why| r.unusable = Some(why)).ok()
        }
        _ => None,
    };
    let counted = count_totals(source, ctl, KEEP_BYTES)?;
    ctl.set_totals(counted.files, counted.bytes);
    // the first attempt archives what the first walk found; another one walks again
    let mut walked = counted.kept;
    let mut deny = HashSet::new();
    let mut earlier = ReuseSummary::default();
    loop {
        ctl.check()?;
        let mut this = ReuseSummary::default();
        let entries = match walked.take() {
            Some(kept) => Box::new(kept.into_iter()),
            None => walk(source)?,
        };
        let (mut summary, mismatched) =
            write_archive(entries, out, opts, prev.as_ref(), &deny, &mut this, ctl)?;
        if mismatched.is_empty() {
            summary.seconds = started.elapsed().as_secs_f64();
            summary.reuse = reuse.map(|mut r| {
                let kept = REJECTED_KEPT.saturating_sub(earlier.rejected.len());
                earlier.rejected.extend(this.rejected.drain(..).take(kept));
                this.rejected = earlier.rejected;
                this.rejected_units += earlier.rejected_units;
                this.unusable = r.unusable.take();
                this
            });
            return Ok(summary);
        }
        for off in &mismatched {
            let why = "its bytes differ from their recorded crc32".to_string();
            reject(&mut earlier, format!("(unit at byte {off})"), why);
        }
        if !deny.is_empty() || mismatched.len() >= MAX_MISMATCHED {
            // a second round of damage (or too much of it): not worth a third look
            if let Some(r) = reuse.as_mut() {
                r.unusable = Some("damaged: units differ from their recorded crc32".into());
            }
            prev = None;
        }
        deny.extend(mismatched);
        ctl.rewind(super::control::Progress::default());
    }
}

/// One attempt of `create_reusing`: the archive written and renamed into place, or, when some
/// units copied from `prev` failed their crc32 (the source offsets returned), discarded.
#[allow(clippy::too_many_arguments)]
fn write_archive(
    entries: Box<dyn Iterator<Item = Walked> + '_>,
    out: &Path,
    opts: &ArchiveOptions,
    prev: Option<&Prev>,
    deny: &HashSet<u64>,
    reuse: &mut ReuseSummary,
    ctl: &JobControl,
) -> Result<(Summary, Vec<u64>)> {
    let tmp_path = super::tmp_path(out);
    // O_EXCL|O_NOFOLLOW: a symlink planted at OUT.tmp is replaced, never written through.
    let file = crate::fsutil::create_tmp(&tmp_path)?;
    let tmp = TmpFile::new(tmp_path.clone());
    // a stopped job reports its stop, whatever its output said then (it may have been given
    // up: `OffloadWriter::set_stop`)
    let io_err = |e: io::Error| ctl.stop_reason().unwrap_or_else(|| Error::io(&tmp_path, e));
    // while the output is a copy of PREV, its sha256 is resumed from PREV's checkpoints
    let base = prev.and_then(|p| {
        let checkpoints = p.checkpoints(ctl).ok()?;
        Some(Base {
            file: Arc::clone(&p.file),
            checkpoints,
        })
    });
    let mut sink = Sink::new(file, opts, base, ctl.stop_signal()).map_err(|e| {
        if e.kind() == io::ErrorKind::InvalidInput {
            Error::InvalidArgument(e.to_string())
        } else {
            io_err(e)
        }
    })?;

    let spill_dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    if let (Some(p), Some(w)) = (prev, sink.gz()) {
        if let Some(bs) = clone_probe(&p.file, &spill_dir) {
            w.set_clone_align(bs);
            w.inner_mut().map_err(io_err)?.set_cloning(true);
        }
    }
    let records = match prev {
        Some(p) => match p.records(ctl) {
            Ok(r) => Some(r),
            Err(why) => {
                reject(reuse, "(index)".into(), why);
                None
            }
        },
        None => None,
    };
    let mut manifest = ManifestWriter::new(spill_dir);
    let mut waiting = Waiting {
        queue: VecDeque::new(),
        unit: None,
        sync: None,
    };
    let mut skipped = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes_in = 0u64;
    let mut window = None;
    let mut planner = Planner::new(entries, records);
    for step in &mut planner {
        ctl.check()?;
        // The files this step compresses (none when it spliced a unit of PREV).
        let fresh = 'step: {
            match step {
                Step::One(Walked::Item(item), tag) => vec![(item, tag)],
                Step::One(Walked::Skipped(path, why), _) => {
                    skipped.push((path, why));
                    Vec::new()
                }
                Step::Tail(tail, items) => {
                    let open = sink.unit_id().filter(|_| sink.unit_len() > 0);
                    let fits = window.take().is_some_and(|w: Window| w.fits(&tail, open));
                    let span = tail.span;
                    let usable = fits
                        && !deny.contains(&tail.src_offset())
                        && inflates_to(&items, &tail.records, span.ulen, span.crc)
                            .map_err(io_err)?;
                    let (Some(p), Some(w), true) = (prev, sink.gz(), usable) else {
                        if fits && !deny.contains(&tail.src_offset()) {
                            let what = items.first().map(|i| lossy(&i.name)).unwrap_or_default();
                            let why = "its tar headers or crc32s differ from the files'".into();
                            reject(reuse, what, why);
                        }
                        // compressed anew (below)
                        break 'step items.into_iter().map(|i| (i, None)).collect();
                    };
                    // the tail's first byte follows the sync point at `at` of this unit
                    let at = w.unit_len();
                    let piece = Unit {
                        offset: tail.src_offset(),
                        len: span.len,
                        ulen: span.ulen,
                        crc: span.crc,
                        zcrc: span.zcrc,
                    };
                    let id = w.queue_raw_tail(from_prev(p, piece)).map_err(io_err)?;
                    reuse.tail_pieces += 1;
                    reuse.tail_compressed += span.len;
                    reuse.reused_compressed += span.len;
                    let (from, whole) = (tail.from, tail.unit);
                    bytes_in +=
                        waiting.copied(&items, tail.records, id, ctl, reuse, |x| EndAt::Moved {
                            at,
                            from,
                            to: end_inside(x.end, &whole),
                        });
                    waiting.settle(&mut sink, &mut manifest).map_err(io_err)?;
                    Vec::new()
                }
                Step::Reusable(unit, items) => {
                    window = None;
                    let u = unit.unit;
                    let usable = !deny.contains(&u.offset)
                        && inflates_to(&items, &unit.records, u.ulen, u.crc).map_err(io_err)?;
                    let (Some(p), Some(w), true) = (prev, sink.gz(), usable) else {
                        if !deny.contains(&u.offset) {
                            let what = items.first().map(|i| lossy(&i.name)).unwrap_or_default();
                            let why = "its tar headers or crc32s differ from the files'".into();
                            reject(reuse, what, why);
                        }
                        // compressed anew, one by one (below)
                        break 'step items.into_iter().map(|i| (i, None)).collect();
                    };
                    w.cut().map_err(io_err)?;
                    let id = w.queue_raw(from_prev(p, u)).map_err(io_err)?;
                    reuse.reused_units += 1;
                    reuse.reused_compressed += u.len;
                    if unit.prefix {
                        reuse.prefix_units += 1;
                        reuse.prefix_compressed += u.len;
                    }
                    // where each entry ends is where it ended in PREV: the copy starts at the
                    // same byte of the unit
                    bytes_in += waiting.copied(&items, unit.records, id, ctl, reuse, |x| {
                        EndAt::Known(end_inside(x.end, &u))
                    });
                    waiting.settle(&mut sink, &mut manifest).map_err(io_err)?;
                    Vec::new()
                }
            }
        };
        for (item, tag) in fresh {
            let mut entries = EntryWriter {
                out_path: &tmp_path,
                sink: &mut sink,
                buf: &mut buf,
                ctl,
                skipped: &mut skipped,
            };
            let wrote = entries.grouped(&item, &mut waiting, &mut bytes_in)?;
            window = Window::after(window.take(), wrote, tag);
            waiting.settle(&mut sink, &mut manifest).map_err(io_err)?;
        }
    }
    if let Some(why) = planner.stopped.take() {
        reject(reuse, "(index)".into(), why);
    }
    // every entry's unit written: the manifest is complete
    sink.cut().map_err(io_err)?;
    sink.drain_all().map_err(io_err)?;
    waiting.settle(&mut sink, &mut manifest).map_err(io_err)?;
    if !waiting.queue.is_empty() {
        return Err(io_err(io::Error::other("entries without their unit")));
    }
    write_end(&mut sink).map_err(io_err)?;
    let files = manifest.entries;
    // The two waits for the output threads below (checkpoints, the end) give up on a cancel:
    // the job then ends with its own Cancelled/Timeout, not after the queued copies.
    let stopped = || ctl.is_cancelled();
    // every data unit is out (drained above): the checkpoints cover the archive up to here
    let checkpoints = match sink.gz() {
        Some(w) => w
            .inner_mut()
            .and_then(|o| o.checkpoints(&stopped))
            .map_err(io_err)?,
        None => Vec::new(),
    };
    manifest.write_to(&checkpoints, &mut sink).map_err(io_err)?;
    if let Some(w) = sink.gz() {
        // the tail unit (end-of-archive marker and manifest), then the locator naming it
        w.cut().map_err(io_err)?;
        w.drain_all().map_err(io_err)?;
        let mut tail = None;
        while let Some(u) = w.pop_unit() {
            tail = Some(u);
        }
        let Some(t) = tail else {
            return Err(io_err(io::Error::other("no tail unit")));
        };
        let loc = Locator {
            unit: Unit {
                offset: t.offset,
                len: t.len,
                ulen: t.ulen,
                crc: t.crc,
                zcrc: t.zcrc,
            },
            entries: files,
        };
        w.write_stored_unit(&loc.encode()).map_err(io_err)?;
    }
    ctl.check()?;
    let (done, padding) = sink.finish(&stopped).map_err(io_err)?;
    if !done.mismatched.is_empty() {
        // `tmp` removes the file: this attempt is discarded
        return Ok((Summary::default(), done.mismatched));
    }
    reuse.cloned_bytes = done.spliced.cloned;
    reuse.copied_bytes = done.spliced.copied;
    reuse.written_bytes = done.spliced.written;
    reuse.padding_bytes = padding;
    reuse.sha256_resumed_bytes = done.resumed;
    if opts.fsync {
        done.inner.sync_all().map_err(io_err)?;
    }
    drop(done.inner);
    ctl.check()?;
    fs::rename(&tmp_path, out).map_err(|e| Error::io(out, e))?;
    tmp.disarm();
    let summary = Summary {
        files,
        bytes_in,
        bytes_out: done.count,
        sha256: done.sha256,
        skipped,
        seconds: 0.0,
        reuse: None,
    };
    Ok((summary, Vec::new()))
}

/// Where the entries of one archive are written: its output (named in errors), the job's
/// control, a read buffer, and the entries skipped so far (each with why).
struct EntryWriter<'a> {
    out_path: &'a Path,
    sink: &'a mut Sink,
    buf: &'a mut [u8],
    ctl: &'a JobControl,
    skipped: &'a mut Vec<(String, String)>,
}

impl EntryWriter<'_> {
    /// Records `item` as skipped; the entry is not in the archive.
    fn skip<T>(&mut self, item: &Item, why: String) -> Result<Option<T>> {
        self.skipped.push((lossy(&item.name), why));
        Ok(None)
    }

    /// Writes one entry into its unit: directories, symlinks and files of `SOLO` bytes or more
    /// alone, smaller files grouped up to `GROUP` bytes. For an entry written into a group of
    /// a `.tar.gz`: its unit's id and its tar bytes.
    fn grouped(
        &mut self,
        item: &Item,
        waiting: &mut Waiting,
        bytes_in: &mut u64,
    ) -> Result<Option<(u64, TarBytes)>> {
        let out_path = self.out_path;
        let out_err = move |e: io::Error| Error::io(out_path, e);
        let alone = !item.meta.is_file() || item.meta.len() >= SOLO;
        if alone {
            self.sink.cut().map_err(out_err)?;
        }
        let id = self.sink.unit_id();
        let mut wrote = None;
        if let Some((entry, ext, tar)) = self.item(item)? {
            *bytes_in += entry.size;
            // where the entry ends in its unit: the unit's end when it is cut right here, else
            // a sync point there (a block restart in the deflate stream: ~30-60 bytes)
            let at = self.sink.unit_len();
            if !alone {
                self.sink.sync().map_err(out_err)?;
            }
            let end = match id {
                Some(_) => EndAt::At(at),
                None => EndAt::Known(None),
            };
            waiting.queue.push_back((entry, ext, id, end));
            wrote = id.filter(|_| !alone).map(|id| (id, tar));
        }
        if alone || self.sink.unit_len() >= GROUP {
            self.sink.cut().map_err(out_err)?;
        }
        self.ctl.add_files(1);
        Ok(wrote)
    }

    /// Writes a tar header: the length and crc32 of its bytes.
    fn header(&mut self, h: &HeaderInfo<'_>) -> io::Result<TarBytes> {
        let mut bytes = Vec::with_capacity(BLOCK);
        write_header(&mut bytes, h)?;
        self.sink.write_all(&bytes)?;
        Ok(TarBytes::default().then(crc32fast::hash(&bytes), bytes.len() as u64))
    }

    /// Writes one entry (with the length and crc32 of its tar bytes); `Ok(None)` when it was
    /// skipped (and recorded in `skipped`). Only errors of the output (or cancel) are returned
    /// as errors.
    fn item(&mut self, item: &Item) -> Result<Option<(ManifestEntry, EntryExt, TarBytes)>> {
        let out_path = self.out_path;
        let out_err = move |e: io::Error| Error::io(out_path, e);
        let ft = item.meta.file_type();
        let mut header = HeaderInfo {
            name: &item.name,
            kind: EntryKind::Dir,
            size: 0,
            mode: item.meta.mode(),
            mtime: item.meta.mtime(),
            uid: item.meta.uid() as u64,
            gid: item.meta.gid() as u64,
            link: &[],
        };
        let link_target;
        let tar;
        if ft.is_dir() {
            tar = self.header(&header).map_err(out_err)?;
        } else if ft.is_symlink() {
            link_target = match fs::read_link(&item.path) {
                Ok(t) => t,
                Err(e) => return self.skip(item, format!("vanished: {e}")),
            };
            header.kind = EntryKind::Symlink;
            header.link = link_target.as_os_str().as_bytes();
            tar = self.header(&header).map_err(out_err)?;
        } else if ft.is_file() {
            return self.file(item, header);
        } else {
            let what = if ft.is_fifo() {
                "fifo"
            } else if ft.is_socket() {
                "socket"
            } else if ft.is_block_device() || ft.is_char_device() {
                "device"
            } else {
                "special file"
            };
            return self.skip(item, format!("{what} not archived"));
        }
        Ok(Some((
            ManifestEntry {
                path: item.name.clone(),
                kind: header.kind,
                size: 0,
                mtime: header.mtime,
                mode: header.mode & 0o7777,
                crc32: 0,
                link: (header.kind == EntryKind::Symlink).then(|| header.link.to_vec()),
            },
            ext_of(&item.meta),
            tar,
        )))
    }

    fn file(
        &mut self,
        item: &Item,
        mut header: HeaderInfo<'_>,
    ) -> Result<Option<(ManifestEntry, EntryExt, TarBytes)>> {
        let out_path = self.out_path;
        let out_err = move |e: io::Error| Error::io(out_path, e);
        // O_NONBLOCK: a file swapped for a FIFO after the walk must not block the open.
        let mut f = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(&item.path)
        {
            Ok(f) => f,
            Err(e) => {
                let why = if e.kind() == io::ErrorKind::NotFound {
                    "vanished"
                } else {
                    "unreadable"
                };
                return self.skip(item, format!("{why}: {e}"));
            }
        };
        // fstat the open file: the size in the header is the one we will read.
        let meta = match f.metadata() {
            Ok(m) if m.is_file() => m,
            Ok(_) => return self.skip(item, "replaced while archiving".into()),
            Err(e) => return self.skip(item, format!("unreadable: {e}")),
        };
        header.kind = EntryKind::File;
        header.size = meta.len();
        header.mode = meta.mode();
        header.mtime = meta.mtime();
        let head = self.header(&header).map_err(out_err)?;
        let size = meta.len();
        let mut crc = crc32fast::Hasher::new();
        let mut done = 0u64;
        let mut problem = None;
        while done < size {
            self.ctl.check()?;
            // read straight into the compressor's chunk buffer: no copy on this thread
            let spare = self.sink.spare().map_err(out_err)?;
            let want = (size - done).min(spare.len() as u64) as usize;
            let n = match f.read(&mut spare[..want]) {
                Ok(0) => {
                    problem = Some(format!("shrank while reading: {done} of {size} bytes"));
                    break;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    problem = Some(format!("read error after {done} bytes: {e}"));
                    break;
                }
            };
            crc.update(&spare[..n]);
            self.sink.commit(n).map_err(out_err)?;
            done += n as u64;
            self.ctl.add_bytes(n as u64);
        }
        if done < size {
            // The header promised `size` bytes: fill with zeros so the archive stays well formed.
            self.buf.fill(0);
            while done < size {
                let n = (size - done).min(self.buf.len() as u64) as usize;
                crc.update(&self.buf[..n]);
                self.sink.write_all(&self.buf[..n]).map_err(out_err)?;
                done += n as u64;
            }
        } else {
            // Anything past `size` is not archived; say so if the file grew.
            match f.read(&mut self.buf[..1]) {
                Ok(n) if n > 0 => {
                    problem = Some(format!("grew while reading; first {size} bytes archived"))
                }
                _ => {}
            }
        }
        let problem_seen = problem.is_some();
        if let Some(p) = problem {
            self.skipped.push((lossy(&item.name), p));
        }
        pad(self.sink, size).map_err(out_err)?;
        // A file that changed while it was read is recorded with an identity no later set
        // matches, so its bytes are never reused.
        let mut ext = ext_of(&meta);
        if problem_seen {
            ext.ino = 0;
            ext.ctime = i64::MIN;
        }
        let crc32 = crc.finalize();
        let padding = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
        let tar = head
            .then(crc32, size)
            .then(zeros_crc(padding).finalize(), padding);
        Ok(Some((
            ManifestEntry {
                path: item.name.clone(),
                kind: EntryKind::File,
                size,
                mtime: header.mtime,
                mode: header.mode & 0o7777,
                crc32,
                link: None,
            },
            ext,
            tar,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(walked: impl Iterator<Item = Walked>) -> Vec<Vec<u8>> {
        walked
            .map(|w| match w {
                Walked::Item(i) => i.name,
                Walked::Skipped(p, _) => p.into_bytes(),
            })
            .collect()
    }

    #[test]
    fn the_first_walk_is_kept_for_the_archive_within_its_budget_and_walked_again_beyond() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("t");
        fs::create_dir(&root).expect("mkdir");
        for i in 0..10 {
            fs::write(root.join(format!("f{i}")), vec![1u8; i]).expect("write");
        }
        let source = Source::Dir(root.clone());
        let ctl = JobControl::new();
        let small = count_totals(&source, &ctl, KEEP_BYTES).expect("count");
        assert_eq!((small.files, small.bytes), (11, 45));
        let kept = small.kept.expect("a small tree is kept");
        assert_eq!(
            names(kept.into_iter()),
            names(walk(&source).expect("walk")),
            "the kept walk is the walk"
        );
        // a budget smaller than these 11 entries: counted in full, nothing kept
        let tight = 10 * std::mem::size_of::<Walked>();
        let large = count_totals(&source, &ctl, tight).expect("count");
        assert_eq!((large.files, large.bytes), (11, 45), "counted in full");
        assert!(large.kept.is_none(), "walked again by the archive");
    }

    #[test]
    fn manifest_spilled_to_disk_writes_the_same_trailer_and_leaves_no_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spill = dir.path().to_path_buf();
        let entries: Vec<ManifestEntry> = (0..20_000u32)
            .map(|i| ManifestEntry {
                path: format!("./{i:0>250}").into_bytes(),
                kind: EntryKind::File,
                size: u64::from(i),
                mtime: 1_700_000_000 + i64::from(i),
                mode: 0o644,
                crc32: i.wrapping_mul(2_654_435_761),
                link: None,
            })
            .collect();
        let mut w = ManifestWriter::new(spill.clone());
        let ext = EntryExt::default();
        for e in &entries {
            w.push(e, &ext).expect("push");
        }
        assert!(w.spill.is_some(), "5 MB of records must have spilled");
        assert!(w.mem.len() < MANIFEST_SPILL_AT);
        assert_eq!(
            fs::read_dir(&spill).expect("ls").count(),
            0,
            "the spill file has no name"
        );
        let mut out = Vec::new();
        w.write_to(&[], &mut out).expect("trailer");
        let (n, len, crc, version) =
            crate::archive::manifest::decode_trailer_header_v(&out[..512]).expect("header");
        assert_eq!(version, VERSION);
        let body = &out[512..512 + len as usize];
        let back = crate::archive::manifest::decode_body_v(body, n, crc, version).expect("body");
        assert_eq!(
            back.into_iter().map(|(e, _)| e).collect::<Vec<_>>(),
            entries
        );
    }
}
