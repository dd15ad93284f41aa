//! Term shapes every NIF shares: paths in; binaries, `undefined` and the reply
//! `{ok, Value}` / `{error, {Reason, Info}}` out. Result maps are `#[derive(NifMap)]` structs
//! next to their NIFs; only the error info is built here by hand, because its `path` and
//! `dictionary` keys are present only when known (callers match on their presence).

use backup_core::Error;
use rustler::types::binary::OwnedBinary;
use rustler::{Atom, Binary, Encoder, Env, NifResult, Term};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

mod atoms {
    rustler::atoms! { ok, error, undefined, message, path, dictionary }
}

/// A file name as Erlang passes it: a binary (raw bytes, any encoding) or a flat list of
/// unicode code points (a string). Anything else is `badarg`.
pub fn decode_path(term: Term<'_>) -> NifResult<PathBuf> {
    if let Ok(bin) = term.decode::<Binary>() {
        return Ok(PathBuf::from(OsStr::from_bytes(bin.as_slice())));
    }
    if term.is_list() {
        let points: Vec<u32> = term.decode()?;
        let s: Option<String> = points.into_iter().map(char::from_u32).collect();
        return s.map(PathBuf::from).ok_or(rustler::Error::BadArg);
    }
    Err(rustler::Error::BadArg)
}

/// Bytes as an Erlang binary (a `Vec<u8>` would encode as a list of integers). A failed
/// allocation panics, as rustler's own `str` encoder does, and rustler raises that in the
/// caller as an Erlang error (job threads catch it too): a reply is never silently empty.
pub struct Bin<B>(pub B);

impl<B: AsRef<[u8]>> Encoder for Bin<B> {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        let bytes = self.0.as_ref();
        let Some(mut owned) = OwnedBinary::new(bytes.len()) else {
            panic!("out of memory for a binary of {} bytes", bytes.len());
        };
        owned.as_mut_slice().copy_from_slice(bytes);
        owned.release(env).encode(env)
    }
}

/// `undefined` for `None`: rustler encodes `None` as `nil`, which Erlang code does not expect.
pub struct OrUndefined<T>(pub Option<T>);

impl<T: Encoder> Encoder for OrUndefined<T> {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        match &self.0 {
            Some(v) => v.encode(env),
            None => atoms::undefined().encode(env),
        }
    }
}

/// An error as the reply carries it: plain data, so replies can cross rustler's
/// `catch_unwind` (the core's `Error` holds an `io::Error`, which cannot).
pub struct Failure {
    reason: &'static str,
    message: String,
    path: Option<PathBuf>,
    dictionary: Option<u32>,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure {
            reason: e.reason(),
            message: e.to_string(),
            path: e.path().map(PathBuf::from),
            dictionary: e.dictionary(),
        }
    }
}

impl Encoder for Failure {
    /// `{error, {Reason, #{message => Bin, path => Bin, dictionary => Id}}}`, `path` and
    /// `dictionary` only when known.
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        let reason = Atom::from_str(env, self.reason).unwrap_or_else(|_| atoms::error());
        let mut keys = vec![atoms::message().encode(env)];
        let mut values = vec![Bin(&self.message).encode(env)];
        if let Some(p) = &self.path {
            keys.push(atoms::path().encode(env));
            values.push(Bin(p.as_os_str().as_bytes()).encode(env));
        }
        if let Some(id) = self.dictionary {
            keys.push(atoms::dictionary().encode(env));
            values.push(id.encode(env));
        }
        // The keys are distinct atoms, so this cannot fail; the message alone if it did.
        let info = Term::map_from_term_arrays(env, &keys, &values).unwrap_or(values[0]);
        (atoms::error(), (reason, info)).encode(env)
    }
}

/// The reply of every fallible NIF and job: `{ok, Value}` or `{error, {Reason, Info}}`.
pub struct Reply<T>(Result<T, Failure>);

pub fn reply<T>(r: backup_core::Result<T>) -> Reply<T> {
    Reply(r.map_err(Failure::from))
}

impl<T: Encoder> Encoder for Reply<T> {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        match &self.0 {
            Ok(v) => (atoms::ok(), v).encode(env),
            Err(e) => e.encode(env),
        }
    }
}

/// `ok` or `{error, {Reason, Info}}`, for work with nothing to return.
pub struct Done(Result<(), Failure>);

pub fn done(r: backup_core::Result<()>) -> Done {
    Done(r.map_err(Failure::from))
}

impl Encoder for Done {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        match &self.0 {
            Ok(()) => atoms::ok().encode(env),
            Err(e) => e.encode(env),
        }
    }
}

pub fn atom_ok() -> Atom {
    atoms::ok()
}

pub fn undefined(env: Env<'_>) -> Term<'_> {
    atoms::undefined().encode(env)
}

pub fn is_undefined(term: Term<'_>) -> bool {
    term.decode::<Atom>().is_ok_and(|a| a == atoms::undefined())
}

pub fn error<'a>(env: Env<'a>, e: Error) -> Term<'a> {
    Failure::from(e).encode(env)
}
