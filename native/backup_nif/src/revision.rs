//! Revision codec NIFs: thin glue over `backup_core::revision`.
//!
//! Props travel as `term_to_binary(Props)` bytes both ways, which is cheap for the VM and keeps
//! all term walking in the core. Every function runs on a dirty CPU scheduler: a 50 KB body
//! diff or a long chain is short work, but of unbounded size.

use crate::term;
use backup_core::revision::{self, textdiff::Change, ChangeKind, PropChange};
use rustler::{Binary, Encoder, Env, NifResult, Term};

mod atoms {
    rustler::atoms! { undefined, eq, ins, del, added, removed, changed }
}

fn result<'a>(env: Env<'a>, r: backup_core::Result<Vec<u8>>) -> Term<'a> {
    match r {
        Ok(bytes) => term::ok(env, term::binary(env, &bytes)),
        Err(e) => term::error(env, &e),
    }
}

fn slices<'b>(list: &'b [Binary<'_>]) -> Vec<&'b [u8]> {
    list.iter().map(|b| b.as_slice()).collect()
}

/// A proper list of binaries, else `badarg` (rustler's `Vec` decoder is not relied on for
/// improper lists).
fn binaries(term: Term<'_>) -> NifResult<Vec<Binary<'_>>> {
    let n = term.list_length().map_err(|_| rustler::Error::BadArg)?;
    let mut out = Vec::with_capacity(n);
    for item in term.into_list_iterator()? {
        out.push(item.decode::<Binary>()?);
    }
    Ok(out)
}

/// `revision_keyframe(PropsEtf) -> {ok, Blob}`: a `zkey1` blob.
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_keyframe<'a>(env: Env<'a>, props: Binary<'a>) -> Term<'a> {
    result(env, revision::encode_keyframe(props.as_slice()))
}

/// `revision_delta(BaseEtf, NewEtf) -> {ok, Blob}`: a `zdelta1` blob turning base into new.
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_delta<'a>(env: Env<'a>, base: Binary<'a>, new: Binary<'a>) -> Term<'a> {
    result(env, revision::encode_delta(base.as_slice(), new.as_slice()))
}

/// `revision_delta_after([KeyBlob | DeltaBlobs], NewEtf) -> {ok, Blob}`: the delta from the
/// revision at the end of the chain to new, without a round trip through Erlang.
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_delta_after<'a>(env: Env<'a>, chain: Term<'a>, new: Binary<'a>) -> NifResult<Term<'a>> {
    let chain = binaries(chain)?;
    Ok(result(
        env,
        revision::encode_delta_after(&slices(&chain), new.as_slice()),
    ))
}

/// `revision_delta_from(LastBlob, BaseEtf, NewEtf) -> {ok, Blob}`: the delta from base to new,
/// when base is the revision LastBlob ends at (else `{error, {stale_base, _}}`).
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_delta_from<'a>(
    env: Env<'a>,
    last: Binary<'a>,
    base: Binary<'a>,
    new: Binary<'a>,
) -> Term<'a> {
    result(
        env,
        revision::encode_delta_from(last.as_slice(), base.as_slice(), new.as_slice()),
    )
}

/// `revision_reconstruct([KeyBlob | DeltaBlobs]) -> {ok, PropsEtf}`.
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_reconstruct<'a>(env: Env<'a>, chain: Term<'a>) -> NifResult<Term<'a>> {
    let chain = binaries(chain)?;
    Ok(result(env, revision::reconstruct(&slices(&chain))))
}

/// `revision_apply(BaseEtf, DeltaBlobs) -> {ok, PropsEtf}`: deltas on a full term (an `erlang`
/// row).
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_apply<'a>(env: Env<'a>, base: Binary<'a>, deltas: Term<'a>) -> NifResult<Term<'a>> {
    let deltas = binaries(deltas)?;
    Ok(result(
        env,
        revision::apply_deltas(base.as_slice(), &slices(&deltas)),
    ))
}

/// `revision_rekey([KeyBlob | DeltaBlobs]) -> {ok, KeyBlob}`: the chain's last revision as a
/// keyframe (pruning rewrites the oldest surviving row so).
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_rekey<'a>(env: Env<'a>, chain: Term<'a>) -> NifResult<Term<'a>> {
    let chain = binaries(chain)?;
    Ok(result(env, revision::rekey(&slices(&chain))))
}

/// `revision_diff(PropsEtfA, PropsEtfB) -> {ok, [Change]}`, each change
/// `#{key, lang, change => added|removed|changed, old, new, ops => [{eq|ins|del, Text}]}`.
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_diff<'a>(env: Env<'a>, a: Binary<'a>, b: Binary<'a>) -> NifResult<Term<'a>> {
    match revision::diff_props(a.as_slice(), b.as_slice()) {
        Ok(changes) => {
            let list = changes
                .iter()
                .map(|c| change_term(env, c))
                .collect::<NifResult<Vec<Term<'a>>>>()?;
            Ok(term::ok(env, list.encode(env)))
        }
        Err(e) => Ok(term::error(env, &e)),
    }
}

fn text_or_undefined<'a>(env: Env<'a>, t: &Option<Vec<u8>>) -> Term<'a> {
    match t {
        Some(bytes) => term::binary(env, bytes),
        None => atoms::undefined().encode(env),
    }
}

fn change_term<'a>(env: Env<'a>, c: &PropChange) -> NifResult<Term<'a>> {
    // The key came out of a term the caller gave us, so its atoms exist: safe decoding holds.
    let key = env
        .binary_to_term(&revision::etf::encode(&c.key))
        .map(|(t, _)| t)
        .ok_or(rustler::Error::BadArg)?;
    let lang = match &c.lang {
        Some(l) => rustler::Atom::from_str(env, l)?.encode(env),
        None => atoms::undefined().encode(env),
    };
    let change = match c.change {
        ChangeKind::Added => atoms::added(),
        ChangeKind::Removed => atoms::removed(),
        ChangeKind::Changed => atoms::changed(),
    };
    let ops: Vec<Term<'a>> = c
        .ops
        .iter()
        .map(|(k, t)| {
            let k = match k {
                Change::Eq => atoms::eq(),
                Change::Ins => atoms::ins(),
                Change::Del => atoms::del(),
            };
            (k, term::binary(env, t)).encode(env)
        })
        .collect();
    term::map(
        env,
        &[
            ("key", key),
            ("lang", lang),
            ("change", change.encode(env)),
            ("old", text_or_undefined(env, &c.old)),
            ("new", text_or_undefined(env, &c.new)),
            ("ops", ops.encode(env)),
        ],
    )
}
