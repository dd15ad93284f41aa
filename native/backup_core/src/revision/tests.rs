//! Size: the codec's round trips, hostile rows and dictionary cases, one short test each.

use super::etf::{self, Value};
use super::*;
use proptest::prelude::*;
use std::sync::{Arc, OnceLock};

/// No dictionaries: rows written with plain zstd.
fn plain() -> Codec<'static> {
    static NONE: OnceLock<Dicts> = OnceLock::new();
    Codec::new(NONE.get_or_init(Dicts::new), 0).unwrap()
}

fn no_dicts() -> &'static Dicts {
    plain().dicts
}

fn bin(s: &str) -> Value {
    Value::Binary(s.as_bytes().to_vec())
}

fn sample_props(body: &str) -> Value {
    Value::Map(vec![
        (bin("title"), bin("A page")),
        (
            bin("body"),
            Value::Tuple(vec![
                Value::Atom("trans".into()),
                Value::List(
                    vec![
                        Value::Tuple(vec![Value::Atom("en".into()), bin(body)]),
                        Value::Tuple(vec![Value::Atom("nl".into()), bin(&body.to_uppercase())]),
                    ],
                    None,
                ),
            ]),
        ),
        (
            bin("publication_start"),
            Value::Tuple(vec![
                Value::Tuple(vec![Value::Int(2024), Value::Int(2), Value::Int(29)]),
                Value::Tuple(vec![Value::Int(12), Value::Int(0), Value::Int(0)]),
            ]),
        ),
        (bin("is_published"), Value::Atom("true".into())),
        (bin("version"), Value::Int(7)),
    ])
}

/// The canonical bytes: equal for terms that are `=:=`.
fn canon(v: &Value) -> Vec<u8> {
    etf::encode_canonical(v)
}

#[test]
fn chain_of_edits_reconstructs_every_revision() {
    let body = "<p>Some words in a paragraph, repeated to make a body.</p>\n".repeat(50);
    let mut revs = vec![sample_props(&body)];
    for i in 0..30 {
        let mut next = revs[i].clone();
        if let Value::Map(p) = &mut next {
            p[4].1 = Value::Int(8 + i as i64);
            if i % 3 == 0 {
                let b = body.replacen("words", &format!("words {i}"), 1 + i % 4);
                p[1] = (bin("body"), sample_props(&b).clone_body());
            }
            if i == 10 {
                p.push((
                    bin("extra"),
                    Value::List(vec![Value::Int(1000), bin("x")], None),
                ));
            }
            if i == 20 {
                p.retain(|(k, _)| *k != bin("extra"));
            }
        }
        revs.push(next);
    }
    let etfs: Vec<Vec<u8>> = revs.iter().map(etf::encode).collect();
    let mut blobs = vec![encode_keyframe(&etfs[0], plain()).unwrap()];
    for w in etfs.windows(2) {
        blobs.push(encode_delta(&w[0], &w[1], plain()).unwrap());
    }
    for n in 1..=blobs.len() {
        let chain: Vec<&[u8]> = blobs[..n].iter().map(Vec::as_slice).collect();
        let out = reconstruct(&chain, no_dicts()).unwrap();
        assert_eq!(
            canon(&etf::decode(&out).unwrap()),
            canon(&revs[n - 1]),
            "rev {n}"
        );
    }
    let deltas: usize = blobs[1..].iter().map(Vec::len).sum();
    assert!(
        deltas / (blobs.len() - 1) < 120,
        "mean delta {} bytes",
        deltas / 30
    );
    // From a full base (an `erlang` row) too.
    let chain: Vec<&[u8]> = blobs[6..].iter().map(Vec::as_slice).collect();
    let out = apply_deltas(&etfs[5], &chain, no_dicts()).unwrap();
    assert_eq!(canon(&etf::decode(&out).unwrap()), canon(&revs[30]));
    // Delta appended to a chain in one call equals the two-step way.
    let chain: Vec<&[u8]> = blobs.iter().map(Vec::as_slice).collect();
    let d = encode_delta_after(&chain, &etfs[0], plain()).unwrap();
    let mut longer = chain.clone();
    longer.push(&d);
    assert_eq!(
        canon(&etf::decode(&reconstruct(&longer, no_dicts()).unwrap()).unwrap()),
        canon(&revs[0])
    );
    // Rekeying gives a keyframe of the same revision.
    let k = rekey(&chain[..8], plain()).unwrap();
    assert_eq!(
        reconstruct(&[&k], no_dicts()).unwrap(),
        reconstruct(&chain[..8], no_dicts()).unwrap()
    );
}

impl Value {
    fn clone_body(&self) -> Value {
        match self {
            Value::Map(p) => p[1].1.clone(),
            _ => Value::nil(),
        }
    }
}

#[test]
fn out_of_order_or_foreign_deltas_are_refused() {
    let a = etf::encode(&sample_props("one two three"));
    let b = etf::encode(&sample_props("one two four"));
    let c = etf::encode(&sample_props("five"));
    let k = encode_keyframe(&a, plain()).unwrap();
    let ab = encode_delta(&a, &b, plain()).unwrap();
    let bc = encode_delta(&b, &c, plain()).unwrap();
    assert!(reconstruct(&[&k, &ab, &bc], no_dicts()).is_ok());
    // A delta on another base either fails or, when it overwrites everything that differs,
    // makes exactly the revision it was saved as: the checksum of the result decides.
    match reconstruct(&[&k, &bc], no_dicts()) {
        Ok(out) => assert_eq!(
            canon(&etf::decode(&out).unwrap()),
            canon(&etf::decode(&c).unwrap())
        ),
        Err(e) => assert_eq!(e.reason(), "bad_revision"),
    }
    let long = "<p>one two three four five six seven eight nine ten</p>\n".repeat(8);
    let la = etf::encode(&sample_props(&long));
    let lb = etf::encode(&sample_props(&long.replacen("two", "TWO", 1)));
    let lc = etf::encode(&sample_props(
        &long.replacen("two", "TWO", 1).replacen("nine", "NINE", 2),
    ));
    let lk = encode_keyframe(&la, plain()).unwrap();
    let lbc = encode_delta(&lb, &lc, plain()).unwrap();
    let e = reconstruct(&[&lk, &lbc], no_dicts()).unwrap_err();
    assert_eq!(e.reason(), "bad_revision");
    assert_eq!(
        reconstruct(&[&ab], no_dicts()).unwrap_err().reason(),
        "bad_revision"
    );
    assert_eq!(
        reconstruct(&[], no_dicts()).unwrap_err().reason(),
        "bad_revision"
    );
    // A format after 2 (still "ZR"-framed), and unknown flags of format 2.
    let e = reconstruct(&[b"ZR\x03K\x00xyz"], no_dicts()).unwrap_err();
    assert!(e.to_string().contains("version 3"), "{e}");
    let mut flags = k.clone();
    flags[1] |= 0x20;
    let e = reconstruct(&[&flags], no_dicts()).unwrap_err();
    assert!(e.to_string().contains("flags"), "{e}");
}

#[test]
fn flipped_bytes_never_pass_as_a_revision() {
    let body = "<p>text</p>".repeat(30);
    let a = etf::encode(&sample_props(&body));
    let b = etf::encode(&sample_props(&body.replace("text", "texts")));
    let k = encode_keyframe(&a, plain()).unwrap();
    let d = encode_delta(&a, &b, plain()).unwrap();
    let want = reconstruct(&[&k, &d], no_dicts()).unwrap();
    for i in 0..d.len() {
        for bit in [1u8, 0x80] {
            let mut bad = d.clone();
            bad[i] ^= bit;
            if let Ok(out) = reconstruct(&[&k, &bad], no_dicts()) {
                // Only a flip that leaves the meaning intact may pass (e.g. in zstd padding).
                assert_eq!(out, want, "flip at {i}");
            }
        }
    }
}

#[test]
fn unsupported_input_terms_are_einval() {
    assert_eq!(
        encode_keyframe(b"\x83\x75", plain()).unwrap_err().reason(),
        "einval"
    );
    assert_eq!(
        encode_keyframe(b"", plain()).unwrap_err().reason(),
        "einval"
    );
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Value::Int),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| Value::Float(f.to_bits())),
        "[a-z_]{1,8}".prop_map(Value::Atom),
        proptest::collection::vec(any::<u8>(), 0..80).prop_map(Value::Binary),
        "[a-z <>.]{60,200}".prop_map(|s| Value::Binary(s.into_bytes())),
        proptest::collection::vec(any::<u8>(), 1..20).prop_map(Value::Str),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 1..8).prop_map(|v| Value::List(v, None)),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Tuple),
            proptest::collection::vec((inner.clone(), inner), 0..6).prop_map(|pairs| {
                // Map keys are unique in Erlang.
                let mut seen = std::collections::HashSet::new();
                Value::Map(
                    pairs
                        .into_iter()
                        .filter(|(k, _)| seen.insert(k.clone()))
                        .collect(),
                )
            }),
        ]
    })
}

/// A variant of `v`: some leaves changed, some entries dropped or added.
fn mutate(v: &Value, seed: u64) -> Value {
    let pick = seed % 7;
    match v {
        Value::Map(p) => {
            let mut p = p.clone();
            if pick == 0 && !p.is_empty() {
                p.remove((seed as usize / 7) % p.len());
            } else if pick == 1 {
                p.push((Value::Int(seed as i64), bin("new")));
                let mut seen = std::collections::HashSet::new();
                p.retain(|(k, _)| seen.insert(k.clone()));
            } else {
                for (i, (_, val)) in p.iter_mut().enumerate() {
                    *val = mutate(val, seed.wrapping_mul(31).wrapping_add(i as u64));
                }
            }
            Value::Map(p)
        }
        Value::List(items, None) => {
            let mut items: Vec<Value> = items
                .iter()
                .enumerate()
                .map(|(i, x)| mutate(x, seed.wrapping_mul(17).wrapping_add(i as u64)))
                .collect();
            if pick == 2 && items.len() > 1 {
                items.remove(seed as usize % items.len());
            }
            if pick == 3 {
                items.insert(0, Value::Atom("ins".into()));
            }
            Value::List(items, None)
        }
        Value::Tuple(items) => Value::Tuple(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| mutate(x, seed.wrapping_mul(13).wrapping_add(i as u64)))
                .collect(),
        ),
        Value::Binary(b) if pick == 4 && b.len() > 10 => {
            let mut b = b.clone();
            let at = seed as usize % b.len();
            b.splice(at..at, b"EDIT ".iter().copied());
            Value::Binary(b)
        }
        Value::Int(i) if pick == 5 => Value::Int(i.wrapping_add(1)),
        other => other.clone(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn etf_round_trips_terms(v in arb_value()) {
        let bytes = etf::encode(&v);
        let back = etf::decode(&bytes).unwrap();
        prop_assert_eq!(etf::encode(&back), bytes);
    }

    #[test]
    fn delta_reconstructs_the_new_term(a in arb_value(), seed in any::<u64>(), b2 in arb_value()) {
        let b = if seed % 5 == 0 { b2 } else { mutate(&a, seed) };
        let (ea, eb) = (etf::encode(&a), etf::encode(&b));
        let k = encode_keyframe(&ea, plain()).unwrap();
        let d = encode_delta(&ea, &eb, plain()).unwrap();
        let out = reconstruct(&[&k, &d], no_dicts()).unwrap();
        prop_assert_eq!(canon(&etf::decode(&out).unwrap()), canon(&b));
        let diff = diff_props(&ea, &eb).unwrap();
        if a == b {
            prop_assert!(diff.is_empty());
        } else if matches!((&a, &b), (Value::Map(_), Value::Map(_))) && canon(&a) != canon(&b) {
            prop_assert!(!diff.is_empty());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = etf::decode(&bytes);
        let _ = reconstruct(&[&bytes], no_dicts());
        let k = encode_keyframe(&etf::encode(&sample_props("x")), plain()).unwrap();
        let _ = reconstruct(&[&k, &bytes], no_dicts());
        let _ = apply_deltas(&bytes, &[&bytes], no_dicts());
        let _ = diff_props(&bytes, &bytes);
    }

    #[test]
    fn well_framed_garbage_payloads_never_panic(
        kind in 0usize..2,
        codec in 0u8..3,
        payload in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let k = encode_keyframe(&etf::encode(&sample_props("x")), plain()).unwrap();
        let v1 = [vec![b'Z', b'R', 1, [b'K', b'D'][kind], codec.min(1)], payload.clone()].concat();
        let v2 = [vec![b'z', [0x00, 0x80][kind] | codec], payload].concat();
        for blob in [v1, v2] {
            let _ = reconstruct(&[&blob], no_dicts());
            let _ = reconstruct(&[&k, &blob], no_dicts());
            let _ = reconstruct(&[&k, &blob], test_dicts());
        }
    }

    #[test]
    fn structured_hostile_v1_deltas_never_panic(ops in proptest::collection::vec(arb_op_v1(), 0..6)) {
        let base = sample_props("some body text");
        let d = DeltaV1 { base_hash: etf::canonical_hash(&base), result_hash: 0, ops };
        let blob = [&b"ZR\x01D\x00"[..], &postcard::to_allocvec(&d).unwrap()].concat();
        let k = encode_keyframe(&etf::encode(&base), plain()).unwrap();
        let _ = reconstruct(&[&k, &blob], no_dicts());
    }

    #[test]
    fn structured_hostile_deltas_never_panic(ops in proptest::collection::vec(arb_op(), 0..6)) {
        let base = sample_props("some body text");
        let d = DeltaV2 { result: [0; 4], ops };
        let blob = seal::seal(Kind::Delta, &postcard::to_allocvec(&d).unwrap(), None).unwrap();
        let k = encode_keyframe(&etf::encode(&base), plain()).unwrap();
        let _ = reconstruct(&[&k, &blob], no_dicts());
    }
}

/// Text ops of both delta formats (copies in and out of range, inserts of `bytes`).
fn arb_text_ops(
    bytes: impl Strategy<Value = ByteBuf> + Clone,
) -> impl Strategy<Value = Vec<textdiff::TextOp>> {
    use textdiff::TextOp;
    proptest::collection::vec(
        prop_oneof![
            (any::<u32>(), any::<u32>()).prop_map(|(skip, len)| TextOp::Copy { skip, len }),
            (0u32..4, 0u32..8).prop_map(|(skip, len)| TextOp::Copy { skip, len }),
            bytes.prop_map(TextOp::Insert),
        ],
        0..4,
    )
}

/// A list rebuild (both delta formats share `ListItem`), new items drawn from `bytes`.
fn arb_list(
    bytes: impl Strategy<Value = ByteBuf> + Clone,
) -> impl Strategy<Value = Vec<delta::ListItem>> {
    use delta::ListItem;
    let item = prop_oneof![
        (any::<u32>(), any::<u32>()).prop_map(|(skip, len)| ListItem::Old { skip, len }),
        (0u32..3, 0u32..3).prop_map(|(skip, len)| ListItem::Old { skip, len }),
        bytes.prop_map(ListItem::New),
    ];
    proptest::collection::vec(item, 0..4)
}

fn arb_op() -> impl Strategy<Value = delta::Op> {
    use delta::{Action, Op, Step};
    let bytes = || {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..12),
            Just(etf::encode_body(&bin("body"))),
            Just(etf::encode_body(&bin("title"))),
            Just(etf::encode_body(&Value::Int(5))),
        ]
        .prop_map(ByteBuf::from)
    };
    let step = prop_oneof![
        (0u32..6).prop_map(Step::Key),
        (0u32..4).prop_map(Step::Index),
        any::<u32>().prop_map(Step::Index),
    ];
    let action = prop_oneof![
        bytes().prop_map(Action::Set),
        any::<i64>().prop_map(Action::Int),
        any::<i64>().prop_map(Action::Time),
        (bytes(), bytes()).prop_map(|(k, v)| Action::Put(k, v)),
        proptest::collection::vec(0u32..8, 0..4).prop_map(Action::Drop),
        arb_text_ops(bytes()).prop_map(Action::Text),
        arb_list(bytes()).prop_map(Action::List),
    ];
    (proptest::collection::vec(step, 0..5), action).prop_map(|(path, action)| Op { path, action })
}

fn arb_op_v1() -> impl Strategy<Value = delta_v1::Op> {
    use delta_v1::{Action, Op, Step};
    let bytes = || {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..12),
            Just(etf::encode_body(&bin("body"))),
            Just(etf::encode_body(&bin("title"))),
        ]
        .prop_map(ByteBuf::from)
    };
    let step = prop_oneof![
        bytes().prop_map(Step::Key),
        (0u32..4).prop_map(Step::Index),
        any::<u32>().prop_map(Step::Index),
    ];
    let action = prop_oneof![
        bytes().prop_map(Action::Set),
        Just(Action::Remove),
        arb_text_ops(bytes()).prop_map(Action::Text),
        arb_list(bytes()).prop_map(Action::List),
    ];
    (proptest::collection::vec(step, 0..5), action).prop_map(|(path, action)| Op { path, action })
}

#[test]
fn delta_from_known_base_follows_a_keyframe_or_a_delta_and_reconstructs() {
    let body = "<p>One paragraph of a body, long enough to be diffed as text.</p>\n".repeat(20);
    let r0 = etf::encode(&sample_props(&body));
    let r1 = etf::encode(&sample_props(&body.replacen("One", "First", 1)));
    let r2 = etf::encode(&sample_props(&body.replacen("body", "page body", 2)));
    let key = encode_keyframe(&r0, plain()).unwrap();
    let d1 = encode_delta_from(&key, &r0, &r1, plain()).unwrap();
    let d2 = encode_delta_from(&d1, &r1, &r2, plain()).unwrap();
    assert_eq!(d2, encode_delta(&r1, &r2, plain()).unwrap());
    let out = reconstruct(&[&key, &d1, &d2], no_dicts()).unwrap();
    assert_eq!(
        canon(&etf::decode(&out).unwrap()),
        canon(&etf::decode(&r2).unwrap())
    );
}

#[test]
fn delta_from_a_base_the_last_row_does_not_end_at_is_stale_base() {
    let r0 = etf::encode(&sample_props("a body"));
    let r1 = etf::encode(&sample_props("another body"));
    let r2 = etf::encode(&sample_props("a third body"));
    let key = encode_keyframe(&r0, plain()).unwrap();
    let d1 = encode_delta(&r0, &r1, plain()).unwrap();
    // r0 is what the keyframe holds, not what the delta after it makes.
    let err = encode_delta_from(&d1, &r0, &r2, plain()).unwrap_err();
    assert_eq!(err.reason(), "stale_base", "{err}");
    let err = encode_delta_from(&key, &r1, &r2, plain()).unwrap_err();
    assert_eq!(err.reason(), "stale_base", "{err}");
}

#[test]
fn delta_from_a_damaged_last_row_is_bad_revision() {
    let r0 = etf::encode(&sample_props(
        "a body that is long enough to be compressed by zstd",
    ));
    let mut key = encode_keyframe(&r0, plain()).unwrap();
    let n = key.len();
    key.truncate(n - 3);
    let err = encode_delta_from(&key, &r0, &r0, plain()).unwrap_err();
    assert_eq!(err.reason(), "bad_revision", "{err}");
    let err = encode_delta_from(b"not a blob", &r0, &r0, plain()).unwrap_err();
    assert_eq!(err.reason(), "bad_revision", "{err}");
}

/// Props of the kind one site has: the same keys and markup, texts from one vocabulary.
fn site_props(i: u64) -> Value {
    const WORDS: [&str; 24] = [
        "zotonic", "page", "editor", "revision", "backup", "site", "content", "media", "the", "of",
        "and", "image", "article", "person", "keyword", "event", "news", "summary", "body",
        "title", "quick", "brown", "fox", "lazy",
    ];
    let mut x = i
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut words = |n: usize| {
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                WORDS[(x >> 33) as usize % WORDS.len()]
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let body: String = (0..4).map(|_| format!("<p>{}.</p>\n", words(30))).collect();
    let dt = |s: i64| {
        Value::Tuple(vec![
            Value::Tuple(vec![
                Value::Int(2025),
                Value::Int(1 + s % 12),
                Value::Int(1 + s % 28),
            ]),
            Value::Tuple(vec![Value::Int(s % 24), Value::Int(s % 60), Value::Int(0)]),
        ])
    };
    Value::Map(vec![
        (bin("id"), Value::Int(1000 + i as i64)),
        (bin("version"), Value::Int(1)),
        (bin("category_id"), Value::Int(309)),
        (bin("is_published"), Value::Atom("true".into())),
        (bin("tz"), bin("Europe/Amsterdam")),
        (bin("created"), dt(i as i64)),
        (bin("modified"), dt(i as i64)),
        (bin("title"), bin(&words(5))),
        (bin("body"), bin(&body)),
    ])
}

/// Dictionary 7, trained on the rows of 200 such pages.
fn test_dicts() -> &'static Dicts {
    static DICTS: OnceLock<Dicts> = OnceLock::new();
    DICTS.get_or_init(|| {
        let etfs: Vec<Vec<u8>> = (0..200).map(|i| etf::encode(&site_props(i))).collect();
        let samples: Vec<Vec<u8>> = etfs
            .iter()
            .flat_map(|e| payloads(&[e]).unwrap())
            .map(|(_, p)| p)
            .collect();
        let raw = dict::train(&samples, 16 * 1024).unwrap();
        let mut d = Dicts::new();
        d.insert(Arc::new(Dictionary::new(7, raw).unwrap()));
        d
    })
}

fn with_dict() -> Codec<'static> {
    Codec::new(test_dicts(), 7).unwrap()
}

/// The rows the v1 codec wrote (tests/fixtures/revision_v1.etf: a list of {History, Rows}).
fn v1_fixture() -> Vec<(Vec<Value>, Vec<Vec<u8>>)> {
    let bytes = include_bytes!("../../tests/fixtures/revision_v1.etf");
    let Value::List(cases, _) = etf::decode(bytes).unwrap() else {
        panic!("fixture is a list")
    };
    cases
        .into_iter()
        .map(|case| {
            let Value::Tuple(pair) = case else { panic!() };
            let [Value::List(history, _), Value::List(rows, _)] = pair.as_slice() else {
                panic!()
            };
            let blobs = rows
                .iter()
                .map(|r| match r {
                    Value::Tuple(t) => match t.as_slice() {
                        [_, Value::Binary(b)] => b.clone(),
                        _ => panic!(),
                    },
                    _ => panic!(),
                })
                .collect();
            (history.clone(), blobs)
        })
        .collect()
}

#[test]
fn format_1_rows_stay_readable_and_format_2_deltas_follow_them() {
    for (history, blobs) in v1_fixture() {
        assert!(blobs.iter().all(|b| b.starts_with(b"ZR\x01")));
        for n in 1..=blobs.len() {
            let chain: Vec<&[u8]> = blobs[..n].iter().map(Vec::as_slice).collect();
            let out = reconstruct(&chain, no_dicts()).unwrap();
            assert_eq!(canon(&etf::decode(&out).unwrap()), canon(&history[n - 1]));
        }
        // A save after them writes format 2, from the chain or from the known base.
        let chain: Vec<&[u8]> = blobs.iter().map(Vec::as_slice).collect();
        let last = etf::encode(history.last().unwrap());
        let mut next = history.last().unwrap().clone();
        if let Value::Map(p) = &mut next {
            p.push((bin("added_later"), Value::Int(1)));
        }
        let next_etf = etf::encode(&next);
        let d = encode_delta_after(&chain, &next_etf, with_dict()).unwrap();
        assert_eq!(
            d,
            encode_delta_from(chain[chain.len() - 1], &last, &next_etf, with_dict()).unwrap()
        );
        let mut longer = chain.clone();
        longer.push(&d);
        let out = reconstruct(&longer, test_dicts()).unwrap();
        assert_eq!(canon(&etf::decode(&out).unwrap()), canon(&next));
        let k = rekey(&longer, with_dict()).unwrap();
        assert_eq!(reconstruct(&[&k], test_dicts()).unwrap(), out);
    }
}

#[test]
fn a_site_dictionary_makes_rows_smaller_and_is_needed_to_read_them() {
    let a = etf::encode(&site_props(1000));
    let mut b_props = site_props(1000);
    if let Value::Map(p) = &mut b_props {
        p[1].1 = Value::Int(2);
        p[7].1 = bin("a new title for the page");
    }
    let b = etf::encode(&b_props);
    let (k_plain, k_dict) = (
        encode_keyframe(&a, plain()).unwrap(),
        encode_keyframe(&a, with_dict()).unwrap(),
    );
    assert!(
        k_dict.len() * 2 < k_plain.len(),
        "{} vs {}",
        k_dict.len(),
        k_plain.len()
    );
    let d = encode_delta(&a, &b, with_dict()).unwrap();
    let out = reconstruct(&[&k_dict, &d], test_dicts()).unwrap();
    assert_eq!(canon(&etf::decode(&out).unwrap()), canon(&b_props));
    // Without its dictionary: an error that names it.
    let e = reconstruct(&[&k_dict], no_dicts()).unwrap_err();
    assert_eq!(
        (e.reason(), e.dictionary()),
        ("missing_dictionary", Some(7))
    );
    assert!(e.to_string().contains("dictionary 7"), "{e}");
    assert_eq!(Codec::new(no_dicts(), 7).unwrap_err().dictionary(), Some(7));
    // Another dictionary under the same id (a mixed-up table): an error, never a wrong revision.
    let other: Vec<Vec<u8>> = (0..100)
        .map(|i| {
            let mut p = b"completely unrelated sample text number ".to_vec();
            p.extend_from_slice(i.to_string().repeat(20).as_bytes());
            p
        })
        .collect();
    let mut wrong = Dicts::new();
    wrong.insert(Arc::new(
        Dictionary::new(7, dict::train(&other, 4096).unwrap()).unwrap(),
    ));
    assert!(reconstruct(&[&k_dict, &d], &wrong).is_err());
    // Damaged dictionary bytes are refused when loaded.
    let mut raw = test_dicts().get(7).unwrap().bytes().to_vec();
    raw.truncate(raw.len() / 3);
    raw[0] ^= 0xff;
    let e = Dictionary::new(7, raw).unwrap_err();
    assert_eq!((e.reason(), e.dictionary()), ("bad_dictionary", Some(7)));
}

#[test]
fn the_fields_every_save_changes_cost_a_few_stored_bytes() {
    let a = site_props(3);
    let mut b = a.clone();
    if let Value::Map(p) = &mut b {
        p[1].1 = Value::Int(2);
        p[6].1 = Value::Tuple(vec![
            Value::Tuple(vec![Value::Int(2025), Value::Int(5), Value::Int(20)]),
            Value::Tuple(vec![Value::Int(9), Value::Int(41), Value::Int(7)]),
        ]);
    }
    let d = encode_delta(&etf::encode(&a), &etf::encode(&b), with_dict()).unwrap();
    assert!(d.len() <= 20, "{} bytes", d.len());
    let c = delta_cost(&d, test_dicts()).unwrap();
    let sum = c.checksum
        + c.framing
        + c.paths
        + c.ints
        + c.times
        + c.text_copies
        + c.text_inserts
        + c.sets
        + c.puts
        + c.drops
        + c.lists;
    assert_eq!(sum, c.payload, "{c:?}");
    assert_eq!((c.stored, c.checksum), (d.len(), 4));
}

#[test]
fn a_trained_dictionary_is_measured_against_the_current_one_on_held_out_rows() {
    let rows: Vec<(Kind, Vec<u8>)> = (0..240)
        .flat_map(|i| payloads(&[&etf::encode(&site_props(5000 + i))]).unwrap())
        .collect();
    let (train, holdout) = rows.split_at(200);
    let t = dict::train_and_measure(train, holdout, None, 8192).unwrap();
    assert!(t.holdout_candidate * 2 < t.holdout_current, "{t:?}");
    assert!(t.dict.len() <= 8192 && t.sample_bytes > 0 && t.holdout_raw > t.holdout_current);
    let current = test_dicts().get(7).unwrap();
    let t2 = dict::train_and_measure(train, holdout, Some(current), 8192).unwrap();
    assert_eq!(
        t2.holdout_current,
        dict::measure(holdout, Some(current)).unwrap()
    );
    let few = dict::train(&[vec![1, 2, 3]], 8192).unwrap_err();
    assert_eq!(few.reason(), "einval");
}

#[test]
fn training_on_histories_stops_when_the_job_is_cancelled() {
    let history: Vec<Vec<u8>> = (0..40).map(|i| etf::encode(&site_props(i))).collect();
    let ctl = crate::archive::JobControl::new();
    ctl.cancel();
    let e = train_on_histories(&[history], &[], None, 8192, &ctl).unwrap_err();
    assert_eq!(e.reason(), "cancelled");
}

#[test]
fn a_shared_set_adds_a_good_dictionary_and_refuses_a_bad_one_without_change() {
    let set = SharedDicts::default();
    let raw = test_dicts().get(7).unwrap().bytes().to_vec();
    set.put(7, raw, true).unwrap();
    let e = set.put(8, b"not a dictionary".to_vec(), false).unwrap_err();
    assert_eq!((e.reason(), e.dictionary()), ("bad_dictionary", Some(8)));
    assert_eq!(set.read().ids(), vec![7]);
}
