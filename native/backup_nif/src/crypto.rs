//! Z1 encrypted files (`.enc`) for the Erlang side: `backup_file_crypto:encrypt_file/3`,
//! `decrypt_file/3,4` and `file_hmac/2` call these. The work is `backup_core::crypto`; this
//! file only decodes arguments and shapes results.
//!
//! All are jobs (see `job`): they report progress and stop on cancel, owner death or a
//! dropped handle, removing their `.tmp` output.

use crate::{job, term};
use backup_core::archive::JobControl;
use backup_core::crypto::{self, Sealed};
use backup_core::Digest;
use rustler::{Binary, Encoder, Env, NifResult, Term};
use std::path::{Path, PathBuf};

mod atoms {
    rustler::atoms! { undefined }
}

/// `encrypt_file_start(In, Out, Password, Ref, ProgressPid)`: a job whose result is
/// `{ok, #{sha256, size, hmac}}` of the written `.enc` file (`hmac`: the HMAC-SHA256 that
/// backup.json keeps as `<part>_hmac`). A job, not a dirty NIF: CFB8 runs at about 45 MB/s, so
/// a 1 GB media archive would hold a dirty scheduler for some 20 s.
#[rustler::nif]
fn encrypt_file_start<'a>(
    env: Env<'a>,
    input: Term<'a>,
    output: Term<'a>,
    password: Term<'a>,
    reference: Term<'a>,
    progress: Term<'a>,
) -> NifResult<Term<'a>> {
    let (input, output) = (term::decode_path(input)?, term::decode_path(output)?);
    let password = decode_password(password)?.as_slice().to_vec();
    let spec = job::spec(env, progress, Some(output.clone()), encode_sealed)?;
    Ok(job::start(env, reference, spec, move |ctl| {
        start_totals(ctl, &input, 1);
        crypto::encrypt_file_with_progress(&input, &output, &password, counter(ctl))
    }))
}

/// `decrypt_file_start(In, Out, Password, Ref, ProgressPid)`: a job whose result is
/// `{ok, #{sha256, size}}` of the decrypted file, or `{error, {wrong_password, _}}` before any
/// output is created.
#[rustler::nif]
fn decrypt_file_start<'a>(
    env: Env<'a>,
    input: Term<'a>,
    output: Term<'a>,
    password: Term<'a>,
    reference: Term<'a>,
    progress: Term<'a>,
) -> NifResult<Term<'a>> {
    decrypt_job(env, input, output, password, None, reference, progress)
}

/// `decrypt_verified_start(In, Out, Password, Hmac, Ref, ProgressPid)`: as
/// `decrypt_file_start`, but the stored file is first checked against `Hmac` (hex, as recorded
/// in backup.json): `{error, {hmac_mismatch, _}}` and no output when it differs.
#[rustler::nif]
fn decrypt_verified_start<'a>(
    env: Env<'a>,
    input: Term<'a>,
    output: Term<'a>,
    password: Term<'a>,
    hmac: Binary<'a>,
    reference: Term<'a>,
    progress: Term<'a>,
) -> NifResult<Term<'a>> {
    let hmac = std::str::from_utf8(hmac.as_slice())
        .map_err(|_| rustler::Error::BadArg)?
        .to_string();
    decrypt_job(
        env,
        input,
        output,
        password,
        Some(hmac),
        reference,
        progress,
    )
}

fn decrypt_job<'a>(
    env: Env<'a>,
    input: Term<'a>,
    output: Term<'a>,
    password: Term<'a>,
    hmac: Option<String>,
    reference: Term<'a>,
    progress: Term<'a>,
) -> NifResult<Term<'a>> {
    let (input, output) = (term::decode_path(input)?, term::decode_path(output)?);
    let password = decode_password(password)?.as_slice().to_vec();
    let spec = job::spec(env, progress, Some(output.clone()), encode_digest)?;
    Ok(job::start(env, reference, spec, move |ctl| {
        start_totals(ctl, &input, if hmac.is_some() { 2 } else { 1 });
        crypto::decrypt_file_verified(&input, &output, &password, hmac.as_deref(), counter(ctl))
    }))
}

/// `file_hmac_start(In, Password, Ref, ProgressPid)`: a job whose result is
/// `{ok, #{hmac => Hex}}`, the HMAC-SHA256 of the stored `.enc` file (password checked first).
#[rustler::nif]
fn file_hmac_start<'a>(
    env: Env<'a>,
    input: Term<'a>,
    password: Term<'a>,
    reference: Term<'a>,
    progress: Term<'a>,
) -> NifResult<Term<'a>> {
    let input: PathBuf = term::decode_path(input)?;
    let password = decode_password(password)?.as_slice().to_vec();
    let spec = job::spec(env, progress, None, encode_hmac)?;
    Ok(job::start(env, reference, spec, move |ctl| {
        start_totals(ctl, &input, 1);
        crypto::file_hmac(&input, &password, counter(ctl))
    }))
}

fn start_totals(ctl: &JobControl, input: &Path, passes: u64) {
    let size = std::fs::metadata(input).map(|m| m.len()).unwrap_or(0);
    ctl.set_totals(1, size * passes);
}

/// The progress hook: publishes bytes done and stops the work once the job is cancelled.
fn counter(ctl: &JobControl) -> impl FnMut(u64) -> backup_core::Result<()> + '_ {
    let mut reported = 0u64;
    move |done| {
        ctl.add_bytes(done.saturating_sub(reported));
        reported = reported.max(done);
        ctl.check()
    }
}

/// The password as bytes: a binary or an iolist (Zotonic keeps it as a binary in m_config).
fn decode_password(term: Term<'_>) -> NifResult<Binary<'_>> {
    match term.decode::<Binary>() {
        Ok(bin) => Ok(bin),
        Err(_) => Binary::from_iolist(term),
    }
}

fn encode_digest(env: Env<'_>, d: Digest) -> NifResult<Term<'_>> {
    term::map(
        env,
        &[
            ("sha256", term::binary(env, d.sha256.as_bytes())),
            ("size", d.size.encode(env)),
        ],
    )
}

fn encode_sealed(env: Env<'_>, s: Sealed) -> NifResult<Term<'_>> {
    let hmac = if s.hmac.is_empty() {
        atoms::undefined().encode(env)
    } else {
        term::binary(env, s.hmac.as_bytes())
    };
    term::map(
        env,
        &[
            ("sha256", term::binary(env, s.digest.sha256.as_bytes())),
            ("size", s.digest.size.encode(env)),
            ("hmac", hmac),
        ],
    )
}

fn encode_hmac(env: Env<'_>, hmac: String) -> NifResult<Term<'_>> {
    term::map(env, &[("hmac", term::binary(env, hmac.as_bytes()))])
}
