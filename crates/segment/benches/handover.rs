//! What handing an event to the computed-attribute consumer costs on each side, run with
//! `cargo bench -p tessera-segment --bench handover`.
//!
//! `TESSERA_BENCH_EVENTS` generated web events (default 50,000; the generator of
//! `tessera bench --scenario ingest-stream`, a week of them) and that scenario's ten
//! attributes. Timed by this thread's CPU, median of five rounds:
//! - ingestion's side: `RecentEvents::put` of each parsed event (digesting it, packing the
//!   digest and freeing the document);
//! - the consumer's side: `RecentEvents::take` of each and reading its aggregates back
//!   (`Live::read_digest`), which is what the consumer folds.
//!
//! Both sides run in this one thread, so it leaves out what crossing cores costs in the
//! server, and folding the aggregates into states (`cargo bench --bench computed`). Timings
//! are printed, never asserted; that every digest was taken back is.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};
use tessera_bench::generate::{generate, GenerateConfig};
use tessera_bench::workload::COMPUTED_ATTRIBUTES;
use tessera_ingest::recent::{Digester, Digesters, RecentEvents};
use tessera_model::Tenant;
use tessera_segment::computed::definition::{self, LiveCache};
use tessera_segment::computed::upkeep;
use tessera_store::{Durability, EmbeddedStore, StoreOptions};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const NOW: i64 = 1_750_000_000_000;

fn thread_cpu() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns / 1e9)
}

/// The generated web events with their `_id` and time, parsed.
fn events(count: usize) -> Vec<(String, i64, Map<String, Value>)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = GenerateConfig {
        people: (count / 25).max(100) as u64,
        days: 7,
        ..GenerateConfig::default()
    };
    generate(&config, dir.path()).expect("generate");
    let text = std::fs::read_to_string(dir.path().join("web-events.jsonl")).expect("events");
    text.lines()
        .take(count)
        .filter_map(|line| match serde_json::from_str(line) {
            Ok(Value::Object(event)) => {
                let id = event.get("_id")?.as_str()?.to_owned();
                let at = tessera_pql::time::parse_timestamp(event.get("timestamp")?.as_str()?)?;
                Some((id, at, event))
            }
            _ => None,
        })
        .collect()
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() {
    let count = std::env::var("TESSERA_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let tenant = Tenant::parse("BENCH@AdobeOrg", "prod").expect("tenant");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = EmbeddedStore::open(
        dir.path(),
        StoreOptions {
            durability: Durability::Relaxed,
            ..StoreOptions::default()
        },
    )
    .expect("open store");
    for (name, pql, count, unit) in COMPUTED_ATTRIBUTES {
        let body = json!({"name": name, "expression": {"type": "PQL", "format": "pql/text", "value": pql},
            "duration": {"count": count, "unit": unit}, "status": "NEW"});
        definition::create(&store, &tenant, &body, "_bench", NOW).expect("create");
    }
    // Live once backfilled (over no events).
    upkeep::backfill(&store, &|| NOW).expect("backfill");
    let live = LiveCache::default().get(&store, &tenant).expect("live");
    let digester: Arc<dyn Digester> = Arc::clone(&live) as _;
    let digesters: Arc<Digesters> = Arc::new(HashMap::from([(tenant.clone(), digester)]));
    let serial = Digester::serial(&*live);

    let source = events(count);
    let total = source.len() as f64;
    println!(
        "hand-over of {total} generated web events, {} attributes",
        live.attrs.len()
    );
    let (mut puts, mut takes) = (Vec::new(), Vec::new());
    let (mut folded, mut refused) = (0usize, 0usize);
    for _ in 0..5 {
        let recent = RecentEvents::new(source.len());
        recent.set_digesters(Arc::clone(&digesters));
        // Copied before the clock starts: a put consumes its document.
        let round = source.clone();
        let ids: Vec<(String, i64)> = round.iter().map(|(id, at, _)| (id.clone(), *at)).collect();
        let start = thread_cpu();
        for (seq, (id, at, event)) in (1u64..).zip(round) {
            recent.put(seq, &tenant, &id, at, event);
        }
        puts.push(thread_cpu() - start);
        let start = thread_cpu();
        for (seq, (id, at)) in (1u64..).zip(&ids) {
            let contributions = recent
                .take(seq, id, serial)
                .and_then(|digest| live.read_digest(digest, *at));
            match contributions {
                Some(c) => folded += c.iter().flatten().count(),
                None => refused += 1,
            }
        }
        takes.push(thread_cpu() - start);
    }
    let us = |s: f64| s * 1e6 / total;
    println!("µs per event (thread CPU, median of 5)");
    println!(
        "  ingestion: put (digest, pack, free)    {:>8.3}",
        us(median(puts))
    );
    println!(
        "  consumer: take and read the aggregates {:>8.3}",
        us(median(takes))
    );
    println!("  aggregates read back: {}", folded / 5);
    // Every digest should be taken: a refusal means the consumer's side measured a miss.
    assert_eq!(refused, 0, "digests refused or missing");
}
