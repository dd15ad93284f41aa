//! Archive, dump and extract jobs around `backup_core::archive` and `backup_core::dump`; their
//! results are the core's own (`Summary`, `DumpReport`, `FeedSummary`, `ExtractSummary`).

use crate::job::job_nif;
use crate::term::FilePath;
use backup_core::archive::{self, ArchiveOptions, ExtractOptions, Format, Source};
use backup_core::dump::{self, CommandSpec, FeedSpec};
use backup_core::term::{Bytes, OrUndefined};
use rustler::{Atom, NifResult, Term};
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::time::Duration;

mod atoms {
    rustler::atoms! { format, threads, level, overwrite, gzip, timeout, infinity, reuse }
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
        // zstd archives are written by zbackup only (backup_core's `cli` feature).
        if let Some(f) = get(atoms::format()) {
            match f.decode::<Atom>()? == atoms::gzip() {
                true => archive.format = Format::Gzip,
                false => return Err(rustler::Error::BadArg),
            }
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
            Some(r) => r.decode::<OrUndefined<FilePath>>()?.0.map(|p| p.0),
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

fn create(
    source: Source,
    out: PathBuf,
    opts: Options,
    ctl: &archive::JobControl,
) -> backup_core::Result<archive::Summary> {
    archive::create_reusing(&source, &out, &opts.archive, opts.reuse.as_deref(), ctl)
}

job_nif! {
    /// `archive_dir_start(Src, Out, Opts, Ref, ProgressPid)`: a `.tar.gz` of the tree at Src.
    fn archive_dir_start(src: FilePath, out: FilePath, opts: Options)
        .writing(&out.0).within(opts.timeout) => |ctl| create(Source::Dir(src.0), out.0, opts, ctl)
}

job_nif! {
    /// `archive_list_start([{NameInArchive, Path}], Out, Opts, Ref, ProgressPid)`.
    fn archive_list_start(entries: Vec<(Bytes, Bytes)>, out: FilePath, opts: Options)
        .writing(&out.0).within(opts.timeout) => |ctl| {
        let list = entries.into_iter().map(|(name, path)| (name.0, path_of(path))).collect();
        create(Source::List(list), out.0, opts, ctl)
    }
}

job_nif! {
    /// `gzip_command_start(Program, Args, Env, Out, Opts, Ref, ProgressPid)`: Program's
    /// standard output (pg_dump's) gzipped into Out; the result is a one-file `Summary`.
    fn gzip_command_start(
        program: FilePath,
        args: Vec<Bytes>,
        vars: Vec<(Bytes, Bytes)>,
        out: FilePath,
        opts: Options,
    )
    .writing(&out.0)
    .within(opts.timeout) => |ctl| {
        let cmd = command(program, args, vars);
        dump::gzip_command(&cmd, &out.0, opts.archive.gz_options()?, ctl)
    }
}

job_nif! {
    /// `dump_check_start(File, Ref, ProgressPid)`: reads a whole `.sql.gz` and applies the
    /// restore's dump rule; the result is a `DumpReport`.
    fn dump_check_start(file: FilePath) => |ctl| dump::check(&file.0, ctl)
}

job_nif! {
    /// `dump_feed_start(Program, Args, Env, File, Prologue, Epilogue, Opts, Ref, ProgressPid)`:
    /// runs Program (psql) and writes Prologue, the inflated dump and (only when the dump
    /// passed the rule on the way) Epilogue to its standard input; the result is a
    /// `FeedSummary`.
    fn dump_feed_start(
        program: FilePath,
        args: Vec<Bytes>,
        vars: Vec<(Bytes, Bytes)>,
        file: FilePath,
        prologue: Bytes,
        epilogue: Bytes,
        opts: Options,
    )
    .within(opts.timeout) => |ctl| {
        let feed = FeedSpec {
            command: command(program, args, vars),
            dump: file.0,
            prologue: prologue.0,
            epilogue: epilogue.0,
        };
        dump::feed(&feed, ctl)
    }
}

job_nif! {
    /// `extract_start(File, Dest, Opts, Ref, ProgressPid)`: the result is an `ExtractSummary`.
    fn extract_start(file: FilePath, dest: FilePath, opts: Options)
        .writing(&dest.0).within(opts.timeout) => |ctl| {
        let extract = ExtractOptions {
            overwrite: opts.overwrite,
        };
        archive::extract(&file.0, &dest.0, &extract, ctl)
    }
}

fn command(program: FilePath, args: Vec<Bytes>, vars: Vec<(Bytes, Bytes)>) -> CommandSpec {
    CommandSpec {
        program: program.0,
        args: args.into_iter().map(os).collect(),
        env: vars.into_iter().map(|(k, v)| (os(k), os(v))).collect(),
    }
}

fn os(b: Bytes) -> OsString {
    OsString::from_vec(b.0)
}

fn path_of(b: Bytes) -> PathBuf {
    os(b).into()
}
