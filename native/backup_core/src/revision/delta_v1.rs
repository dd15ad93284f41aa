//! Format 1 deltas (`zdelta1`), read only: rows written before format 2 stay readable forever.
//!
//! The operation list is flat (each op carries its full path) so that deserializing it never
//! recurses. Paths walk through map keys (the key's ETF) and tuple/list positions; values are ETF
//! bodies, parsed with the depth budget left below their path.

use super::delta::rebuild_list;
use super::etf::{self, Value, MAX_DEPTH};
use super::textdiff::{self, TextOp};
use super::RevError;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

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

/// One step rebuilding a list: the same type, and so the same encoding, as format 2's.
pub use super::delta::ListItem;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub path: Vec<Step>,
    pub action: Action,
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
    let mut v = etf::decode_body_at(bytes, depth).map_err(RevError::into_corrupt)?;
    etf::canonicalize(&mut v);
    Ok(v)
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
                    let rebuilt = rebuild_list(std::mem::take(old), items, |b| {
                        charge(budget, b.len())?;
                        parse_at(b, depth + 1)
                    })?;
                    *slot = Value::List(rebuilt, None);
                }
                Action::Remove => return Err(RevError::corrupt("remove outside a map")),
            }
            Ok(())
        }
    }
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
