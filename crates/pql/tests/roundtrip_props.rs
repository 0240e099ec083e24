//! Property tests: printing random trees and re-parsing gives the same tree; pql/json
//! round-trips exactly; the parser never panics on arbitrary input, and what it accepts it
//! prints back to something it accepts again.

use proptest::prelude::*;
use tessera_pql::ast::{
    Binding, Chain, ChainStep, CmpOp, Direction, Expr, Literal, OccursSpec, Quantifier, Relative,
    TimeRef, Unit,
};
use tessera_pql::json::{from_json, to_json};
use tessera_pql::{compile, parse, EvalContext, EventSet};

const NAMES: &[&str] = &[
    "a",
    "person",
    "timestamp",
    "eventType",
    "X",
    "K",
    "_tenant",
    "and",
    "now",
    "over",
    "count",
    "date",
    "chain",
    "from",
    "last",
    "field with space",
    "Profile",
];

fn name() -> impl Strategy<Value = String> {
    prop::sample::select(NAMES).prop_map(str::to_owned)
}

fn literal() -> impl Strategy<Value = Expr> {
    prop_oneof![
        any::<bool>().prop_map(Literal::Bool),
        (-(1i64 << 62)..(1i64 << 62)).prop_map(Literal::Int),
        prop::num::f64::NORMAL.prop_map(Literal::Double),
        "[a-z\"\\\\% _\n\\pL]{0,8}".prop_map(Literal::Str),
        (1900i32..2100, 1u8..=12, 1u8..=28).prop_map(|(year, month, day)| Literal::Date {
            year,
            month,
            day
        }),
    ]
    .prop_map(Expr::Lit)
}

fn leaf() -> impl Strategy<Value = Expr> {
    prop_oneof![
        3 => literal(),
        3 => name().prop_map(|n| Expr::field(&n)),
        1 => (1u32..3).prop_map(|up| Expr::Param { position: 1, up }),
        1 => Just(Expr::implicit()),
    ]
}

fn time_ref(inner: BoxedStrategy<Expr>) -> impl Strategy<Value = TimeRef> {
    prop_oneof![
        Just(TimeRef::Now),
        Just(TimeRef::Today),
        Just(TimeRef::Yesterday),
        Just(TimeRef::Tomorrow),
        (
            prop::sample::select(vec![Relative::This, Relative::Last, Relative::Next]),
            prop::sample::select(Unit::ALL.to_vec())
        )
            .prop_map(|(rel, unit)| TimeRef::Relative { rel, unit }),
        inner.prop_map(|e| TimeRef::Expr(Box::new(e))),
    ]
}

fn spec(inner: BoxedStrategy<Expr>) -> impl Strategy<Value = OccursSpec> {
    let cmp = prop::sample::select(vec![
        CmpOp::Eq,
        CmpOp::Ne,
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Gt,
        CmpOp::Ge,
    ]);
    let dir = prop::sample::select(vec![Direction::Before, Direction::After, Direction::From]);
    prop_oneof![
        (
            cmp,
            0u64..100,
            prop::sample::select(Unit::ALL.to_vec()),
            dir.clone(),
            time_ref(inner.clone())
        )
            .prop_map(|(op, amount, unit, direction, time)| OccursSpec::Compare {
                op,
                amount,
                unit,
                direction,
                time
            }),
        (dir, time_ref(inner.clone()))
            .prop_map(|(direction, time)| OccursSpec::Direction { direction, time }),
        time_ref(inner.clone()).prop_map(OccursSpec::On),
        (time_ref(inner.clone()), time_ref(inner)).prop_map(|(a, b)| OccursSpec::Between(a, b)),
    ]
}

fn expr() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(5, 48, 4, |inner| {
        let b = inner.clone().boxed();
        let binop = prop::sample::select(vec![
            "and", "or", "=", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "in", "notIn",
            "like",
        ]);
        prop_oneof![
            (b.clone(), name()).prop_map(|(o, n)| Expr::Field {
                object: Box::new(o),
                name: n
            }),
            (binop, b.clone(), b.clone()).prop_map(|(op, l, r)| Expr::call(op, vec![l, r])),
            b.clone().prop_map(|e| Expr::call("not", vec![e])),
            b.clone().prop_map(|e| Expr::call("-", vec![e])),
            (b.clone(), b.clone()).prop_map(|(r, a)| Expr::call("startsWith", vec![r, a])),
            b.clone().prop_map(|r| Expr::call("count", vec![r])),
            (b.clone(), b.clone()).prop_map(|(r, a)| Expr::call("sum", vec![r, a])),
            (b.clone(), b.clone(), b.clone()).prop_map(|(c, x, y)| Expr::call("if", vec![c, x, y])),
            "[a-f0-9-]{1,12}"
                .prop_map(|id| Expr::call("inSegment", vec![Expr::Lit(Literal::Str(id))])),
            Just(Expr::call("currentYear", vec![])),
            (b.clone(), b.clone()).prop_map(|(a, c)| Expr::Filter {
                array: Box::new(a),
                cond: Box::new(c)
            }),
            prop::collection::vec(b.clone(), 0..3).prop_map(Expr::Array),
            prop::collection::vec(("[a-z ]{0,4}", b.clone()), 0..3).prop_map(Expr::Object),
            (b.clone(), b.clone()).prop_map(|(v, other)| Expr::Let {
                var: "X".into(),
                value: Box::new(v),
                body: Box::new(Expr::call("and", vec![Expr::Var("X".into()), other])),
            }),
            (
                prop::sample::select(vec![
                    Quantifier::Exists,
                    Quantifier::Forall,
                    Quantifier::Select
                ]),
                b.clone(),
                prop::option::of(b.clone()),
                prop::option::of((b.clone(), prop::option::of(b.clone())))
            )
                .prop_map(|(kind, source, cond, second)| {
                    let mut bindings = vec![Binding {
                        var: "E".into(),
                        source,
                        cond,
                    }];
                    if let Some((s, c)) = second {
                        bindings.push(Binding {
                            var: "I".into(),
                            source: Expr::Field {
                                object: Box::new(Expr::Var("E".into())),
                                name: "items".into(),
                            },
                            cond: c.map(|c| {
                                Expr::call(
                                    "or",
                                    vec![c, Expr::call("=", vec![Expr::Var("I".into()), s])],
                                )
                            }),
                        });
                    }
                    Expr::Quant { kind, bindings }
                }),
            (b.clone(), prop::option::of(b.clone())).prop_map(|(source, cond)| Expr::SumOver {
                value: Box::new(Expr::Field {
                    object: Box::new(Expr::Var("X".into())),
                    name: "v".into()
                }),
                var: "X".into(),
                source: Box::new(source),
                cond: cond.map(Box::new),
            }),
            (b.clone(), spec(b.clone())).prop_map(|(t, spec)| Expr::Occurs {
                timestamp: Box::new(t),
                spec
            }),
            (
                b.clone(),
                prop::collection::vec((b.clone(), prop::option::of(spec(b.clone()))), 1..3)
            )
                .prop_map(|(events, steps)| {
                    Expr::Chain(Chain {
                        events: Box::new(events),
                        timestamp: vec!["timestamp".into()],
                        steps: steps
                            .into_iter()
                            .enumerate()
                            .map(|(i, (what, when))| ChainStep {
                                label: format!("C{i}"),
                                what,
                                when,
                            })
                            .collect(),
                    })
                }),
            (b.clone(), b).prop_map(|(recv, body)| Expr::call(
                "map",
                vec![
                    recv,
                    Expr::Lambda {
                        params: vec!["K".into(), "G".into()],
                        body: Box::new(Expr::call("mapEntry", vec![Expr::Var("K".into()), body])),
                    }
                ]
            )),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn print_then_parse_is_identity(e in expr()) {
        let text = e.to_string();
        let parsed = parse(&text);
        prop_assert!(parsed.is_ok(), "{text}\n{:?}", parsed.err());
        if let Ok(back) = parsed {
            prop_assert_eq!(&back, &e, "{}", text);
            prop_assert_eq!(back.to_string(), text);
        }
    }

    #[test]
    fn json_round_trip_is_exact(e in expr()) {
        let json = to_json(&e);
        let back = from_json(&json);
        prop_assert!(back.is_ok(), "{json}");
        if let Ok(back) = back {
            prop_assert_eq!(&back, &e);
            prop_assert_eq!(to_json(&back), json);
        }
    }

    #[test]
    fn parser_and_evaluator_never_panic(src in "[a-zA-Z0-9_$^.,:()\\[\\]{}=<>!+*/% \"-]{0,60}") {
        if let Ok(e) = parse(&src) {
            let text = e.to_string();
            prop_assert_eq!(parse(&text).ok(), Some(e.clone()), "{}", text);
            if let Ok(program) = compile(&e) {
                let _ = program.evaluate(&serde_json::json!({"a": 1}), &EventSet::default(), &EvalContext::new(0));
            }
        }
    }

    #[test]
    fn evaluating_random_trees_never_panics(e in expr()) {
        if let Ok(program) = compile(&e) {
            let profile = serde_json::json!({"a": [1, 2], "person": {"a": "x"}, "timestamp": "2024-01-01T00:00:00Z"});
            let events = EventSet::new(vec![serde_json::json!({"timestamp": "2024-01-01T00:00:00Z", "eventType": "x", "items": [1]})]);
            let _ = program.evaluate(&profile, &events, &EvalContext::new(1_700_000_000_000));
        }
    }
}

const VOCABULARY: &[&str] = &[
    "a",
    "b",
    "xEvent",
    "timestamp",
    "X",
    "$1",
    "^",
    "^^",
    ".",
    ",",
    ":",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "%",
    "!",
    "=>",
    "and",
    "or",
    "not",
    "in",
    "notIn",
    "like",
    "occurs",
    "between",
    "on",
    "before",
    "after",
    "from",
    "now",
    "today",
    "last",
    "week",
    "3",
    "days",
    "exists",
    "forall",
    "select",
    "where",
    "sum",
    "over",
    "let",
    "if",
    "count",
    "sum(",
    "startsWith",
    "CHAIN",
    "WHAT",
    "WHEN",
    "C0",
    "date",
    "2020",
    "1.5",
    "\"s\"",
    "true",
    "inSegment",
    "map",
    "mapEntry",
    "groupBy",
    "topN",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, .. ProptestConfig::default() })]

    /// Fuzz-style: sequences of real tokens reach deep into the grammar. Whatever parses
    /// prints to text that parses to the same tree, and compiles and evaluates without panic.
    #[test]
    fn token_soup_never_panics(words in prop::collection::vec(prop::sample::select(VOCABULARY), 0..24)) {
        let src = words.join(" ");
        if let Ok(e) = parse(&src) {
            let text = e.to_string();
            prop_assert_eq!(parse(&text).ok(), Some(e.clone()), "{} => {}", src, text);
            prop_assert_eq!(from_json(&to_json(&e)).ok(), Some(e.clone()));
            if let Ok(program) = compile(&e) {
                let events = EventSet::new(vec![serde_json::json!({"timestamp": "2024-01-01T00:00:00Z", "a": 1})]);
                let _ = program.evaluate(&serde_json::json!({"a": [1], "b": "s"}), &events, &EvalContext::new(0));
            }
        }
    }
}
