//! Z1 encrypted files (`.enc`) for `backup_file_crypto`: jobs around `backup_core::crypto`.
//! They report progress and stop on cancel, owner death or a dropped handle, removing their
//! `.tmp` output. Jobs, not dirty NIFs: CFB8 runs at about 45 MB/s, so a 1 GB media archive
//! would hold a dirty scheduler for some 20 s.

use crate::job::{self, Start};
use crate::term::{decode_path, Bin, OrUndefined};
use backup_core::archive::JobControl;
use backup_core::crypto;
use rustler::{Binary, Env, NifMap, NifResult, Term};
use std::path::Path;

/// `#{sha256, size, hmac}` of a written `.enc` (`hmac`: what backup.json keeps as
/// `<part>_hmac`, `undefined` when none was made), or `#{sha256, size}` of a decrypted file.
#[derive(NifMap)]
#[rustler(encode)]
struct Sealed {
    sha256: Bin<String>,
    size: u64,
    hmac: OrUndefined<Bin<String>>,
}

#[derive(NifMap)]
#[rustler(encode)]
struct Plain {
    sha256: Bin<String>,
    size: u64,
}

#[derive(NifMap)]
#[rustler(encode)]
struct Hmac {
    hmac: Bin<String>,
}

/// `encrypt_file_start(In, Out, Password, Ref, ProgressPid)` -> `{ok, Job}`; the job's result
/// is a `Sealed` map.
#[rustler::nif]
fn encrypt_file_start<'a>(
    env: Env<'a>,
    input: Term<'a>,
    output: Term<'a>,
    password: Term<'a>,
    reference: Term<'a>,
    progress: Term<'a>,
) -> NifResult<Term<'a>> {
    let (input, output) = (decode_path(input)?, decode_path(output)?);
    let password = decode_password(password)?;
    let start = Start::new(reference, progress).writing(&output);
    job::start(env, start, move |ctl| {
        start_totals(ctl, &input, 1);
        let s = crypto::encrypt_file_with_progress(&input, &output, &password, counter(ctl))?;
        Ok(Sealed {
            sha256: Bin(s.digest.sha256),
            size: s.digest.size,
            hmac: OrUndefined(Some(s.hmac).filter(|h| !h.is_empty()).map(Bin)),
        })
    })
}

/// `decrypt_file_start(In, Out, Password, Ref, ProgressPid)`: the job's result is a `Plain`
/// map, or `{error, {wrong_password, _}}` before any output is created.
#[rustler::nif]
fn decrypt_file_start<'a>(
    env: Env<'a>,
    input: Term<'a>,
    output: Term<'a>,
    password: Term<'a>,
    reference: Term<'a>,
    progress: Term<'a>,
) -> NifResult<Term<'a>> {
    decrypt_job(env, [input, output, password, reference, progress], None)
}

/// `decrypt_verified_start(In, Out, Password, Hmac, Ref, ProgressPid)`: as
/// `decrypt_file_start`, but the stored file is first checked against `Hmac` (hex, as in
/// backup.json): `{error, {hmac_mismatch, _}}` and no output when it differs.
#[rustler::nif]
fn decrypt_verified_start<'a>(
    env: Env<'a>,
    input: Term<'a>,
    output: Term<'a>,
    password: Term<'a>,
    hmac: &'a str,
    reference: Term<'a>,
    progress: Term<'a>,
) -> NifResult<Term<'a>> {
    let args = [input, output, password, reference, progress];
    decrypt_job(env, args, Some(hmac.to_string()))
}

fn decrypt_job<'a>(env: Env<'a>, args: [Term<'a>; 5], hmac: Option<String>) -> NifResult<Term<'a>> {
    let [input, output, password, reference, progress] = args;
    let (input, output) = (decode_path(input)?, decode_path(output)?);
    let password = decode_password(password)?;
    let start = Start::new(reference, progress).writing(&output);
    job::start(env, start, move |ctl| {
        start_totals(ctl, &input, if hmac.is_some() { 2 } else { 1 });
        let d = crypto::decrypt_file_verified(
            &input,
            &output,
            &password,
            hmac.as_deref(),
            counter(ctl),
        )?;
        Ok(Plain {
            sha256: Bin(d.sha256),
            size: d.size,
        })
    })
}

/// `file_hmac_start(In, Password, Ref, ProgressPid)`: the job's result is `#{hmac => Hex}`,
/// the HMAC-SHA256 of the stored `.enc` file (password checked first).
#[rustler::nif]
fn file_hmac_start<'a>(
    env: Env<'a>,
    input: Term<'a>,
    password: Term<'a>,
    reference: Term<'a>,
    progress: Term<'a>,
) -> NifResult<Term<'a>> {
    let input = decode_path(input)?;
    let password = decode_password(password)?;
    let start = Start::new(reference, progress);
    job::start(env, start, move |ctl| {
        start_totals(ctl, &input, 1);
        let hmac = crypto::file_hmac(&input, &password, counter(ctl))?;
        Ok(Hmac { hmac: Bin(hmac) })
    })
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
fn decode_password(term: Term<'_>) -> NifResult<Vec<u8>> {
    let bin = match term.decode::<Binary>() {
        Ok(bin) => bin,
        Err(_) => Binary::from_iolist(term)?,
    };
    Ok(bin.as_slice().to_vec())
}
