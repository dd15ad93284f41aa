//! Archive, dump and extract jobs (`backup_nif.erl` specs them) around `backup_core::archive`
//! and `backup_core::dump`; their results are the core's own.

use crate::job::job_nif;
use crate::FilePath;
use backup_core::archive::{self, ArchiveOptions, ExtractOptions, Source};
use backup_core::dump::{self, CommandSpec, FeedSpec};
use backup_core::term::{Bytes, OrUndefined};
use rustler::{Atom, Decoder, NifResult, Term};
use std::ffi::OsString;
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
    extract: ExtractOptions,
    timeout: Option<Duration>,
    reuse: Option<PathBuf>,
}

impl<'a> Decoder<'a> for Options {
    fn decode(term: Term<'a>) -> NifResult<Self> {
        if !term.is_map() {
            return Err(rustler::Error::BadArg);
        }
        // zstd archives are written by zbackup only (backup_core's `cli` feature).
        if get::<Atom>(term, atoms::format())?.is_some_and(|f| f != atoms::gzip()) {
            return Err(rustler::Error::BadArg);
        }
        let defaults = ArchiveOptions::default();
        let archive = ArchiveOptions {
            threads: get(term, atoms::threads())?.unwrap_or(defaults.threads),
            level: get(term, atoms::level())?,
            ..defaults
        };
        let timeout = match get::<Term>(term, atoms::timeout())? {
            Some(t) if t.decode::<Atom>().is_ok_and(|a| a == atoms::infinity()) => None,
            t => t
                .map(|t| t.decode().map(Duration::from_millis))
                .transpose()?,
        };
        let overwrite = get(term, atoms::overwrite())?.unwrap_or(false);
        let reuse = get::<OrUndefined<FilePath>>(term, atoms::reuse())?;
        Ok(Options {
            archive,
            extract: ExtractOptions { overwrite },
            timeout,
            reuse: reuse.and_then(|r| r.0).map(|p| p.0),
        })
    }
}

/// The value under `key` as a `T`, `None` when the map has no `key`.
fn get<'a, T: Decoder<'a>>(map: Term<'a>, key: Atom) -> NifResult<Option<T>> {
    map.map_get(key).ok().map(|v| v.decode()).transpose()
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
    /// A `.tar.gz` of the tree at `src`: a `Summary`.
    fn archive_dir_start(src: FilePath, out: FilePath, opts: Options)
    writing: Some(out.0.clone()), within: opts.timeout => |ctl| {
        create(Source::Dir(src.0), out.0, opts, ctl)
    }
}

job_nif! {
    /// A `.tar.gz` of the files `[{NameInArchive, Path}]`: a `Summary`.
    fn archive_list_start(entries: Vec<(Bytes, Bytes)>, out: FilePath, opts: Options)
    writing: Some(out.0.clone()), within: opts.timeout => |ctl| {
        let list = entries.into_iter().map(|(name, path)| (name.0, path.into())).collect();
        create(Source::List(list), out.0, opts, ctl)
    }
}

job_nif! {
    /// `program`'s standard output (pg_dump's) gzipped into `out`: a one-file `Summary`.
    fn gzip_command_start(
        program: FilePath,
        args: Vec<Bytes>,
        vars: Vec<(Bytes, Bytes)>,
        out: FilePath,
        opts: Options,
    )
    writing: Some(out.0.clone()), within: opts.timeout => |ctl| {
        let cmd = command(program, args, vars);
        dump::gzip_command(&cmd, &out.0, opts.archive.gz_options()?, ctl)
    }
}

job_nif! {
    /// The restore's dump rule applied to the whole `.sql.gz`: a `DumpReport`.
    fn dump_check_start(file: FilePath)
    writing: None, within: None => |ctl| dump::check(&file.0, ctl)
}

job_nif! {
    /// `prologue`, the inflated dump and (only when it passed the rule on the way) `epilogue`
    /// written to `program`'s (psql's) standard input: a `FeedSummary`.
    fn dump_feed_start(
        program: FilePath,
        args: Vec<Bytes>,
        vars: Vec<(Bytes, Bytes)>,
        file: FilePath,
        prologue: Bytes,
        epilogue: Bytes,
        opts: Options,
    )
    writing: None, within: opts.timeout => |ctl| {
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
    /// The archive `file` extracted into `dest`: an `ExtractSummary`.
    fn extract_start(file: FilePath, dest: FilePath, opts: Options)
    writing: Some(dest.0.clone()), within: opts.timeout => |ctl| {
        archive::extract(&file.0, &dest.0, &opts.extract, ctl)
    }
}

fn command(program: FilePath, args: Vec<Bytes>, vars: Vec<(Bytes, Bytes)>) -> CommandSpec {
    CommandSpec {
        program: program.0,
        args: args.into_iter().map(OsString::from).collect(),
        env: vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect(),
    }
}
