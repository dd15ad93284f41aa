//! Word-level diffs of binaries: copy/insert operations for storage, eq/ins/del runs for display.
//!
//! Both tokenize into words (letters, digits and any non-ASCII byte), whitespace runs and single
//! punctuation bytes, and diff the token sequences with Myers under a deadline, so a complete
//! rewrite of a 50 KB body cannot hold a scheduler: past the deadline the rest counts as replaced.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use similar::{Algorithm, DiffOp};
use std::time::{Duration, Instant};

/// One step rebuilding a binary from its previous value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TextOp {
    /// Skip `skip` bytes of the old value, then copy the next `len` bytes.
    Copy { skip: u32, len: u32 },
    /// Append these bytes.
    Insert(ByteBuf),
}

/// What a display run is: unchanged, inserted or deleted text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Eq,
    Ins,
    Del,
}

/// Time allowed for one token diff before it settles for a coarser answer.
const DEADLINE: Duration = Duration::from_millis(1);

fn class(b: u8) -> u8 {
    if b.is_ascii_alphanumeric() || b >= 0x80 || b == b'_' {
        0
    } else if b.is_ascii_whitespace() {
        1
    } else {
        2
    }
}

/// Splits into words, whitespace runs and single punctuation bytes; the pieces concatenate back
/// to `b`.
pub fn tokenize(b: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::with_capacity(b.len() / 4 + 1);
    let mut start = 0;
    while start < b.len() {
        let c = class(b[start]);
        let mut end = start + 1;
        if c != 2 {
            while end < b.len() && class(b[end]) == c {
                end += 1;
            }
        }
        out.push(&b[start..end]);
        start = end;
    }
    out
}

/// Token-level diff ops with the common prefix and suffix trimmed byte-wise first, so one edit
/// costs no tokenizing of the untouched text. Returned ranges are byte ranges of `old`/`new`.
fn byte_ranges(old: &[u8], new: &[u8], deadline: Instant) -> Vec<(Change, usize, usize)> {
    let prefix = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let max_suffix = old.len().min(new.len()) - prefix;
    let suffix = old
        .iter()
        .rev()
        .zip(new.iter().rev())
        .take(max_suffix)
        .take_while(|(a, b)| a == b)
        .count();
    // Back off to token boundaries so words are compared whole.
    let splits = |s: &[u8], i: usize| {
        i > 0 && i < s.len() && class(s[i - 1]) != 2 && class(s[i - 1]) == class(s[i])
    };
    let mut prefix = prefix;
    while prefix > 0 && (splits(old, prefix) || splits(new, prefix)) {
        prefix -= 1;
    }
    let mut suffix = suffix;
    while suffix > 0 && (splits(old, old.len() - suffix) || splits(new, new.len() - suffix)) {
        suffix -= 1;
    }
    let om = &old[prefix..old.len() - suffix];
    let nm = &new[prefix..new.len() - suffix];
    let mut out = Vec::new();
    if prefix > 0 {
        out.push((Change::Eq, 0, prefix));
    }
    if !om.is_empty() || !nm.is_empty() {
        let ot = tokenize(om);
        let nt = tokenize(nm);
        let ooff = offsets(&ot, prefix);
        let noff = offsets(&nt, prefix);
        let ops = similar::capture_diff_slices_deadline(Algorithm::Myers, &ot, &nt, Some(deadline));
        for op in ops {
            match op {
                DiffOp::Equal { old_index, len, .. } => {
                    out.push((Change::Eq, ooff[old_index], ooff[old_index + len]))
                }
                DiffOp::Delete {
                    old_index, old_len, ..
                } => out.push((Change::Del, ooff[old_index], ooff[old_index + old_len])),
                DiffOp::Insert {
                    new_index, new_len, ..
                } => out.push((Change::Ins, noff[new_index], noff[new_index + new_len])),
                DiffOp::Replace {
                    old_index,
                    old_len,
                    new_index,
                    new_len,
                } => {
                    out.push((Change::Del, ooff[old_index], ooff[old_index + old_len]));
                    out.push((Change::Ins, noff[new_index], noff[new_index + new_len]));
                }
            }
        }
    }
    if suffix > 0 {
        out.push((Change::Eq, old.len() - suffix, old.len()));
    }
    out
}

/// Byte offset of each token start, plus the end.
fn offsets(tokens: &[&[u8]], base: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(tokens.len() + 1);
    let mut at = base;
    out.push(at);
    for t in tokens {
        at += t.len();
        out.push(at);
    }
    out
}

/// Operations that rebuild `new` from `old`. None when an offset does not fit in 32 bits.
pub fn encode_ops(old: &[u8], new: &[u8]) -> Option<Vec<TextOp>> {
    let ranges = byte_ranges(old, new, Instant::now() + DEADLINE);
    let mut ops: Vec<TextOp> = Vec::new();
    let mut cursor = 0usize;
    for (change, from, to) in ranges {
        match change {
            Change::Eq if to > from => {
                let skip = u32::try_from(from - cursor).ok()?;
                let len = u32::try_from(to - from).ok()?;
                match ops.last_mut() {
                    Some(TextOp::Copy { len: l, .. }) if skip == 0 => *l = l.checked_add(len)?,
                    _ => ops.push(TextOp::Copy { skip, len }),
                }
                cursor = to;
            }
            Change::Ins if to > from => match ops.last_mut() {
                Some(TextOp::Insert(b)) => b.extend_from_slice(&new[from..to]),
                _ => ops.push(TextOp::Insert(ByteBuf::from(new[from..to].to_vec()))),
            },
            _ => {}
        }
    }
    Some(fold_short_copies(old, ops))
}

/// A copy of a few bytes between two inserts costs more than the bytes: fold it into them.
fn fold_short_copies(old: &[u8], ops: Vec<TextOp>) -> Vec<TextOp> {
    let mut out: Vec<TextOp> = Vec::with_capacity(ops.len());
    let mut carry = 0u32; // old bytes passed by folded copies, added to the next copy's skip
    let mut cursor = 0usize;
    let mut iter = ops.into_iter().peekable();
    while let Some(op) = iter.next() {
        match op {
            TextOp::Copy { skip, len } => {
                let from = cursor + skip as usize;
                cursor = from + len as usize;
                let between_inserts = matches!(out.last(), Some(TextOp::Insert(_)))
                    && matches!(iter.peek(), Some(TextOp::Insert(_)));
                if between_inserts && len <= 6 {
                    if let Some(TextOp::Insert(b)) = out.last_mut() {
                        b.extend_from_slice(&old[from..cursor]);
                    }
                    carry = carry.saturating_add(skip + len);
                } else {
                    out.push(TextOp::Copy {
                        skip: skip.saturating_add(carry),
                        len,
                    });
                    carry = 0;
                }
            }
            TextOp::Insert(b) => match out.last_mut() {
                Some(TextOp::Insert(prev)) => prev.extend_from_slice(&b),
                _ => out.push(TextOp::Insert(b)),
            },
        }
    }
    out
}

/// Rough stored size of `ops`, to choose between them and the whole new value.
pub fn ops_cost(ops: &[TextOp]) -> usize {
    ops.iter()
        .map(|op| match op {
            TextOp::Copy { .. } => 7,
            TextOp::Insert(b) => 4 + b.len(),
        })
        .sum()
}

/// Rebuilds a binary; `None` when an operation reads past the old value or the result would
/// exceed `limit` bytes.
pub fn apply_ops(old: &[u8], ops: &[TextOp], limit: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(old.len().min(limit));
    let mut cursor = 0usize;
    for op in ops {
        match op {
            TextOp::Copy { skip, len } => {
                let from = cursor.checked_add(*skip as usize)?;
                let to = from.checked_add(*len as usize)?;
                out.extend_from_slice(old.get(from..to)?);
                cursor = to;
            }
            TextOp::Insert(b) => out.extend_from_slice(b),
        }
        if out.len() > limit {
            return None;
        }
    }
    Some(out)
}

/// Word-level display diff: runs of unchanged, deleted and inserted text, adjacent runs of the
/// same kind merged, deletions before insertions.
pub fn word_diff(old: &[u8], new: &[u8], deadline: Duration) -> Vec<(Change, Vec<u8>)> {
    let mut out: Vec<(Change, Vec<u8>)> = Vec::new();
    for (change, from, to) in byte_ranges(old, new, Instant::now() + deadline) {
        if to <= from {
            continue;
        }
        let text = match change {
            Change::Ins => &new[from..to],
            _ => &old[from..to],
        };
        match out.last_mut() {
            Some((c, t)) if *c == change => t.extend_from_slice(text),
            _ => out.push((change, text.to_vec())),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn small_edit_in_long_text_is_a_few_ops() {
        let old = "<p>Hello world, this is a rather long body of text.</p>".repeat(100);
        let mut new = old.clone();
        new.replace_range(2000..2005, "HELLO there");
        let ops = encode_ops(old.as_bytes(), new.as_bytes()).unwrap();
        assert!(ops.len() <= 5, "{ops:?}");
        assert!(ops_cost(&ops) < 64);
        assert_eq!(
            apply_ops(old.as_bytes(), &ops, usize::MAX).unwrap(),
            new.as_bytes()
        );
    }

    #[test]
    fn word_diff_marks_changed_words() {
        let d = word_diff(b"the quick brown fox", b"the slow brown fox", DEADLINE);
        assert_eq!(
            d,
            vec![
                (Change::Eq, b"the ".to_vec()),
                (Change::Del, b"quick".to_vec()),
                (Change::Ins, b"slow".to_vec()),
                (Change::Eq, b" brown fox".to_vec()),
            ]
        );
    }

    #[test]
    fn copy_past_the_end_is_refused() {
        let ops = [TextOp::Copy { skip: 2, len: 10 }];
        assert_eq!(apply_ops(b"abc", &ops, usize::MAX), None);
        let ops = [TextOp::Copy {
            skip: u32::MAX,
            len: u32::MAX,
        }];
        assert_eq!(apply_ops(b"abc", &ops, usize::MAX), None);
    }

    proptest! {
        #[test]
        fn ops_rebuild_the_new_text(old in "[a-c <>.]{0,200}", new in "[a-c <>.]{0,200}") {
            let ops = encode_ops(old.as_bytes(), new.as_bytes()).unwrap();
            prop_assert_eq!(apply_ops(old.as_bytes(), &ops, usize::MAX).unwrap(), new.as_bytes());
            let d = word_diff(old.as_bytes(), new.as_bytes(), DEADLINE);
            let o: Vec<u8> = d.iter().filter(|(c, _)| *c != Change::Ins).flat_map(|(_, t)| t.clone()).collect();
            let n: Vec<u8> = d.iter().filter(|(c, _)| *c != Change::Del).flat_map(|(_, t)| t.clone()).collect();
            prop_assert_eq!(o, old.as_bytes());
            prop_assert_eq!(n, new.as_bytes());
        }
    }
}
