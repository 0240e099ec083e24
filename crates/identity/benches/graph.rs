//! Identity-graph benchmark (issue 5's figures), run with `cargo bench -p tessera-identity`.
//!
//! 1. Linking: `TESSERA_BENCH_RECORDS` records (default 1,000,000) of 2–4 identities each,
//!    drawn from people of 6 identities, so a person's identities meet piecemeal and records
//!    often join two of that person's partial graphs; applied in batches of 500 records per
//!    graph transaction and store commit (the ingestion path's group size), relaxed
//!    durability so the figure is the graph work, not fsync. Reports records/s and the share
//!    of records that merged graphs.
//! 2. Resolving: 200,000 lookups of random identities, each timed; p50/p99/p999 from an HDR
//!    histogram, then p50/p99 of the identities found and of those never seen apart.
//!
//! `TESSERA_BENCH_MERGES=heavy` reads the "merging ~30% of the time" as two-graph
//! merges: each person's records follow one story, every record still of 2–4 identities.
//! The 1st, 2nd and 4th records bring new identities only (a new partial graph each); the
//! 3rd and 5th carry one identity from each of two partial graphs plus 0–2 new ones (a
//! merge); later ones revisit 2–4 known identities. With records spread over people as in
//! the default mode (Poisson, mean 5), about 29% of records merge two graphs.
//!
//! `TESSERA_BENCH_SINGLES=P` makes P% of the records carry a single identity of their person
//! (a visit by a known or new device, the common web event), in either mode.
//!
//! `TESSERA_BENCH_CACHE_MB`, `TESSERA_BENCH_ROW_CACHE_MB`, `TESSERA_BENCH_MEMTABLE_MB` and
//! `TESSERA_BENCH_BACKGROUND_THREADS` override the store's block cache, row cache, memtable
//! cap and flush/compaction threads (defaults: the store's).
//!
//! Timings are printed, never asserted.

use std::time::Instant;

use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tessera_identity::{resolve, GraphConfig, GraphTxn, IdentityKey};
use tessera_model::Tenant;
use tessera_store::{Durability, EmbeddedStore, Store, StoreOptions, WriteBatch};

// The same allocator as the `tessera` binary, so the figures are the server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const NAMESPACES: [&str; 6] = ["CRMID", "Email", "Email", "Phone", "ECID", "ECID"];
const BATCH: usize = 500;

fn identity(person: u64, slot: usize) -> IdentityKey {
    let namespace = NAMESPACES
        .get(slot % NAMESPACES.len())
        .copied()
        .unwrap_or("CRMID");
    IdentityKey::new(namespace, format!("{person:012}-{slot}"))
}

/// 2–4 distinct identities (fewer if the person has fewer) among the person's first `known`.
fn some_of(rng: &mut ChaCha8Rng, person: u64, known: usize) -> Vec<IdentityKey> {
    let count = rng.gen_range(2..=4).min(known);
    let mut slots: Vec<usize> = (0..known).collect();
    for k in 0..count {
        let j = rng.gen_range(k..slots.len());
        slots.swap(k, j);
    }
    slots
        .iter()
        .take(count)
        .map(|s| identity(person, *s))
        .collect()
}

/// One person's records in the merge-heavy mode (see the module docs).
#[derive(Clone, Default)]
struct Story {
    records: u8,
    slots: u8,
    latest_part: u8,
}

impl Story {
    fn next_record(&mut self, rng: &mut ChaCha8Rng, person: u64) -> Vec<IdentityKey> {
        let nth = self.records;
        self.records = self.records.saturating_add(1);
        let fresh = |story: &mut Story, count: usize| -> Vec<IdentityKey> {
            let first = usize::from(story.slots);
            story.slots = story.slots.saturating_add(u8::try_from(count).unwrap_or(0));
            (first..first + count)
                .map(|s| identity(person, s))
                .collect()
        };
        match nth {
            0 | 1 | 3 => {
                self.latest_part = self.slots;
                let count = rng.gen_range(2..=4);
                fresh(self, count)
            }
            2 | 4 => {
                // One identity of the partial graph made last, one made before it.
                let before = rng.gen_range(0..usize::from(self.latest_part));
                let last = rng.gen_range(usize::from(self.latest_part)..usize::from(self.slots));
                let mut ids = vec![identity(person, before), identity(person, last)];
                let extra = rng.gen_range(0..=2);
                ids.extend(fresh(self, extra));
                ids
            }
            _ => some_of(rng, person, usize::from(self.slots)),
        }
    }
}

fn main() {
    let records: u64 = std::env::var("TESSERA_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let people = (records / 5).max(1);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = EmbeddedStore::open(
        dir.path(),
        StoreOptions {
            durability: Durability::Relaxed,
            cache_bytes: std::env::var("TESSERA_BENCH_CACHE_MB")
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .map_or(StoreOptions::default().cache_bytes, |mb| mb * 1024 * 1024),
            background_threads: std::env::var("TESSERA_BENCH_BACKGROUND_THREADS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(StoreOptions::default().background_threads),
            row_cache_bytes: std::env::var("TESSERA_BENCH_ROW_CACHE_MB")
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .map_or(StoreOptions::default().row_cache_bytes, |mb| {
                    mb * 1024 * 1024
                }),
            max_memtable_bytes: std::env::var("TESSERA_BENCH_MEMTABLE_MB")
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .map(|mb| mb * 1024 * 1024),
            ..StoreOptions::default()
        },
    )
    .expect("open store");
    let tenant = Tenant::parse("BENCH@AdobeOrg", "prod").expect("tenant");
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    // An unknown mode (such as session 14's `fragmented`) must not silently measure the
    // default one.
    let heavy = match std::env::var("TESSERA_BENCH_MERGES").as_deref() {
        Err(_) | Ok("" | "default") => false,
        Ok("heavy") => true,
        Ok(other) => panic!("TESSERA_BENCH_MERGES={other}: expected `default` or `heavy`"),
    };
    // Per person (merge-heavy mode only): records so far, identities handed out so far, and
    // where the latest partial graph's identities start.
    let mut stories = vec![
        Story::default();
        if heavy {
            usize::try_from(people).unwrap_or(0)
        } else {
            0
        }
    ];
    let singles: f64 = std::env::var("TESSERA_BENCH_SINGLES")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |p| (p / 100.0).clamp(0.0, 1.0));
    let mut identities_linked = 0u64;

    let started = Instant::now();
    let mut merges = 0u64;
    let mut extended = 0u64;
    let mut done = 0u64;
    let mut finish_time = std::time::Duration::ZERO;
    let (mut ops, mut checks, mut bytes) = (0usize, 0usize, 0usize);
    let mut commit_time = std::time::Duration::ZERO;
    while done < records {
        let mut txn = GraphTxn::new(&store, tenant.clone(), GraphConfig::default(), |_| 2);
        let n = BATCH.min(usize::try_from(records - done).unwrap_or(BATCH));
        for i in 0..n {
            let person = rng.gen_range(0..people);
            let ids: Vec<IdentityKey> = if singles > 0.0 && rng.gen_bool(singles) {
                vec![identity(person, rng.gen_range(0..NAMESPACES.len()))]
            } else {
                match stories.get_mut(usize::try_from(person).unwrap_or(0)) {
                    Some(story) => story.next_record(&mut rng, person),
                    None => some_of(&mut rng, person, NAMESPACES.len()),
                }
            };
            identities_linked += ids.len() as u64;
            let at = i64::try_from(done).unwrap_or(0) + i64::try_from(i).unwrap_or(0);
            let known = ids
                .iter()
                .filter(|id| txn.graph_id_of(id).ok().flatten().is_some())
                .count();
            if let Some(outcome) = txn.link(&ids, at, "bench", "x").expect("link") {
                if !outcome.absorbed.is_empty() {
                    merges += 1;
                } else if known > 0 && known < ids.len() {
                    extended += 1;
                }
            }
        }
        let building = Instant::now();
        let mut batch = WriteBatch::new();
        txn.finish(&mut batch).expect("finish");
        let committing = Instant::now();
        ops += batch.len();
        bytes += batch
            .ops()
            .iter()
            .map(|op| match op {
                tessera_store::Op::Put { key, value, .. } => key.as_bytes().len() + value.len(),
                tessera_store::Op::Append { prefix, value, .. } => {
                    prefix.as_bytes().len() + 9 + value.len()
                }
                tessera_store::Op::Delete { key, .. } => key.as_bytes().len(),
            })
            .sum::<usize>();
        checks += batch.checks().len();
        store.commit(batch).expect("commit");
        finish_time += committing - building;
        commit_time += committing.elapsed();
        done += n as u64;
    }
    let elapsed = started.elapsed();
    println!(
        "link: {records} records ({people} people{}) in {:.2} s = {:.0} records/s = {:.0} identities/s; {:.1}% merged two graphs, {:.1}% added identities to one",
        if heavy { ", merge-heavy" } else { "" },
        elapsed.as_secs_f64(),
        records as f64 / elapsed.as_secs_f64(),
        identities_linked as f64 / elapsed.as_secs_f64(),
        100.0 * merges as f64 / records as f64,
        100.0 * extended as f64 / records as f64
    );
    let per_record = |d: std::time::Duration| d.as_secs_f64() * 1e6 / records as f64;
    println!(
        "link: per record {:.1} us = resolve and link {:.1} us + emit batch {:.1} us + commit {:.1} us ({:.1} writes of {:.0} bytes, {:.1} preconditions)",
        per_record(elapsed),
        per_record(elapsed - finish_time - commit_time),
        per_record(finish_time),
        per_record(commit_time),
        ops as f64 / records as f64,
        bytes as f64 / records as f64,
        checks as f64 / records as f64
    );

    // Let background flushes and compactions of the write phase settle, so the lookups
    // measure reads rather than reads competing with compaction for the two cores.
    let settle: u64 = std::env::var("TESSERA_BENCH_SETTLE_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    std::thread::sleep(std::time::Duration::from_secs(settle));
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram");
    let lookups = 200_000;
    let started = Instant::now();
    // Identities found and identities never seen apart as well: their reads take different
    // paths (a found one is two rows, usually cached; a missing one is a miss of every
    // memtable and table filter, unless its absence is cached).
    let (mut found_only, mut missing_only) = (histogram.clone(), histogram.clone());
    for _ in 0..lookups {
        let key = identity(rng.gen_range(0..people), rng.gen_range(0..NAMESPACES.len()));
        let t = Instant::now();
        let hit = resolve(&store, &tenant, &key).expect("resolve").is_some();
        let nanos = u64::try_from(t.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        histogram.record(nanos).expect("record");
        match hit {
            true => found_only.record(nanos),
            false => missing_only.record(nanos),
        }
        .expect("record");
    }
    let elapsed = started.elapsed();
    let us = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "resolve: {lookups} lookups ({} found) {:.0}/s; p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, max {:.1} us",
        found_only.len(),
        lookups as f64 / elapsed.as_secs_f64(),
        us(&histogram, 0.5),
        us(&histogram, 0.99),
        us(&histogram, 0.999),
        histogram.max() as f64 / 1000.0
    );
    println!(
        "resolve split: found p50/p99 {:.1}/{:.1} us; never seen ({}) p50/p99 {:.1}/{:.1} us",
        us(&found_only, 0.5),
        us(&found_only, 0.99),
        missing_only.len(),
        us(&missing_only, 0.5),
        us(&missing_only, 0.99)
    );
    store.flush().expect("flush");
}
