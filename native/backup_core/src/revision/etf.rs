//! A small reader and writer for the Erlang external term format (ETF), limited to what
//! `term_to_binary/1,2` produces for resource properties.
//!
//! Size: the reader, the writer and the canonical form must agree byte for byte, so they stay
//! in one file.
//!
//! Why our own and not a crate: we need (a) a hard nesting limit, because recursion on a dirty
//! scheduler's small stack must never overflow on hostile bytes, (b) a canonical value model in
//! which structural equality implies `=:=` (so a diff may keep a value it found equal), and (c)
//! pids, refs, ports and funs kept as opaque bytes instead of being refused.
//!
//! Canonical model: integers that fit an `i64` are `Int` whatever tag carried them; proper lists
//! of bytes up to 65535 long are `Str` (as `term_to_binary` writes them); a list tail that is a list
//! is flattened; latin-1 atoms become UTF-8 strings. The writer emits the tags modern OTP emits.
//! Map entries keep their order (term equality of maps ignores order; `canonical_hash` too).

use super::RevError;

/// Deepest nesting accepted (containers inside containers). Resource properties nest a handful of
/// levels; the limit bounds every recursive walk (parse, write, compare, drop) on hostile input.
pub const MAX_DEPTH: usize = 64;

/// Largest uncompressed size accepted for a compressed (tag 80) term.
pub const MAX_TERM_BYTES: usize = 256 << 20;

const VERSION: u8 = 131;
const COMPRESSED: u8 = 80;
const NEW_FLOAT: u8 = 70;
const BIT_BINARY: u8 = 77;
const NEW_PID: u8 = 88;
const NEW_PORT: u8 = 89;
const NEWER_REFERENCE: u8 = 90;
const SMALL_INTEGER: u8 = 97;
const INTEGER: u8 = 98;
const FLOAT: u8 = 99;
const ATOM: u8 = 100;
const REFERENCE: u8 = 101;
const PORT: u8 = 102;
const PID: u8 = 103;
const SMALL_TUPLE: u8 = 104;
const LARGE_TUPLE: u8 = 105;
const NIL: u8 = 106;
const STRING: u8 = 107;
const LIST: u8 = 108;
const BINARY: u8 = 109;
const SMALL_BIG: u8 = 110;
const LARGE_BIG: u8 = 111;
const NEW_FUN: u8 = 112;
const EXPORT: u8 = 113;
const NEW_REFERENCE: u8 = 114;
const SMALL_ATOM: u8 = 115;
const MAP: u8 = 116;
const ATOM_UTF8: u8 = 118;
const SMALL_ATOM_UTF8: u8 = 119;
const V4_PORT: u8 = 120;

/// An Erlang term, in the canonical model described in the module doc.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    Int(i64),
    /// An integer outside `i64`: sign and little-endian magnitude without trailing zero bytes.
    Big {
        negative: bool,
        magnitude: Vec<u8>,
    },
    /// IEEE bits, so equality is exact (`0.0 =/= -0.0`, as `=:=` says).
    Float(u64),
    Atom(String),
    Binary(Vec<u8>),
    /// A bitstring whose last byte holds `bits` (1..=7) significant bits.
    Bits {
        bits: u8,
        data: Vec<u8>,
    },
    /// A proper list of 1..=65535 integers in 0..=255 (`STRING_EXT`).
    Str(Vec<u8>),
    /// A list; `tail` is `None` for a proper list, so `[]` is `List(vec![], None)`.
    List(Vec<Value>, Option<Box<Value>>),
    Tuple(Vec<Value>),
    Map(Vec<(Value, Value)>),
    /// A pid, port, reference or fun: its ETF bytes, tag included, kept as they are.
    Opaque(Vec<u8>),
}

impl Value {
    pub fn nil() -> Value {
        Value::List(Vec::new(), None)
    }
}

/// Decodes a whole `term_to_binary` result (version byte first; tag 80 compression accepted).
pub fn decode(bytes: &[u8]) -> Result<Value, RevError> {
    match bytes {
        [VERSION, COMPRESSED, rest @ ..] => {
            let inflated = inflate(rest)?;
            decode_body(&inflated)
        }
        [VERSION, rest @ ..] => decode_body(rest),
        _ => Err(RevError::etf("missing version byte 131")),
    }
}

/// Decodes one term without version byte that must fill `bytes` exactly.
pub fn decode_body(bytes: &[u8]) -> Result<Value, RevError> {
    decode_body_at(bytes, 0)
}

/// `decode_body` for a term that will sit `depth` levels deep: it may nest only what is left
/// of `MAX_DEPTH`.
pub fn decode_body_at(bytes: &[u8], depth: usize) -> Result<Value, RevError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let v = r.term(depth)?;
    if r.pos != bytes.len() {
        return Err(RevError::etf("trailing bytes after term"));
    }
    Ok(v)
}

/// `term_to_binary(Value)`: version byte and body.
pub fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(v) + 1);
    out.push(VERSION);
    write(&mut out, v, false);
    out
}

/// The body of one term, without version byte (as stored inside deltas).
pub fn encode_body(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(v));
    write(&mut out, v, false);
    out
}

/// Like `encode_body` but with every map's entries sorted by their encoded key: equal terms give
/// equal bytes, whatever order their maps were built in.
pub fn encode_canonical(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(v));
    write(&mut out, v, true);
    out
}

/// Sorts the entries of every map in `v` by their encoded key, as `encode_canonical` writes
/// them: afterwards `encode_body(v) == encode_canonical(v)`, and a map's n-th entry is the same
/// whatever order the map was built in. Recursion is bounded by the depth limit of the parser.
pub fn canonicalize(v: &mut Value) {
    match v {
        Value::List(items, tail) => {
            items.iter_mut().for_each(canonicalize);
            if let Some(t) = tail {
                canonicalize(t);
            }
        }
        Value::Tuple(items) => items.iter_mut().for_each(canonicalize),
        Value::Map(pairs) => {
            for (k, val) in pairs.iter_mut() {
                canonicalize(k);
                canonicalize(val);
            }
            pairs.sort_by_cached_key(|(k, _)| encode_body(k));
        }
        _ => {}
    }
}

/// `canonical_hash` of a term already `canonicalize`d: the crc32 of its plain encoding, which
/// is then the canonical one, without sorting every map again.
pub fn canonicalized_hash(v: &Value) -> u32 {
    crc32fast::hash(&encode_body(v))
}

/// crc32 of the canonical encoding: identifies a term independently of map order.
pub fn canonical_hash(v: &Value) -> u32 {
    crc32fast::hash(&encode_canonical(v))
}

/// Size of `encode_body(v)` without building it.
pub fn encoded_len(v: &Value) -> usize {
    match v {
        Value::Int(i) => {
            if (0..=255).contains(i) {
                2
            } else if i32::try_from(*i).is_ok() {
                5
            } else {
                3 + magnitude_bytes(i.unsigned_abs()).len()
            }
        }
        Value::Big { magnitude, .. } => {
            if magnitude.len() <= 255 {
                3 + magnitude.len()
            } else {
                6 + magnitude.len()
            }
        }
        Value::Float(_) => 9,
        Value::Atom(a) => {
            if a.len() <= 255 {
                2 + a.len()
            } else {
                3 + a.len()
            }
        }
        Value::Binary(b) => 5 + b.len(),
        Value::Bits { data, .. } => 6 + data.len(),
        Value::Str(s) => 3 + s.len(),
        Value::List(items, tail) => {
            if items.is_empty() && tail.is_none() {
                1
            } else {
                5 + items.iter().map(encoded_len).sum::<usize>()
                    + tail.as_deref().map_or(1, encoded_len)
            }
        }
        Value::Tuple(items) => {
            (if items.len() <= 255 { 2 } else { 5 }) + items.iter().map(encoded_len).sum::<usize>()
        }
        Value::Map(pairs) => {
            5 + pairs
                .iter()
                .map(|(k, v)| encoded_len(k) + encoded_len(v))
                .sum::<usize>()
        }
        Value::Opaque(b) => b.len(),
    }
}

fn magnitude_bytes(mut m: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(8);
    while m > 0 {
        out.push((m & 0xff) as u8);
        m >>= 8;
    }
    out
}

fn write(out: &mut Vec<u8>, v: &Value, canonical: bool) {
    match v {
        Value::Int(i) => {
            if let Ok(b) = u8::try_from(*i) {
                out.extend_from_slice(&[SMALL_INTEGER, b]);
            } else if let Ok(w) = i32::try_from(*i) {
                out.push(INTEGER);
                out.extend_from_slice(&w.to_be_bytes());
            } else {
                let mag = magnitude_bytes(i.unsigned_abs());
                out.extend_from_slice(&[SMALL_BIG, mag.len() as u8, u8::from(*i < 0)]);
                out.extend_from_slice(&mag);
            }
        }
        Value::Big {
            negative,
            magnitude,
        } => {
            if let Ok(n) = u8::try_from(magnitude.len()) {
                out.extend_from_slice(&[SMALL_BIG, n]);
            } else {
                out.push(LARGE_BIG);
                out.extend_from_slice(&(magnitude.len() as u32).to_be_bytes());
            }
            out.push(u8::from(*negative));
            out.extend_from_slice(magnitude);
        }
        Value::Float(bits) => {
            out.push(NEW_FLOAT);
            out.extend_from_slice(&bits.to_be_bytes());
        }
        Value::Atom(a) => {
            if let Ok(n) = u8::try_from(a.len()) {
                out.extend_from_slice(&[SMALL_ATOM_UTF8, n]);
            } else {
                out.push(ATOM_UTF8);
                out.extend_from_slice(&(a.len() as u16).to_be_bytes());
            }
            out.extend_from_slice(a.as_bytes());
        }
        Value::Binary(b) => {
            out.push(BINARY);
            out.extend_from_slice(&(b.len() as u32).to_be_bytes());
            out.extend_from_slice(b);
        }
        Value::Bits { bits, data } => {
            out.push(BIT_BINARY);
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            out.push(*bits);
            out.extend_from_slice(data);
        }
        Value::Str(s) => {
            out.push(STRING);
            out.extend_from_slice(&(s.len() as u16).to_be_bytes());
            out.extend_from_slice(s);
        }
        Value::List(items, tail) => {
            if items.is_empty() && tail.is_none() {
                out.push(NIL);
                return;
            }
            out.push(LIST);
            out.extend_from_slice(&(items.len() as u32).to_be_bytes());
            for item in items {
                write(out, item, canonical);
            }
            match tail {
                Some(t) => write(out, t, canonical),
                None => out.push(NIL),
            }
        }
        Value::Tuple(items) => {
            if let Ok(n) = u8::try_from(items.len()) {
                out.extend_from_slice(&[SMALL_TUPLE, n]);
            } else {
                out.push(LARGE_TUPLE);
                out.extend_from_slice(&(items.len() as u32).to_be_bytes());
            }
            for item in items {
                write(out, item, canonical);
            }
        }
        Value::Map(pairs) => {
            out.push(MAP);
            out.extend_from_slice(&(pairs.len() as u32).to_be_bytes());
            if canonical {
                let mut encoded: Vec<(Vec<u8>, Vec<u8>)> = pairs
                    .iter()
                    .map(|(k, v)| (encode_canonical(k), encode_canonical(v)))
                    .collect();
                encoded.sort();
                for (k, v) in encoded {
                    out.extend_from_slice(&k);
                    out.extend_from_slice(&v);
                }
            } else {
                for (k, v) in pairs {
                    write(out, k, canonical);
                    write(out, v, canonical);
                }
            }
        }
        Value::Opaque(b) => out.extend_from_slice(b),
    }
}

fn inflate(rest: &[u8]) -> Result<Vec<u8>, RevError> {
    use std::io::Read;
    let (size, data) = match rest {
        [a, b, c, d, data @ ..] => (u32::from_be_bytes([*a, *b, *c, *d]) as usize, data),
        _ => return Err(RevError::etf("truncated compressed term")),
    };
    if size > MAX_TERM_BYTES {
        return Err(RevError::etf("compressed term too large"));
    }
    let mut out = Vec::with_capacity(size.min(data.len().saturating_mul(8)));
    flate2::read::ZlibDecoder::new(data)
        .take(size as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| RevError::etf(format!("bad compressed term: {e}")))?;
    if out.len() != size {
        return Err(RevError::etf("compressed term has the wrong size"));
    }
    Ok(out)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RevError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| RevError::etf("truncated term"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, RevError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<usize, RevError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]) as usize)
    }

    fn u32(&mut self) -> Result<usize, RevError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    /// Capacity for `n` announced elements of at least one byte each: never more than the
    /// bytes left, so a hostile count cannot make us allocate.
    fn capacity(&self, n: usize) -> usize {
        n.min(self.buf.len() - self.pos)
    }

    fn term(&mut self, depth: usize) -> Result<Value, RevError> {
        if depth > MAX_DEPTH {
            return Err(RevError::etf("term nested too deeply"));
        }
        let start = self.pos;
        let tag = self.u8()?;
        Ok(match tag {
            SMALL_INTEGER => Value::Int(i64::from(self.u8()?)),
            INTEGER => {
                let b = self.take(4)?;
                Value::Int(i64::from(i32::from_be_bytes([b[0], b[1], b[2], b[3]])))
            }
            SMALL_BIG | LARGE_BIG => {
                let n = if tag == SMALL_BIG {
                    self.u8()? as usize
                } else {
                    self.u32()?
                };
                let negative = match self.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(RevError::etf("bad bignum sign")),
                };
                big(negative, self.take(n)?)
            }
            NEW_FLOAT => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                let f = f64::from_be_bytes(a);
                if !f.is_finite() {
                    return Err(RevError::etf("float is not finite"));
                }
                Value::Float(f.to_bits())
            }
            FLOAT => {
                let b = self.take(31)?;
                let text = std::str::from_utf8(b)
                    .map_err(|_| RevError::etf("bad float text"))?
                    .trim_end_matches('\0');
                let f: f64 = text
                    .trim()
                    .parse()
                    .map_err(|_| RevError::etf("bad float text"))?;
                if !f.is_finite() {
                    return Err(RevError::etf("float is not finite"));
                }
                Value::Float(f.to_bits())
            }
            ATOM | SMALL_ATOM | ATOM_UTF8 | SMALL_ATOM_UTF8 => Value::Atom(self.atom_body(tag)?),
            BINARY => {
                let n = self.u32()?;
                Value::Binary(self.take(n)?.to_vec())
            }
            BIT_BINARY => {
                let n = self.u32()?;
                let bits = self.u8()?;
                let data = self.take(n)?;
                if n == 0 || bits == 0 || bits > 8 {
                    return Err(RevError::etf("bad bitstring"));
                }
                if bits == 8 {
                    Value::Binary(data.to_vec())
                } else {
                    // The unused low bits must be zero for the bytes to be canonical.
                    let mut data = data.to_vec();
                    if let Some(last) = data.last_mut() {
                        *last &= 0xffu8 << (8 - bits);
                    }
                    Value::Bits { bits, data }
                }
            }
            NIL => Value::nil(),
            STRING => {
                let n = self.u16()?;
                let s = self.take(n)?;
                if s.is_empty() {
                    Value::nil()
                } else {
                    Value::Str(s.to_vec())
                }
            }
            LIST => {
                let n = self.u32()?;
                let mut items = Vec::with_capacity(self.capacity(n));
                for _ in 0..n {
                    items.push(self.term(depth + 1)?);
                }
                let tail = self.term(depth + 1)?;
                list(items, tail)
            }
            SMALL_TUPLE | LARGE_TUPLE => {
                let n = if tag == SMALL_TUPLE {
                    self.u8()? as usize
                } else {
                    self.u32()?
                };
                let mut items = Vec::with_capacity(self.capacity(n));
                for _ in 0..n {
                    items.push(self.term(depth + 1)?);
                }
                Value::Tuple(items)
            }
            MAP => {
                let n = self.u32()?;
                let mut pairs = Vec::with_capacity(self.capacity(n));
                for _ in 0..n {
                    let k = self.term(depth + 1)?;
                    let v = self.term(depth + 1)?;
                    pairs.push((k, v));
                }
                Value::Map(pairs)
            }
            PID | NEW_PID => {
                self.node(depth)?;
                self.take(if tag == PID { 9 } else { 12 })?;
                Value::Opaque(self.buf[start..self.pos].to_vec())
            }
            PORT | NEW_PORT | V4_PORT => {
                self.node(depth)?;
                self.take(match tag {
                    PORT => 5,
                    NEW_PORT => 8,
                    _ => 12,
                })?;
                Value::Opaque(self.buf[start..self.pos].to_vec())
            }
            REFERENCE => {
                self.node(depth)?;
                self.take(5)?;
                Value::Opaque(self.buf[start..self.pos].to_vec())
            }
            NEW_REFERENCE | NEWER_REFERENCE => {
                let words = self.u16()?;
                if words > 5 {
                    return Err(RevError::etf("bad reference"));
                }
                self.node(depth)?;
                self.take(if tag == NEW_REFERENCE { 1 } else { 4 })?;
                self.take(words * 4)?;
                Value::Opaque(self.buf[start..self.pos].to_vec())
            }
            EXPORT => {
                self.term(depth + 1)?;
                self.term(depth + 1)?;
                match self.term(depth + 1)? {
                    Value::Int(_) => {}
                    _ => return Err(RevError::etf("bad export arity")),
                }
                Value::Opaque(self.buf[start..self.pos].to_vec())
            }
            NEW_FUN => {
                let size = self.u32()?;
                if size < 4 {
                    return Err(RevError::etf("bad fun size"));
                }
                self.take(size - 4)?;
                Value::Opaque(self.buf[start..self.pos].to_vec())
            }
            other => return Err(RevError::etf(format!("unsupported term tag {other}"))),
        })
    }

    fn atom_body(&mut self, tag: u8) -> Result<String, RevError> {
        let n = match tag {
            SMALL_ATOM | SMALL_ATOM_UTF8 => self.u8()? as usize,
            _ => self.u16()?,
        };
        let bytes = self.take(n)?;
        let name = match tag {
            ATOM | SMALL_ATOM => bytes.iter().map(|&b| char::from(b)).collect::<String>(),
            _ => std::str::from_utf8(bytes)
                .map_err(|_| RevError::etf("atom is not UTF-8"))?
                .to_owned(),
        };
        if name.chars().count() > 255 {
            return Err(RevError::etf("atom longer than 255 characters"));
        }
        Ok(name)
    }

    /// The node name inside a pid, port or reference: an atom.
    fn node(&mut self, depth: usize) -> Result<(), RevError> {
        match self.term(depth + 1)? {
            Value::Atom(_) => Ok(()),
            _ => Err(RevError::etf("node name is not an atom")),
        }
    }
}

/// A bignum in canonical form: an `Int` when it fits.
fn big(negative: bool, bytes: &[u8]) -> Value {
    let len = bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    let magnitude = &bytes[..len];
    if magnitude.len() <= 8 {
        let mut a = [0u8; 8];
        a[..magnitude.len()].copy_from_slice(magnitude);
        let m = u64::from_le_bytes(a);
        if !negative {
            if let Ok(i) = i64::try_from(m) {
                return Value::Int(i);
            }
        } else if m <= 1u64 << 63 {
            return Value::Int((m as i64).wrapping_neg());
        }
    }
    Value::Big {
        negative: negative && !magnitude.is_empty(),
        magnitude: magnitude.to_vec(),
    }
}

/// Builds a list in canonical form: a list tail is flattened, byte lists become `Str`.
fn list(mut items: Vec<Value>, tail: Value) -> Value {
    let tail = match tail {
        Value::List(more, t) => {
            items.extend(more);
            t.map(|b| *b)
        }
        Value::Str(s) => {
            items.extend(s.into_iter().map(|b| Value::Int(i64::from(b))));
            None
        }
        other => Some(other),
    };
    match tail {
        None => {
            if items.is_empty() {
                Value::nil()
            } else if items.len() <= 65535
                && items
                    .iter()
                    .all(|v| matches!(v, Value::Int(i) if (0..=255).contains(i)))
            {
                Value::Str(
                    items
                        .iter()
                        .map(|v| match v {
                            Value::Int(i) => *i as u8,
                            _ => 0,
                        })
                        .collect(),
                )
            } else {
                Value::List(items, None)
            }
        }
        Some(t) if items.is_empty() => t,
        Some(t) => Value::List(items, Some(Box::new(t))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn term_to_binary_of_otp_decodes_and_reencodes_to_an_equal_term() {
        // term_to_binary(#{<<"a">> => 1, b => {trans,[{en,<<"x">>}]}, c => [1,2], d => 1.5,
        //                  e => 1 bsl 40}) on OTP 25 (latin-1 atoms, tag 100).
        let otp: &[u8] = &[
            131, 116, 0, 0, 0, 5, 100, 0, 1, 98, 104, 2, 100, 0, 5, 116, 114, 97, 110, 115, 108, 0,
            0, 0, 1, 104, 2, 100, 0, 2, 101, 110, 109, 0, 0, 0, 1, 120, 106, 100, 0, 1, 99, 107, 0,
            2, 1, 2, 100, 0, 1, 100, 70, 63, 248, 0, 0, 0, 0, 0, 0, 100, 0, 1, 101, 110, 6, 0, 0,
            0, 0, 0, 0, 1, 109, 0, 0, 0, 1, 97, 97, 1,
        ];
        let v = decode(otp).expect("decodes");
        let Value::Map(pairs) = &v else {
            panic!("not a map")
        };
        assert_eq!(pairs.len(), 5);
        assert!(pairs.contains(&(Value::Atom("e".into()), Value::Int(1 << 40))));
        assert!(pairs.contains(&(Value::Atom("c".into()), Value::Str(vec![1, 2]))));
        let again = decode(&encode(&v)).expect("re-decodes");
        assert_eq!(again, v);
    }

    #[test]
    fn hostile_lengths_and_depth_are_errors() {
        assert!(decode(&[131, 108, 255, 255, 255, 255]).is_err());
        assert!(decode(&[131, 109, 255, 255, 255, 255, 1]).is_err());
        let mut deep = vec![131];
        for _ in 0..10_000 {
            deep.extend_from_slice(&[104, 1]);
        }
        deep.push(106);
        assert!(decode(&deep).is_err());
        assert!(decode(&[]).is_err());
        assert!(decode(&[131, 80, 0, 0, 0, 9, 1, 2]).is_err());
    }

    #[test]
    fn bignums_are_canonical() {
        assert_eq!(big(false, &[1, 0, 0]), Value::Int(1));
        assert_eq!(
            big(true, &[0, 0, 0, 0, 0, 0, 0, 0x80]),
            Value::Int(i64::MIN)
        );
        let v = Value::Int(i64::MIN);
        assert_eq!(decode(&encode(&v)).unwrap(), v);
        let b = big(false, &[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert!(matches!(b, Value::Big { .. }));
        assert_eq!(decode(&encode(&b)).unwrap(), b);
    }

    #[test]
    fn canonical_hash_ignores_map_order() {
        let a = Value::Map(vec![
            (Value::Int(1), Value::Atom("a".into())),
            (Value::Int(2), Value::nil()),
        ]);
        let b = Value::Map(vec![
            (Value::Int(2), Value::nil()),
            (Value::Int(1), Value::Atom("a".into())),
        ]);
        assert_eq!(canonical_hash(&a), canonical_hash(&b));
    }

    #[test]
    fn hash_of_a_canonicalized_term_is_its_canonical_hash() {
        let inner = |o: bool| {
            let mut p = vec![
                (Value::Atom("b".into()), Value::Int(2)),
                (Value::Binary(b"a".to_vec()), Value::nil()),
            ];
            if o {
                p.reverse();
            }
            Value::Map(p)
        };
        let mut v = Value::Map(vec![
            (Value::Int(1), inner(true)),
            (
                Value::Atom("z".into()),
                Value::List(vec![inner(false), inner(true)], None),
            ),
        ]);
        let want = canonical_hash(&v);
        canonicalize(&mut v);
        assert_eq!(canonicalized_hash(&v), want);
        assert_eq!(encode_body(&v), encode_canonical(&v));
    }
}
