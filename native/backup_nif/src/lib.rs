//! NIF glue for zotonic_mod_backup: decode arguments, pick the scheduler, map errors to atoms.
//! Nothing here that could live in `backup_core`.

mod archive;
mod crypto;
mod job;
mod revision;
mod term;

use rustler::NifMap;
use term::{Bin, Reply};

#[derive(NifMap)]
#[rustler(encode)]
struct FileDigest {
    sha256: Bin<String>,
    crc32: u32,
    size: u64,
}

/// `file_digest(Path) -> {ok, #{sha256, crc32, size}}`: all three in one streaming pass, on a
/// dirty IO scheduler because the file may be gigabytes.
#[rustler::nif(schedule = "DirtyIo")]
fn file_digest(path: rustler::Term<'_>) -> rustler::NifResult<Reply<FileDigest>> {
    let path = term::decode_path(path)?;
    Ok(term::reply(backup_core::file_digest(&path).map(|d| {
        FileDigest {
            sha256: Bin(d.sha256),
            crc32: d.crc32,
            size: d.size,
        }
    })))
}

/// The build id this library was named for, as `backup_nif:build_id/0` expects it: proves
/// that the Erlang side talks to the library of its own build.
#[rustler::nif]
fn build_id() -> &'static str {
    BUILD
}

// `rustler::init!("backup_nif_<build>")` and `BUILD`, written by build.rs.
include!(concat!(env!("OUT_DIR"), "/nif_init.rs"));
