//! Format 2 deltas: the structural diff of two canonical terms (every map's entries sorted by
//! their encoded key, see `etf::canonicalize`) as a flat list of operations, and its application.
//!
//! The list is flat on purpose (each op carries its full path) so that deserializing it never
//! recurses: a hostile delta cannot exhaust the stack of a dirty scheduler. What changes on every
//! save is written small: a path step is one varint (a map entry by its position among the sorted
//! keys, a tuple or list element by its index), an integer that changed is its difference
//! (`version` + 1 is one byte), a date `{{Y,M,D},{H,M,S}}` the seconds it moved, and a text the
//! byte ranges it keeps and the bytes it inserts. Values are canonical ETF bodies, parsed with the
//! depth budget left below their path.

use super::etf::{self, Value, MAX_DEPTH};
use super::textdiff::{self, TextOp};
use super::RevError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_bytes::ByteBuf;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Binaries shorter than this are replaced whole; longer ones may be stored as text ops (a
/// word added to a title costs its bytes and two copy ranges).
const TEXT_MIN: usize = 8;
/// Tuples and lists whose new encoding is smaller than this are replaced whole.
const CONTAINER_MIN: usize = 96;
/// Time all sequence diffs of one delta may take together before they settle for coarser
/// answers: a save that rewrites three 50 KB bodies must not pay a full deadline per body.
const DIFF_DEADLINE: Duration = Duration::from_millis(1);

/// One step from a term into one of its parts. Stored as one varint: `n << 1` for the n-th
/// entry of a map (keys sorted), `n << 1 | 1` for the n-th element of a tuple or list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Key(u32),
    Index(u32),
}

impl Serialize for Step {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(match *self {
            Step::Key(n) => u64::from(n) << 1,
            Step::Index(n) => (u64::from(n) << 1) | 1,
        })
    }
}

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u64::deserialize(d)?;
        let n = u32::try_from(v >> 1)
            .map_err(|_| serde::de::Error::custom("delta path step out of range"))?;
        Ok(if v & 1 == 0 {
            Step::Key(n)
        } else {
            Step::Index(n)
        })
    }
}

/// What to do at the end of a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Put this value (ETF body) there.
    Set(ByteBuf),
    /// The integer there changes by this much.
    Int(i64),
    /// The datetime there moves by this many seconds.
    Time(i64),
    /// The binary there is rebuilt from its old bytes.
    Text(Vec<TextOp>),
    /// The proper list there is rebuilt from runs of its old elements and new elements.
    List(Vec<ListItem>),
    /// The map there gains this key (ETF body) with this value (ETF body).
    Put(ByteBuf, ByteBuf),
    /// The map there loses the entries at these positions (ascending, as they were before).
    Drop(Vec<u32>),
}

/// One step rebuilding a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ListItem {
    /// Skip `skip` old elements, then keep the next `len`.
    Old { skip: u32, len: u32 },
    /// A new element (ETF body).
    New(ByteBuf),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub path: Vec<Step>,
    pub action: Action,
}

/// The operations that turn `old` into `new`, both canonical. Applying them to `old` gives a
/// term `=:=` `new`.
pub fn diff(old: &Value, new: &Value) -> Vec<Op> {
    diff_by(old, new, Instant::now() + DIFF_DEADLINE)
}

/// `diff` with the deadline of long sequence diffs given.
fn diff_by(old: &Value, new: &Value, deadline: Instant) -> Vec<Op> {
    let mut out = Out {
        ops: Vec::new(),
        deadline,
    };
    diff_at(old, new, &mut Vec::new(), &mut out);
    out.ops
}

/// The operations found so far, and when the sequence diffs must stop refining.
struct Out {
    ops: Vec<Op>,
    deadline: Instant,
}

impl Out {
    fn push(&mut self, path: &[Step], action: Action) {
        self.ops.push(Op {
            path: path.to_vec(),
            action,
        });
    }
}

fn body(v: &Value) -> ByteBuf {
    ByteBuf::from(etf::encode_body(v))
}

fn diff_at(old: &Value, new: &Value, path: &mut Vec<Step>, out: &mut Out) {
    if old == new {
        return;
    }
    if let (Some(a), Some(b)) = (datetime_secs(old), datetime_secs(new)) {
        return out.push(path, Action::Time(b - a));
    }
    match (old, new) {
        (Value::Map(a), Value::Map(b)) => diff_map(a, b, path, out),
        (Value::Int(a), Value::Int(b)) => match b.checked_sub(*a) {
            Some(d) => out.push(path, Action::Int(d)),
            None => out.push(path, Action::Set(body(new))),
        },
        (Value::Binary(a), Value::Binary(b)) if a.len() >= TEXT_MIN && b.len() >= TEXT_MIN => {
            // Whichever is smaller as stored: the text ops, or the new value whole.
            match textdiff::encode_ops(a, b, out.deadline) {
                Some(t) if encoded(&t) < etf::encoded_len(new) + 1 => {
                    out.push(path, Action::Text(t))
                }
                _ => out.push(path, Action::Set(body(new))),
            }
        }
        (Value::Tuple(a), Value::Tuple(b))
            if a.len() == b.len() && etf::encoded_len(new) >= CONTAINER_MIN =>
        {
            elementwise(a, b, path, out)
        }
        (Value::List(a, None), Value::List(b, None)) if etf::encoded_len(new) >= CONTAINER_MIN => {
            diff_list(a, b, path, out)
        }
        _ => out.push(path, Action::Set(body(new))),
    }
}

/// Both maps have their entries sorted by encoded key: one merge walk finds the changed, the
/// removed and the added keys. Changes come first, by position in `a`; then the removals; then
/// the additions, so every position an op names is one of `a`'s.
fn diff_map(a: &[(Value, Value)], b: &[(Value, Value)], path: &mut Vec<Step>, out: &mut Out) {
    let ka: Vec<Vec<u8>> = a.iter().map(|(k, _)| etf::encode_body(k)).collect();
    let kb: Vec<Vec<u8>> = b.iter().map(|(k, _)| etf::encode_body(k)).collect();
    let (mut i, mut j) = (0, 0);
    let mut dropped = Vec::new();
    let mut added = Vec::new();
    while i < a.len() || j < b.len() {
        let order = match (ka.get(i), kb.get(j)) {
            (Some(x), Some(y)) => x.cmp(y),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Equal => {
                if a[i].1 != b[j].1 {
                    path.push(Step::Key(i as u32));
                    diff_at(&a[i].1, &b[j].1, path, out);
                    path.pop();
                }
                i += 1;
                j += 1;
            }
            std::cmp::Ordering::Less => {
                dropped.push(i as u32);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                added.push(j);
                j += 1;
            }
        }
    }
    if !dropped.is_empty() {
        out.push(path, Action::Drop(dropped));
    }
    for j in added {
        out.push(
            path,
            Action::Put(ByteBuf::from(kb[j].clone()), body(&b[j].1)),
        );
    }
}

fn elementwise(a: &[Value], b: &[Value], path: &mut Vec<Step>, out: &mut Out) {
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        if x != y {
            path.push(Step::Index(i as u32));
            diff_at(x, y, path, out);
            path.pop();
        }
    }
}

fn diff_list(a: &[Value], b: &[Value], path: &mut Vec<Step>, out: &mut Out) {
    if a.len() == b.len() {
        return elementwise(a, b, path, out);
    }
    if u32::try_from(a.len().max(b.len())).is_err() {
        return out.push(path, Action::Set(body(&Value::List(b.to_vec(), None))));
    }
    // Diff element identities (equal elements share an id): cheap to compare and hash.
    let mut ids: HashMap<&Value, usize> = HashMap::new();
    let mut id = |v| {
        let n = ids.len();
        *ids.entry(v).or_insert(n)
    };
    let ia: Vec<usize> = a.iter().map(&mut id).collect();
    let ib: Vec<usize> = b.iter().map(&mut id).collect();
    let changes = similar::capture_diff_slices_deadline(
        similar::Algorithm::Myers,
        &ia,
        &ib,
        textdiff::deadline_for(ia.len() + ib.len(), out.deadline),
    );
    let mut items: Vec<ListItem> = Vec::new();
    let mut cursor = 0usize;
    // Pairs (old index, new index) kept in place but changed: patched after the rebuild.
    let mut patched: Vec<(usize, usize)> = Vec::new();
    let mut keep = |items: &mut Vec<ListItem>, from: usize, len: usize| {
        let skip = (from - cursor) as u32;
        match items.last_mut() {
            Some(ListItem::Old { len: l, .. }) if skip == 0 => *l += len as u32,
            _ => items.push(ListItem::Old {
                skip,
                len: len as u32,
            }),
        }
        cursor = from + len;
    };
    for op in changes {
        match op {
            similar::DiffOp::Equal { old_index, len, .. } => keep(&mut items, old_index, len),
            similar::DiffOp::Delete { .. } => {}
            similar::DiffOp::Insert {
                new_index, new_len, ..
            } => {
                for v in &b[new_index..new_index + new_len] {
                    items.push(ListItem::New(body(v)));
                }
            }
            similar::DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => {
                let paired = old_len.min(new_len);
                for j in 0..paired {
                    keep(&mut items, old_index + j, 1);
                    patched.push((old_index + j, new_index + j));
                }
                for v in &b[new_index + paired..new_index + new_len] {
                    items.push(ListItem::New(body(v)));
                }
            }
        }
    }
    out.push(path, Action::List(items));
    for (i, j) in patched {
        path.push(Step::Index(j as u32));
        diff_at(&a[i], &b[j], path, out);
        path.pop();
    }
}

// ---------------------------------------------------------------------------------------------
// Datetimes: `{{Y, M, D}, {H, Mi, S}}` as Erlang's calendar writes them, as seconds since year 0.

/// Days from 0000-03-01 based civil date (proleptic Gregorian), as in H. Hinnant's algorithm.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The seconds of a valid datetime (years 0 to 999,999), else None.
fn datetime_secs(v: &Value) -> Option<i64> {
    let Value::Tuple(dt) = v else { return None };
    let [Value::Tuple(date), Value::Tuple(time)] = dt.as_slice() else {
        return None;
    };
    let [Value::Int(y), Value::Int(mo), Value::Int(d)] = date.as_slice() else {
        return None;
    };
    let [Value::Int(h), Value::Int(mi), Value::Int(s)] = time.as_slice() else {
        return None;
    };
    if !(0..=999_999).contains(y)
        || !(1..=12).contains(mo)
        || !(0..24).contains(h)
        || !(0..60).contains(mi)
        || !(0..60).contains(s)
    {
        return None;
    }
    let days = days_from_civil(*y, *mo, *d);
    // A day past the month's end (the 30th of February) would come back as another date.
    if *d < 1 || civil_from_days(days) != (*y, *mo, *d) {
        return None;
    }
    Some(days * 86_400 + h * 3600 + mi * 60 + s)
}

fn datetime(secs: i64) -> Option<Value> {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    if !(0..=999_999).contains(&y) {
        return None;
    }
    let int = Value::Int;
    Some(Value::Tuple(vec![
        Value::Tuple(vec![int(y), int(m), int(d)]),
        Value::Tuple(vec![int(rem / 3600), int(rem / 60 % 60), int(rem % 60)]),
    ]))
}

// ---------------------------------------------------------------------------------------------
// Applying

/// Applies `ops` to the canonical `root` in order; `root` stays canonical. `budget` is the
/// number of bytes new values may still take; it bounds what a hostile delta can make us
/// allocate.
pub fn apply(root: &mut Value, ops: &[Op], budget: &mut usize) -> Result<(), RevError> {
    for op in ops {
        apply_one(root, op, budget)?;
    }
    Ok(())
}

fn corrupt(msg: &str) -> RevError {
    RevError::corrupt(msg)
}

/// A value of the delta, canonical, at `depth`.
fn parse_at(bytes: &[u8], depth: usize, budget: &mut usize) -> Result<Value, RevError> {
    if depth > MAX_DEPTH {
        return Err(corrupt("delta path too deep"));
    }
    *budget = budget
        .checked_sub(bytes.len())
        .ok_or_else(|| corrupt("delta makes the revision too large"))?;
    let mut v = etf::decode_body_at(bytes, depth).map_err(RevError::into_corrupt)?;
    etf::canonicalize(&mut v);
    Ok(v)
}

fn apply_one(root: &mut Value, op: &Op, budget: &mut usize) -> Result<(), RevError> {
    let depth = op.path.len();
    let slot = walk(root, &op.path)?;
    match &op.action {
        Action::Set(bytes) => *slot = parse_at(bytes, depth, budget)?,
        Action::Int(d) => match slot {
            Value::Int(i) => {
                *i = i
                    .checked_add(*d)
                    .ok_or_else(|| corrupt("integer delta overflows"))?
            }
            _ => return Err(corrupt("integer delta on a non-integer")),
        },
        Action::Time(d) => {
            let secs = datetime_secs(slot).ok_or_else(|| corrupt("time delta on a non-date"))?;
            *slot = secs
                .checked_add(*d)
                .and_then(datetime)
                .ok_or_else(|| corrupt("time delta leaves the calendar"))?;
        }
        Action::Text(t) => {
            let Value::Binary(old) = slot else {
                return Err(corrupt("text delta on a non-binary"));
            };
            let new = textdiff::apply_ops(old, t, *budget)
                .ok_or_else(|| corrupt("text delta does not fit its base"))?;
            *budget = budget
                .checked_sub(new.len())
                .ok_or_else(|| corrupt("delta makes the revision too large"))?;
            *old = new;
        }
        Action::List(items) => {
            let Value::List(old, None) = slot else {
                return Err(corrupt("list delta on a non-list"));
            };
            let rebuilt = rebuild_list(std::mem::take(old), items, |b| {
                parse_at(b, depth + 1, budget)
            })?;
            *slot = Value::List(rebuilt, None);
        }
        Action::Put(k, v) => {
            let key = parse_at(k, depth + 1, budget)?;
            let value = parse_at(v, depth + 1, budget)?;
            let Value::Map(pairs) = slot else {
                return Err(corrupt("delta adds a key to a non-map"));
            };
            let encoded = etf::encode_body(&key);
            match pairs.binary_search_by(|(pk, _)| etf::encode_body(pk).cmp(&encoded)) {
                Ok(_) => return Err(corrupt("delta adds a key that is there")),
                Err(at) => pairs.insert(at, (key, value)),
            }
        }
        Action::Drop(positions) => {
            let Value::Map(pairs) = slot else {
                return Err(corrupt("delta removes keys from a non-map"));
            };
            if positions.windows(2).any(|w| w[0] >= w[1])
                || positions.last().is_some_and(|&p| p as usize >= pairs.len())
            {
                return Err(corrupt("delta removes keys that are not there"));
            }
            for &p in positions.iter().rev() {
                pairs.remove(p as usize);
            }
        }
    }
    Ok(())
}

/// The list `items` make of `old` (format 1 deltas rebuild lists the same way), each new
/// element parsed by `parse`.
pub(super) fn rebuild_list(
    old: Vec<Value>,
    items: &[ListItem],
    mut parse: impl FnMut(&[u8]) -> Result<Value, RevError>,
) -> Result<Vec<Value>, RevError> {
    let mut out = Vec::with_capacity(old.len());
    let mut rest = old.into_iter();
    for item in items {
        match item {
            ListItem::Old { skip, len } => {
                for _ in 0..*skip {
                    rest.next()
                        .ok_or_else(|| corrupt("list delta skips past the end"))?;
                }
                for _ in 0..*len {
                    out.push(
                        rest.next()
                            .ok_or_else(|| corrupt("list delta reads past the end"))?,
                    );
                }
            }
            ListItem::New(bytes) => out.push(parse(bytes)?),
        }
    }
    if out.is_empty() {
        return Err(corrupt("list delta makes an empty list"));
    }
    Ok(out)
}

fn walk<'v>(mut v: &'v mut Value, steps: &[Step]) -> Result<&'v mut Value, RevError> {
    for step in steps {
        v = match (v, step) {
            (Value::Map(pairs), Step::Key(i)) => pairs
                .get_mut(*i as usize)
                .map(|(_, val)| val)
                .ok_or_else(|| corrupt("delta path names a missing key"))?,
            (Value::Tuple(items) | Value::List(items, None), Step::Index(i)) => items
                .get_mut(*i as usize)
                .ok_or_else(|| corrupt("delta path index out of range"))?,
            (_, Step::Key(_)) => return Err(corrupt("delta path expects a map")),
            (_, Step::Index(_)) => return Err(corrupt("delta path expects a tuple or list")),
        };
    }
    Ok(v)
}

// ---------------------------------------------------------------------------------------------
// What a delta costs

/// What a stored delta costs (`revision::delta_cost`): its stored size, its payload size, and
/// the bytes of the uncompressed payload by part (postcard encoding).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "nif", derive(rustler::NifMap), rustler(encode))]
pub struct Cost {
    pub stored: usize,
    pub payload: usize,
    /// The crc32 of the revision the delta makes.
    pub checksum: usize,
    /// Op count and each op's action tag.
    pub framing: usize,
    /// Paths to the changed values.
    pub paths: usize,
    /// Integer and datetime changes.
    pub ints: usize,
    pub times: usize,
    /// Text changes: the copy ranges, and the inserted bytes with their lengths.
    pub text_copies: usize,
    pub text_inserts: usize,
    /// Values set whole, keys added (key and value), keys removed, lists rebuilt.
    pub sets: usize,
    pub puts: usize,
    pub drops: usize,
    pub lists: usize,
}

fn encoded<T: Serialize + ?Sized>(t: &T) -> usize {
    postcard::to_allocvec(t).map(|v| v.len()).unwrap_or(0)
}

/// Where the bytes of a delta payload (`checksum` bytes of crc32, then `ops`) go.
pub fn cost(checksum: usize, ops: &[Op]) -> Cost {
    let mut c = Cost {
        checksum,
        framing: encoded(&ops.len()),
        ..Cost::default()
    };
    for op in ops {
        c.paths += encoded(&op.path);
        c.framing += 1;
        let payload = encoded(&op.action).saturating_sub(1);
        match &op.action {
            Action::Set(_) => c.sets += payload,
            Action::Int(_) => c.ints += payload,
            Action::Time(_) => c.times += payload,
            Action::Put(..) => c.puts += payload,
            Action::Drop(_) => c.drops += payload,
            Action::List(_) => c.lists += payload,
            Action::Text(t) => {
                c.framing += encoded(&t.len());
                for t in t {
                    match t {
                        TextOp::Copy { .. } => c.text_copies += encoded(t),
                        TextOp::Insert(_) => c.text_inserts += encoded(t),
                    }
                }
            }
        }
    }
    c
}

#[cfg(test)]
#[path = "delta_tests.rs"]
mod tests;
