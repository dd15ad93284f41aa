//! NIF glue for zotonic_mod_backup: decode arguments, pick the scheduler, start jobs and hand
//! back the core's results, which encode themselves (backup_core's `nif` feature). Nothing
//! here that could live in `backup_core`.

mod archive;
mod crypto;
mod job;
mod revision;
mod term;

use backup_core::Digest;
use term::{FilePath, Reply};

/// `file_digest(Path) -> {ok, #{sha256, crc32, size}}`: all three in one streaming pass, on a
/// dirty IO scheduler because the file may be gigabytes.
#[rustler::nif(schedule = "DirtyIo")]
fn file_digest(path: FilePath) -> Reply<Digest> {
    term::reply(backup_core::file_digest(&path.0))
}

/// The build id this library was named for, as `backup_nif:build_id/0` expects it: proves
/// that the Erlang side talks to the library of its own build.
#[rustler::nif]
fn build_id() -> &'static str {
    BUILD
}

// `rustler::init!("backup_nif_<build>")` and `BUILD`, written by build.rs.
include!(concat!(env!("OUT_DIR"), "/nif_init.rs"));
