//! The revision diff the admin screen shows: per property (and per language of a translated
//! text), the old and new value as text and word-level changes between them.

use super::etf::{self, Value};
use super::textdiff::{self, Change};
use crate::Result;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::{Duration, Instant};

/// Time the word diffs of one revision diff may take together (one deadline, so a page with
/// many long texts cannot hold a dirty scheduler for a multiple of it); past it the rest of a
/// text is shown as replaced.
const DISPLAY_DEADLINE: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "nif", derive(rustler::NifUnitEnum))]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
}

/// One changed property, or one changed language of a translated property.
#[derive(Debug, Clone, PartialEq)]
pub struct PropChange {
    pub key: Value,
    /// The language, for one language of a `{trans, [...]}` value.
    pub lang: Option<String>,
    pub change: ChangeKind,
    /// The value as text: a binary's own bytes, anything else printed like `~p`.
    pub old: Option<Vec<u8>>,
    pub new: Option<Vec<u8>>,
    /// Word-level runs from `old` to `new` (empty for added or removed).
    pub ops: Vec<(Change, Vec<u8>)>,
}

/// Property pairs of a props term: a map, or a proplist; anything else is one property `value`.
fn props(v: &Value) -> Vec<(Value, &Value)> {
    match v {
        Value::Map(pairs) => pairs.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::List(items, None) => {
            let mut out = Vec::with_capacity(items.len());
            for it in items {
                match it {
                    Value::Tuple(kv) if kv.len() == 2 => out.push((kv[0].clone(), &kv[1])),
                    _ => return vec![(Value::Atom("value".into()), v)],
                }
            }
            out
        }
        _ => vec![(Value::Atom("value".into()), v)],
    }
}

/// The languages of a `{trans, [{Lang, Text}]}` value.
fn trans(v: &Value) -> Option<Vec<(String, &Value)>> {
    match v {
        Value::Tuple(t) if t.len() == 2 && t[0] == Value::Atom("trans".into()) => match &t[1] {
            Value::List(items, None) => items
                .iter()
                .map(|it| match it {
                    Value::Tuple(lt) if lt.len() == 2 => match &lt[0] {
                        Value::Atom(l) => Some((l.clone(), &lt[1])),
                        _ => None,
                    },
                    _ => None,
                })
                .collect(),
            l if *l == Value::nil() => Some(Vec::new()),
            _ => None,
        },
        _ => None,
    }
}

/// A value as the admin reads it: a binary as its bytes, anything else printed.
pub fn text(v: &Value) -> Vec<u8> {
    match v {
        Value::Binary(b) => b.clone(),
        other => print(other).into_bytes(),
    }
}

fn change(
    key: &Value,
    lang: Option<String>,
    old: Option<&Value>,
    new: Option<&Value>,
    deadline: Instant,
) -> PropChange {
    let old_t = old.map(text);
    let new_t = new.map(text);
    let (kind, ops) = match (&old_t, &new_t) {
        (Some(o), Some(n)) => (ChangeKind::Changed, textdiff::word_diff(o, n, deadline)),
        (None, _) => (ChangeKind::Added, Vec::new()),
        (_, None) => (ChangeKind::Removed, Vec::new()),
    };
    PropChange {
        key: key.clone(),
        lang,
        change: kind,
        old: old_t,
        new: new_t,
        ops,
    }
}

/// The changes from props `a` to props `b` (both `term_to_binary` output), sorted by key.
pub fn diff_props(a_etf: &[u8], b_etf: &[u8]) -> Result<Vec<PropChange>> {
    let a = etf::decode(a_etf)?;
    let b = etf::decode(b_etf)?;
    Ok(diff_values(&a, &b))
}

pub fn diff_values(a: &Value, b: &Value) -> Vec<PropChange> {
    let deadline = Instant::now() + DISPLAY_DEADLINE;
    // Keyed by printed key so the order is stable and readable.
    type Entry<'v> = (Value, Option<&'v Value>, Option<&'v Value>);
    let mut keys: BTreeMap<(String, Vec<u8>), Entry> = BTreeMap::new();
    for (k, v) in props(a) {
        let id = (key_text(&k), etf::encode_canonical(&k));
        keys.entry(id).or_insert((k, None, None)).1 = Some(v);
    }
    for (k, v) in props(b) {
        let id = (key_text(&k), etf::encode_canonical(&k));
        keys.entry(id).or_insert((k, None, None)).2 = Some(v);
    }
    let mut out = Vec::new();
    for (_, (key, old, new)) in keys {
        if old == new {
            continue;
        }
        match (old.and_then(trans), new.and_then(trans)) {
            (Some(ot), Some(nt)) => {
                let mut langs: BTreeMap<&str, (Option<&Value>, Option<&Value>)> = BTreeMap::new();
                for (l, v) in &ot {
                    langs.entry(l).or_default().0 = Some(v);
                }
                for (l, v) in &nt {
                    langs.entry(l).or_default().1 = Some(v);
                }
                for (l, (o, n)) in langs {
                    if o != n {
                        out.push(change(&key, Some(l.to_owned()), o, n, deadline));
                    }
                }
            }
            _ => out.push(change(&key, None, old, new, deadline)),
        }
    }
    out
}

fn key_text(k: &Value) -> String {
    match k {
        Value::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        Value::Atom(a) => a.clone(),
        other => print(other),
    }
}

/// Prints a term roughly as `io_lib:format("~p")` would, on one line.
pub fn print(v: &Value) -> String {
    let mut s = String::new();
    print_to(&mut s, v);
    s
}

fn print_to(s: &mut String, v: &Value) {
    match v {
        Value::Int(i) => {
            let _ = write!(s, "{i}");
        }
        Value::Big {
            negative,
            magnitude,
        } => print_big(s, *negative, magnitude),
        Value::Float(bits) => {
            let f = f64::from_bits(*bits);
            let _ = if f.fract() == 0.0 && f.abs() < 1e15 {
                write!(s, "{f:.1}")
            } else {
                write!(s, "{f:?}")
            };
        }
        Value::Atom(a) => print_atom(s, a),
        Value::Binary(b) => match std::str::from_utf8(b) {
            Ok(t) if t.chars().all(|c| !c.is_control() || c == '\n' || c == '\t') => {
                s.push_str("<<\"");
                escape(s, t);
                s.push_str("\"/utf8>>");
            }
            _ => {
                s.push_str("<<");
                join_bytes(s, b);
                s.push_str(">>");
            }
        },
        Value::Bits { bits, data } => {
            s.push_str("<<");
            join_bytes(s, &data[..data.len().saturating_sub(1)]);
            if let Some(last) = data.last() {
                if data.len() > 1 {
                    s.push(',');
                }
                let _ = write!(s, "{}:{}", last >> (8 - bits), bits);
            }
            s.push_str(">>");
        }
        Value::Str(b) => {
            if b.iter()
                .all(|&c| (32..127).contains(&c) || c == b'\n' || c == b'\t')
            {
                s.push('"');
                escape(s, &String::from_utf8_lossy(b));
                s.push('"');
            } else {
                s.push('[');
                join_bytes(s, b);
                s.push(']');
            }
        }
        Value::List(items, tail) => {
            s.push('[');
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                print_to(s, it);
            }
            if let Some(t) = tail {
                s.push('|');
                print_to(s, t);
            }
            s.push(']');
        }
        Value::Tuple(items) => {
            s.push('{');
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                print_to(s, it);
            }
            s.push('}');
        }
        Value::Map(pairs) => {
            s.push_str("#{");
            for (i, (k, v)) in pairs.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                print_to(s, k);
                s.push_str(" => ");
                print_to(s, v);
            }
            s.push('}');
        }
        Value::Opaque(b) => {
            let _ = write!(s, "#Opaque<{}>", b.len());
        }
    }
}

fn join_bytes(s: &mut String, b: &[u8]) {
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{x}");
    }
}

fn escape(s: &mut String, t: &str) {
    for c in t.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            c => s.push(c),
        }
    }
}

fn print_atom(s: &mut String, a: &str) {
    let bare = a.starts_with(|c: char| c.is_ascii_lowercase())
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '@');
    if bare {
        s.push_str(a);
    } else {
        s.push('\'');
        for c in a.chars() {
            match c {
                '\'' => s.push_str("\\'"),
                '\\' => s.push_str("\\\\"),
                c => s.push(c),
            }
        }
        s.push('\'');
    }
}

/// Decimal digits of a bignum; very large ones (hostile, never props) are only described.
fn print_big(s: &mut String, negative: bool, magnitude: &[u8]) {
    if magnitude.len() > 128 {
        let _ = write!(s, "<integer of {} bytes>", magnitude.len());
        return;
    }
    // Repeated division by 10^9 of the little-endian magnitude, in base-2^32 limbs.
    let mut limbs: Vec<u32> = magnitude
        .chunks(4)
        .map(|c| {
            let mut a = [0u8; 4];
            a[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(a)
        })
        .collect();
    let mut parts = Vec::new();
    while limbs.iter().any(|&l| l != 0) {
        let mut rem = 0u64;
        for l in limbs.iter_mut().rev() {
            let cur = (rem << 32) | u64::from(*l);
            *l = (cur / 1_000_000_000) as u32;
            rem = cur % 1_000_000_000;
        }
        parts.push(rem as u32);
    }
    if negative {
        s.push('-');
    }
    match parts.split_last() {
        None => s.push('0'),
        Some((top, rest)) => {
            let _ = write!(s, "{top}");
            for p in rest.iter().rev() {
                let _ = write!(s, "{p:09}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bin(s: &str) -> Value {
        Value::Binary(s.as_bytes().to_vec())
    }

    fn tr(en: &str, nl: &str) -> Value {
        Value::Tuple(vec![
            Value::Atom("trans".into()),
            Value::List(
                vec![
                    Value::Tuple(vec![Value::Atom("en".into()), bin(en)]),
                    Value::Tuple(vec![Value::Atom("nl".into()), bin(nl)]),
                ],
                None,
            ),
        ])
    }

    #[test]
    fn translated_text_diffs_per_language_with_word_ops() {
        let a = Value::Map(vec![
            (bin("title"), tr("Hello world", "Hallo wereld")),
            (bin("n"), Value::Int(1)),
            (bin("old"), Value::Atom("true".into())),
        ]);
        let b = Value::Map(vec![
            (bin("title"), tr("Hello there world", "Hallo wereld")),
            (bin("n"), Value::Int(2)),
            (bin("new"), Value::Float(1.5f64.to_bits())),
        ]);
        let d = diff_values(&a, &b);
        let keys: Vec<_> = d
            .iter()
            .map(|c| (key_text(&c.key), c.lang.clone(), c.change))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("n".into(), None, ChangeKind::Changed),
                ("new".into(), None, ChangeKind::Added),
                ("old".into(), None, ChangeKind::Removed),
                ("title".into(), Some("en".into()), ChangeKind::Changed),
            ]
        );
        let title = &d[3];
        assert!(title
            .ops
            .iter()
            .any(|(c, t)| *c == Change::Ins && t == b"there "));
        assert_eq!(d[1].new.as_deref(), Some(&b"1.5"[..]));
    }

    #[test]
    fn bignums_print_in_decimal() {
        let v = Value::Big {
            negative: true,
            magnitude: vec![0, 0, 0, 0, 0, 0, 0, 0, 1],
        };
        assert_eq!(print(&v), "-18446744073709551616");
    }
}
