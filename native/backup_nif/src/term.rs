//! Term shapes every NIF shares: paths and passwords in; the reply `{ok, Value}` /
//! `{error, {Reason, Info}}` out. Results and errors encode themselves (backup_core's `nif`
//! feature).

use rustler::{Binary, Decoder, Encoder, Env, NifResult, Term};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;

rustler::atoms! { ok, error }

/// A file name as Erlang passes it: a binary (raw bytes, any encoding) or a flat list of
/// unicode code points (a string). Anything else is `badarg`.
pub struct FilePath(pub PathBuf);

impl<'a> Decoder<'a> for FilePath {
    fn decode(term: Term<'a>) -> NifResult<Self> {
        if let Ok(bin) = term.decode::<Binary>() {
            return Ok(FilePath(os(&bin).into()));
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
        let bin = match term.decode::<Binary>() {
            Ok(bin) => bin,
            Err(_) => Binary::from_iolist(term)?,
        };
        Ok(Password(bin.to_vec()))
    }
}

pub fn os(bytes: &[u8]) -> &OsStr {
    OsStr::from_bytes(bytes)
}

/// The reply of every fallible NIF and job: `{ok, Value}` or `{error, {Reason, Info}}` (the
/// core's `Result`, which encodes so itself). rustler returns only `RefUnwindSafe` values from a
/// NIF, which the `io::Error` a core `Error` may hold is not; the reply is only encoded and then
/// dropped, so a panic in its encoding leaves nothing behind to be observed broken.
pub struct Reply<T>(AssertUnwindSafe<backup_core::Result<T>>);

pub fn reply<T>(r: backup_core::Result<T>) -> Reply<T> {
    Reply(AssertUnwindSafe(r))
}

impl<T: Encoder> Encoder for Reply<T> {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        self.0.encode(env)
    }
}

/// `ok` or `{error, {Reason, Info}}`, for work with nothing to return.
pub fn done(env: Env<'_>, r: backup_core::Result<()>) -> Term<'_> {
    match r {
        Ok(()) => ok().encode(env),
        Err(e) => (error(), e).encode(env),
    }
}
