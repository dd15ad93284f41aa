//! Revision storage: keyframes and deltas of resource properties, and the diff the admin shows.
//!
//! Stock Zotonic stores every save as `term_to_binary(Props, [compressed])` (`data_type`
//! `erlang`). We store a keyframe (`zkey1`) at least every N saves and deltas (`zdelta1`) in
//! between. Erlang hands us `term_to_binary(Props)` and gets ETF back; everything else is here.
//!
//! # Stored format (version 1)
//! ```text
//! "ZR" | version: u8 = 1 | kind: u8 ('K' keyframe, 'D' delta) | codec: u8 (0 raw, 1 zstd) | payload
//! keyframe payload = postcard(Keyframe { hash: u32, term: bytes })        term: ETF body
//! delta payload    = postcard(Delta { base_hash: u32, result_hash: u32, ops: [Op] })
//! ```
//! `hash` is the crc32 of the term's canonical ETF (maps sorted), so a delta is refused on any
//! base but its own and a reconstruction is checked end to end. See `delta` for the operations.
//! Unknown versions, kinds and codecs are errors, never guesses.

pub mod delta;
pub mod etf;
pub mod render;
pub mod textdiff;

use crate::{Error, Result};
use etf::Value;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// `backup_revision.data_type` of a keyframe row.
pub const KEYFRAME_TYPE: &str = "zkey1";
/// `backup_revision.data_type` of a delta row.
pub const DELTA_TYPE: &str = "zdelta1";

const MAGIC: &[u8; 2] = b"ZR";
const FORMAT_VERSION: u8 = 1;
const KIND_KEYFRAME: u8 = b'K';
const KIND_DELTA: u8 = b'D';
const CODEC_RAW: u8 = 0;
const CODEC_ZSTD: u8 = 1;
const HEADER_LEN: usize = 5;
/// zstd level by payload size, so compressing one save stays well under a millisecond here
/// (on props, level 19 runs at ~3.5 MB/s, 15 at ~9, 12 at ~17, 3 at ~430): small deltas are
/// squeezed hard; keyframes and rewrites, which are large, get the fast level.
fn zstd_level(len: usize) -> i32 {
    match len {
        0..=2_048 => 19,
        2_049..=6_144 => 15,
        6_145..=16_384 => 12,
        _ => 3,
    }
}
/// Payloads below this are stored raw: zstd's frame costs more than it saves.
const COMPRESS_MIN: usize = 48;
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

#[derive(Serialize, Deserialize)]
struct Keyframe {
    hash: u32,
    term: ByteBuf,
}

#[derive(Serialize, Deserialize)]
struct Delta {
    base_hash: u32,
    result_hash: u32,
    ops: Vec<delta::Op>,
}

/// What a stored revision blob is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Keyframe,
    Delta,
}

impl Kind {
    /// The `data_type` column value for this kind.
    pub fn data_type(self) -> &'static str {
        match self {
            Kind::Keyframe => KEYFRAME_TYPE,
            Kind::Delta => DELTA_TYPE,
        }
    }
}

fn seal(kind: u8, payload: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len() / 2 + 16);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[FORMAT_VERSION, kind]);
    if payload.len() >= COMPRESS_MIN {
        let z = zstd::bulk::compress(payload, zstd_level(payload.len()))
            .map_err(|e| Error::InvalidArgument(format!("zstd: {e}")))?;
        if z.len() < payload.len() {
            out.push(CODEC_ZSTD);
            out.extend_from_slice(&z);
            return Ok(out);
        }
    }
    out.push(CODEC_RAW);
    out.extend_from_slice(payload);
    Ok(out)
}

/// The kind of a stored blob, from its header alone.
pub fn kind(blob: &[u8]) -> Result<Kind> {
    match blob {
        [b'Z', b'R', FORMAT_VERSION, KIND_KEYFRAME, ..] => Ok(Kind::Keyframe),
        [b'Z', b'R', FORMAT_VERSION, KIND_DELTA, ..] => Ok(Kind::Delta),
        [b'Z', b'R', v, ..] if *v != FORMAT_VERSION => Err(Error::BadRevision(format!(
            "unknown revision format version {v}"
        ))),
        _ => Err(Error::BadRevision("not a revision blob".into())),
    }
}

/// Reuses one zstd context over a chain: creating one per delta costs more than decoding it.
#[derive(Default)]
struct Unsealer {
    zstd: Option<zstd::bulk::Decompressor<'static>>,
}

impl Unsealer {
    fn unseal(&mut self, blob: &[u8], want: Kind) -> std::result::Result<Vec<u8>, RevError> {
        let got = kind(blob).map_err(|e| RevError::corrupt(e.to_string()))?;
        if got != want {
            return Err(RevError::corrupt(format!(
                "expected a {} blob, got a {}",
                want.data_type(),
                got.data_type()
            )));
        }
        let body = &blob[HEADER_LEN.min(blob.len())..];
        match blob.get(HEADER_LEN - 1) {
            Some(&CODEC_RAW) => Ok(body.to_vec()),
            Some(&CODEC_ZSTD) => {
                // We always write the content size; it bounds the allocation up front.
                let size = match zstd::zstd_safe::get_frame_content_size(body) {
                    Ok(Some(n)) if n <= MAX_REVISION_BYTES as u64 => n as usize,
                    Ok(Some(_)) => {
                        return Err(RevError::corrupt("revision expands past the size limit"))
                    }
                    _ => return Err(RevError::corrupt("zstd frame without a content size")),
                };
                let z = match &mut self.zstd {
                    Some(z) => z,
                    None => self.zstd.insert(
                        zstd::bulk::Decompressor::new()
                            .map_err(|e| RevError::corrupt(format!("zstd: {e}")))?,
                    ),
                };
                let out = z
                    .decompress(body, size)
                    .map_err(|e| RevError::corrupt(format!("zstd: {e}")))?;
                if out.len() != size {
                    return Err(RevError::corrupt("zstd frame has the wrong content size"));
                }
                Ok(out)
            }
            Some(c) => Err(RevError::corrupt(format!("unknown revision codec {c}"))),
            None => Err(RevError::corrupt("truncated revision header")),
        }
    }
}

fn parse_props(etf_bytes: &[u8]) -> Result<Value> {
    Ok(etf::decode(etf_bytes)?)
}

fn keyframe_of(v: &Value) -> Result<Vec<u8>> {
    let kf = Keyframe {
        hash: etf::canonical_hash(v),
        term: ByteBuf::from(etf::encode_body(v)),
    };
    seal(KIND_KEYFRAME, &postcard_to_vec(&kf)?)
}

fn postcard_to_vec<T: Serialize>(t: &T) -> Result<Vec<u8>> {
    postcard::to_allocvec(t).map_err(|e| Error::InvalidArgument(format!("postcard: {e}")))
}

fn delta_of(base: &Value, new: &Value) -> Result<Vec<u8>> {
    delta_with_base_hash(base, etf::canonical_hash(base), new)
}

fn delta_with_base_hash(base: &Value, base_hash: u32, new: &Value) -> Result<Vec<u8>> {
    let d = Delta {
        base_hash,
        result_hash: etf::canonical_hash(new),
        ops: delta::diff(base, new),
    };
    seal(KIND_DELTA, &postcard_to_vec(&d)?)
}

/// A keyframe blob of `term_to_binary(Props)`.
pub fn encode_keyframe(props_etf: &[u8]) -> Result<Vec<u8>> {
    keyframe_of(&parse_props(props_etf)?)
}

/// A delta blob that turns `base` into `new` (both `term_to_binary` output).
pub fn encode_delta(base_etf: &[u8], new_etf: &[u8]) -> Result<Vec<u8>> {
    delta_of(&parse_props(base_etf)?, &parse_props(new_etf)?)
}

fn open_keyframe(
    blob: &[u8],
    unsealer: &mut Unsealer,
) -> std::result::Result<(Value, u32), RevError> {
    let payload = unsealer.unseal(blob, Kind::Keyframe)?;
    let kf: Keyframe =
        postcard::from_bytes(&payload).map_err(|e| RevError::corrupt(format!("keyframe: {e}")))?;
    let v = etf::decode_body(&kf.term).map_err(RevError::into_corrupt)?;
    Ok((v, kf.hash))
}

/// Applies delta blobs in order to `value`, whose canonical hash is `hash` (None: compute it).
fn apply_chain(
    mut value: Value,
    mut hash: Option<u32>,
    deltas: &[&[u8]],
    unsealer: &mut Unsealer,
) -> std::result::Result<Value, RevError> {
    let mut budget = MAX_REVISION_BYTES;
    let last = deltas.len();
    for (i, blob) in deltas.iter().enumerate() {
        let payload = unsealer.unseal(blob, Kind::Delta)?;
        let d: Delta = postcard::from_bytes(&payload)
            .map_err(|e| RevError::corrupt(format!("delta {}: {e}", i + 1)))?;
        let base_hash = match hash {
            Some(h) => h,
            None => etf::canonical_hash(&value),
        };
        if d.base_hash != base_hash {
            return Err(RevError::corrupt(format!(
                "delta {} does not follow the revision before it",
                i + 1
            )));
        }
        delta::apply(&mut value, &d.ops, &mut budget)?;
        hash = Some(d.result_hash);
        if i + 1 == last && etf::canonical_hash(&value) != d.result_hash {
            return Err(RevError::corrupt(
                "reconstructed revision fails its checksum",
            ));
        }
    }
    if let Some(h) = hash {
        if deltas.is_empty() && etf::canonical_hash(&value) != h {
            return Err(RevError::corrupt("keyframe fails its checksum"));
        }
    }
    Ok(value)
}

fn reconstruct_value(chain: &[&[u8]]) -> Result<Value> {
    let (first, deltas) = chain
        .split_first()
        .ok_or_else(|| Error::BadRevision("empty revision chain".into()))?;
    let mut unsealer = Unsealer::default();
    let (v, h) = open_keyframe(first, &mut unsealer)?;
    Ok(apply_chain(v, Some(h), deltas, &mut unsealer)?)
}

/// `term_to_binary` of the revision at the end of `chain`: a keyframe blob, then the delta
/// blobs after it in save order.
pub fn reconstruct(chain: &[&[u8]]) -> Result<Vec<u8>> {
    Ok(etf::encode(&reconstruct_value(chain)?))
}

/// Like `reconstruct`, starting from a full term instead of a keyframe (e.g. an `erlang` row).
pub fn apply_deltas(base_etf: &[u8], deltas: &[&[u8]]) -> Result<Vec<u8>> {
    let base = etf::decode(base_etf).map_err(RevError::into_corrupt)?;
    Ok(etf::encode(&apply_chain(
        base,
        None,
        deltas,
        &mut Unsealer::default(),
    )?))
}

/// The delta from the revision at the end of `chain` to `new_etf`, in one pass: what a save
/// needs when the previous revision is stored as a chain.
pub fn encode_delta_after(chain: &[&[u8]], new_etf: &[u8]) -> Result<Vec<u8>> {
    let base = reconstruct_value(chain)?;
    delta_of(&base, &parse_props(new_etf)?)
}

/// The checksum of the revision a stored blob ends at: a keyframe's own, a delta's result.
fn end_hash(blob: &[u8]) -> Result<u32> {
    let mut unsealer = Unsealer::default();
    match kind(blob)? {
        Kind::Keyframe => {
            let payload = unsealer.unseal(blob, Kind::Keyframe)?;
            let kf: Keyframe = postcard::from_bytes(&payload)
                .map_err(|e| RevError::corrupt(format!("keyframe: {e}")))?;
            Ok(kf.hash)
        }
        Kind::Delta => {
            let payload = unsealer.unseal(blob, Kind::Delta)?;
            let d: Delta = postcard::from_bytes(&payload)
                .map_err(|e| RevError::corrupt(format!("delta: {e}")))?;
            Ok(d.result_hash)
        }
    }
}

/// The delta from `base_etf` to `new_etf`, when `base_etf` is the revision that `last` (the
/// resource's newest stored blob) ends at, proven by the checksum `last` carries; otherwise
/// `StaleBase`. A save that knows the props it replaces (Zotonic's `pre_props`) so skips
/// reading and rebuilding the chain, and still never writes a delta onto the wrong base.
pub fn encode_delta_from(last: &[u8], base_etf: &[u8], new_etf: &[u8]) -> Result<Vec<u8>> {
    let want = end_hash(last)?;
    let base = parse_props(base_etf)?;
    let base_hash = etf::canonical_hash(&base);
    if base_hash != want {
        return Err(Error::StaleBase(
            "the props differ from the newest stored revision".into(),
        ));
    }
    delta_with_base_hash(&base, base_hash, &parse_props(new_etf)?)
}

/// A keyframe of the revision at the end of `chain` (pruning rewrites the oldest kept row so).
pub fn rekey(chain: &[&[u8]]) -> Result<Vec<u8>> {
    keyframe_of(&reconstruct_value(chain)?)
}

pub use render::{diff_props, ChangeKind, PropChange};

#[cfg(test)]
mod tests;
