//! Revision storage: keyframes and deltas of resource properties, and the diff the admin shows.
//!
//! Stock Zotonic stores every save as `term_to_binary(Props, [compressed])` (`data_type`
//! `erlang`). We store a keyframe at least every N saves and deltas in between, written in
//! format 2 (`zkey2`, `zdelta2`), compressed with the site's own zstd dictionary when it has
//! one. Format 1 rows (`zkey1`, `zdelta1`) stay readable. Erlang hands us `term_to_binary(Props)`
//! and gets ETF back; everything else is here.
//!
//! # Stored format
//! The header is in `seal`; payloads are:
//! ```text
//! format 2 keyframe = crc32 (4 bytes, big endian) | canonical ETF body of the props
//! format 2 delta    = postcard(Delta { result: [u8; 4], ops: [delta::Op] })
//! format 1 keyframe = postcard(Keyframe { hash: u32, term: bytes })
//! format 1 delta    = postcard(Delta { base_hash: u32, result_hash: u32, ops: [delta_v1::Op] })
//! ```
//! The crc32 is of the term's canonical ETF (every map sorted by encoded key), so a
//! reconstruction is checked end to end: whatever happened to the rows in between, a revision
//! that does not hash to what was saved is an error, never a wrong revision. Inside the codec
//! every term is kept canonical (`etf::canonicalize`), which is what lets a delta name a map
//! entry by position, and lets the checksum be taken of the plain encoding.

pub mod delta;
pub mod delta_v1;
pub mod dict;
pub mod etf;
pub mod render;
pub mod seal;
pub mod textdiff;

use crate::archive::JobControl;
use crate::{Error, Result};
pub use dict::{Dictionary, Dicts, SharedDicts};
use etf::Value;
pub use seal::Kind;
use seal::Unsealer;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// `backup_revision.data_type` of the keyframe and delta rows written now.
pub const KEYFRAME_TYPE: &str = "zkey2";
pub const DELTA_TYPE: &str = "zdelta2";
/// Most bytes one stored revision may expand to, and that one reconstruction may produce.
pub const MAX_REVISION_BYTES: usize = 128 << 20;

/// Why a revision could not be encoded or decoded; becomes an `Error` at the crate boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevError {
    /// A term we were given is not ETF we can read.
    Term(String),
    /// Stored revision data is damaged or does not belong where it was put.
    Corrupt(String),
}

impl RevError {
    pub fn etf(msg: impl Into<String>) -> Self {
        RevError::Term(msg.into())
    }

    pub fn corrupt(msg: impl Into<String>) -> Self {
        RevError::Corrupt(msg.into())
    }

    /// A term error inside stored data is corruption of that data.
    pub fn into_corrupt(self) -> Self {
        match self {
            RevError::Term(m) => RevError::Corrupt(format!("bad term in revision: {m}")),
            c => c,
        }
    }
}

impl From<RevError> for Error {
    fn from(e: RevError) -> Self {
        match e {
            RevError::Term(m) => Error::InvalidArgument(format!("unsupported term: {m}")),
            RevError::Corrupt(m) => Error::BadRevision(m),
        }
    }
}

/// The dictionaries a call may read rows with, and the one it writes new rows with (none: plain
/// zstd).
#[derive(Debug, Clone, Copy)]
pub struct Codec<'a> {
    pub dicts: &'a Dicts,
    pub write_with: Option<&'a Dictionary>,
}

impl<'a> Codec<'a> {
    /// Reads with `dicts`, writes with the dictionary `write_with` (0: none) among them.
    pub fn new(dicts: &'a Dicts, write_with: u32) -> Result<Self> {
        let write_with = match write_with {
            0 => None,
            id => Some(dicts.get(id)?.as_ref()),
        };
        Ok(Codec { dicts, write_with })
    }
}

fn corrupt(msg: impl Into<String>) -> Error {
    Error::BadRevision(msg.into())
}

#[derive(Serialize, Deserialize)]
struct KeyframeV1 {
    hash: u32,
    term: ByteBuf,
}

#[derive(Serialize, Deserialize)]
struct DeltaV1 {
    base_hash: u32,
    result_hash: u32,
    ops: Vec<delta_v1::Op>,
}

#[derive(Serialize, Deserialize)]
struct DeltaV2 {
    result: [u8; 4],
    ops: Vec<delta::Op>,
}

/// The props of `term_to_binary(Props)`, canonical.
fn parse_props(etf_bytes: &[u8]) -> Result<Value> {
    let mut v = etf::decode(etf_bytes)?;
    etf::canonicalize(&mut v);
    Ok(v)
}

fn keyframe_payload(v: &Value) -> Vec<u8> {
    let body = etf::encode_body(v);
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

fn delta_payload(base: &Value, new: &Value) -> Result<Vec<u8>> {
    let d = DeltaV2 {
        result: etf::canonicalized_hash(new).to_be_bytes(),
        ops: delta::diff(base, new),
    };
    postcard::to_allocvec(&d).map_err(|e| Error::InvalidArgument(format!("postcard: {e}")))
}

/// A keyframe blob of `term_to_binary(Props)`.
pub fn encode_keyframe(props_etf: &[u8], c: Codec<'_>) -> Result<Vec<u8>> {
    seal::seal(
        Kind::Keyframe,
        &keyframe_payload(&parse_props(props_etf)?),
        c.write_with,
    )
}

/// A delta blob that turns `base` into `new` (both `term_to_binary` output).
pub fn encode_delta(base_etf: &[u8], new_etf: &[u8], c: Codec<'_>) -> Result<Vec<u8>> {
    delta_of(&parse_props(base_etf)?, &parse_props(new_etf)?, c)
}

fn delta_of(base: &Value, new: &Value, c: Codec<'_>) -> Result<Vec<u8>> {
    seal::seal(Kind::Delta, &delta_payload(base, new)?, c.write_with)
}

/// A keyframe's props (canonical) and checksum. A format 1 keyframe is checked against its
/// checksum only when `check` (a reconstruction through deltas checks the end result instead).
fn open_keyframe(blob: &[u8], u: &mut Unsealer<'_>, check: bool) -> Result<(Value, u32)> {
    let (h, payload) = u.unseal(blob, Kind::Keyframe)?;
    if h.version == 1 {
        let kf: KeyframeV1 =
            postcard::from_bytes(&payload).map_err(|e| corrupt(format!("keyframe: {e}")))?;
        let mut v = etf::decode_body(&kf.term).map_err(RevError::into_corrupt)?;
        etf::canonicalize(&mut v);
        if check && etf::canonicalized_hash(&v) != kf.hash {
            return Err(corrupt("keyframe fails its checksum"));
        }
        return Ok((v, kf.hash));
    }
    let (hash, body) = checked_keyframe(&payload)?;
    Ok((
        etf::decode_body(body).map_err(RevError::into_corrupt)?,
        hash,
    ))
}

/// A format 2 keyframe payload's checksum and props body, the body checked against it (it is
/// written canonical, so the stored bytes are what the checksum was taken of).
fn checked_keyframe(payload: &[u8]) -> Result<(u32, &[u8])> {
    let (hash, body) = payload
        .split_first_chunk::<4>()
        .ok_or_else(|| corrupt("truncated keyframe"))?;
    let hash = u32::from_be_bytes(*hash);
    if crc32fast::hash(body) != hash {
        return Err(corrupt("keyframe fails its checksum"));
    }
    Ok((hash, body))
}

/// Applies delta blobs in order to the canonical `value`, whose checksum is `hash` (None:
/// not known, e.g. an `erlang` row), and checks the result against the last delta's checksum.
fn apply_chain(
    mut value: Value,
    mut hash: Option<u32>,
    deltas: &[&[u8]],
    u: &mut Unsealer<'_>,
) -> Result<Value> {
    let mut budget = MAX_REVISION_BYTES;
    for (i, blob) in deltas.iter().enumerate() {
        let (h, payload) = u.unseal(blob, Kind::Delta)?;
        if h.version == 1 {
            let d: DeltaV1 = postcard::from_bytes(&payload)
                .map_err(|e| corrupt(format!("delta {}: {e}", i + 1)))?;
            let base_hash = match hash {
                Some(h) => h,
                None => etf::canonicalized_hash(&value),
            };
            if d.base_hash != base_hash {
                return Err(corrupt(format!(
                    "delta {} does not follow the revision before it",
                    i + 1
                )));
            }
            delta_v1::apply(&mut value, &d.ops, &mut budget)?;
            // Format 1 may add map keys out of order.
            etf::canonicalize(&mut value);
            hash = Some(d.result_hash);
        } else {
            let d: DeltaV2 = postcard::from_bytes(&payload)
                .map_err(|e| corrupt(format!("delta {}: {e}", i + 1)))?;
            delta::apply(&mut value, &d.ops, &mut budget)?;
            hash = Some(u32::from_be_bytes(d.result));
        }
    }
    if !deltas.is_empty() && Some(etf::canonicalized_hash(&value)) != hash {
        return Err(corrupt("reconstructed revision fails its checksum"));
    }
    Ok(value)
}

fn reconstruct_value(chain: &[&[u8]], dicts: &Dicts) -> Result<Value> {
    let (first, deltas) = chain
        .split_first()
        .ok_or_else(|| corrupt("empty revision chain"))?;
    let mut u = Unsealer::new(dicts);
    let (v, h) = open_keyframe(first, &mut u, deltas.is_empty())?;
    apply_chain(v, Some(h), deltas, &mut u)
}

/// `term_to_binary` of the revision at the end of `chain`: a keyframe blob, then the delta
/// blobs after it in save order.
pub fn reconstruct(chain: &[&[u8]], dicts: &Dicts) -> Result<Vec<u8>> {
    Ok(etf::encode(&reconstruct_value(chain, dicts)?))
}

/// Like `reconstruct`, starting from a full term instead of a keyframe (e.g. an `erlang` row).
pub fn apply_deltas(base_etf: &[u8], deltas: &[&[u8]], dicts: &Dicts) -> Result<Vec<u8>> {
    let mut base = etf::decode(base_etf).map_err(RevError::into_corrupt)?;
    etf::canonicalize(&mut base);
    let mut u = Unsealer::new(dicts);
    Ok(etf::encode(&apply_chain(base, None, deltas, &mut u)?))
}

/// The delta from the revision at the end of `chain` to `new_etf`, in one pass: what a save
/// needs when the previous revision is stored as a chain.
pub fn encode_delta_after(chain: &[&[u8]], new_etf: &[u8], c: Codec<'_>) -> Result<Vec<u8>> {
    let base = reconstruct_value(chain, c.dicts)?;
    delta_of(&base, &parse_props(new_etf)?, c)
}

/// The checksum of the revision a stored blob ends at: a keyframe's own, a delta's result.
/// Read without decoding the keyframe's props: a save pays for this on every delta it makes.
fn end_hash(blob: &[u8], dicts: &Dicts) -> Result<u32> {
    let mut u = Unsealer::new(dicts);
    match seal::header(blob)?.kind {
        Kind::Keyframe => {
            let (h, payload) = u.unseal(blob, Kind::Keyframe)?;
            if h.version == 1 {
                let kf: KeyframeV1 = postcard::from_bytes(&payload)
                    .map_err(|e| corrupt(format!("keyframe: {e}")))?;
                return Ok(kf.hash);
            }
            Ok(checked_keyframe(&payload)?.0)
        }
        Kind::Delta => {
            let (h, payload) = u.unseal(blob, Kind::Delta)?;
            if h.version == 1 {
                let d: DeltaV1 =
                    postcard::from_bytes(&payload).map_err(|e| corrupt(format!("delta: {e}")))?;
                Ok(d.result_hash)
            } else {
                let d: DeltaV2 =
                    postcard::from_bytes(&payload).map_err(|e| corrupt(format!("delta: {e}")))?;
                Ok(u32::from_be_bytes(d.result))
            }
        }
    }
}

/// The delta from `base_etf` to `new_etf`, when `base_etf` is the revision that `last` (the
/// resource's newest stored blob) ends at, proven by the checksum `last` carries; otherwise
/// `StaleBase`. A save that knows the props it replaces so skips reading and rebuilding the
/// chain, and still never writes a delta onto the wrong base.
pub fn encode_delta_from(
    last: &[u8],
    base_etf: &[u8],
    new_etf: &[u8],
    c: Codec<'_>,
) -> Result<Vec<u8>> {
    let want = end_hash(last, c.dicts)?;
    let base = parse_props(base_etf)?;
    if etf::canonicalized_hash(&base) != want {
        return Err(Error::StaleBase(
            "the props differ from the newest stored revision".into(),
        ));
    }
    delta_of(&base, &parse_props(new_etf)?, c)
}

/// A keyframe of the revision at the end of `chain` (pruning rewrites the oldest kept row so).
pub fn rekey(chain: &[&[u8]], c: Codec<'_>) -> Result<Vec<u8>> {
    let v = reconstruct_value(chain, c.dicts)?;
    seal::seal(Kind::Keyframe, &keyframe_payload(&v), c.write_with)
}

/// The uncompressed payloads rows of the revisions `history` (successive `term_to_binary`
/// props of one resource) would have: a keyframe of the first, a delta for each next one. What
/// a dictionary is trained on.
pub fn payloads(history: &[&[u8]]) -> Result<Vec<(Kind, Vec<u8>)>> {
    let mut out = Vec::with_capacity(history.len());
    let mut prev: Option<Value> = None;
    for etf_bytes in history {
        let v = parse_props(etf_bytes)?;
        out.push(match &prev {
            None => (Kind::Keyframe, keyframe_payload(&v)),
            Some(p) => (Kind::Delta, delta_payload(p, &v)?),
        });
        prev = Some(v);
    }
    Ok(out)
}

/// `dict::train_and_measure` on the rows of the histories `train` and `holdout` (each as
/// `payloads` takes it), stopping at the job's check between histories.
pub fn train_on_histories(
    train: &[Vec<Vec<u8>>],
    holdout: &[Vec<Vec<u8>>],
    current: Option<&Dictionary>,
    max_bytes: usize,
    ctl: &JobControl,
) -> Result<dict::Trained> {
    let rows = |histories: &[Vec<Vec<u8>>]| -> Result<Vec<_>> {
        let mut out = Vec::new();
        for h in histories {
            ctl.check()?;
            let refs: Vec<&[u8]> = h.iter().map(Vec::as_slice).collect();
            out.extend(payloads(&refs)?);
        }
        Ok(out)
    };
    dict::train_and_measure(&rows(train)?, &rows(holdout)?, current, max_bytes)
}

pub use delta::Cost as DeltaCost;

/// What a stored delta costs: its stored size, its payload size and where the payload's bytes
/// go. Format 2 deltas only.
pub fn delta_cost(blob: &[u8], dicts: &Dicts) -> Result<DeltaCost> {
    let mut u = Unsealer::new(dicts);
    let (h, payload) = u.unseal(blob, Kind::Delta)?;
    if h.version != 2 {
        return Err(Error::InvalidArgument("not a format 2 delta".into()));
    }
    let d: DeltaV2 = postcard::from_bytes(&payload).map_err(|e| corrupt(format!("delta: {e}")))?;
    Ok(DeltaCost {
        stored: blob.len(),
        payload: payload.len(),
        ..delta::cost(d.result.len(), &d.ops)
    })
}

pub use render::{diff_props, ChangeKind, PropChange};

#[cfg(test)]
mod tests;
