//! Z1 encrypted files (`.enc`) for the Erlang side: `backup_crypto:encrypt_file/3` and
//! `decrypt_file/3` call these. The work is `backup_core::crypto`; this file only decodes
//! arguments and shapes results.
//!
//! Both run on a dirty IO scheduler: they read and write whole files (encryption runs at
//! about 45 MB/s, CFB8 being one AES block per byte, so a 1 GB media archive holds one dirty IO
//! scheduler for some 20 s).

use crate::term;
use backup_core::{crypto, Digest};
use rustler::{Binary, Encoder, Env, NifResult, Term};

/// `encrypt_file(In, Out, Password)` -> `{ok, #{sha256, size}}` of the written `.enc` file.
#[rustler::nif(schedule = "DirtyIo")]
fn encrypt_file<'a>(
    env: Env<'a>,
    input: Term<'a>,
    output: Term<'a>,
    password: Term<'a>,
) -> NifResult<Term<'a>> {
    let input = term::decode_path(input)?;
    let output = term::decode_path(output)?;
    let password = decode_password(password)?;
    Ok(result(
        env,
        crypto::encrypt_file(&input, &output, password.as_slice()),
    ))
}

/// `decrypt_file(In, Out, Password)` -> `{ok, #{sha256, size}}` of the decrypted file;
/// `{error, {wrong_password, _}}` before any output is created.
#[rustler::nif(schedule = "DirtyIo")]
fn decrypt_file<'a>(
    env: Env<'a>,
    input: Term<'a>,
    output: Term<'a>,
    password: Term<'a>,
) -> NifResult<Term<'a>> {
    let input = term::decode_path(input)?;
    let output = term::decode_path(output)?;
    let password = decode_password(password)?;
    Ok(result(
        env,
        crypto::decrypt_file(&input, &output, password.as_slice()),
    ))
}

/// The password as bytes: a binary or an iolist (Zotonic keeps it as a binary in m_config).
fn decode_password(term: Term<'_>) -> NifResult<Binary<'_>> {
    match term.decode::<Binary>() {
        Ok(bin) => Ok(bin),
        Err(_) => Binary::from_iolist(term),
    }
}

fn result<'a>(env: Env<'a>, r: backup_core::Result<Digest>) -> Term<'a> {
    match r {
        Ok(d) => {
            let info = term::map(
                env,
                &[
                    ("sha256", term::binary(env, d.sha256.as_bytes())),
                    ("size", d.size.encode(env)),
                ],
            );
            match info {
                Ok(info) => term::ok(env, info),
                Err(_) => term::error(
                    env,
                    &backup_core::Error::InvalidArgument("could not build the result map".into()),
                ),
            }
        }
        Err(e) => term::error(env, &e),
    }
}
