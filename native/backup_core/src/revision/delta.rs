//! Structural diff of two terms into a flat list of operations, and its application.
//!
//! The operation list is flat on purpose (each op carries its full path) so that deserializing
//! it never recurses: a hostile delta cannot exhaust the stack of a dirty scheduler. Paths walk
//! through map keys (the key's ETF) and tuple/list positions. Values are ETF bodies, parsed with
//! the depth budget left below their path.

use super::etf::{self, Value, MAX_DEPTH};
use super::textdiff::{self, TextOp};
use super::RevError;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// Binaries shorter than this are replaced whole; longer ones may be stored as text ops.
const TEXT_MIN: usize = 64;
/// Tuples and lists whose new encoding is smaller than this are replaced whole.
const CONTAINER_MIN: usize = 96;
/// Time all sequence diffs of one delta may take together before they settle for coarser
/// answers: a save that rewrites three 50 KB bodies must not pay a full deadline per body.
const DIFF_DEADLINE: Duration = Duration::from_millis(1);

/// One step from a term into one of its parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    /// The value under this key (ETF body) of a map.
    Key(ByteBuf),
    /// The element at this 0-based position of a tuple or list.
    Index(u32),
}

/// What to do at the end of a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Put this value (ETF body) there; for a map key that is absent, add it.
    Set(ByteBuf),
    /// Remove this map key (the last step must be a `Key`).
    Remove,
    /// The binary there is rebuilt from its old bytes.
    Text(Vec<TextOp>),
    /// The proper list there is rebuilt from runs of its old elements and new elements.
    List(Vec<ListItem>),
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

/// The operations that turn `old` into `new`. Applying them to `old` gives a term `=:=` `new`.
pub fn diff(old: &Value, new: &Value) -> Vec<Op> {
    let mut out = Out {
        ops: Vec::new(),
        deadline: Instant::now() + DIFF_DEADLINE,
    };
    diff_at(old, new, &mut Vec::new(), &mut out);
    out.ops
}

/// The operations found so far, and when the sequence diffs must stop refining.
struct Out {
    ops: Vec<Op>,
    deadline: Instant,
}

fn set(path: &[Step], v: &Value) -> Op {
    Op {
        path: path.to_vec(),
        action: Action::Set(ByteBuf::from(etf::encode_body(v))),
    }
}

fn diff_at(old: &Value, new: &Value, path: &mut Vec<Step>, out: &mut Out) {
    if old == new {
        return;
    }
    match (old, new) {
        (Value::Map(a), Value::Map(b)) => {
            let index: HashMap<&Value, &Value> = a.iter().map(|(k, v)| (k, v)).collect();
            for (k, v) in b {
                path.push(Step::Key(ByteBuf::from(etf::encode_body(k))));
                match index.get(k) {
                    Some(ov) => diff_at(ov, v, path, out),
                    None => out.ops.push(set(path, v)),
                }
                path.pop();
            }
            let present: HashSet<&Value> = b.iter().map(|(k, _)| k).collect();
            for (k, _) in a {
                if !present.contains(k) {
                    let mut p = path.clone();
                    p.push(Step::Key(ByteBuf::from(etf::encode_body(k))));
                    out.ops.push(Op {
                        path: p,
                        action: Action::Remove,
                    });
                }
            }
        }
        (Value::Binary(a), Value::Binary(b)) if a.len() >= TEXT_MIN && b.len() >= TEXT_MIN => {
            match textdiff::encode_ops(a, b, out.deadline) {
                Some(t) if textdiff::ops_cost(&t) < b.len() => out.ops.push(Op {
                    path: path.clone(),
                    action: Action::Text(t),
                }),
                _ => out.ops.push(set(path, new)),
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
        _ => out.ops.push(set(path, new)),
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
        return out.ops.push(set(path, &Value::List(b.to_vec(), None)));
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
        Some(out.deadline),
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
                    items.push(ListItem::New(ByteBuf::from(etf::encode_body(v))));
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
                    items.push(ListItem::New(ByteBuf::from(etf::encode_body(v))));
                }
            }
        }
    }
    out.ops.push(Op {
        path: path.clone(),
        action: Action::List(items),
    });
    for (i, j) in patched {
        path.push(Step::Index(j as u32));
        diff_at(&a[i], &b[j], path, out);
        path.pop();
    }
}

/// Applies `ops` to `root` in order. `budget` is the number of bytes new binaries may still take;
/// it bounds what a hostile delta can make us allocate.
pub fn apply(root: &mut Value, ops: &[Op], budget: &mut usize) -> Result<(), RevError> {
    for op in ops {
        apply_one(root, op, budget)?;
    }
    Ok(())
}

fn parse_at(bytes: &[u8], depth: usize) -> Result<Value, RevError> {
    if depth > MAX_DEPTH {
        return Err(RevError::corrupt("delta path too deep"));
    }
    etf::decode_body_at(bytes, depth).map_err(RevError::into_corrupt)
}

fn charge(budget: &mut usize, n: usize) -> Result<(), RevError> {
    *budget = budget
        .checked_sub(n)
        .ok_or_else(|| RevError::corrupt("delta makes the revision too large"))?;
    Ok(())
}

fn apply_one(root: &mut Value, op: &Op, budget: &mut usize) -> Result<(), RevError> {
    let depth = op.path.len();
    let (target, last) = match op.path.split_last() {
        None => (root, None),
        Some((last, prefix)) => (walk(root, prefix)?, Some(last)),
    };
    match (&op.action, last) {
        (Action::Remove, Some(Step::Key(k))) => {
            let key = parse_at(k, depth)?;
            let pairs = as_map(target)?;
            let i = pairs
                .iter()
                .position(|(pk, _)| *pk == key)
                .ok_or_else(|| RevError::corrupt("delta removes a missing key"))?;
            pairs.remove(i);
            Ok(())
        }
        (Action::Remove, _) => Err(RevError::corrupt("remove outside a map")),
        (Action::Set(bytes), Some(Step::Key(k))) => {
            charge(budget, bytes.len())?;
            let key = parse_at(k, depth)?;
            let value = parse_at(bytes, depth)?;
            let pairs = as_map(target)?;
            match pairs.iter_mut().find(|(pk, _)| *pk == key) {
                Some((_, v)) => *v = value,
                None => pairs.push((key, value)),
            }
            Ok(())
        }
        (action, last) => {
            let slot = match last {
                Some(step) => child(target, step, depth)?,
                None => target,
            };
            match action {
                Action::Set(bytes) => {
                    charge(budget, bytes.len())?;
                    *slot = parse_at(bytes, depth)?;
                }
                Action::Text(t) => {
                    let Value::Binary(old) = slot else {
                        return Err(RevError::corrupt("text delta on a non-binary"));
                    };
                    let out = textdiff::apply_ops(old, t, *budget)
                        .ok_or_else(|| RevError::corrupt("text delta does not fit its base"))?;
                    charge(budget, out.len())?;
                    *old = out;
                }
                Action::List(items) => {
                    let Value::List(old, None) = slot else {
                        return Err(RevError::corrupt("list delta on a non-list"));
                    };
                    let rebuilt = rebuild_list(std::mem::take(old), items, depth, budget)?;
                    *slot = Value::List(rebuilt, None);
                }
                Action::Remove => return Err(RevError::corrupt("remove outside a map")),
            }
            Ok(())
        }
    }
}

fn rebuild_list(
    old: Vec<Value>,
    items: &[ListItem],
    depth: usize,
    budget: &mut usize,
) -> Result<Vec<Value>, RevError> {
    let mut out = Vec::with_capacity(old.len());
    let mut rest = old.into_iter();
    for item in items {
        match item {
            ListItem::Old { skip, len } => {
                for _ in 0..*skip {
                    rest.next()
                        .ok_or_else(|| RevError::corrupt("list delta skips past the end"))?;
                }
                for _ in 0..*len {
                    out.push(
                        rest.next()
                            .ok_or_else(|| RevError::corrupt("list delta reads past the end"))?,
                    );
                }
            }
            ListItem::New(bytes) => {
                charge(budget, bytes.len())?;
                out.push(parse_at(bytes, depth + 1)?);
            }
        }
    }
    if out.is_empty() {
        return Err(RevError::corrupt("list delta makes an empty list"));
    }
    Ok(out)
}

fn as_map(v: &mut Value) -> Result<&mut Vec<(Value, Value)>, RevError> {
    match v {
        Value::Map(pairs) => Ok(pairs),
        _ => Err(RevError::corrupt("delta path expects a map")),
    }
}

fn child<'v>(v: &'v mut Value, step: &Step, depth: usize) -> Result<&'v mut Value, RevError> {
    match step {
        Step::Key(k) => {
            let key = parse_at(k, depth)?;
            as_map(v)?
                .iter_mut()
                .find(|(pk, _)| *pk == key)
                .map(|(_, val)| val)
                .ok_or_else(|| RevError::corrupt("delta path names a missing key"))
        }
        Step::Index(i) => match v {
            Value::Tuple(items) | Value::List(items, None) => items
                .get_mut(*i as usize)
                .ok_or_else(|| RevError::corrupt("delta path index out of range")),
            _ => Err(RevError::corrupt("delta path expects a tuple or list")),
        },
    }
}

fn walk<'v>(mut v: &'v mut Value, steps: &[Step]) -> Result<&'v mut Value, RevError> {
    for (d, step) in steps.iter().enumerate() {
        v = child(v, step, d)?;
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bin(s: &str) -> Value {
        Value::Binary(s.as_bytes().to_vec())
    }

    #[test]
    fn changed_removed_and_added_keys_round_trip() {
        let body = "<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>".repeat(40);
        let old = Value::Map(vec![
            (bin("title"), bin("Hello")),
            (bin("gone"), Value::Int(1)),
            (
                bin("body"),
                Value::Tuple(vec![
                    Value::Atom("trans".into()),
                    Value::List(
                        vec![
                            Value::Tuple(vec![Value::Atom("en".into()), bin(&body)]),
                            Value::Tuple(vec![Value::Atom("nl".into()), bin(&body)]),
                        ],
                        None,
                    ),
                ]),
            ),
        ]);
        let mut new = old.clone();
        if let Value::Map(p) = &mut new {
            p.retain(|(k, _)| *k != bin("gone"));
            p.push((bin("added"), Value::Atom("true".into())));
            p[0].1 = bin("Hello world");
            let edited = body.replacen("dolor", "DOLOR", 3);
            p[1].1 = Value::Tuple(vec![
                Value::Atom("trans".into()),
                Value::List(
                    vec![
                        Value::Tuple(vec![Value::Atom("en".into()), bin(&edited)]),
                        Value::Tuple(vec![Value::Atom("nl".into()), bin(&body)]),
                    ],
                    None,
                ),
            ]);
        }
        let ops = diff(&old, &new);
        assert!(ops.iter().any(|o| matches!(o.action, Action::Text(_))));
        let size: usize = postcard::to_allocvec(&ops).unwrap().len();
        assert!(size < 200, "delta of {size} bytes");
        let mut v = old.clone();
        apply(&mut v, &ops, &mut usize::MAX.clone()).unwrap();
        assert_eq!(v, new);
    }

    #[test]
    fn list_insertions_and_deletions_round_trip() {
        let item = |i: i64| Value::Tuple(vec![Value::Int(i), bin(&"x".repeat(40))]);
        let old = Value::List((0..20).map(item).collect(), None);
        let new = Value::List(
            (0..25)
                .filter(|i| i % 7 != 3)
                .map(|i| if i == 10 { bin("ten") } else { item(i) })
                .collect(),
            None,
        );
        let ops = diff(&old, &new);
        let mut v = old.clone();
        apply(&mut v, &ops, &mut usize::MAX.clone()).unwrap();
        assert_eq!(v, new);
    }

    #[test]
    fn ops_against_the_wrong_base_are_errors_not_panics() {
        let ops = vec![
            Op {
                path: vec![Step::Index(5)],
                action: Action::Remove,
            },
            Op {
                path: vec![Step::Key(ByteBuf::from(vec![1, 2, 3]))],
                action: Action::Set(ByteBuf::from(vec![106])),
            },
        ];
        for op in ops {
            let mut v = Value::Map(vec![]);
            assert!(apply(&mut v, &[op], &mut 1000).is_err());
        }
    }
}
