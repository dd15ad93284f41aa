//! Z1 encrypted files (`.enc`) for the Erlang side: `backup_crypto:encrypt_file/3` and
//! `decrypt_file/3` call these. The work is `backup_core::crypto`; this file only decodes
//! arguments and shapes results.
//!
//! Both are jobs (see `job`): they report progress and stop on cancel, owner death or a
//! dropped handle, removing their `.tmp` output.

use crate::{job, term};
use backup_core::archive::JobControl;
use backup_core::{crypto, Digest};
use rustler::{Binary, Encoder, Env, NifResult, Term};
use std::path::Path;

/// `encrypt_file_start(In, Out, Password, Ref, ProgressPid)`: a job whose result is
/// `{ok, #{sha256, size}}` of the written `.enc` file. A job, not a dirty NIF: CFB8 runs at
/// about 45 MB/s, so a 1 GB media archive would hold a dirty scheduler for some 20 s.
#[rustler::nif]
fn encrypt_file_start<'a>(
    env: Env<'a>,
    input: Term<'a>,
    output: Term<'a>,
    password: Term<'a>,
    reference: Term<'a>,
    progress: Term<'a>,
) -> NifResult<Term<'a>> {
    let args = (input, output, password, reference, progress);
    crypto_job(env, args, |i, o, p, f| {
        crypto::encrypt_file_with_progress(i, o, p, f)
    })
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
    let args = (input, output, password, reference, progress);
    crypto_job(env, args, |i, o, p, f| {
        crypto::decrypt_file_with_progress(i, o, p, f)
    })
}

type Progress<'f> = &'f mut dyn FnMut(u64) -> backup_core::Result<()>;
type CryptoOp = fn(&Path, &Path, &[u8], Progress<'_>) -> backup_core::Result<Digest>;

/// Both directions: (In, Out, Password, Ref, ProgressPid) decoded, the op run as a job.
fn crypto_job<'a>(
    env: Env<'a>,
    (input, output, password, reference, progress): (
        Term<'a>,
        Term<'a>,
        Term<'a>,
        Term<'a>,
        Term<'a>,
    ),
    op: CryptoOp,
) -> NifResult<Term<'a>> {
    let input = term::decode_path(input)?;
    let output = term::decode_path(output)?;
    let password = decode_password(password)?.as_slice().to_vec();
    let spec = job::spec(env, progress, Some(output.clone()), encode_digest)?;
    Ok(job::start(env, reference, spec, move |ctl| {
        start_totals(ctl, &input);
        op(&input, &output, &password, &mut counter(ctl))
    }))
}

fn start_totals(ctl: &JobControl, input: &Path) {
    let size = std::fs::metadata(input).map(|m| m.len()).unwrap_or(0);
    ctl.set_totals(1, size);
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
