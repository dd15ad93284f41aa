//! `create`: a directory tree or an explicit list of files into `.tar.gz` / `.tar.zst`.

use super::control::JobControl;
use super::hashing::OffloadWriter;
use super::manifest::{encode_record, trailer_header, trailer_padding, EntryKind, ManifestEntry};
use super::pgzip::{GzOptions, ParallelGzWriter, DEFAULT_CHUNK};
#[cfg(feature = "cli")]
use super::pzstd::ParallelZstdWriter;
use super::tarw::{pad, write_end, write_header, HeaderInfo};
use super::{Format, TmpFile};
use crate::error::{Error, Result};
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

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

/// What `create` did.
#[derive(Debug, Clone)]
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
}

struct Item {
    name: Vec<u8>,
    path: PathBuf,
    meta: Metadata,
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// One step of the walk: an entry to archive, or one left out and why.
enum Walked {
    Item(Item),
    Skipped(String, String),
}

/// What to archive, in archive order, with lstat metadata, one entry at a time: the walk keeps
/// only the directories on the current path in memory, never the whole tree.
fn walk(source: &Source) -> Result<Box<dyn Iterator<Item = Walked> + '_>> {
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

    fn push(&mut self, e: &ManifestEntry) -> io::Result<()> {
        let start = self.mem.len();
        encode_record(e, &mut self.mem);
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

    /// Writes the trailer: header block, records, padding.
    fn write_to(mut self, out: &mut impl Write) -> io::Result<()> {
        out.write_all(&trailer_header(self.entries, self.len, self.crc.finalize()))?;
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
    Gz(ParallelGzWriter<OffloadWriter<File>>),
    #[cfg(feature = "cli")]
    Zst(ParallelZstdWriter<OffloadWriter<File>>),
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

    fn new(file: File, opts: &ArchiveOptions) -> io::Result<Sink> {
        // sha256 and the write syscalls run on their own thread
        let out = OffloadWriter::new(file)?;
        let threads = if opts.threads == 0 {
            super::pgzip::default_threads()
        } else {
            opts.threads
        };
        match opts.format {
            Format::Gzip => {
                let level = opts.level.unwrap_or(6);
                if !(0..=9).contains(&level) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("gzip level {level} not in 0..9"),
                    ));
                }
                let gz = GzOptions {
                    threads,
                    level: level as u32,
                    chunk_size: opts.chunk_size,
                };
                Ok(Sink::Gz(ParallelGzWriter::new(out, gz)?))
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
                let mut w = ParallelZstdWriter::new(out, threads, level)?;
                // Announces the manifest trailer, so a copy cut at a frame boundary is known
                // to be incomplete (see read.rs).
                w.write_skippable(super::SKIPPABLE_MARKER_MAGIC, super::MANIFEST_MARKER)?;
                Ok(Sink::Zst(w))
            }
        }
    }

    fn finish(self) -> io::Result<(File, String, u64)> {
        let out = match self {
            Sink::Gz(w) => w.finish()?.0,
            #[cfg(feature = "cli")]
            Sink::Zst(w) => w.finish()?.0,
        };
        out.finish()
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
    let started = Instant::now();
    // A first walk for the progress totals: metadata only, nothing kept.
    let (mut files_total, mut bytes_total) = (0u64, 0u64);
    for w in walk(source)? {
        if let Walked::Item(item) = w {
            files_total += 1;
            if item.meta.is_file() {
                bytes_total += item.meta.len();
            }
        }
    }
    ctl.set_totals(files_total, bytes_total);
    ctl.check()?;

    let tmp_path = super::tmp_path(out);
    // O_EXCL|O_NOFOLLOW: a symlink planted at OUT.tmp is replaced, never written through.
    let file = crate::fsutil::create_tmp(&tmp_path)?;
    let tmp = TmpFile::new(tmp_path.clone());
    let io_err = |e: io::Error| Error::io(&tmp_path, e);
    let mut sink = Sink::new(file, opts).map_err(|e| {
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
    let mut manifest = ManifestWriter::new(spill_dir);
    let mut skipped = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes_in = 0u64;
    for w in walk(source)? {
        ctl.check()?;
        let item = match w {
            Walked::Item(item) => item,
            Walked::Skipped(path, why) => {
                skipped.push((path, why));
                continue;
            }
        };
        if let Some(entry) = archive_item(&tmp_path, &item, &mut sink, &mut buf, ctl, &mut skipped)?
        {
            bytes_in += entry.size;
            manifest.push(&entry).map_err(io_err)?;
        }
        ctl.add_files(1);
    }
    write_end(&mut sink).map_err(io_err)?;
    let files = manifest.entries;
    manifest.write_to(&mut sink).map_err(io_err)?;
    ctl.check()?;
    let (file, sha256, bytes_out) = sink.finish().map_err(io_err)?;
    if opts.fsync {
        file.sync_all().map_err(io_err)?;
    }
    drop(file);
    ctl.check()?;
    fs::rename(&tmp_path, out).map_err(|e| Error::io(out, e))?;
    tmp.disarm();
    Ok(Summary {
        files,
        bytes_in,
        bytes_out,
        sha256,
        skipped,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Writes one entry; `Ok(None)` when it was skipped (and recorded in `skipped`). Only errors of
/// the output (or cancel) are returned as errors.
fn archive_item(
    out_path: &Path,
    item: &Item,
    sink: &mut Sink,
    buf: &mut [u8],
    ctl: &JobControl,
    skipped: &mut Vec<(String, String)>,
) -> Result<Option<ManifestEntry>> {
    let out_err = |e: io::Error| Error::io(out_path, e);
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
    if ft.is_dir() {
        write_header(sink, &header).map_err(out_err)?;
    } else if ft.is_symlink() {
        link_target = match fs::read_link(&item.path) {
            Ok(t) => t,
            Err(e) => {
                skipped.push((lossy(&item.name), format!("vanished: {e}")));
                return Ok(None);
            }
        };
        header.kind = EntryKind::Symlink;
        header.link = link_target.as_os_str().as_bytes();
        write_header(sink, &header).map_err(out_err)?;
    } else if ft.is_file() {
        return archive_file(out_path, item, header, sink, buf, ctl, skipped);
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
        skipped.push((lossy(&item.name), format!("{what} not archived")));
        return Ok(None);
    }
    Ok(Some(ManifestEntry {
        path: item.name.clone(),
        kind: header.kind,
        size: 0,
        mtime: header.mtime,
        mode: header.mode & 0o7777,
        crc32: 0,
        link: (header.kind == EntryKind::Symlink).then(|| header.link.to_vec()),
    }))
}

fn archive_file(
    out_path: &Path,
    item: &Item,
    mut header: HeaderInfo<'_>,
    sink: &mut Sink,
    buf: &mut [u8],
    ctl: &JobControl,
    skipped: &mut Vec<(String, String)>,
) -> Result<Option<ManifestEntry>> {
    let out_err = |e: io::Error| Error::io(out_path, e);
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
            skipped.push((lossy(&item.name), format!("{why}: {e}")));
            return Ok(None);
        }
    };
    // fstat the open file: the size in the header is the one we will read.
    let meta = match f.metadata() {
        Ok(m) if m.is_file() => m,
        Ok(_) => {
            skipped.push((lossy(&item.name), "replaced while archiving".into()));
            return Ok(None);
        }
        Err(e) => {
            skipped.push((lossy(&item.name), format!("unreadable: {e}")));
            return Ok(None);
        }
    };
    header.kind = EntryKind::File;
    header.size = meta.len();
    header.mode = meta.mode();
    header.mtime = meta.mtime();
    write_header(sink, &header).map_err(out_err)?;
    let size = meta.len();
    let mut crc = crc32fast::Hasher::new();
    let mut done = 0u64;
    let mut problem = None;
    while done < size {
        ctl.check()?;
        // read straight into the compressor's chunk buffer: no copy on this thread
        let spare = sink.spare().map_err(out_err)?;
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
        sink.commit(n).map_err(out_err)?;
        done += n as u64;
        ctl.add_bytes(n as u64);
    }
    if done < size {
        // The header promised `size` bytes: fill with zeros so the archive stays well formed.
        buf.fill(0);
        while done < size {
            let n = (size - done).min(buf.len() as u64) as usize;
            crc.update(&buf[..n]);
            sink.write_all(&buf[..n]).map_err(out_err)?;
            done += n as u64;
        }
    } else {
        // Anything past `size` is not archived; say so if the file grew.
        match f.read(&mut buf[..1]) {
            Ok(n) if n > 0 => {
                problem = Some(format!("grew while reading; first {size} bytes archived"))
            }
            _ => {}
        }
    }
    if let Some(p) = problem {
        skipped.push((lossy(&item.name), p));
    }
    pad(sink, size).map_err(out_err)?;
    Ok(Some(ManifestEntry {
        path: item.name.clone(),
        kind: EntryKind::File,
        size,
        mtime: header.mtime,
        mode: header.mode & 0o7777,
        crc32: crc.finalize(),
        link: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::manifest::encode_trailer;

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
        for e in &entries {
            w.push(e).expect("push");
        }
        assert!(w.spill.is_some(), "5 MB of records must have spilled");
        assert!(w.mem.len() < MANIFEST_SPILL_AT);
        assert_eq!(
            fs::read_dir(&spill).expect("ls").count(),
            0,
            "the spill file has no name"
        );
        let mut out = Vec::new();
        w.write_to(&mut out).expect("trailer");
        assert_eq!(out, encode_trailer(&entries));
    }
}
