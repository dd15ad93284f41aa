//! NIF glue for zotonic_mod_backup: decode arguments, pick the scheduler, map errors to atoms.
//! Nothing here that could live in `backup_core`.

mod archive;
mod crypto;
mod job;
mod revision;
mod term;

use rustler::{Env, Term};
use std::path::PathBuf;

/// sha256, crc32 and size of a file in one streaming pass, on a dirty IO scheduler because
/// the file may be gigabytes.
#[rustler::nif(schedule = "DirtyIo")]
fn file_digest<'a>(env: Env<'a>, path: Term<'a>) -> rustler::NifResult<Term<'a>> {
    let path: PathBuf = term::decode_path(path)?;
    Ok(match backup_core::file_digest(&path) {
        Ok(d) => term::ok(
            env,
            term::map(
                env,
                &[
                    ("sha256", term::binary(env, d.sha256.as_bytes())),
                    ("crc32", rustler::Encoder::encode(&d.crc32, env)),
                    ("size", rustler::Encoder::encode(&d.size, env)),
                ],
            )?,
        ),
        Err(e) => term::error(env, &e),
    })
}

/// The build id this library was named for, as `backup_nif:build_id/0` expects it: proves
/// that the Erlang side talks to the library of its own build.
#[rustler::nif]
fn build_id() -> &'static str {
    BUILD
}

// `rustler::init!("backup_nif_<build>")` and `BUILD`, written by build.rs.
include!(concat!(env!("OUT_DIR"), "/nif_init.rs"));
