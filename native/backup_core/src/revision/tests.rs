use super::etf::{self, Value};
use super::*;
use proptest::prelude::*;

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
    let mut blobs = vec![encode_keyframe(&etfs[0]).unwrap()];
    for w in etfs.windows(2) {
        blobs.push(encode_delta(&w[0], &w[1]).unwrap());
    }
    for n in 1..=blobs.len() {
        let chain: Vec<&[u8]> = blobs[..n].iter().map(Vec::as_slice).collect();
        let out = reconstruct(&chain).unwrap();
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
    let out = apply_deltas(&etfs[5], &chain).unwrap();
    assert_eq!(canon(&etf::decode(&out).unwrap()), canon(&revs[30]));
    // Delta appended to a chain in one call equals the two-step way.
    let chain: Vec<&[u8]> = blobs.iter().map(Vec::as_slice).collect();
    let d = encode_delta_after(&chain, &etfs[0]).unwrap();
    let mut longer = chain.clone();
    longer.push(&d);
    assert_eq!(
        canon(&etf::decode(&reconstruct(&longer).unwrap()).unwrap()),
        canon(&revs[0])
    );
    // Rekeying gives a keyframe of the same revision.
    let k = rekey(&chain[..8]).unwrap();
    assert_eq!(
        reconstruct(&[&k]).unwrap(),
        reconstruct(&chain[..8]).unwrap()
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
    let k = encode_keyframe(&a).unwrap();
    let ab = encode_delta(&a, &b).unwrap();
    let bc = encode_delta(&b, &c).unwrap();
    assert!(reconstruct(&[&k, &ab, &bc]).is_ok());
    let e = reconstruct(&[&k, &bc]).unwrap_err();
    assert_eq!(e.reason(), "bad_revision");
    assert_eq!(reconstruct(&[&ab]).unwrap_err().reason(), "bad_revision");
    assert_eq!(reconstruct(&[]).unwrap_err().reason(), "bad_revision");
    let mut future = k.clone();
    future[2] = 2;
    let e = reconstruct(&[&future]).unwrap_err();
    assert!(e.to_string().contains("version 2"), "{e}");
}

#[test]
fn flipped_bytes_never_pass_as_a_revision() {
    let body = "<p>text</p>".repeat(30);
    let a = etf::encode(&sample_props(&body));
    let b = etf::encode(&sample_props(&body.replace("text", "texts")));
    let k = encode_keyframe(&a).unwrap();
    let d = encode_delta(&a, &b).unwrap();
    let want = reconstruct(&[&k, &d]).unwrap();
    for i in 0..d.len() {
        for bit in [1u8, 0x80] {
            let mut bad = d.clone();
            bad[i] ^= bit;
            if let Ok(out) = reconstruct(&[&k, &bad]) {
                // Only a flip that leaves the meaning intact may pass (e.g. in zstd padding).
                assert_eq!(out, want, "flip at {i}");
            }
        }
    }
}

#[test]
fn unsupported_input_terms_are_einval() {
    assert_eq!(encode_keyframe(b"\x83\x75").unwrap_err().reason(), "einval");
    assert_eq!(encode_keyframe(b"").unwrap_err().reason(), "einval");
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
        let k = encode_keyframe(&ea).unwrap();
        let d = encode_delta(&ea, &eb).unwrap();
        let out = reconstruct(&[&k, &d]).unwrap();
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
        let _ = reconstruct(&[&bytes]);
        let k = encode_keyframe(&etf::encode(&sample_props("x"))).unwrap();
        let _ = reconstruct(&[&k, &bytes]);
        let _ = apply_deltas(&bytes, &[&bytes]);
        let _ = diff_props(&bytes, &bytes);
    }

    #[test]
    fn well_framed_garbage_payloads_never_panic(
        kind in prop_oneof![Just(b'K'), Just(b'D')],
        payload in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut blob = vec![b'Z', b'R', 1, kind, 0];
        blob.extend_from_slice(&payload);
        let k = encode_keyframe(&etf::encode(&sample_props("x"))).unwrap();
        let _ = reconstruct(&[&blob]);
        let _ = reconstruct(&[&k, &blob]);
    }

    #[test]
    fn structured_hostile_deltas_never_panic(ops in proptest::collection::vec(arb_op(), 0..6)) {
        let base = sample_props("some body text");
        let d = Delta { base_hash: etf::canonical_hash(&base), result_hash: 0, ops };
        let blob = seal(KIND_DELTA, &postcard::to_allocvec(&d).unwrap()).unwrap();
        let k = keyframe_of(&base).unwrap();
        let _ = reconstruct(&[&k, &blob]);
    }
}

fn arb_op() -> impl Strategy<Value = delta::Op> {
    use delta::{Action, ListItem, Op, Step};
    use textdiff::TextOp;
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
        proptest::collection::vec(
            prop_oneof![
                (any::<u32>(), any::<u32>()).prop_map(|(skip, len)| TextOp::Copy { skip, len }),
                (0u32..4, 0u32..8).prop_map(|(skip, len)| TextOp::Copy { skip, len }),
                bytes().prop_map(TextOp::Insert),
            ],
            0..4
        )
        .prop_map(Action::Text),
        proptest::collection::vec(
            prop_oneof![
                (any::<u32>(), any::<u32>()).prop_map(|(skip, len)| ListItem::Old { skip, len }),
                (0u32..3, 0u32..3).prop_map(|(skip, len)| ListItem::Old { skip, len }),
                bytes().prop_map(ListItem::New),
            ],
            0..4
        )
        .prop_map(Action::List),
    ];
    (proptest::collection::vec(step, 0..5), action).prop_map(|(path, action)| Op { path, action })
}

#[test]
fn delta_from_known_base_follows_a_keyframe_or_a_delta_and_reconstructs() {
    let body = "<p>One paragraph of a body, long enough to be diffed as text.</p>\n".repeat(20);
    let r0 = etf::encode(&sample_props(&body));
    let r1 = etf::encode(&sample_props(&body.replacen("One", "First", 1)));
    let r2 = etf::encode(&sample_props(&body.replacen("body", "page body", 2)));
    let key = encode_keyframe(&r0).unwrap();
    let d1 = encode_delta_from(&key, &r0, &r1).unwrap();
    let d2 = encode_delta_from(&d1, &r1, &r2).unwrap();
    assert_eq!(d2, encode_delta(&r1, &r2).unwrap());
    let out = reconstruct(&[&key, &d1, &d2]).unwrap();
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
    let key = encode_keyframe(&r0).unwrap();
    let d1 = encode_delta(&r0, &r1).unwrap();
    // r0 is what the keyframe holds, not what the delta after it makes.
    let err = encode_delta_from(&d1, &r0, &r2).unwrap_err();
    assert_eq!(err.reason(), "stale_base", "{err}");
    let err = encode_delta_from(&key, &r1, &r2).unwrap_err();
    assert_eq!(err.reason(), "stale_base", "{err}");
}

#[test]
fn delta_from_a_damaged_last_row_is_bad_revision() {
    let r0 = etf::encode(&sample_props(
        "a body that is long enough to be compressed by zstd",
    ));
    let mut key = encode_keyframe(&r0).unwrap();
    let n = key.len();
    key.truncate(n - 3);
    let err = encode_delta_from(&key, &r0, &r0).unwrap_err();
    assert_eq!(err.reason(), "bad_revision", "{err}");
    let err = encode_delta_from(b"not a blob", &r0, &r0).unwrap_err();
    assert_eq!(err.reason(), "bad_revision", "{err}");
}
