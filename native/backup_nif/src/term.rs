//! Shared term helpers: path decoding and the `{ok, _}` / `{error, {Reason, Info}}` shapes.

use backup_core::Error;
use rustler::types::binary::OwnedBinary;
use rustler::{Atom, Binary, Encoder, Env, NifResult, Term};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

mod atoms {
    rustler::atoms! { ok, error }
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

/// A fresh binary term with `bytes`.
pub fn binary<'a>(env: Env<'a>, bytes: &[u8]) -> Term<'a> {
    match OwnedBinary::new(bytes.len()) {
        Some(mut owned) => {
            owned.as_mut_slice().copy_from_slice(bytes);
            owned.release(env).encode(env)
        }
        // Allocation failure: the VM is out of memory; an empty binary is the least harm.
        None => "".encode(env),
    }
}

/// A map with atom keys.
pub fn map<'a>(env: Env<'a>, pairs: &[(&str, Term<'a>)]) -> NifResult<Term<'a>> {
    let mut m = rustler::types::map::map_new(env);
    for (k, v) in pairs {
        m = m.map_put(Atom::from_str(env, k)?, *v)?;
    }
    Ok(m)
}

pub fn atom_ok() -> Atom {
    atoms::ok()
}

pub fn ok<'a>(env: Env<'a>, value: Term<'a>) -> Term<'a> {
    (atoms::ok(), value).encode(env)
}

/// `{error, {Reason, #{message => Bin, path => Bin, dictionary => Id}}}` (path and dictionary
/// when the error has them).
pub fn error<'a>(env: Env<'a>, e: &Error) -> Term<'a> {
    let reason = Atom::from_str(env, e.reason())
        .map(|a| a.encode(env))
        .unwrap_or_else(|_| atoms::error().encode(env));
    let message = binary(env, e.to_string().as_bytes());
    let mut pairs = vec![("message", message)];
    if let Some(p) = e.path() {
        pairs.push(("path", binary(env, p.as_os_str().as_bytes())));
    }
    if let Some(id) = e.dictionary() {
        pairs.push(("dictionary", id.encode(env)));
    }
    let info = map(env, &pairs).unwrap_or(message);
    (atoms::error(), (reason, info)).encode(env)
}
