//! Word-level diffs of binaries: copy/insert operations for storage, eq/ins/del runs for display.
//!
//! Both tokenize into words (letters, digits and any non-ASCII byte), whitespace runs and single
//! punctuation bytes, and diff the token sequences with Myers under a deadline, so a complete
//! rewrite of a 50 KB body cannot hold a scheduler: past the deadline the rest counts as replaced.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use similar::{Algorithm, DiffOp};
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Instant;

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
#[cfg_attr(feature = "nif", derive(rustler::NifUnitEnum))]
pub enum Change {
    Eq,
    Ins,
    Del,
}

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

/// Sequences at most this long together (after trimming the common ends) are diffed exactly,
/// whatever the clock says: Myers' work is then bounded by (N+M)·D <= 1024² steps (about a
/// millisecond), and a save makes the same delta on a loaded machine as on an idle one. Longer
/// ones are held to the deadline and settle for a coarser answer when it passes.
pub(crate) const EXACT_DIFF_LEN: usize = 1024;

/// The deadline a sequence diff of `n` elements in all is held to (none when it is short).
pub(crate) fn deadline_for(n: usize, deadline: Instant) -> Option<Instant> {
    (n > EXACT_DIFF_LEN).then_some(deadline)
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
    if is_rewrite(om, nm) {
        out.push((Change::Del, prefix, old.len() - suffix));
        out.push((Change::Ins, prefix, new.len() - suffix));
    } else if !om.is_empty() || !nm.is_empty() {
        let ot = tokenize(om);
        let nt = tokenize(nm);
        let ooff = offsets(&ot, prefix);
        let noff = offsets(&nt, prefix);
        let deadline = deadline_for(ot.len() + nt.len(), deadline);
        let ops = similar::capture_diff_slices_deadline(Algorithm::Myers, &ot, &nt, deadline);
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

/// Runs of this many bytes (a few words) are compared as shingles.
const SHINGLE: usize = 24;
/// Texts shorter than this are always diffed: Myers is quick on them.
const REWRITE_MIN_BYTES: usize = 4096;

/// True when `new` shares under a quarter of its shingles with `old`: a rewrite, where Myers
/// would only spend its deadline finding scattered common words. Shingles are sampled by their
/// own hash (about one in eight), so both sides keep the same ones, and the check costs a few
/// operations per byte, before any tokenizing.
fn is_rewrite(old: &[u8], new: &[u8]) -> bool {
    if old.len() < REWRITE_MIN_BYTES || new.len() < REWRITE_MIN_BYTES {
        return false;
    }
    let mut seen: HashSet<u64, BuildHasherDefault<Premixed>> =
        HashSet::with_capacity_and_hasher(old.len() / 6, Default::default());
    seen.extend(sampled_shingles(old));
    let (mut sampled, mut shared) = (0usize, 0usize);
    for h in sampled_shingles(new) {
        sampled += 1;
        shared += usize::from(seen.contains(&h));
    }
    sampled >= 16 && shared * 4 < sampled
}

/// Rolling polynomial hashes of every SHINGLE consecutive bytes, keeping those whose mixed hash
/// falls in the lowest eighth; each comes out mixed again (splitmix64's finalizer), ready for
/// a hash table as it is.
fn sampled_shingles(b: &[u8]) -> impl Iterator<Item = u64> + '_ {
    const BASE: u64 = 0x100_0000_01b3;
    let top = BASE.wrapping_pow(SHINGLE as u32 - 1);
    let mut rolling = 0u64;
    (0..b.len()).filter_map(move |i| {
        if i >= SHINGLE {
            rolling = rolling.wrapping_sub(u64::from(b[i - SHINGLE]).wrapping_mul(top));
        }
        rolling = rolling.wrapping_mul(BASE).wrapping_add(u64::from(b[i]));
        let keep = rolling.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 61 == 0;
        (i + 1 >= SHINGLE && keep).then(|| {
            let mut z = rolling;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        })
    })
}

/// A hasher for keys that are well-mixed hashes already: SipHash over them would cost more
/// than the whole rewrite check.
#[derive(Default)]
struct Premixed(u64);

impl Hasher for Premixed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
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

/// Operations that rebuild `new` from `old`, refined until `deadline` (past it, the rest of
/// the text counts as replaced). None when an offset does not fit in 32 bits.
pub fn encode_ops(old: &[u8], new: &[u8], deadline: Instant) -> Option<Vec<TextOp>> {
    let ranges = byte_ranges(old, new, deadline);
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
pub fn word_diff(old: &[u8], new: &[u8], deadline: Instant) -> Vec<(Change, Vec<u8>)> {
    let mut out: Vec<(Change, Vec<u8>)> = Vec::new();
    for (change, from, to) in byte_ranges(old, new, deadline) {
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
    use std::time::Duration;

    const DEADLINE: Duration = Duration::from_millis(1);

    #[test]
    fn small_edit_in_long_text_is_a_few_ops() {
        let old = "<p>Hello world, this is a rather long body of text.</p>".repeat(100);
        let mut new = old.clone();
        new.replace_range(2000..2005, "HELLO there");
        let ops = encode_ops(old.as_bytes(), new.as_bytes(), Instant::now() + DEADLINE).unwrap();
        assert!(ops.len() <= 5, "{ops:?}");
        assert!(ops_cost(&ops) < 64);
        assert_eq!(
            apply_ops(old.as_bytes(), &ops, usize::MAX).unwrap(),
            new.as_bytes()
        );
    }

    #[test]
    fn word_diff_marks_changed_words() {
        let d = word_diff(
            b"the quick brown fox",
            b"the slow brown fox",
            Instant::now() + DEADLINE,
        );
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

    fn prose(seed: u64, words: usize) -> String {
        let dict = [
            "the", "revision", "backup", "page", "editor", "site", "content", "quick", "brown",
            "fox", "lazy", "dog", "over", "jumps", "media", "image", "text", "een", "het", "und",
        ];
        let mut x = seed;
        let mut out = String::new();
        for _ in 0..words {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            out.push_str(dict[(x >> 33) as usize % dict.len()]);
            out.push(' ');
        }
        out
    }

    #[test]
    fn rewrite_of_a_long_text_is_one_insert_without_waiting_for_the_deadline() {
        let old = prose(1, 4000);
        let new = prose(2, 4000);
        let t0 = Instant::now();
        let ops = encode_ops(
            old.as_bytes(),
            new.as_bytes(),
            Instant::now() + Duration::from_secs(5),
        )
        .unwrap();
        assert!(
            t0.elapsed() < Duration::from_millis(500),
            "{:?}",
            t0.elapsed()
        );
        assert_eq!(
            apply_ops(old.as_bytes(), &ops, usize::MAX).unwrap(),
            new.as_bytes()
        );
        assert_eq!(
            ops.iter()
                .filter(|o| matches!(o, TextOp::Insert(_)))
                .count(),
            1
        );
    }

    #[test]
    fn scattered_edits_of_a_long_text_stay_a_diff() {
        let old = prose(3, 4000);
        let mut new = old.clone();
        for at in [1000, 6000, 12000, 20000] {
            new.replace_range(at..at + 3, "NEW WORDS HERE");
        }
        // A deadline no test machine reaches: this is about the rewrite check not misfiring.
        let deadline = Instant::now() + Duration::from_secs(60);
        let ops = encode_ops(old.as_bytes(), new.as_bytes(), deadline).unwrap();
        assert!(ops_cost(&ops) < 200, "{}", ops_cost(&ops));
        assert_eq!(
            apply_ops(old.as_bytes(), &ops, usize::MAX).unwrap(),
            new.as_bytes()
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
            let ops = encode_ops(old.as_bytes(), new.as_bytes(), Instant::now() + DEADLINE).unwrap();
            prop_assert_eq!(apply_ops(old.as_bytes(), &ops, usize::MAX).unwrap(), new.as_bytes());
            let d = word_diff(old.as_bytes(), new.as_bytes(), Instant::now() + DEADLINE);
            let o: Vec<u8> = d.iter().filter(|(c, _)| *c != Change::Ins).flat_map(|(_, t)| t.clone()).collect();
            let n: Vec<u8> = d.iter().filter(|(c, _)| *c != Change::Del).flat_map(|(_, t)| t.clone()).collect();
            prop_assert_eq!(o, old.as_bytes());
            prop_assert_eq!(n, new.as_bytes());
        }
    }
}
