//! Archive, dump, verify, list and extract jobs: argument decoding and result encoding around
//! `backup_core::archive` and `backup_core::dump`, run through `job::start`.

use crate::job;
use crate::term;
use backup_core::archive::{
    self, ArchiveOptions, EntryInfo, ExtractOptions, ExtractSummary, Format, GzOptions,
    ReuseSummary, Source, Summary, VerifyReport,
};
use backup_core::dump::{self, CommandSpec, DumpSummary};
use rustler::{Atom, Binary, Encoder, Env, NifResult, Term};
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::time::{Duration, Instant};

mod atoms {
    rustler::atoms! {
        format, threads, level, overwrite, gzip, zstd, undefined, timeout, infinity, reuse,
        clone, copy_file_range, clone_and_copy_file_range, none
    }
}

/// Options map of the façade: `format`, `threads`, `level`, `overwrite`, `timeout`
/// (milliseconds or `infinity`: the job stops itself with `{error, {timeout, _}}` then),
/// `reuse` (path of a previous archive whose unchanged files' bytes are copied); unknown keys
/// ignored.
struct Options {
    archive: ArchiveOptions,
    overwrite: bool,
    timeout: Option<Duration>,
    reuse: Option<PathBuf>,
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
        archive.format = if f == atoms::gzip() {
            Format::Gzip
        } else if f == atoms::zstd() {
            Format::Zstd
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
    let reuse = match term.map_get(atoms::reuse()) {
        Ok(r) if r.decode::<Atom>().is_ok_and(|a| a == atoms::undefined()) => None,
        Ok(r) => Some(term::decode_path(r)?),
        Err(_) => None,
    };
    Ok(Options {
        archive,
        overwrite,
        timeout,
        reuse,
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
        archive::create_reusing(&source, &out, &opts.archive, opts.reuse.as_deref(), ctl)
    }))
}

#[rustler::nif]
fn gzip_file_start<'a>(
    env: Env<'a>,
    input: Term<'a>,
    out: Term<'a>,
    opts: Term<'a>,
    reference: Term<'a>,
    progress: Term<'a>,
) -> NifResult<Term<'a>> {
    let input = term::decode_path(input)?;
    let out = term::decode_path(out)?;
    let opts = decode_options(opts)?;
    let gz = gz_options(&opts.archive);
    let spec = job::spec(env, progress, Some(out.clone()), encode_dump)?;
    opts.arm(&spec);
    Ok(job::start(env, reference, spec, move |ctl| {
        dump::gzip_file(&input, &out, gz, ctl)
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
    let cmd = CommandSpec {
        program: term::decode_path(program)?,
        args: arguments.iter().map(|a| os(a.as_slice())).collect(),
        env: cmd_env
            .iter()
            .map(|(k, v)| (os(k.as_slice()), os(v.as_slice())))
            .collect(),
    };
    let out = term::decode_path(out)?;
    let opts = decode_options(opts)?;
    let gz = gz_options(&opts.archive);
    let spec = job::spec(env, progress, Some(out.clone()), encode_dump)?;
    opts.arm(&spec);
    Ok(job::start(env, reference, spec, move |ctl| {
        dump::gzip_command(&cmd, &out, gz, ctl)
    }))
}

#[rustler::nif]
fn verify_start<'a>(
    env: Env<'a>,
    file: Term<'a>,
    reference: Term<'a>,
    progress: Term<'a>,
) -> NifResult<Term<'a>> {
    let file = term::decode_path(file)?;
    let spec = job::spec(env, progress, None, encode_verify)?;
    Ok(job::start(env, reference, spec, move |ctl| {
        archive::verify(&file, ctl)
    }))
}

#[rustler::nif]
fn list_start<'a>(
    env: Env<'a>,
    file: Term<'a>,
    reference: Term<'a>,
    progress: Term<'a>,
) -> NifResult<Term<'a>> {
    let file = term::decode_path(file)?;
    let spec = job::spec(env, progress, None, encode_list)?;
    Ok(job::start(env, reference, spec, move |ctl| {
        archive::list(&file, ctl)
    }))
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
            ("reuse", encode_reuse(env, s.reuse.as_ref())?),
        ],
    )
}

/// `undefined` without a previous archive; else what it contributed. `method` says how the
/// copied bytes got in: `clone` (FICLONERANGE), `copy_file_range`, both, or `none`.
fn encode_reuse<'a>(env: Env<'a>, r: Option<&ReuseSummary>) -> NifResult<Term<'a>> {
    let Some(r) = r else {
        return Ok(atoms::undefined().encode(env));
    };
    let method = match (r.cloned_bytes > 0, r.copied_bytes > 0) {
        (true, false) => atoms::clone(),
        (true, true) => atoms::clone_and_copy_file_range(),
        (false, true) => atoms::copy_file_range(),
        (false, false) => atoms::none(),
    };
    let unusable = match &r.unusable {
        Some(why) => bin(env, why),
        None => atoms::undefined().encode(env),
    };
    term::map(
        env,
        &[
            ("used", r.unusable.is_none().encode(env)),
            ("unusable", unusable),
            ("reused_entries", r.reused_entries.encode(env)),
            ("reused_bytes", r.reused_bytes.encode(env)),
            ("reused_units", r.reused_units.encode(env)),
            ("rejected_units", r.rejected_units.encode(env)),
            ("rejected", skipped(env, &r.rejected)),
            ("method", method.encode(env)),
            ("cloned_bytes", r.cloned_bytes.encode(env)),
            ("copied_bytes", r.copied_bytes.encode(env)),
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

fn encode_verify(env: Env<'_>, r: VerifyReport) -> NifResult<Term<'_>> {
    term::map(
        env,
        &[
            ("format", bin(env, r.format.as_str())),
            ("entries", r.entries.encode(env)),
            ("files", r.files.encode(env)),
            ("bytes", r.bytes.encode(env)),
            ("compressed_bytes", r.compressed_bytes.encode(env)),
            ("sha256", bin(env, &r.sha256)),
            ("manifest_checked", r.manifest_checked.encode(env)),
        ],
    )
}

fn encode_entry<'a>(env: Env<'a>, e: &EntryInfo) -> NifResult<Term<'a>> {
    let link = match &e.link {
        Some(l) => term::binary(env, l),
        None => atoms::undefined().encode(env),
    };
    term::map(
        env,
        &[
            ("path", term::binary(env, &e.path)),
            ("type", bin(env, e.kind.as_str())),
            ("size", e.size.encode(env)),
            ("mtime", e.mtime.encode(env)),
            ("mode", e.mode.encode(env)),
            ("link", link),
            ("crc32", e.crc32.encode(env)),
        ],
    )
}

fn encode_list(env: Env<'_>, entries: Vec<EntryInfo>) -> NifResult<Term<'_>> {
    let terms = entries
        .iter()
        .map(|e| encode_entry(env, e))
        .collect::<NifResult<Vec<_>>>()?;
    Ok(terms.encode(env))
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
