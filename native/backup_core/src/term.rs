//! The Erlang shape of the engine's results, declared here on the result types themselves so
//! that the NIF glue only forwards them.
//!
//! With the `nif` feature, the result structs derive rustler's `NifMap` (and enums
//! `NifUnitEnum`): their Erlang term is the struct, key for field. rustler derives per field
//! type and has no per-field options, and it encodes `None` as `nil` and a `Vec<u8>` as a list
//! of integers, where the Erlang side expects `undefined` and a binary; so the fields that hold
//! those are typed [`OrUndefined`] and [`Bytes`], which read like `Option` and `[u8]`. What is
//! not its struct as it stands has its encoder written out below: `Error` (`{Reason, Info}`),
//! `Summary` (its `reuse` stays an `Option` for the engine) and `ReuseSummary` (`used` and
//! `method` are derived, the CLI's own figures are left out). A NIF
//! returns a `Result` as a `Reply` (`{ok, Value}`) or a `Done` (`ok`). `Bytes` and
//! `OrUndefined` also decode arguments (a binary; `undefined` or a value).
//!
//! Without the feature (the CLI) this module is the two field types and nothing of rustler.

use std::ops::Deref;

/// Bytes that Erlang gets as a binary: a path or a name that need not be UTF-8, a dictionary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Bytes(pub Vec<u8>);

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Bytes(v)
    }
}

/// A path or an argument from its bytes.
impl From<Bytes> for std::ffi::OsString {
    fn from(b: Bytes) -> Self {
        std::os::unix::ffi::OsStringExt::from_vec(b.0)
    }
}

impl From<Bytes> for std::path::PathBuf {
    fn from(b: Bytes) -> Self {
        std::ffi::OsString::from(b).into()
    }
}

/// An optional result field; Erlang gets `undefined` for `None`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct OrUndefined<T>(pub Option<T>);

impl<T> Default for OrUndefined<T> {
    fn default() -> Self {
        OrUndefined(None)
    }
}

impl<T> Deref for OrUndefined<T> {
    type Target = Option<T>;
    fn deref(&self) -> &Option<T> {
        &self.0
    }
}

impl<T> From<Option<T>> for OrUndefined<T> {
    fn from(v: Option<T>) -> Self {
        OrUndefined(v)
    }
}

#[cfg(feature = "nif")]
pub use nif::{Done, Reply};

#[cfg(feature = "nif")]
mod nif {
    use super::{Bytes, OrUndefined};
    use crate::archive::{CopyMethod, ReuseSummary, Summary};
    use crate::Error;
    use rustler::types::binary::{Binary, OwnedBinary};
    use rustler::{Atom, Decoder, Encoder, Env, NifMap, NifResult, Term};
    use std::os::unix::ffi::OsStrExt;
    use std::panic::AssertUnwindSafe;

    rustler::atoms! { ok, undefined, error, message, path, dictionary }

    /// A failed allocation panics, as rustler's own `str` encoder does; rustler raises that as
    /// an Erlang error (job threads catch it too): never a silently empty binary.
    fn binary<'a>(env: Env<'a>, bytes: &[u8]) -> Term<'a> {
        let Some(mut owned) = OwnedBinary::new(bytes.len()) else {
            panic!("out of memory for a binary of {} bytes", bytes.len());
        };
        owned.as_mut_slice().copy_from_slice(bytes);
        owned.release(env).encode(env)
    }

    impl Encoder for Bytes {
        fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
            binary(env, &self.0)
        }
    }

    /// A binary argument.
    impl<'a> Decoder<'a> for Bytes {
        fn decode(term: Term<'a>) -> NifResult<Self> {
            Ok(Bytes(term.decode::<Binary>()?.to_vec()))
        }
    }

    /// `undefined`, or a `T`.
    impl<'a, T: Decoder<'a>> Decoder<'a> for OrUndefined<T> {
        fn decode(term: Term<'a>) -> NifResult<Self> {
            match term.decode::<Atom>() {
                Ok(a) if a == undefined() => Ok(OrUndefined(None)),
                _ => term.decode().map(|v| OrUndefined(Some(v))),
            }
        }
    }

    impl<T: Encoder> Encoder for OrUndefined<T> {
        fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
            match &self.0 {
                Some(v) => v.encode(env),
                None => undefined().encode(env),
            }
        }
    }

    impl Encoder for Error {
        /// `{Reason, #{message => Bin, path => Bin, dictionary => Id}}`, the reason an atom
        /// (`Error::reason`); `path` and `dictionary` only when known, as callers match on
        /// their presence (so not a derived map). In a result: `{error, {Reason, Info}}`.
        fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
            let reason = Atom::from_str(env, self.reason()).unwrap_or_else(|_| error());
            let mut keys = vec![message().encode(env)];
            let mut values = vec![self.to_string().encode(env)];
            if let Some(p) = self.path() {
                keys.push(path().encode(env));
                values.push(binary(env, p.as_os_str().as_bytes()));
            }
            if let Some(id) = self.dictionary() {
                keys.push(dictionary().encode(env));
                values.push(id.encode(env));
            }
            // The keys are distinct atoms, so this cannot fail; the message alone if it did.
            let info = Term::map_from_term_arrays(env, &keys, &values).unwrap_or(values[0]);
            (reason, info).encode(env)
        }
    }

    /// The reply of every fallible NIF and job: `{ok, Value}` or `{error, {Reason, Info}}`, a
    /// `Result` as it encodes itself. rustler returns only `RefUnwindSafe` values from a NIF,
    /// which the `io::Error` an `Error` may hold is not; a reply is only encoded, then dropped,
    /// so a panic while encoding it leaves nothing behind to be observed broken.
    pub struct Reply<T>(AssertUnwindSafe<crate::Result<T>>);

    impl<T> From<crate::Result<T>> for Reply<T> {
        fn from(r: crate::Result<T>) -> Self {
            Reply(AssertUnwindSafe(r))
        }
    }

    impl<T: Encoder> Encoder for Reply<T> {
        fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
            self.0.encode(env)
        }
    }

    /// `ok` or `{error, {Reason, Info}}`: the reply of work with nothing to return.
    pub struct Done(AssertUnwindSafe<crate::Result<()>>);

    impl From<crate::Result<()>> for Done {
        fn from(r: crate::Result<()>) -> Self {
            Done(AssertUnwindSafe(r))
        }
    }

    impl Encoder for Done {
        fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
            match &*self.0 {
                Ok(()) => ok().encode(env),
                Err(e) => (error(), e).encode(env),
            }
        }
    }

    /// `archive::Summary` (and a dump's, `dump::gzip_command`) as `backup_archive` reports it:
    /// the struct with `reuse` `undefined` without a previous archive. Written out so that
    /// `Summary::reuse` stays an `Option` for the engine and the CLI.
    #[derive(NifMap)]
    #[rustler(encode)]
    struct Written<'a> {
        files: u64,
        bytes_in: u64,
        bytes_out: u64,
        sha256: &'a String,
        skipped: &'a [(String, String)],
        seconds: f64,
        reuse: OrUndefined<&'a ReuseSummary>,
    }

    impl Encoder for Summary {
        fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
            Written {
                files: self.files,
                bytes_in: self.bytes_in,
                bytes_out: self.bytes_out,
                sha256: &self.sha256,
                skipped: &self.skipped,
                seconds: self.seconds,
                reuse: OrUndefined(self.reuse.as_ref()),
            }
            .encode(env)
        }
    }

    /// `ReuseSummary` as `backup_archive` reports it.
    #[derive(NifMap)]
    #[rustler(encode)]
    struct Reuse<'a> {
        used: bool,
        unusable: OrUndefined<&'a String>,
        reused_entries: u64,
        reused_bytes: u64,
        reused_units: u64,
        prefix_units: u64,
        tail_pieces: u64,
        rejected_units: u64,
        rejected: &'a [(String, String)],
        method: CopyMethod,
        cloned_bytes: u64,
        copied_bytes: u64,
        written_bytes: u64,
    }

    impl Encoder for ReuseSummary {
        fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
            Reuse {
                used: self.used(),
                unusable: OrUndefined(self.unusable.as_ref()),
                reused_entries: self.reused_entries,
                reused_bytes: self.reused_bytes,
                reused_units: self.reused_units,
                prefix_units: self.prefix_units,
                tail_pieces: self.tail_pieces,
                rejected_units: self.rejected_units,
                rejected: &self.rejected,
                method: self.method(),
                cloned_bytes: self.cloned_bytes,
                copied_bytes: self.copied_bytes,
                written_bytes: self.written_bytes,
            }
            .encode(env)
        }
    }
}
