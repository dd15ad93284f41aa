//! The stored form of a revision row: a header naming the format, the kind, the codec and the
//! dictionary, then the payload, raw or zstd-compressed.
//!
//! ```text
//! format 1 (zkey1, zdelta1; read only):
//!   "ZR" | 1 | kind ('K' | 'D') | codec (0 raw, 1 zstd frame) | payload
//! format 2 (zkey2, zdelta2):
//!   'z' | flags | [dictionary id: varint, codec 2] | [payload size: varint, codec 1 or 2] | body
//!   flags: 0x80 for a delta, 0x00 for a keyframe; the low two bits are the codec:
//!   0 raw, 1 zstd, 2 zstd with the site dictionary named next.
//! ```
//! A format 2 zstd body is a frame without magic number, content size, dictionary id or
//! checksum: the header carries the size and the dictionary, and every payload carries the
//! crc32 of the revision it makes, checked end to end. Unknown versions, kinds and codecs are
//! errors, never guesses.

use super::dict::{Dictionary, Dicts, LEVELS};
use super::MAX_REVISION_BYTES;
use crate::{Error, Result};
use zstd::zstd_safe::{self, CCtx, CParameter, DCtx, DParameter, FrameFormat};

const V1: u8 = 1;
const V1_HEADER_LEN: usize = 5;
const V1_KEYFRAME: u8 = b'K';
const V1_DELTA: u8 = b'D';
const V2_MARK: u8 = b'z';
const V2_DELTA: u8 = 0x80;
const V2_FLAGS_KNOWN: u8 = V2_DELTA | 0x03;
const CODEC_RAW: u8 = 0;
const CODEC_ZSTD: u8 = 1;
const CODEC_ZSTD_DICT: u8 = 2;
/// Payloads below this are stored raw: a frame costs more than it saves.
const COMPRESS_MIN: usize = 24;

/// What a stored revision blob is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Keyframe,
    Delta,
}

/// The parsed header of a stored blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub kind: Kind,
    /// The dictionary the body needs.
    pub dict: Option<u32>,
    /// The payload size, for a compressed body of format 2.
    pub size: Option<usize>,
    compressed: bool,
    body: usize,
}

fn corrupt(msg: impl Into<String>) -> Error {
    Error::BadRevision(msg.into())
}

/// Reads a LEB128 varint of at most `max_bytes` bytes at `*pos`.
fn varint(blob: &[u8], pos: &mut usize, max_bytes: usize) -> Result<u64> {
    let mut v = 0u64;
    for i in 0..max_bytes {
        let b = *blob
            .get(*pos)
            .ok_or_else(|| corrupt("truncated revision header"))?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(corrupt("overlong varint in revision header"))
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The header of a stored blob.
pub fn header(blob: &[u8]) -> Result<Header> {
    match blob {
        [b'Z', b'R', V1, kind, codec, ..] => {
            let kind = match *kind {
                V1_KEYFRAME => Kind::Keyframe,
                V1_DELTA => Kind::Delta,
                k => return Err(corrupt(format!("unknown revision kind {k}"))),
            };
            let compressed = match *codec {
                CODEC_RAW => false,
                CODEC_ZSTD => true,
                c => return Err(corrupt(format!("unknown revision codec {c}"))),
            };
            Ok(Header {
                version: V1,
                kind,
                dict: None,
                size: None,
                compressed,
                body: V1_HEADER_LEN,
            })
        }
        [b'Z', b'R', v, ..] => Err(corrupt(format!("unknown revision format version {v}"))),
        [V2_MARK, flags, ..] => {
            if flags & !V2_FLAGS_KNOWN != 0 {
                return Err(corrupt(format!("unknown revision flags {flags:#x}")));
            }
            let kind = if flags & V2_DELTA != 0 {
                Kind::Delta
            } else {
                Kind::Keyframe
            };
            let mut pos = 2;
            let codec = flags & 0x03;
            let dict = match codec {
                CODEC_ZSTD_DICT => {
                    let id = varint(blob, &mut pos, 2)?;
                    if id == 0 {
                        return Err(corrupt("revision names dictionary 0"));
                    }
                    Some(id as u32)
                }
                CODEC_RAW | CODEC_ZSTD => None,
                c => return Err(corrupt(format!("unknown revision codec {c}"))),
            };
            let size = match codec {
                CODEC_RAW => None,
                _ => {
                    let n = varint(blob, &mut pos, 4)?;
                    if n as usize > MAX_REVISION_BYTES {
                        return Err(corrupt("revision expands past the size limit"));
                    }
                    Some(n as usize)
                }
            };
            Ok(Header {
                version: 2,
                kind,
                dict,
                size,
                compressed: codec != CODEC_RAW,
                body: pos,
            })
        }
        _ => Err(corrupt("not a revision blob")),
    }
}

/// The zstd level for a payload of `len` bytes, as an index into `LEVELS`. Measured with a site
/// dictionary on page keyframes (2 cores, loaded): level 15 compresses 5-7 MB/s, 12 13-23, 9
/// about 21, 3 150 and more, and each step down costs 2-7% in size (19 gains under 0.5% on 15
/// at half its speed). So small payloads, nearly all rows, are squeezed hard, and no payload
/// takes much more than a millisecond: the rare large keyframe or rewritten body gets level 3.
fn level(len: usize) -> usize {
    match len {
        0..=6_144 => 0,
        6_145..=12_288 => 1,
        12_289..=20_480 => 2,
        _ => 3,
    }
}

fn compress(payload: &[u8], dict: Option<&Dictionary>) -> Result<Vec<u8>> {
    let zerr = |e: usize| Error::InvalidArgument(format!("zstd: {}", zstd_safe::get_error_name(e)));
    let mut cctx =
        CCtx::try_create().ok_or_else(|| Error::InvalidArgument("zstd: no memory".into()))?;
    let level = level(payload.len());
    for p in [
        CParameter::Format(FrameFormat::Magicless),
        CParameter::ContentSizeFlag(false),
        CParameter::ChecksumFlag(false),
        CParameter::DictIdFlag(false),
    ] {
        cctx.set_parameter(p).map_err(zerr)?;
    }
    match dict {
        // The prepared dictionary carries its level; a level set on the context as well would
        // make zstd load the dictionary into it again on every call (milliseconds each).
        Some(d) => cctx.ref_cdict(d.cdict(level)?).map_err(zerr)?,
        None => cctx
            .set_parameter(CParameter::CompressionLevel(LEVELS[level]))
            .map_err(zerr)?,
    };
    let mut out = Vec::with_capacity(zstd_safe::compress_bound(payload.len()));
    cctx.compress2(&mut out, payload).map_err(zerr)?;
    Ok(out)
}

/// A format 2 blob of `payload`, compressed (with `dict` when given) when that is smaller.
pub fn seal(kind: Kind, payload: &[u8], dict: Option<&Dictionary>) -> Result<Vec<u8>> {
    let kind_flag = match kind {
        Kind::Keyframe => 0,
        Kind::Delta => V2_DELTA,
    };
    if payload.len() >= COMPRESS_MIN {
        let body = compress(payload, dict)?;
        let mut out = Vec::with_capacity(body.len() + 8);
        out.push(V2_MARK);
        match dict {
            Some(d) => {
                out.push(kind_flag | CODEC_ZSTD_DICT);
                put_varint(&mut out, u64::from(d.id()));
            }
            None => out.push(kind_flag | CODEC_ZSTD),
        }
        put_varint(&mut out, payload.len() as u64);
        if out.len() + body.len() < 2 + payload.len() {
            out.extend_from_slice(&body);
            return Ok(out);
        }
    }
    let mut out = Vec::with_capacity(2 + payload.len());
    out.extend_from_slice(&[V2_MARK, kind_flag | CODEC_RAW]);
    out.extend_from_slice(payload);
    Ok(out)
}

/// Opens stored blobs, reusing its zstd contexts over a chain (making one per delta costs more
/// than decoding it).
pub struct Unsealer<'d> {
    dicts: &'d Dicts,
    v1: Option<DCtx<'static>>,
    v2: Option<DCtx<'static>>,
}

impl<'d> Unsealer<'d> {
    pub fn new(dicts: &'d Dicts) -> Self {
        Unsealer {
            dicts,
            v1: None,
            v2: None,
        }
    }

    /// The header and payload of `blob`, which must be of kind `want`.
    pub fn unseal(&mut self, blob: &[u8], want: Kind) -> Result<(Header, Vec<u8>)> {
        let h = header(blob)?;
        if h.kind != want {
            return Err(corrupt(format!(
                "expected a {want:?} blob, got a {:?}",
                h.kind
            )));
        }
        let body = blob.get(h.body..).unwrap_or_default();
        if !h.compressed {
            return Ok((h, body.to_vec()));
        }
        let zerr = |e: usize| corrupt(format!("zstd: {}", zstd_safe::get_error_name(e)));
        let out = if h.version == V1 {
            // Format 1 frames always carry their content size; it bounds the allocation.
            let size = match zstd_safe::get_frame_content_size(body) {
                Ok(Some(n)) if n <= MAX_REVISION_BYTES as u64 => n as usize,
                Ok(Some(_)) => return Err(corrupt("revision expands past the size limit")),
                _ => return Err(corrupt("zstd frame without a content size")),
            };
            let dctx = context(&mut self.v1, false)?;
            let mut out = Vec::with_capacity(size);
            dctx.decompress(&mut out, body).map_err(zerr)?;
            if out.len() != size {
                return Err(corrupt("zstd frame has the wrong content size"));
            }
            out
        } else {
            let size = h.size.unwrap_or(0);
            let dctx = context(&mut self.v2, true)?;
            match h.dict {
                Some(id) => {
                    let d = self.dicts.get(id)?;
                    dctx.ref_ddict(d.ddict()).map_err(zerr)?;
                }
                None => {
                    dctx.reset(zstd_safe::ResetDirective::SessionAndParameters)
                        .map_err(zerr)?;
                    dctx.set_parameter(DParameter::Format(FrameFormat::Magicless))
                        .map_err(zerr)?;
                }
            }
            let mut out = Vec::with_capacity(size);
            dctx.decompress(&mut out, body).map_err(zerr)?;
            if out.len() != size {
                return Err(corrupt("zstd body has the wrong size"));
            }
            out
        };
        Ok((h, out))
    }
}

fn context<'s>(
    slot: &'s mut Option<DCtx<'static>>,
    magicless: bool,
) -> Result<&'s mut DCtx<'static>> {
    if slot.is_none() {
        let mut d =
            DCtx::try_create().ok_or_else(|| Error::InvalidArgument("zstd: no memory".into()))?;
        if magicless {
            d.set_parameter(DParameter::Format(FrameFormat::Magicless))
                .map_err(|e| corrupt(format!("zstd: {}", zstd_safe::get_error_name(e))))?;
        }
        *slot = Some(d);
    }
    slot.as_mut()
        .ok_or_else(|| Error::InvalidArgument("zstd: no context".into()))
}
