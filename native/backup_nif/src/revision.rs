//! Revision codec NIFs: thin glue over `backup_core::revision`.
//!
//! Props travel as `term_to_binary(Props)` bytes both ways, which is cheap for the VM and keeps
//! all term walking in the core. A site's dictionaries live in a `Dicts` resource that Erlang
//! fills from the database; every codec call gets it, and the id of the dictionary new rows are
//! written with (0: none). Codec calls run on a dirty CPU scheduler: short work, but of unbounded
//! size. Training a dictionary takes seconds, so it runs as a job on a thread of its own.

use crate::job::{self, Start};
use crate::term::{self, Reply};
use backup_core::revision::{self, textdiff::Change, ChangeKind, Codec, DeltaCost};
use backup_core::revision::{Dictionary, Dicts, PropChange};
use backup_core::term::{Bytes, OrUndefined};
use rustler::{
    Atom, Binary, Decoder, Encoder, Env, NifMap, NifResult, Resource, ResourceArc, Term,
};
use std::sync::{Arc, RwLock};

/// A stored blob or a props term (`term_to_binary` bytes), as a reply.
type Blob = Reply<Bytes>;

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

fn blob(r: backup_core::Result<Vec<u8>>) -> Blob {
    term::reply(r.map(Bytes))
}

/// Runs `f` with a codec over the site's dictionaries writing with dictionary `write_with`.
fn with_codec(
    set: &SiteDicts,
    write_with: u32,
    f: impl FnOnce(Codec<'_>) -> backup_core::Result<Vec<u8>>,
) -> Blob {
    let dicts = set.read();
    blob(Codec::new(&dicts, write_with).and_then(f))
}

/// A proper list of binaries, else `badarg` (rustler's `Vec` decoder is not relied on for
/// improper lists).
struct Binaries<'a>(Vec<Binary<'a>>);

impl<'a> Decoder<'a> for Binaries<'a> {
    fn decode(term: Term<'a>) -> NifResult<Self> {
        let n = term.list_length().map_err(|_| rustler::Error::BadArg)?;
        let mut out = Vec::with_capacity(n);
        for item in term.into_list_iterator()? {
            out.push(item.decode::<Binary>()?);
        }
        Ok(Binaries(out))
    }
}

impl Binaries<'_> {
    fn slices(&self) -> Vec<&[u8]> {
        self.0.iter().map(|b| b.as_slice()).collect()
    }

    fn to_vecs(&self) -> Vec<Vec<u8>> {
        self.0.iter().map(|b| b.to_vec()).collect()
    }
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
    bytes: Binary,
    warm: bool,
) -> Term<'a> {
    let prepared = Dictionary::new(id, bytes.as_slice().to_vec()).and_then(|d| {
        if warm {
            d.warm().map(|_| d)
        } else {
            Ok(d)
        }
    });
    term::done(
        env,
        prepared.map(|d| {
            let mut dicts = set.dicts.write().unwrap_or_else(|p| p.into_inner());
            dicts.insert(Arc::new(d));
        }),
    )
}

/// `revision_dict_ids(Dicts) -> [Id]`: the dictionaries loaded, ascending.
#[rustler::nif]
fn revision_dict_ids(set: ResourceArc<SiteDicts>) -> Vec<u32> {
    set.read().ids()
}

/// `revision_keyframe(Dicts, Dict, PropsEtf) -> {ok, Blob}`: a `zkey2` blob.
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_keyframe(set: ResourceArc<SiteDicts>, dict: u32, props: Binary<'_>) -> Blob {
    with_codec(&set, dict, |c| revision::encode_keyframe(&props, c))
}

/// `revision_delta(Dicts, Dict, BaseEtf, NewEtf) -> {ok, Blob}`: a `zdelta2` blob turning base
/// into new.
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_delta(set: ResourceArc<SiteDicts>, dict: u32, base: Binary, new: Binary) -> Blob {
    with_codec(&set, dict, |c| revision::encode_delta(&base, &new, c))
}

/// `revision_delta_after(Dicts, Dict, [KeyBlob | DeltaBlobs], NewEtf) -> {ok, Blob}`: the delta
/// from the revision at the end of the chain to new, without a round trip through Erlang.
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_delta_after(
    set: ResourceArc<SiteDicts>,
    dict: u32,
    chain: Binaries,
    new: Binary,
) -> Blob {
    let chain = chain.slices();
    with_codec(&set, dict, |c| {
        revision::encode_delta_after(&chain, &new, c)
    })
}

/// `revision_delta_from(Dicts, Dict, LastBlob, BaseEtf, NewEtf) -> {ok, Blob}`: the delta from
/// base to new, when base is the revision LastBlob ends at (else `{error, {stale_base, _}}`).
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_delta_from(
    set: ResourceArc<SiteDicts>,
    dict: u32,
    last: Binary,
    base: Binary,
    new: Binary,
) -> Blob {
    with_codec(&set, dict, |c| {
        revision::encode_delta_from(&last, &base, &new, c)
    })
}

/// `revision_reconstruct(Dicts, [KeyBlob | DeltaBlobs]) -> {ok, PropsEtf}`.
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_reconstruct(set: ResourceArc<SiteDicts>, chain: Binaries) -> Blob {
    blob(revision::reconstruct(&chain.slices(), &set.read()))
}

/// `revision_apply(Dicts, BaseEtf, DeltaBlobs) -> {ok, PropsEtf}`: deltas on a full term (an
/// `erlang` row).
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_apply(set: ResourceArc<SiteDicts>, base: Binary, deltas: Binaries) -> Blob {
    blob(revision::apply_deltas(&base, &deltas.slices(), &set.read()))
}

/// `revision_rekey(Dicts, Dict, [KeyBlob | DeltaBlobs]) -> {ok, KeyBlob}`: the chain's last
/// revision as a keyframe (pruning rewrites the oldest surviving row so).
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_rekey(set: ResourceArc<SiteDicts>, dict: u32, chain: Binaries) -> Blob {
    with_codec(&set, dict, |c| revision::rekey(&chain.slices(), c))
}

/// `revision_delta_cost(Dicts, Blob) -> {ok, DeltaCost}`: where the bytes of a stored
/// `zdelta2` row go (the benchmark prints it).
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_delta_cost(set: ResourceArc<SiteDicts>, blob: Binary<'_>) -> Reply<DeltaCost> {
    term::reply(revision::delta_cost(&blob, &set.read()))
}

/// `revision_train(Ref, Dicts, Current, Train, Holdout, MaxBytes) -> {ok, Job}`: trains a
/// dictionary of at most MaxBytes on the rows of the histories `Train` (each a list of
/// successive `term_to_binary` props of one resource) on a thread of its own, and measures it
/// against dictionary `Current` (0: none) on the rows of `Holdout`. The owner gets
/// `{backup_job_done, Ref, {ok, Trained}}`.
#[rustler::nif]
fn revision_train<'a>(
    env: Env<'a>,
    reference: Term<'a>,
    set: ResourceArc<SiteDicts>,
    current: u32,
    train: Vec<Binaries<'a>>,
    holdout: Vec<Binaries<'a>>,
    max_bytes: usize,
) -> NifResult<Term<'a>> {
    let owned = |hs: Vec<Binaries>| hs.into_iter().map(|h| h.to_vecs()).collect::<Vec<_>>();
    let (train, holdout) = (owned(train), owned(holdout));
    let current = match current {
        0 => None,
        id => match set.read().get(id) {
            Ok(d) => Some(d.clone()),
            Err(e) => return Ok((term::error(), e).encode(env)),
        },
    };
    let start = Start::new(reference, None);
    job::start(env, start, move |ctl| {
        revision::train_on_histories(&train, &holdout, current.as_deref(), max_bytes, ctl)
    })
}

/// One changed property: `key` is the property's own term, `lang` an atom or `undefined`.
#[derive(NifMap)]
#[rustler(encode)]
struct ChangeMap<'a> {
    key: Term<'a>,
    lang: OrUndefined<Atom>,
    change: ChangeKind,
    old: OrUndefined<Bytes>,
    new: OrUndefined<Bytes>,
    ops: Vec<(Change, Bytes)>,
}

/// `revision_diff(PropsEtfA, PropsEtfB) -> {ok, [Change]}`, each change
/// `#{key, lang, change => added|removed|changed, old, new, ops => [{eq|ins|del, Text}]}`.
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_diff<'a>(
    env: Env<'a>,
    a: Binary<'a>,
    b: Binary<'a>,
) -> NifResult<Reply<Vec<ChangeMap<'a>>>> {
    let changes = match revision::diff_props(&a, &b) {
        Ok(changes) => changes,
        Err(e) => return Ok(term::reply(Err(e))),
    };
    let list: NifResult<_> = changes.into_iter().map(|c| change_map(env, c)).collect();
    Ok(term::reply(Ok(list?)))
}

fn change_map(env: Env<'_>, c: PropChange) -> NifResult<ChangeMap<'_>> {
    // The key came out of a term the caller gave us, so its atoms exist: safe decoding holds.
    let key = env
        .binary_to_term(&revision::etf::encode(&c.key))
        .map(|(t, _)| t)
        .ok_or(rustler::Error::BadArg)?;
    let lang = c.lang.map(|l| Atom::from_str(env, &l)).transpose()?;
    Ok(ChangeMap {
        key,
        lang: OrUndefined(lang),
        change: c.change,
        old: OrUndefined(c.old.map(Bytes)),
        new: OrUndefined(c.new.map(Bytes)),
        ops: c.ops.into_iter().map(|(k, t)| (k, Bytes(t))).collect(),
    })
}
