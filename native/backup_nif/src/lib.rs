//! NIF glue for zotonic_mod_backup: decode arguments, pick the scheduler, start jobs and hand
//! back the core's results, which encode themselves, as do its errors and the replies that
//! carry them (backup_core's `nif` feature, `backup_core::term`). Nothing here that could live
//! in `backup_core`.

mod archive;
mod crypto;
mod job;
mod revision;

use backup_core::term::Reply;
use backup_core::Digest;
use rustler::{Binary, Decoder, NifResult, Term};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// `file_digest(Path) -> {ok, #{sha256, crc32, size}}`: all three in one streaming pass, on a
/// dirty IO scheduler because the file may be gigabytes.
#[rustler::nif(schedule = "DirtyIo")]
fn file_digest(path: FilePath) -> Reply<Digest> {
    Reply::from(backup_core::file_digest(&path.0))
}

/// The build id this library was named for, as `backup_nif:build_id/0` expects it: proves
/// that the Erlang side talks to the library of its own build.
#[rustler::nif]
fn build_id() -> &'static str {
    BUILD
}

/// A file name as Erlang passes it: a binary (raw bytes, any encoding) or a flat list of
/// unicode code points (a string). Anything else is `badarg`.
pub struct FilePath(pub PathBuf);

impl<'a> Decoder<'a> for FilePath {
    fn decode(term: Term<'a>) -> NifResult<Self> {
        if let Ok(bin) = term.decode::<Binary>() {
            return Ok(FilePath(OsStr::from_bytes(&bin).into()));
        }
        let points: Vec<u32> = term.decode()?;
        let s: Option<String> = points.into_iter().map(char::from_u32).collect();
        s.map(|s| FilePath(s.into())).ok_or(rustler::Error::BadArg)
    }
}

/// A password: a binary or an iolist (Zotonic keeps it as a binary in m_config).
pub struct Password(pub Vec<u8>);

impl<'a> Decoder<'a> for Password {
    fn decode(term: Term<'a>) -> NifResult<Self> {
        // A binary is an iolist too.
        Ok(Password(Binary::from_iolist(term)?.to_vec()))
    }
}

// `rustler::init!("backup_nif_<build>")` and `BUILD`, written by build.rs.
include!(concat!(env!("OUT_DIR"), "/nif_init.rs"));
