//! Tests of format 2 deltas (`delta.rs`).
use super::*;

fn bin(s: &str) -> Value {
    Value::Binary(s.as_bytes().to_vec())
}

fn dt(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Value {
    datetime(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s).unwrap()
}

fn canonical(mut v: Value) -> Value {
    etf::canonicalize(&mut v);
    v
}

fn round_trip(old: &Value, new: &Value) -> Vec<Op> {
    let ops = diff(old, new);
    let mut v = old.clone();
    apply(&mut v, &ops, &mut usize::MAX.clone()).unwrap();
    assert_eq!(&v, new);
    ops
}

#[test]
fn datetimes_round_trip_through_seconds() {
    for (y, m, d) in [
        (0, 1, 1),
        (1970, 1, 1),
        (2024, 2, 29),
        (9999, 8, 17),
        (999_999, 12, 31),
    ] {
        let v = dt(y, m, d, 23, 59, 59);
        let secs = datetime_secs(&v).unwrap();
        assert_eq!(datetime(secs).unwrap(), v);
    }
    // Not calendar dates: never shifted, always set.
    let date = |y, m, d| {
        Value::Tuple(vec![
            Value::Tuple(vec![Value::Int(y), Value::Int(m), Value::Int(d)]),
            Value::Tuple(vec![Value::Int(0), Value::Int(0), Value::Int(0)]),
        ])
    };
    for (y, m, d) in [
        (2023, 2, 29),
        (2023, 2, 30),
        (2023, 13, 1),
        (2023, 4, 0),
        (-1, 1, 1),
    ] {
        assert_eq!(datetime_secs(&date(y, m, d)), None, "{y}-{m}-{d}");
    }
    assert!(datetime_secs(&date(2024, 2, 29)).is_some());
}

#[test]
fn the_fields_of_every_save_cost_a_few_bytes() {
    let old = canonical(Value::Map(vec![
        (bin("version"), Value::Int(41)),
        (bin("modified"), dt(2025, 3, 1, 10, 0, 0)),
        (bin("modifier_id"), Value::Int(104)),
        (bin("title"), bin("A page")),
    ]));
    let mut new = old.clone();
    if let Value::Map(p) = &mut new {
        for (k, v) in p.iter_mut() {
            if *k == bin("version") {
                *v = Value::Int(42);
            } else if *k == bin("modified") {
                *v = dt(2025, 3, 1, 11, 30, 0);
            }
        }
    }
    let ops = round_trip(&old, &new);
    assert_eq!(ops.len(), 2);
    let size = postcard::to_allocvec(&ops).unwrap().len();
    assert!(size <= 12, "{size} bytes: {ops:?}");
}

#[test]
fn keys_added_removed_and_changed_in_nested_maps_round_trip() {
    let body = "<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>".repeat(40);
    let old = canonical(Value::Map(vec![
        (bin("title"), bin("Hello")),
        (bin("gone"), Value::Int(1)),
        (bin("also_gone"), Value::Atom("x".into())),
        (
            bin("blocks"),
            Value::List(
                vec![Value::Map(vec![
                    (bin("name"), bin("b1")),
                    (bin("body"), bin(&body)),
                ])],
                None,
            ),
        ),
    ]));
    let new = canonical(Value::Map(vec![
        (bin("title"), bin("Hello world")),
        (bin("added"), Value::Atom("true".into())),
        (bin("zz_added"), Value::Int(-5)),
        (
            bin("blocks"),
            Value::List(
                vec![Value::Map(vec![
                    (bin("name"), bin("b1")),
                    (bin("body"), bin(&body.replacen("dolor", "DOLOR", 2))),
                    (bin("new"), Value::Int(3)),
                ])],
                None,
            ),
        ),
    ]));
    let ops = round_trip(&old, &new);
    assert!(ops.iter().any(|o| matches!(o.action, Action::Text(_))));
    assert!(ops.iter().any(|o| matches!(o.action, Action::Drop(_))));
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
    round_trip(&old, &new);
}

#[test]
fn ops_against_the_wrong_base_are_errors_not_panics() {
    let ops = [
        Action::Drop(vec![0]),
        Action::Drop(vec![1, 0]),
        Action::Int(1),
        Action::Time(1),
        Action::Put(body(&bin("k")), body(&Value::Int(1))),
        Action::Set(ByteBuf::from(vec![1, 2, 3])),
    ];
    for action in ops {
        let mut v = Value::Map(vec![(bin("k"), bin("v"))]);
        let op = Op {
            path: vec![Step::Key(0)],
            action: action.clone(),
        };
        assert!(apply(&mut v, &[op], &mut 1000).is_err(), "{action:?}");
    }
    let mut v = Value::Map(vec![(bin("k"), Value::Int(i64::MAX))]);
    let op = Op {
        path: vec![Step::Key(0)],
        action: Action::Int(1),
    };
    assert!(apply(&mut v, &[op], &mut 1000).is_err());
}

/// A save makes the same delta on a loaded machine as on an idle one: short texts and lists
/// are diffed exactly even when the deadline has passed (it once made a 63-byte edit 1,207
/// bytes when the thread was preempted).
#[test]
fn short_diffs_ignore_a_passed_deadline() {
    let words: Vec<String> = (0..150).map(|i| format!("word{}", i % 37)).collect();
    let body = words.join(" ");
    let edited = body.replacen("word5 ", "wrod5 ", 1) + " and a new sentence.";
    let list_a = Value::List((0..200).map(Value::Int).collect(), None);
    let list_b = Value::List(
        (0..200).filter(|i| i % 50 != 7).map(Value::Int).collect(),
        None,
    );
    let old = canonical(Value::Map(vec![
        (bin("body"), bin(&body)),
        (bin("ids"), list_a),
    ]));
    let new = canonical(Value::Map(vec![
        (bin("body"), bin(&edited)),
        (bin("ids"), list_b),
    ]));
    let passed = Instant::now() - Duration::from_secs(1);
    let later = Instant::now() + Duration::from_secs(60);
    let ops = diff_by(&old, &new, passed);
    assert_eq!(ops, diff_by(&old, &new, later));
    let mut v = old.clone();
    apply(&mut v, &ops, &mut usize::MAX.clone()).unwrap();
    assert_eq!(v, new);
}
