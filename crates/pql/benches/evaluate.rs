//! Issue 7 benchmark: a 6-clause audience (3 profile conditions, an event count over 30 days,
//! a CHAIN of two events) on a profile with 200 events. Also: parse+compile, and preparing the
//! events (timestamp parsing and sorting, done once per profile and shared by all audiences).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};
use tessera_pql::{compile, parse, EvalContext, EventSet};

const AUDIENCE: &str = r#"person.birthYear >= 1980
    and homeAddress.countryCode in ["US", "CA", "MX"]
    and loyalty.tier != "bronze"
    and xEvent[timestamp occurs < 30 days before now and eventType = "commerce.purchases"].count() >= 3
    and CHAIN(xEvent, timestamp, [
        A: WHAT(eventType = "web.webpagedetails.pageViews") WHEN(< 7 days before now),
        B: WHAT(eventType = "commerce.checkouts") WHEN(< 7 days before now)])"#;

const NOW_MS: i64 = 1_736_942_400_000; // 2025-01-15T12:00:00Z

fn events() -> Vec<Value> {
    let kinds = [
        "web.webpagedetails.pageViews",
        "commerce.productViews",
        "commerce.purchases",
        "commerce.checkouts",
    ];
    // 200 events spread over the last 90 days, deterministic.
    let mut seed: u64 = 42;
    (0..200)
        .map(|i| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let ago_ms = (seed >> 20) % (90 * 86_400_000);
            let ts = tessera_pql::time::format_timestamp(NOW_MS - ago_ms as i64);
            let kind = kinds.get(i % kinds.len()).copied().unwrap_or("x");
            json!({"_id": format!("e{i}"), "timestamp": ts, "eventType": kind,
                   "commerce": {"order": {"priceTotal": (i % 50) as f64 * 1.5}}})
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let profile = json!({
        "person": {"birthYear": 1985, "name": {"firstName": "Ada"}},
        "homeAddress": {"countryCode": "CA", "city": "Toronto"},
        "loyalty": {"tier": "gold", "points": 1200},
    });
    let docs = events();
    let program = compile(&parse(AUDIENCE).expect("the audience parses")).expect("and compiles");
    let prepared = EventSet::new(docs.clone());
    let ctx = EvalContext::new(NOW_MS);
    assert!(
        program.matches(&profile, &prepared, &ctx),
        "the benchmark profile qualifies"
    );

    c.bench_function("evaluate_6_clause_200_events", |b| {
        b.iter(|| black_box(program.matches(black_box(&profile), &prepared, &ctx)))
    });
    // The clauses one by one, to see where the time goes.
    for (name, src) in [
        (
            "clause_profile_3",
            r#"person.birthYear >= 1980 and homeAddress.countryCode in ["US", "CA", "MX"] and loyalty.tier != "bronze""#,
        ),
        (
            "clause_count_30_days",
            r#"xEvent[timestamp occurs < 30 days before now and eventType = "commerce.purchases"].count() >= 3"#,
        ),
        (
            "clause_chain_2_steps",
            r#"CHAIN(xEvent, timestamp, [A: WHAT(eventType = "web.webpagedetails.pageViews") WHEN(< 7 days before now), B: WHAT(eventType = "commerce.checkouts") WHEN(< 7 days before now)])"#,
        ),
    ] {
        let p = compile(&parse(src).expect("parses")).expect("compiles");
        c.bench_function(name, |b| {
            b.iter(|| black_box(p.matches(black_box(&profile), &prepared, &ctx)))
        });
    }
    c.bench_function("parse_and_compile_6_clause", |b| {
        b.iter(|| {
            black_box(compile(&parse(black_box(AUDIENCE)).expect("parses")).expect("compiles"))
        })
    });
    c.bench_function("prepare_200_events", |b| {
        b.iter_batched(
            || docs.clone(),
            |d| black_box(EventSet::new(d)),
            criterion::BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
