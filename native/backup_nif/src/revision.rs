//! Revision codec NIFs: thin glue over `backup_core::revision`.
//!
//! Props travel as `term_to_binary(Props)` bytes both ways, which is cheap for the VM and keeps
//! all term walking in the core. A site's dictionaries live in a `Dicts` resource that Erlang
//! fills from the database; every codec call gets it, and the id of the dictionary new rows are
//! written with (0: none). Codec calls run on a dirty CPU scheduler: short work, but of unbounded
//! size. Training a dictionary takes seconds, so it runs as a job on a thread of its own.

use crate::job;
use crate::term;
use backup_core::revision::{
    self, dict, textdiff::Change, ChangeKind, Codec, Dictionary, Dicts, PropChange,
};
use rustler::{Binary, Encoder, Env, NifResult, Resource, ResourceArc, Term};
use std::sync::{Arc, RwLock};

mod atoms {
    rustler::atoms! { undefined, eq, ins, del, added, removed, changed }
}

/// The dictionaries of one site, shared by every process of the site.
pub struct SiteDicts {
    dicts: RwLock<Dicts>,
}

#[rustler::resource_impl]
impl Resource for SiteDicts {}

impl SiteDicts {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Dicts> {
        self.dicts.read().unwrap_or_else(|p| p.into_inner())
    }
}

fn result<'a>(env: Env<'a>, r: backup_core::Result<Vec<u8>>) -> Term<'a> {
    match r {
        Ok(bytes) => term::ok(env, term::binary(env, &bytes)),
        Err(e) => term::error(env, &e),
    }
}

/// Runs `f` with a codec over the site's dictionaries writing with dictionary `write_with`.
fn with_codec<'a>(
    env: Env<'a>,
    set: &SiteDicts,
    write_with: u32,
    f: impl FnOnce(Codec<'_>) -> backup_core::Result<Vec<u8>>,
) -> Term<'a> {
    let dicts = set.read();
    result(env, Codec::new(&dicts, write_with).and_then(f))
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

/// `revision_dicts_new() -> Dicts`: an empty set of dictionaries.
#[rustler::nif]
fn revision_dicts_new() -> ResourceArc<SiteDicts> {
    ResourceArc::new(SiteDicts {
        dicts: RwLock::new(Dicts::new()),
    })
}

/// `revision_dict_put(Dicts, Id, Bytes, Warm) -> ok | {error, {bad_dictionary, _}}`: prepares
/// dictionary `Id` and adds it to the set; `Warm` also makes its encoder tables now.
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_dict_put<'a>(
    env: Env<'a>,
    set: ResourceArc<SiteDicts>,
    id: u32,
    bytes: Binary<'a>,
    warm: bool,
) -> Term<'a> {
    let prepared = Dictionary::new(id, bytes.as_slice().to_vec()).and_then(|d| {
        if warm {
            d.warm().map(|_| d)
        } else {
            Ok(d)
        }
    });
    match prepared {
        Ok(d) => {
            set.dicts
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(Arc::new(d));
            term::atom_ok().encode(env)
        }
        Err(e) => term::error(env, &e),
    }
}

/// `revision_dict_ids(Dicts) -> [Id]`: the dictionaries loaded, ascending.
#[rustler::nif]
fn revision_dict_ids(set: ResourceArc<SiteDicts>) -> Vec<u32> {
    set.read().ids()
}

/// `revision_keyframe(Dicts, Dict, PropsEtf) -> {ok, Blob}`: a `zkey2` blob.
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_keyframe<'a>(
    env: Env<'a>,
    set: ResourceArc<SiteDicts>,
    dict: u32,
    props: Binary<'a>,
) -> Term<'a> {
    with_codec(env, &set, dict, |c| {
        revision::encode_keyframe(props.as_slice(), c)
    })
}

/// `revision_delta(Dicts, Dict, BaseEtf, NewEtf) -> {ok, Blob}`: a `zdelta2` blob turning base
/// into new.
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_delta<'a>(
    env: Env<'a>,
    set: ResourceArc<SiteDicts>,
    dict: u32,
    base: Binary<'a>,
    new: Binary<'a>,
) -> Term<'a> {
    with_codec(env, &set, dict, |c| {
        revision::encode_delta(base.as_slice(), new.as_slice(), c)
    })
}

/// `revision_delta_after(Dicts, Dict, [KeyBlob | DeltaBlobs], NewEtf) -> {ok, Blob}`: the delta
/// from the revision at the end of the chain to new, without a round trip through Erlang.
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_delta_after<'a>(
    env: Env<'a>,
    set: ResourceArc<SiteDicts>,
    dict: u32,
    chain: Term<'a>,
    new: Binary<'a>,
) -> NifResult<Term<'a>> {
    let chain = binaries(chain)?;
    Ok(with_codec(env, &set, dict, |c| {
        revision::encode_delta_after(&slices(&chain), new.as_slice(), c)
    }))
}

/// `revision_delta_from(Dicts, Dict, LastBlob, BaseEtf, NewEtf) -> {ok, Blob}`: the delta from
/// base to new, when base is the revision LastBlob ends at (else `{error, {stale_base, _}}`).
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_delta_from<'a>(
    env: Env<'a>,
    set: ResourceArc<SiteDicts>,
    dict: u32,
    last: Binary<'a>,
    base: Binary<'a>,
    new: Binary<'a>,
) -> Term<'a> {
    with_codec(env, &set, dict, |c| {
        revision::encode_delta_from(last.as_slice(), base.as_slice(), new.as_slice(), c)
    })
}

/// `revision_reconstruct(Dicts, [KeyBlob | DeltaBlobs]) -> {ok, PropsEtf}`.
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_reconstruct<'a>(
    env: Env<'a>,
    set: ResourceArc<SiteDicts>,
    chain: Term<'a>,
) -> NifResult<Term<'a>> {
    let chain = binaries(chain)?;
    let dicts = set.read();
    Ok(result(env, revision::reconstruct(&slices(&chain), &dicts)))
}

/// `revision_apply(Dicts, BaseEtf, DeltaBlobs) -> {ok, PropsEtf}`: deltas on a full term (an
/// `erlang` row).
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_apply<'a>(
    env: Env<'a>,
    set: ResourceArc<SiteDicts>,
    base: Binary<'a>,
    deltas: Term<'a>,
) -> NifResult<Term<'a>> {
    let deltas = binaries(deltas)?;
    let dicts = set.read();
    Ok(result(
        env,
        revision::apply_deltas(base.as_slice(), &slices(&deltas), &dicts),
    ))
}

/// `revision_rekey(Dicts, Dict, [KeyBlob | DeltaBlobs]) -> {ok, KeyBlob}`: the chain's last
/// revision as a keyframe (pruning rewrites the oldest surviving row so).
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_rekey<'a>(
    env: Env<'a>,
    set: ResourceArc<SiteDicts>,
    dict: u32,
    chain: Term<'a>,
) -> NifResult<Term<'a>> {
    let chain = binaries(chain)?;
    Ok(with_codec(env, &set, dict, |c| {
        revision::rekey(&slices(&chain), c)
    }))
}

/// `revision_delta_cost(Dicts, Blob) -> {ok, #{stored, payload, checksum, framing, paths, ...}}`:
/// where the bytes of a stored `zdelta2` row go (the benchmark prints it).
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_delta_cost<'a>(
    env: Env<'a>,
    set: ResourceArc<SiteDicts>,
    blob: Binary<'a>,
) -> NifResult<Term<'a>> {
    let dicts = set.read();
    Ok(match revision::delta_cost(blob.as_slice(), &dicts) {
        Ok(c) => {
            let p = &c.parts;
            let pairs = [
                ("stored", c.stored),
                ("payload", c.payload),
                ("checksum", p.checksum),
                ("framing", p.framing),
                ("paths", p.paths),
                ("ints", p.ints),
                ("times", p.times),
                ("text_copies", p.text_copies),
                ("text_inserts", p.text_inserts),
                ("sets", p.sets),
                ("puts", p.puts),
                ("drops", p.drops),
                ("lists", p.lists),
            ]
            .map(|(k, v)| (k, v.encode(env)));
            term::ok(env, term::map(env, &pairs)?)
        }
        Err(e) => term::error(env, &e),
    })
}

/// `revision_train(Ref, Dicts, Current, Train, Holdout, MaxBytes) -> {ok, Job}`: trains a
/// dictionary of at most MaxBytes on the rows of the histories `Train` (each a list of
/// successive `term_to_binary` props of one resource) on a thread of its own, and measures it
/// against dictionary `Current` (0: none) on the rows of `Holdout`. The owner gets
/// `{backup_job_done, Ref, {ok, #{dict, sample_bytes, holdout_raw, holdout_current,
/// holdout_candidate}}}`.
#[rustler::nif]
fn revision_train<'a>(
    env: Env<'a>,
    reference: Term<'a>,
    set: ResourceArc<SiteDicts>,
    current: u32,
    train: Term<'a>,
    holdout: Term<'a>,
    max_bytes: usize,
) -> NifResult<Term<'a>> {
    let histories = |t: Term<'a>| -> NifResult<Vec<Vec<Vec<u8>>>> {
        t.into_list_iterator()?
            .map(|h| Ok(binaries(h)?.iter().map(|b| b.as_slice().to_vec()).collect()))
            .collect()
    };
    let (train, holdout) = (histories(train)?, histories(holdout)?);
    let current = match current {
        0 => None,
        id => match set.read().get(id) {
            Ok(d) => Some(d.clone()),
            Err(e) => return Ok(term::error(env, &e)),
        },
    };
    let spec = job::spec(env, atoms::undefined().encode(env), None, encode_trained)?;
    Ok(job::start(env, reference, spec, move |ctl| {
        let payloads = |hs: &[Vec<Vec<u8>>]| -> backup_core::Result<Vec<_>> {
            let mut out = Vec::new();
            for h in hs {
                ctl.check()?;
                let refs: Vec<&[u8]> = h.iter().map(Vec::as_slice).collect();
                out.extend(revision::payloads(&refs)?);
            }
            Ok(out)
        };
        let (t, h) = (payloads(&train)?, payloads(&holdout)?);
        dict::train_and_measure(&t, &h, current.as_deref(), max_bytes)
    }))
}

fn encode_trained(env: Env<'_>, t: dict::Trained) -> NifResult<Term<'_>> {
    term::map(
        env,
        &[
            ("dict", term::binary(env, &t.dict)),
            ("sample_bytes", t.sample_bytes.encode(env)),
            ("holdout_raw", t.holdout_raw.encode(env)),
            ("holdout_current", t.holdout_current.encode(env)),
            ("holdout_candidate", t.holdout_candidate.encode(env)),
        ],
    )
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
