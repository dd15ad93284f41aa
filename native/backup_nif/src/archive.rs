//! Archive, dump, verify, list and extract jobs: argument decoding and result maps around
//! `backup_core::archive` and `backup_core::dump`, run through `job::start`.

use crate::job::{self, Start};
use crate::term::{decode_path, Bin, OrUndefined};
use backup_core::archive::{self, ArchiveOptions, ExtractOptions, Format, Source};
use backup_core::dump::{self, CommandSpec};
use rustler::{Atom, Binary, Env, NifMap, NifResult, Term};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod atoms {
    rustler::atoms! { format, threads, level, overwrite, gzip, zstd, timeout, infinity }
}

/// The options map of `backup_archive`: `format`, `threads`, `level`, `overwrite`, `timeout`
/// (milliseconds or `infinity`: the job stops itself with `{error, {timeout, _}}` then);
/// every key optional, unknown keys ignored (so not a derived `NifMap`).
struct Options {
    archive: ArchiveOptions,
    overwrite: bool,
    timeout: Option<Duration>,
}

impl<'a> rustler::Decoder<'a> for Options {
    fn decode(term: Term<'a>) -> NifResult<Self> {
        if !term.is_map() {
            return Err(rustler::Error::BadArg);
        }
        let get = |key: Atom| term.map_get(key).ok();
        let mut archive = ArchiveOptions::default();
        if let Some(f) = get(atoms::format()) {
            let f: Atom = f.decode()?;
            archive.format = match () {
                _ if f == atoms::gzip() => Format::Gzip,
                _ if f == atoms::zstd() => Format::Zstd,
                _ => return Err(rustler::Error::BadArg),
            };
        }
        if let Some(t) = get(atoms::threads()) {
            archive.threads = t.decode()?;
        }
        if let Some(l) = get(atoms::level()) {
            archive.level = Some(l.decode()?);
        }
        let overwrite = get(atoms::overwrite()).map_or(Ok(false), |o| o.decode())?;
        let timeout = match get(atoms::timeout()) {
            Some(t) if t.decode::<Atom>().is_ok_and(|a| a == atoms::infinity()) => None,
            Some(t) => Some(Duration::from_millis(t.decode()?)),
            None => None,
        };
        Ok(Options {
            archive,
            overwrite,
            timeout,
        })
    }
}

/// The start of a job writing `output` with `opts`'s deadline.
fn writing<'a>(
    reference: Term<'a>,
    progress: Term<'a>,
    output: &Path,
    opts: &Options,
) -> Start<'a> {
    Start {
        reference,
        progress,
        output: Some(output.to_path_buf()),
        timeout: opts.timeout,
    }
}

/// `#{files, bytes_in, bytes_out, sha256, skipped, seconds}` of a written archive or dump;
/// `skipped` is `[{Path, Why}]`.
#[derive(NifMap)]
#[rustler(encode)]
struct Written {
    files: u64,
    bytes_in: u64,
    bytes_out: u64,
    sha256: Bin<String>,
    skipped: Vec<(Bin<String>, Bin<String>)>,
    seconds: f64,
}

impl From<archive::Summary> for Written {
    fn from(s: archive::Summary) -> Self {
        Written {
            files: s.files,
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            sha256: Bin(s.sha256),
            skipped: pairs(s.skipped),
            seconds: s.seconds,
        }
    }
}

impl From<dump::DumpSummary> for Written {
    fn from(s: dump::DumpSummary) -> Self {
        Written {
            files: 1,
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            sha256: Bin(s.sha256),
            skipped: Vec::new(),
            seconds: s.seconds,
        }
    }
}

fn pairs(list: Vec<(String, String)>) -> Vec<(Bin<String>, Bin<String>)> {
    list.into_iter().map(|(p, r)| (Bin(p), Bin(r))).collect()
}

#[rustler::nif]
fn archive_dir_start<'a>(
    env: Env<'a>,
    src: Term<'a>,
    out: Term<'a>,
    opts: Options,
    reference: Term<'a>,
    progress: Term<'a>,
) -> NifResult<Term<'a>> {
    let source = Source::Dir(decode_path(src)?);
    create_job(env, source, out, opts, reference, progress)
}

#[rustler::nif]
fn archive_list_start<'a>(
    env: Env<'a>,
    entries: Vec<(Binary<'a>, Binary<'a>)>,
    out: Term<'a>,
    opts: Options,
    reference: Term<'a>,
    progress: Term<'a>,
) -> NifResult<Term<'a>> {
    let list = entries
        .iter()
        .map(|(name, path)| (name.to_vec(), PathBuf::from(os(path))))
        .collect();
    create_job(env, Source::List(list), out, opts, reference, progress)
}

fn create_job<'a>(
    env: Env<'a>,
    source: Source,
    out: Term<'a>,
    opts: Options,
    reference: Term<'a>,
    progress: Term<'a>,
) -> NifResult<Term<'a>> {
    let out = decode_path(out)?;
    job::start(env, writing(reference, progress, &out, &opts), move |ctl| {
        archive::create(&source, &out, &opts.archive, ctl).map(Written::from)
    })
}

#[rustler::nif]
fn gzip_file_start<'a>(
    env: Env<'a>,
    input: Term<'a>,
    out: Term<'a>,
    opts: Options,
    reference: Term<'a>,
    progress: Term<'a>,
) -> NifResult<Term<'a>> {
    let (input, out) = (decode_path(input)?, decode_path(out)?);
    job::start(env, writing(reference, progress, &out, &opts), move |ctl| {
        dump::gzip_file(&input, &out, opts.archive.gz_options()?, ctl).map(Written::from)
    })
}

#[allow(clippy::too_many_arguments)]
#[rustler::nif]
fn gzip_command_start<'a>(
    env: Env<'a>,
    program: Term<'a>,
    arguments: Vec<Binary<'a>>,
    cmd_env: Vec<(Binary<'a>, Binary<'a>)>,
    out: Term<'a>,
    opts: Options,
    reference: Term<'a>,
    progress: Term<'a>,
) -> NifResult<Term<'a>> {
    let cmd = CommandSpec {
        program: decode_path(program)?,
        args: arguments.iter().map(|a| os(a)).collect(),
        env: cmd_env.iter().map(|(k, v)| (os(k), os(v))).collect(),
    };
    let out = decode_path(out)?;
    job::start(env, writing(reference, progress, &out, &opts), move |ctl| {
        dump::gzip_command(&cmd, &out, opts.archive.gz_options()?, ctl).map(Written::from)
    })
}

/// `#{format, entries, files, bytes, compressed_bytes, sha256, manifest_checked}`.
#[derive(NifMap)]
#[rustler(encode)]
struct Verified {
    format: Bin<&'static str>,
    entries: u64,
    files: u64,
    bytes: u64,
    compressed_bytes: u64,
    sha256: Bin<String>,
    manifest_checked: bool,
}

#[rustler::nif]
fn verify_start<'a>(
    env: Env<'a>,
    file: Term<'a>,
    reference: Term<'a>,
    progress: Term<'a>,
) -> NifResult<Term<'a>> {
    let file = decode_path(file)?;
    let start = Start {
        reference,
        progress,
        output: None,
        timeout: None,
    };
    job::start(env, start, move |ctl| {
        let r = archive::verify(&file, ctl)?;
        Ok(Verified {
            format: Bin(r.format.as_str()),
            entries: r.entries,
            files: r.files,
            bytes: r.bytes,
            compressed_bytes: r.compressed_bytes,
            sha256: Bin(r.sha256),
            manifest_checked: r.manifest_checked,
        })
    })
}

/// One archive entry: `#{path, type, size, mtime, mode, link, crc32}`.
#[derive(NifMap)]
#[rustler(encode)]
struct Entry {
    path: Bin<Vec<u8>>,
    r#type: Bin<&'static str>,
    size: u64,
    mtime: i64,
    mode: u32,
    link: OrUndefined<Bin<Vec<u8>>>,
    crc32: u32,
}

#[rustler::nif]
fn list_start<'a>(
    env: Env<'a>,
    file: Term<'a>,
    reference: Term<'a>,
    progress: Term<'a>,
) -> NifResult<Term<'a>> {
    let file = decode_path(file)?;
    let start = Start {
        reference,
        progress,
        output: None,
        timeout: None,
    };
    job::start(env, start, move |ctl| {
        let entries = archive::list(&file, ctl)?.into_iter().map(|e| Entry {
            path: Bin(e.path),
            r#type: Bin(e.kind.as_str()),
            size: e.size,
            mtime: e.mtime,
            mode: e.mode,
            link: OrUndefined(e.link.map(Bin)),
            crc32: e.crc32,
        });
        Ok(entries.collect::<Vec<_>>())
    })
}

/// `#{files, dirs, symlinks, bytes, skipped, leftover}`: `leftover` is a staging dir that could
/// not be removed, else `undefined`.
#[derive(NifMap)]
#[rustler(encode)]
struct Extracted {
    files: u64,
    dirs: u64,
    symlinks: u64,
    bytes: u64,
    skipped: Vec<(Bin<String>, Bin<String>)>,
    leftover: OrUndefined<Bin<Vec<u8>>>,
}

#[rustler::nif]
fn extract_start<'a>(
    env: Env<'a>,
    file: Term<'a>,
    dest: Term<'a>,
    opts: Options,
    reference: Term<'a>,
    progress: Term<'a>,
) -> NifResult<Term<'a>> {
    let (file, dest) = (decode_path(file)?, decode_path(dest)?);
    let start = writing(reference, progress, &dest, &opts);
    let extract = ExtractOptions {
        overwrite: opts.overwrite,
    };
    job::start(env, start, move |ctl| {
        let s = archive::extract(&file, &dest, &extract, ctl)?;
        Ok(Extracted {
            files: s.files,
            dirs: s.dirs,
            symlinks: s.symlinks,
            bytes: s.bytes,
            skipped: pairs(s.skipped),
            leftover: OrUndefined(s.leftover.map(|p| Bin(p.into_os_string().into_vec()))),
        })
    })
}

fn os(bytes: &[u8]) -> OsString {
    OsStr::from_bytes(bytes).to_os_string()
}
