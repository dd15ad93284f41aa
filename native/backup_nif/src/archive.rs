//! Archive, dump and extract jobs: argument decoding and result encoding around
//! `backup_core::archive` and `backup_core::dump`, run through `job::start`. (Verifying and
//! listing an archive are the CLI's; the product's extract applies the same reader.)

use crate::job;
use crate::term;
use backup_core::archive::{
    self, ArchiveOptions, ExtractOptions, ExtractSummary, Format, GzOptions, Source, Summary,
};
use backup_core::dump::{self, CommandSpec, DumpReport, DumpSummary, FeedSpec, FeedSummary};
use rustler::{Atom, Binary, Encoder, Env, NifResult, Term};
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::time::{Duration, Instant};

mod atoms {
    rustler::atoms! { format, threads, level, overwrite, gzip, undefined, timeout, infinity }
}

/// Options map of the façade: `format`, `threads`, `level`, `overwrite`, `timeout`
/// (milliseconds or `infinity`: the job stops itself with `{error, {timeout, _}}` then);
/// unknown keys ignored.
struct Options {
    archive: ArchiveOptions,
    overwrite: bool,
    timeout: Option<Duration>,
}

impl Options {
    /// Gives the job its deadline, counted from now.
    fn arm<T>(&self, spec: &job::Spec<T>) {
        if let Some(t) = self.timeout {
            spec.control.set_deadline(Instant::now() + t);
        }
    }
}

fn decode_options(term: Term<'_>) -> NifResult<Options> {
    let mut archive = ArchiveOptions::default();
    let mut overwrite = false;
    let mut timeout = None;
    if !term.is_map() {
        return Err(rustler::Error::BadArg);
    }
    if let Ok(f) = term.map_get(atoms::format()) {
        let f: Atom = f.decode()?;
        // zstd archives are written by zbackup only (backup_core's `cli` feature).
        archive.format = if f == atoms::gzip() {
            Format::Gzip
        } else {
            return Err(rustler::Error::BadArg);
        };
    }
    if let Ok(t) = term.map_get(atoms::threads()) {
        archive.threads = t.decode()?;
    }
    if let Ok(l) = term.map_get(atoms::level()) {
        archive.level = Some(l.decode()?);
    }
    if let Ok(o) = term.map_get(atoms::overwrite()) {
        overwrite = o.decode()?;
    }
    if let Ok(t) = term.map_get(atoms::timeout()) {
        let infinite = t.decode::<Atom>().is_ok_and(|a| a == atoms::infinity());
        if !infinite {
            timeout = Some(Duration::from_millis(t.decode::<u64>()?));
        }
    }
    Ok(Options {
        archive,
        overwrite,
        timeout,
    })
}

fn gz_options(o: &ArchiveOptions) -> GzOptions {
    GzOptions {
        threads: o.threads,
        level: o.level.map_or(6, |l| l.clamp(0, 9) as u32),
        chunk_size: o.chunk_size,
    }
}

#[rustler::nif]
fn archive_dir_start<'a>(
    env: Env<'a>,
    src: Term<'a>,
    out: Term<'a>,
    opts: Term<'a>,
    reference: Term<'a>,
    progress: Term<'a>,
) -> NifResult<Term<'a>> {
    let source = Source::Dir(term::decode_path(src)?);
    create_job(env, source, out, opts, reference, progress)
}

#[rustler::nif]
fn archive_list_start<'a>(
    env: Env<'a>,
    entries: Vec<(Binary<'a>, Binary<'a>)>,
    out: Term<'a>,
    opts: Term<'a>,
    reference: Term<'a>,
    progress: Term<'a>,
) -> NifResult<Term<'a>> {
    let list = entries
        .iter()
        .map(|(name, path)| {
            (
                name.as_slice().to_vec(),
                PathBuf::from(OsString::from_vec(path.as_slice().to_vec())),
            )
        })
        .collect();
    create_job(env, Source::List(list), out, opts, reference, progress)
}

/// The archive job of both sources.
fn create_job<'a>(
    env: Env<'a>,
    source: Source,
    out: Term<'a>,
    opts: Term<'a>,
    reference: Term<'a>,
    progress: Term<'a>,
) -> NifResult<Term<'a>> {
    let out = term::decode_path(out)?;
    let opts = decode_options(opts)?;
    let spec = job::spec(env, progress, Some(out.clone()), encode_summary)?;
    opts.arm(&spec);
    Ok(job::start(env, reference, spec, move |ctl| {
        archive::create(&source, &out, &opts.archive, ctl)
    }))
}

#[allow(clippy::too_many_arguments)]
#[rustler::nif]
fn gzip_command_start<'a>(
    env: Env<'a>,
    program: Term<'a>,
    arguments: Vec<Binary<'a>>,
    cmd_env: Vec<(Binary<'a>, Binary<'a>)>,
    out: Term<'a>,
    opts: Term<'a>,
    reference: Term<'a>,
    progress: Term<'a>,
) -> NifResult<Term<'a>> {
    let cmd = command(program, &arguments, &cmd_env)?;
    let out = term::decode_path(out)?;
    let opts = decode_options(opts)?;
    let gz = gz_options(&opts.archive);
    let spec = job::spec(env, progress, Some(out.clone()), encode_dump)?;
    opts.arm(&spec);
    Ok(job::start(env, reference, spec, move |ctl| {
        dump::gzip_command(&cmd, &out, gz, ctl)
    }))
}

/// Reads a whole `.sql.gz` and applies the restore's dump rule: `{ok, #{schema, size}}`.
#[rustler::nif]
fn dump_check_start<'a>(
    env: Env<'a>,
    file: Term<'a>,
    reference: Term<'a>,
    progress: Term<'a>,
) -> NifResult<Term<'a>> {
    let file = term::decode_path(file)?;
    let spec = job::spec(env, progress, None, encode_dump_report)?;
    Ok(job::start(env, reference, spec, move |ctl| {
        dump::check(&file, ctl)
    }))
}

/// Runs Program (psql) and writes Prologue, the inflated dump and (only when the dump passed the
/// rule on the way) Epilogue to its standard input: `{ok, #{schema, size, output, seconds}}`.
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
    opts: Term<'a>,
    reference: Term<'a>,
    progress: Term<'a>,
) -> NifResult<Term<'a>> {
    let feed = FeedSpec {
        command: command(program, &arguments, &cmd_env)?,
        dump: term::decode_path(file)?,
        prologue: prologue.as_slice().to_vec(),
        epilogue: epilogue.as_slice().to_vec(),
    };
    let opts = decode_options(opts)?;
    let spec = job::spec(env, progress, None, encode_feed)?;
    opts.arm(&spec);
    Ok(job::start(env, reference, spec, move |ctl| {
        dump::feed(&feed, ctl)
    }))
}

fn command(
    program: Term<'_>,
    arguments: &[Binary<'_>],
    cmd_env: &[(Binary<'_>, Binary<'_>)],
) -> NifResult<CommandSpec> {
    Ok(CommandSpec {
        program: term::decode_path(program)?,
        args: arguments.iter().map(|a| os(a.as_slice())).collect(),
        env: cmd_env
            .iter()
            .map(|(k, v)| (os(k.as_slice()), os(v.as_slice())))
            .collect(),
    })
}

#[rustler::nif]
fn extract_start<'a>(
    env: Env<'a>,
    file: Term<'a>,
    dest: Term<'a>,
    opts: Term<'a>,
    reference: Term<'a>,
    progress: Term<'a>,
) -> NifResult<Term<'a>> {
    let file = term::decode_path(file)?;
    let dest = term::decode_path(dest)?;
    let opts = decode_options(opts)?;
    let overwrite = opts.overwrite;
    let spec = job::spec(env, progress, Some(dest.clone()), encode_extract)?;
    opts.arm(&spec);
    Ok(job::start(env, reference, spec, move |ctl| {
        archive::extract(&file, &dest, &ExtractOptions { overwrite }, ctl)
    }))
}

fn os(bytes: &[u8]) -> OsString {
    std::ffi::OsStr::from_bytes(bytes).to_os_string()
}

fn bin<'a>(env: Env<'a>, s: &str) -> Term<'a> {
    term::binary(env, s.as_bytes())
}

fn encode_summary(env: Env<'_>, s: Summary) -> NifResult<Term<'_>> {
    term::map(
        env,
        &[
            ("files", s.files.encode(env)),
            ("bytes_in", s.bytes_in.encode(env)),
            ("bytes_out", s.bytes_out.encode(env)),
            ("sha256", bin(env, &s.sha256)),
            ("skipped", skipped(env, &s.skipped)),
            ("seconds", s.seconds.encode(env)),
        ],
    )
}

/// `[{Path, Why}]` with both as binaries.
fn skipped<'a>(env: Env<'a>, list: &[(String, String)]) -> Term<'a> {
    list.iter()
        .map(|(p, r)| (bin(env, p), bin(env, r)).encode(env))
        .collect::<Vec<_>>()
        .encode(env)
}

fn encode_dump(env: Env<'_>, s: DumpSummary) -> NifResult<Term<'_>> {
    term::map(
        env,
        &[
            ("files", 1u64.encode(env)),
            ("bytes_in", s.bytes_in.encode(env)),
            ("bytes_out", s.bytes_out.encode(env)),
            ("sha256", bin(env, &s.sha256)),
            ("skipped", Vec::<Term<'_>>::new().encode(env)),
            ("seconds", s.seconds.encode(env)),
        ],
    )
}

fn encode_dump_report(env: Env<'_>, r: DumpReport) -> NifResult<Term<'_>> {
    term::map(
        env,
        &[
            ("schema", term::binary(env, &r.schema)),
            ("size", r.sql_bytes.encode(env)),
        ],
    )
}

fn encode_feed(env: Env<'_>, s: FeedSummary) -> NifResult<Term<'_>> {
    term::map(
        env,
        &[
            ("schema", term::binary(env, &s.report.schema)),
            ("size", s.report.sql_bytes.encode(env)),
            ("output", bin(env, &s.output)),
            ("seconds", s.seconds.encode(env)),
        ],
    )
}

fn encode_extract(env: Env<'_>, s: ExtractSummary) -> NifResult<Term<'_>> {
    term::map(
        env,
        &[
            ("files", s.files.encode(env)),
            ("dirs", s.dirs.encode(env)),
            ("symlinks", s.symlinks.encode(env)),
            ("bytes", s.bytes.encode(env)),
            ("skipped", skipped(env, &s.skipped)),
            (
                "leftover",
                match &s.leftover {
                    Some(p) => term::binary(env, p.as_os_str().as_bytes()),
                    None => atoms::undefined().encode(env),
                },
            ),
        ],
    )
}
