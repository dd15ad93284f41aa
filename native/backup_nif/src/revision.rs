//! Revision codec NIFs: thin glue over `backup_core::revision`.
//!
//! Props travel as `term_to_binary(Props)` bytes both ways, which is cheap for the VM and keeps
//! all term walking in the core. A site's dictionaries live in a `Dicts` resource that Erlang
//! fills from the database; every codec call gets it, and the id of the dictionary new rows are
//! written with (0: none). Codec calls run on a dirty CPU scheduler: short work, but of unbounded
//! size. Training a dictionary takes seconds, so it runs as a job on a thread of its own.

use crate::job::{self, Start};
use crate::term::{self, Bin, Done, OrUndefined, Reply};
use backup_core::revision::{
    self, dict, textdiff::Change, ChangeKind, Codec, Dictionary, Dicts, PropChange,
};
use rustler::{Binary, Encoder, Env, NifMap, NifResult, NifUnitEnum, Resource, ResourceArc, Term};
use std::sync::{Arc, RwLock};

/// A stored blob or a props term (`term_to_binary` bytes), as a reply.
type Blob = Reply<Bin<Vec<u8>>>;

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
    term::reply(r.map(Bin))
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
fn revision_dict_put(set: ResourceArc<SiteDicts>, id: u32, bytes: Binary<'_>, warm: bool) -> Done {
    let prepared = Dictionary::new(id, bytes.as_slice().to_vec()).and_then(|d| {
        if warm {
            d.warm().map(|_| d)
        } else {
            Ok(d)
        }
    });
    term::done(prepared.map(|d| {
        let mut dicts = set.dicts.write().unwrap_or_else(|p| p.into_inner());
        dicts.insert(Arc::new(d));
    }))
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
fn revision_delta_after<'a>(
    set: ResourceArc<SiteDicts>,
    dict: u32,
    chain: Term<'a>,
    new: Binary<'a>,
) -> NifResult<Blob> {
    let chain = binaries(chain)?;
    let chain = slices(&chain);
    Ok(with_codec(&set, dict, |c| {
        revision::encode_delta_after(&chain, &new, c)
    }))
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
fn revision_reconstruct(set: ResourceArc<SiteDicts>, chain: Term<'_>) -> NifResult<Blob> {
    let chain = binaries(chain)?;
    Ok(blob(revision::reconstruct(&slices(&chain), &set.read())))
}

/// `revision_apply(Dicts, BaseEtf, DeltaBlobs) -> {ok, PropsEtf}`: deltas on a full term (an
/// `erlang` row).
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_apply<'a>(
    set: ResourceArc<SiteDicts>,
    base: Binary<'a>,
    deltas: Term<'a>,
) -> NifResult<Blob> {
    let deltas = binaries(deltas)?;
    Ok(blob(revision::apply_deltas(
        &base,
        &slices(&deltas),
        &set.read(),
    )))
}

/// `revision_rekey(Dicts, Dict, [KeyBlob | DeltaBlobs]) -> {ok, KeyBlob}`: the chain's last
/// revision as a keyframe (pruning rewrites the oldest surviving row so).
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_rekey(set: ResourceArc<SiteDicts>, dict: u32, chain: Term<'_>) -> NifResult<Blob> {
    let chain = binaries(chain)?;
    Ok(with_codec(&set, dict, |c| {
        revision::rekey(&slices(&chain), c)
    }))
}

/// Where the bytes of a stored `zdelta2` row go (the benchmark prints it).
#[derive(NifMap)]
#[rustler(encode)]
struct DeltaCost {
    stored: usize,
    payload: usize,
    checksum: usize,
    framing: usize,
    paths: usize,
    ints: usize,
    times: usize,
    text_copies: usize,
    text_inserts: usize,
    sets: usize,
    puts: usize,
    drops: usize,
    lists: usize,
}

/// `revision_delta_cost(Dicts, Blob) -> {ok, DeltaCost}`.
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_delta_cost(set: ResourceArc<SiteDicts>, blob: Binary<'_>) -> Reply<DeltaCost> {
    term::reply(revision::delta_cost(&blob, &set.read()).map(|c| {
        let p = c.parts;
        DeltaCost {
            stored: c.stored,
            payload: c.payload,
            checksum: p.checksum,
            framing: p.framing,
            paths: p.paths,
            ints: p.ints,
            times: p.times,
            text_copies: p.text_copies,
            text_inserts: p.text_inserts,
            sets: p.sets,
            puts: p.puts,
            drops: p.drops,
            lists: p.lists,
        }
    }))
}

/// A trained dictionary and how it did on the holdout rows (sizes in bytes).
#[derive(NifMap)]
#[rustler(encode)]
struct Trained {
    dict: Bin<Vec<u8>>,
    sample_bytes: u64,
    holdout_raw: u64,
    holdout_current: u64,
    holdout_candidate: u64,
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
    train: Term<'a>,
    holdout: Term<'a>,
    max_bytes: usize,
) -> NifResult<Term<'a>> {
    let histories = |t: Term<'a>| -> NifResult<Vec<Vec<Vec<u8>>>> {
        t.into_list_iterator()?
            .map(|h| Ok(binaries(h)?.iter().map(|b| b.to_vec()).collect()))
            .collect()
    };
    let (train, holdout) = (histories(train)?, histories(holdout)?);
    let current = match current {
        0 => None,
        id => match set.read().get(id) {
            Ok(d) => Some(d.clone()),
            Err(e) => return Ok(term::error(env, e)),
        },
    };
    let start = Start::new(reference, term::undefined(env));
    job::start(env, start, move |ctl| {
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
        let r = dict::train_and_measure(&t, &h, current.as_deref(), max_bytes)?;
        Ok(Trained {
            dict: Bin(r.dict),
            sample_bytes: r.sample_bytes,
            holdout_raw: r.holdout_raw,
            holdout_current: r.holdout_current,
            holdout_candidate: r.holdout_candidate,
        })
    })
}

#[derive(NifUnitEnum)]
enum Kind {
    Added,
    Removed,
    Changed,
}

#[derive(NifUnitEnum)]
enum Op {
    Eq,
    Ins,
    Del,
}

/// One changed property: `key` is the property's own term, `lang` an atom or `undefined`.
#[derive(NifMap)]
#[rustler(encode)]
struct ChangeMap<'a> {
    key: Term<'a>,
    lang: Term<'a>,
    change: Kind,
    old: OrUndefined<Bin<Vec<u8>>>,
    new: OrUndefined<Bin<Vec<u8>>>,
    ops: Vec<(Op, Bin<Vec<u8>>)>,
}

/// `revision_diff(PropsEtfA, PropsEtfB) -> {ok, [Change]}`, each change
/// `#{key, lang, change => added|removed|changed, old, new, ops => [{eq|ins|del, Text}]}`.
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_diff<'a>(env: Env<'a>, a: Binary<'a>, b: Binary<'a>) -> NifResult<Term<'a>> {
    let changes = match revision::diff_props(&a, &b) {
        Ok(changes) => changes,
        Err(e) => return Ok(term::error(env, e)),
    };
    let list = changes
        .into_iter()
        .map(|c| change_map(env, c))
        .collect::<NifResult<Vec<_>>>()?;
    Ok(term::reply(Ok(list)).encode(env))
}

fn change_map(env: Env<'_>, c: PropChange) -> NifResult<ChangeMap<'_>> {
    // The key came out of a term the caller gave us, so its atoms exist: safe decoding holds.
    let key = env
        .binary_to_term(&revision::etf::encode(&c.key))
        .map(|(t, _)| t)
        .ok_or(rustler::Error::BadArg)?;
    let lang = match &c.lang {
        Some(l) => rustler::Atom::from_str(env, l)?.encode(env),
        None => term::undefined(env),
    };
    let change = match c.change {
        ChangeKind::Added => Kind::Added,
        ChangeKind::Removed => Kind::Removed,
        ChangeKind::Changed => Kind::Changed,
    };
    let ops = c.ops.into_iter().map(|(k, t)| {
        let op = match k {
            Change::Eq => Op::Eq,
            Change::Ins => Op::Ins,
            Change::Del => Op::Del,
        };
        (op, Bin(t))
    });
    Ok(ChangeMap {
        key,
        lang,
        change,
        old: OrUndefined(c.old.map(Bin)),
        new: OrUndefined(c.new.map(Bin)),
        ops: ops.collect(),
    })
}
