//! Revision codec NIFs (`backup_nif.erl` specs them): thin glue over `backup_core::revision`.
//! Props travel as `term_to_binary(Props)` bytes both ways, which is cheap for the VM and keeps
//! all term walking in the core. A site's dictionaries live in a `Dicts` resource that Erlang
//! fills from the database; codec calls get it and the id of the dictionary new rows are written
//! with (`dict`, 0: none), and run on a dirty CPU scheduler: short work, but of unbounded size.
//! Training a dictionary takes seconds, so it runs as a job on a thread of its own.

use crate::job;
use backup_core::revision::SharedDicts;
use backup_core::revision::{self, textdiff::Change, ChangeKind, Codec, DeltaCost, PropChange};
use backup_core::term::{Bytes, Done, OrUndefined, Reply};
use rustler::{Atom, Binary, Decoder, Encoder, Env, NifMap, NifResult, ResourceArc, Term};

/// The dictionaries of one site, shared by every process of the site.
#[derive(Default)]
pub struct SiteDicts(SharedDicts);

#[rustler::resource_impl]
impl rustler::Resource for SiteDicts {}

type Set = ResourceArc<SiteDicts>;

/// A blob or a props term, as a reply.
type Blob = Reply<Bytes>;

fn blob(r: backup_core::Result<Vec<u8>>) -> Blob {
    Reply::from(r.map(Bytes))
}

/// Runs `f` with a codec over the site's dictionaries writing with dictionary `write_with`.
fn with_codec(
    set: &Set,
    write_with: u32,
    f: impl FnOnce(Codec) -> backup_core::Result<Vec<u8>>,
) -> Blob {
    let dicts = set.0.read();
    blob(Codec::new(&dicts, write_with).and_then(f))
}

/// A proper list of binaries (a chain of blobs), else `badarg`: rustler's `Vec` decoder stops
/// at an improper tail without a word.
struct Chain<'a>(Vec<&'a [u8]>);

impl<'a> Decoder<'a> for Chain<'a> {
    fn decode(term: Term<'a>) -> NifResult<Self> {
        term.list_length().map_err(|_| rustler::Error::BadArg)?;
        let binaries: Vec<Binary<'a>> = term.decode()?;
        Ok(Chain(binaries.iter().map(|b| b.as_slice()).collect()))
    }
}

/// An empty set of dictionaries.
#[rustler::nif]
fn revision_dicts_new() -> Set {
    ResourceArc::new(SiteDicts::default())
}

/// Prepares dictionary `id` (with `warm`, its encoder tables too) and adds it to the set.
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_dict_put(set: Set, id: u32, bytes: Binary, warm: bool) -> Done {
    Done::from(set.0.put(id, bytes.to_vec(), warm))
}

/// The ids of the dictionaries loaded, ascending.
#[rustler::nif]
fn revision_dict_ids(set: Set) -> Vec<u32> {
    set.0.read().ids()
}

/// A `zkey2` blob of `props`.
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_keyframe(set: Set, dict: u32, props: Binary) -> Blob {
    with_codec(&set, dict, |c| revision::encode_keyframe(&props, c))
}

/// A `zdelta2` blob turning `base` into `new`.
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_delta(set: Set, dict: u32, base: Binary, new: Binary) -> Blob {
    with_codec(&set, dict, |c| revision::encode_delta(&base, &new, c))
}

/// The delta from the revision the chain `[KeyBlob | DeltaBlobs]` ends at to `new`, without a
/// round trip through Erlang.
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_delta_after(set: Set, dict: u32, chain: Chain, new: Binary) -> Blob {
    with_codec(&set, dict, |c| {
        revision::encode_delta_after(&chain.0, &new, c)
    })
}

/// The delta from `base` to `new`, when `base` is the revision `last` ends at (else
/// `stale_base`).
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_delta_from(set: Set, dict: u32, last: Binary, base: Binary, new: Binary) -> Blob {
    with_codec(&set, dict, |c| {
        revision::encode_delta_from(&last, &base, &new, c)
    })
}

/// The props the chain ends at.
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_reconstruct(set: Set, chain: Chain) -> Blob {
    blob(revision::reconstruct(&chain.0, &set.0.read()))
}

/// The props `deltas` make of a full term (an `erlang` row).
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_apply(set: Set, base: Binary, deltas: Chain) -> Blob {
    blob(revision::apply_deltas(&base, &deltas.0, &set.0.read()))
}

/// The chain's last revision as a keyframe (pruning rewrites the oldest surviving row so).
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_rekey(set: Set, dict: u32, chain: Chain) -> Blob {
    with_codec(&set, dict, |c| revision::rekey(&chain.0, c))
}

/// Where the bytes of a stored `zdelta2` row go (the benchmark prints it).
#[rustler::nif(schedule = "DirtyCpu")]
fn revision_delta_cost(set: Set, blob: Binary) -> Reply<DeltaCost> {
    Reply::from(revision::delta_cost(&blob, &set.0.read()))
}

/// A job (no progress) that trains a dictionary of at most `max_bytes` on the rows of the
/// histories `train` (each the successive props of one resource) and measures it against
/// dictionary `current` (0: none) on those of `holdout`: `{backup_job_done, Ref, {ok, Trained}}`.
#[rustler::nif]
fn revision_train<'a>(
    env: Env<'a>,
    reference: Term<'a>,
    set: Set,
    current: u32,
    train: Vec<Chain>,
    holdout: Vec<Chain>,
    max_bytes: usize,
) -> Term<'a> {
    let owned = |hs: Vec<Chain>| -> Vec<Vec<Vec<u8>>> {
        hs.iter()
            .map(|h| h.0.iter().map(|b| b.to_vec()).collect())
            .collect()
    };
    let (train, holdout) = (owned(train), owned(holdout));
    let current = match current {
        0 => None,
        id => match set.0.read().get(id) {
            Ok(d) => Some(d.clone()),
            Err(e) => return Done::from(Err(e)).encode(env),
        },
    };
    job::start(env, reference, None, None, None, move |ctl| {
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
fn revision_diff<'a>(env: Env<'a>, a: Binary, b: Binary) -> NifResult<Reply<Vec<ChangeMap<'a>>>> {
    let changes = match revision::diff_props(&a, &b) {
        Ok(changes) => changes,
        Err(e) => return Ok(Reply::from(Err(e))),
    };
    let list: NifResult<_> = changes.into_iter().map(|c| change_map(env, c)).collect();
    Ok(Reply::from(Ok(list?)))
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
