//! Reading archives: format detection, `verify` and `list`, and the single streaming pass
//! (`scan`) that `extract` also runs on. Works on any `.tar.gz`/`.tar.zst` (GNU tar's, Python's,
//! ours); for ours it also checks every file's crc32 against the manifest trailer.

use super::control::JobControl;
use super::hashing::to_hex;
use super::manifest::{decode_body, decode_trailer_header, is_trailer_header, EntryKind};
use super::Format;
use crate::error::{Error, Result};
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

/// One entry as read from an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    /// Name in the archive, raw bytes (long GNU / pax names resolved).
    pub path: Vec<u8>,
    pub kind: EntryKind,
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
    /// True when the archive carried our manifest and every crc32 in it matched.
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

/// Reads the archive file, hashing it and publishing compressed-byte progress.
struct SourceReader<'a> {
    file: File,
    sha: Sha256,
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
        self.sha.update(&buf[..n]);
        self.count += n as u64;
        self.ctl.add_bytes(n as u64);
        Ok(n)
    }
}

/// Maps a read error to a typed one: disk errors keep their I/O reason, anything the decoder or
/// the tar parser raised means the archive is bad.
fn map_err(path: &Path, ctl: &JobControl, what: &str, e: io::Error) -> Error {
    if ctl.is_cancelled() {
        return Error::Cancelled;
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

/// The format by magic number: gzip `1f 8b`, zstd `28 b5 2f fd`.
pub fn detect_format(path: &Path) -> Result<Format> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match f.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    if got >= 2 && magic[..2] == [0x1f, 0x8b] {
        Ok(Format::Gzip)
    } else if got == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        Ok(Format::Zstd)
    } else {
        Err(Error::BadArchive("neither gzip nor zstd".into()))
    }
}

/// Checks the whole archive: compressed stream integrity, tar structure, and crc32s against our
/// manifest when present. Nothing is written.
pub fn verify(path: &Path, ctl: &JobControl) -> Result<VerifyReport> {
    let (_, report) = scan(path, ctl, &mut |_, _| Ok(()))?;
    Ok(report)
}

/// The entries of an archive (the archive is verified on the way).
pub fn list(path: &Path) -> Result<Vec<EntryInfo>> {
    let ctl = JobControl::new();
    let (entries, _) = scan(path, &ctl, &mut |_, _| Ok(()))?;
    Ok(entries)
}

pub(crate) type Visitor<'v> = dyn FnMut(&EntryInfo, &mut dyn Read) -> Result<()> + 'v;

/// Reads the archive once, calling `visit` with each entry and a reader of its data (the
/// visitor may read all, some or none of it). Returns every entry and the report; any damage is
/// `Error::BadArchive`, found at the latest when the stream ends (so callers that wrote
/// something must discard it on error).
pub(crate) fn scan(
    path: &Path,
    ctl: &JobControl,
    visit: &mut Visitor<'_>,
) -> Result<(Vec<EntryInfo>, VerifyReport)> {
    let format = detect_format(path)?;
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let total = file.metadata().map_err(|e| Error::io(path, e))?.len();
    ctl.set_totals(0, total);
    let mut src = SourceReader {
        file,
        sha: Sha256::new(),
        count: 0,
        ctl,
    };
    let (entries, manifest) = {
        let buffered = BufReader::with_capacity(1 << 20, &mut src);
        let decoder: Box<dyn Read + '_> = match format {
            Format::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
            Format::Zstd => Box::new(
                zstd::stream::read::Decoder::with_buffer(buffered)
                    .map_err(|e| map_err(path, ctl, "zstd", e))?,
            ),
        };
        read_tar(path, ctl, format, decoder, visit)?
    };
    if let Some(m) = &manifest {
        if m.len() != entries.len() {
            return Err(Error::BadArchive(format!(
                "manifest lists {} entries, archive has {}",
                m.len(),
                entries.len()
            )));
        }
        for (e, m) in entries.iter().zip(m) {
            if e.path != m.path || e.kind != m.kind || e.size != m.size {
                return Err(Error::BadArchive(format!(
                    "entry {} does not match the manifest",
                    e.path_lossy()
                )));
            }
            if e.crc32 != m.crc32 {
                return Err(Error::BadArchive(format!(
                    "crc32 mismatch for {}",
                    e.path_lossy()
                )));
            }
        }
    }
    let report = VerifyReport {
        format,
        entries: entries.len() as u64,
        files: entries.iter().filter(|e| e.kind == EntryKind::File).count() as u64,
        bytes: entries
            .iter()
            .filter(|e| e.kind == EntryKind::File)
            .map(|e| e.size)
            .sum(),
        compressed_bytes: src.count,
        sha256: to_hex(&src.sha.finalize()),
        manifest_checked: manifest.is_some(),
    };
    Ok((entries, report))
}

/// Reads a reader's data computing crc32 and length.
struct CrcReader<'a, R: Read> {
    inner: &'a mut R,
    crc: crc32fast::Hasher,
    n: u64,
}

impl<R: Read> Read for CrcReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
}

type Manifest = Option<Vec<super::manifest::ManifestEntry>>;

fn read_tar(
    path: &Path,
    ctl: &JobControl,
    format: Format,
    decoder: Box<dyn Read + '_>,
    visit: &mut Visitor<'_>,
) -> Result<(Vec<EntryInfo>, Manifest)> {
    let what = match format {
        Format::Gzip => "gzip/tar",
        Format::Zstd => "zstd/tar",
    };
    let err = |e: io::Error| map_err(path, ctl, what, e);
    let mut archive = tar::Archive::new(decoder);
    let mut entries = Vec::new();
    {
        let iter = archive.entries().map_err(err)?;
        for entry in iter {
            ctl.check()?;
            let mut entry = entry.map_err(err)?;
            let header = entry.header();
            let kind = match header.entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
                tar::EntryType::Directory => EntryKind::Dir,
                tar::EntryType::Symlink => EntryKind::Symlink,
                tar::EntryType::Link => EntryKind::Hardlink,
                _ => EntryKind::Other,
            };
            let mode = header.mode().map_err(err)?;
            let mtime = header.mtime().map_err(err)? as i64;
            let size = if kind == EntryKind::File {
                entry.size()
            } else {
                0
            };
            let link = match kind {
                EntryKind::Symlink | EntryKind::Hardlink => Some(
                    entry
                        .link_name_bytes()
                        .map(|l| l.into_owned())
                        .unwrap_or_default(),
                ),
                _ => None,
            };
            let mut info = EntryInfo {
                path: entry.path_bytes().into_owned(),
                kind,
                size,
                mtime,
                mode,
                link,
                crc32: 0,
            };
            let mut r = CrcReader {
                inner: &mut entry,
                crc: crc32fast::Hasher::new(),
                n: 0,
            };
            visit(&info, &mut r)?;
            io::copy(&mut r, &mut io::sink()).map_err(err)?;
            if kind == EntryKind::File && r.n != size {
                return Err(Error::BadArchive(format!(
                    "{}: truncated ({} of {} bytes)",
                    info.path_lossy(),
                    r.n,
                    size
                )));
            }
            info.crc32 = r.crc.finalize();
            ctl.add_files(1);
            entries.push(info);
        }
    }
    // Past the end-of-archive marker: our manifest trailer, if any; then drain the stream so
    // the compressed format's own checksum is verified.
    let mut rest = archive.into_inner();
    let mut manifest = None;
    let mut block = [0u8; 512];
    loop {
        if !read_block(&mut rest, &mut block).map_err(err)? {
            break;
        }
        if manifest.is_none() && is_trailer_header(&block) {
            let (n, len, crc) = decode_trailer_header(&block)?;
            let mut body = Vec::new();
            (&mut rest).take(len).read_to_end(&mut body).map_err(err)?;
            if body.len() as u64 != len {
                return Err(Error::BadArchive("manifest trailer: truncated".into()));
            }
            manifest = Some(decode_body(&body, n, crc)?);
        }
    }
    Ok((entries, manifest))
}

/// Reads up to one block; false at end of stream (a partial last block is zero-filled).
fn read_block<R: Read>(r: &mut R, block: &mut [u8; 512]) -> io::Result<bool> {
    let mut got = 0;
    while got < block.len() {
        match r.read(&mut block[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    block[got..].fill(0);
    Ok(got > 0)
}
