//! Archive, dump and extract jobs: argument decoding and result maps around
//! `backup_core::archive` and `backup_core::dump`, run through `job::start`. (Verifying and
//! listing an archive are the CLI's; the product's extract applies the same reader.)

use crate::job::{self, Start};
use crate::term::{decode_path, Bin, OrUndefined};
use backup_core::archive::{self, ArchiveOptions, ExtractOptions, Format, Source};
use backup_core::dump::{self, CommandSpec, FeedSpec};
use rustler::{Atom, Binary, Env, NifMap, NifResult, Term};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod atoms {
    rustler::atoms! {
        format, threads, level, overwrite, gzip, timeout, infinity, reuse, undefined,
        clone, copy_file_range, clone_and_copy_file_range, none
    }
}

/// The options map of `backup_archive`: `format`, `threads`, `level`, `overwrite`, `timeout`
/// (milliseconds or `infinity`: the job stops itself with `{error, {timeout, _}}` then),
/// `reuse` (a previous archive whose unchanged files' compressed bytes are copied, or
/// `undefined`); every key optional, unknown keys ignored (so not a derived `NifMap`).
struct Options {
    archive: ArchiveOptions,
    overwrite: bool,
    timeout: Option<Duration>,
    reuse: Option<PathBuf>,
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
            // zstd archives are written by zbackup only (backup_core's `cli` feature).
            archive.format = match f == atoms::gzip() {
                true => Format::Gzip,
                false => return Err(rustler::Error::BadArg),
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
        let reuse = match get(atoms::reuse()) {
            Some(r) if r.decode::<Atom>().is_ok_and(|a| a == atoms::undefined()) => None,
            Some(r) => Some(decode_path(r)?),
            None => None,
        };
        Ok(Options {
            archive,
            overwrite,
            timeout,
            reuse,
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
    Start::new(reference, progress)
        .writing(output)
        .within(opts.timeout)
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
    /// `undefined` without a previous archive.
    reuse: OrUndefined<Reused>,
}

/// What a previous archive contributed: `method` says how the copied bytes got in (`clone`
/// by FICLONERANGE, `copy_file_range`, both, or `none`); `unusable` why it was not used.
#[derive(NifMap)]
#[rustler(encode)]
struct Reused {
    used: bool,
    unusable: OrUndefined<Bin<String>>,
    reused_entries: u64,
    reused_bytes: u64,
    reused_units: u64,
    rejected_units: u64,
    rejected: Vec<(Bin<String>, Bin<String>)>,
    method: Atom,
    cloned_bytes: u64,
    copied_bytes: u64,
}

impl From<archive::ReuseSummary> for Reused {
    fn from(r: archive::ReuseSummary) -> Self {
        let method = match (r.cloned_bytes > 0, r.copied_bytes > 0) {
            (true, false) => atoms::clone(),
            (true, true) => atoms::clone_and_copy_file_range(),
            (false, true) => atoms::copy_file_range(),
            (false, false) => atoms::none(),
        };
        Reused {
            used: r.unusable.is_none(),
            unusable: OrUndefined(r.unusable.map(Bin)),
            reused_entries: r.reused_entries,
            reused_bytes: r.reused_bytes,
            reused_units: r.reused_units,
            rejected_units: r.rejected_units,
            rejected: pairs(r.rejected),
            method,
            cloned_bytes: r.cloned_bytes,
            copied_bytes: r.copied_bytes,
        }
    }
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
            reuse: OrUndefined(s.reuse.map(Reused::from)),
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
            reuse: OrUndefined(None),
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
        archive::create_reusing(&source, &out, &opts.archive, opts.reuse.as_deref(), ctl)
            .map(Written::from)
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
    let cmd = command(program, &arguments, &cmd_env)?;
    let out = decode_path(out)?;
    job::start(env, writing(reference, progress, &out, &opts), move |ctl| {
        dump::gzip_command(&cmd, &out, opts.archive.gz_options()?, ctl).map(Written::from)
    })
}

fn command(
    program: Term<'_>,
    arguments: &[Binary<'_>],
    cmd_env: &[(Binary<'_>, Binary<'_>)],
) -> NifResult<CommandSpec> {
    Ok(CommandSpec {
        program: decode_path(program)?,
        args: arguments.iter().map(|a| os(a)).collect(),
        env: cmd_env.iter().map(|(k, v)| (os(k), os(v))).collect(),
    })
}

/// A dump that passed the rule: `#{schema, size}` (size: bytes of SQL), and for a feed also
/// `output` (the end of psql's messages) and `seconds`.
#[derive(NifMap)]
#[rustler(encode)]
struct DumpChecked {
    schema: Bin<Vec<u8>>,
    size: u64,
}

#[derive(NifMap)]
#[rustler(encode)]
struct DumpFed {
    schema: Bin<Vec<u8>>,
    size: u64,
    output: Bin<String>,
    seconds: f64,
}

/// `dump_check_start(File, Ref, ProgressPid)`: reads a whole `.sql.gz` and applies the
/// restore's dump rule; the job's result is a `DumpChecked` map.
#[rustler::nif]
fn dump_check_start<'a>(
    env: Env<'a>,
    file: Term<'a>,
    reference: Term<'a>,
    progress: Term<'a>,
) -> NifResult<Term<'a>> {
    let file = decode_path(file)?;
    let start = Start::new(reference, progress);
    job::start(env, start, move |ctl| {
        let r = dump::check(&file, ctl)?;
        Ok(DumpChecked {
            schema: Bin(r.schema),
            size: r.sql_bytes,
        })
    })
}

/// `dump_feed_start(Program, Args, Env, File, Prologue, Epilogue, Opts, Ref, ProgressPid)`:
/// runs Program (psql) and writes Prologue, the inflated dump and (only when the dump passed
/// the rule on the way) Epilogue to its standard input; the job's result is a `DumpFed` map.
#[allow(clippy::too_many_arguments)]
#[rustler::nif]
fn dump_feed_start<'a>(
    env: Env<'a>,
    program: Term<'a>,
    arguments: Vec<Binary<'a>>,
    cmd_env: Vec<(Binary<'a>, Binary<'a>)>,
    file: Term<'a>,
    prologue: Binary<'a>,
    epilogue: Binary<'a>,
    opts: Options,
    reference: Term<'a>,
    progress: Term<'a>,
) -> NifResult<Term<'a>> {
    let feed = FeedSpec {
        command: command(program, &arguments, &cmd_env)?,
        dump: decode_path(file)?,
        prologue: prologue.to_vec(),
        epilogue: epilogue.to_vec(),
    };
    let start = Start::new(reference, progress).within(opts.timeout);
    job::start(env, start, move |ctl| {
        let s = dump::feed(&feed, ctl)?;
        Ok(DumpFed {
            schema: Bin(s.report.schema),
            size: s.report.sql_bytes,
            output: Bin(s.output),
            seconds: s.seconds,
        })
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
