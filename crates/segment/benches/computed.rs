//! Computed-attribute upkeep cost per event, run with
//! `cargo bench -p tessera-segment --bench computed`.
//!
//! `TESSERA_BENCH_PEOPLE` people (default 2,000), each with 2 identities in one graph and
//! `TESSERA_BENCH_EVENTS` events (default 25) spread over 30 days, arriving in random
//! person order. Timed phases on the same kind of store (relaxed durability, so fsync does
//! not dominate and the ratio is conservative):
//! 1. ingest: what the apply step of ingestion writes per event — identity resolution
//!    (`GraphTxn::link`), the event, its change-feed entry — committed 100 events per batch
//!    (schema validation and HTTP are not included, which again makes the ratio
//!    conservative);
//! 2. upkeep with no attribute: the consumer catching up over the same feed;
//! 3. upkeep with 10 attributes (SUM, COUNT, MIN, MAX, MOST_RECENT over hour, day, week and
//!    month windows, with and without filters): read the event, test 10 filters, fold into
//!    buckets, write each touched profile's state once per pass, save the checkpoint. The
//!    consumer runs after all events are written, so this is a catch-up: each profile's
//!    first entry recomputes it from all its events and its later entries are skipped;
//! 4. interleaved (the steady state of a server): the consumer catches up after every
//!    commit of 100 events, so each profile is recomputed once, on its first event, and
//!    every later event is folded into the stored state; ingest and upkeep timed apart.
//!    One long-lived consumer, as the server keeps.
//!
//! Timings are printed, never asserted.

use std::time::Instant;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use tessera_identity::{GraphConfig, GraphTxn, IdentityKey};
// The same ten attributes as `tessera bench --scenario ingest-stream --computed-attributes 10`.
use tessera_bench::workload::COMPUTED_ATTRIBUTES as ATTRIBUTES;
use tessera_ingest::change_feed::{self, ChangeEntry, ChangeKind};
use tessera_model::Tenant;
use tessera_profile::event::{self, NewEvent};
use tessera_segment::computed::{self, definition, upkeep};
use tessera_store::{Durability, EmbeddedStore, Store, StoreOptions, Table, WriteBatch};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const NOW: i64 = 1_750_000_000_000;
const DAY: i64 = 86_400_000;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn open() -> (tempfile::TempDir, EmbeddedStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = EmbeddedStore::open(
        dir.path(),
        StoreOptions {
            durability: Durability::Relaxed,
            ..StoreOptions::default()
        },
    )
    .expect("open store");
    (dir, store)
}

fn define_all(store: &EmbeddedStore, tenant: &Tenant) {
    for (name, pql, count, unit) in ATTRIBUTES {
        let body = json!({"name": name, "expression": {"type": "PQL", "format": "pql/text", "value": pql},
            "duration": {"count": count, "unit": unit}, "status": "NEW"});
        definition::create(store, tenant, &body, "_bench", NOW).expect("create");
    }
    upkeep::backfill(store, &|| NOW).expect("backfill of an empty sandbox");
}

/// Seconds spent: wall clock, and on a CPU by this thread (from
/// `/proc/thread-self/schedstat`; NaN elsewhere). The machine is shared with other builds:
/// CPU time leaves out the waits for a core that make wall time noisy (it also leaves out
/// the store's background flush threads, on both sides of the ratio).
#[derive(Debug, Clone, Copy, Default)]
struct Spent {
    wall: f64,
    cpu: f64,
}

impl std::ops::AddAssign for Spent {
    fn add_assign(&mut self, other: Spent) {
        self.wall += other.wall;
        self.cpu += other.cpu;
    }
}

fn thread_cpu() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns / 1e9)
}

/// A started measurement.
struct Stopwatch {
    wall: Instant,
    cpu: f64,
}

impl Stopwatch {
    fn start() -> Self {
        Stopwatch {
            wall: Instant::now(),
            cpu: thread_cpu(),
        }
    }

    fn stop(self) -> Spent {
        Spent {
            wall: self.wall.elapsed().as_secs_f64(),
            cpu: thread_cpu() - self.cpu,
        }
    }
}

/// Writes every event as ingestion's apply step would, 100 per commit, calling `between`
/// after each commit; returns the time spent writing (`between` excluded).
fn ingest(
    store: &EmbeddedStore,
    tenant: &Tenant,
    people: u64,
    events: u64,
    between: &mut dyn FnMut(),
) -> Spent {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut order: Vec<(u64, u64)> = (0..people)
        .flat_map(|p| (0..events).map(move |n| (p, n)))
        .collect();
    order.shuffle(&mut rng);
    let mut spent = Spent::default();
    for chunk in order.chunks(100) {
        let stopwatch = Stopwatch::start();
        let mut batch = WriteBatch::new();
        for (person, n) in chunk {
            let ids = [
                IdentityKey::new("CRMID", format!("crm-{person:08}")),
                IdentityKey::new("ECID", format!("{person:038}")),
            ];
            let mut txn = GraphTxn::new(store, tenant.clone(), GraphConfig::default(), |_| 0);
            let graph = txn
                .link(&ids, 1, "web", "x")
                .expect("link")
                .expect("linked")
                .graph;
            txn.finish(&mut batch).expect("graph");
            let at = NOW - rng.gen_range(0..30 * DAY);
            let id = format!("{person}-{n}");
            let xaction = format!("{person}:{n}");
            let body = if n % 3 == 0 {
                json!({"_id": id, "timestamp": tessera_pql::time::format_timestamp(at), "eventType": "commerce.purchases",
                    "commerce": {"order": {"priceTotal": rng.gen_range(1.0..300.0)}}})
            } else {
                json!({"_id": id, "timestamp": tessera_pql::time::format_timestamp(at), "eventType": "web.webpagedetails.pageViews",
                    "web": {"webPageDetails": {"name": format!("page{}", n % 7), "URL": "https://example.com/"}}})
            };
            let Some(body) = body.as_object().cloned() else {
                continue;
            };
            let [_, ecid] = &ids;
            let new = NewEvent {
                dataset: "web",
                identity: ecid,
                timestamp_ms: at,
                event_id: &id,
                xaction_id: &xaction,
            };
            event::append(&mut batch, tenant, &new, &body).expect("event");
            change_feed::append(
                &mut batch,
                &ChangeEntry {
                    org: tenant.org.to_string(),
                    sandbox: tenant.sandbox.to_string(),
                    dataset_id: "web".into(),
                    kind: ChangeKind::Event,
                    namespace: ecid.namespace.clone(),
                    id: ecid.id.clone(),
                    identities: ids
                        .iter()
                        .map(|i| (i.namespace.clone(), i.id.clone()))
                        .collect(),
                    xaction_id: xaction.clone(),
                    applied_ms: NOW,
                    event_ms: Some(at),
                    event_id: Some(id.clone()),
                    graph: Some(graph),
                    segment: None,
                    absorbed: Vec::new(),
                    growth: Default::default(),
                },
            )
            .expect("feed");
        }
        store.commit(batch).expect("commit");
        spent += stopwatch.stop();
        between();
    }
    spent
}

fn upkeep(store: &EmbeddedStore, consumer: &mut upkeep::Consumer) -> Spent {
    let stopwatch = Stopwatch::start();
    consumer.catch_up(store, &|| NOW).expect("upkeep");
    stopwatch.stop()
}

fn main() {
    let people = env("TESSERA_BENCH_PEOPLE", 2_000);
    let events = env("TESSERA_BENCH_EVENTS", 25);
    let total = (people * events) as f64;
    let tenant = Tenant::parse("BENCH@AdobeOrg", "prod").expect("tenant");
    println!("computed attribute upkeep: {people} people x {events} events = {total} events");

    let (_a, bare) = open();
    let ingest_bare = ingest(&bare, &tenant, people, events, &mut || {});
    let upkeep_none = upkeep(&bare, &mut upkeep::Consumer::default());

    let (_b, with) = open();
    define_all(&with, &tenant);
    let ingest_with = ingest(&with, &tenant, people, events, &mut || {});
    let upkeep_ten = upkeep(&with, &mut upkeep::Consumer::default());

    // Steady state, as in the server: the consumer catches up after every commit of 100
    // events (the streaming worker is woken by each apply), so a profile is recomputed once
    // (its first event) and every later event is folded into its stored state.
    let (_c, live) = open();
    define_all(&live, &tenant);
    let mut upkeep_live = Spent::default();
    let mut consumer = upkeep::Consumer::default();
    let ingest_live = ingest(&live, &tenant, people, events, &mut || {
        upkeep_live += upkeep(&live, &mut consumer);
    });

    let us = |s: f64| s * 1e6 / total;
    println!(
        "{:<44} {:>14} {:>14}",
        "µs per event", "wall", "cpu (thread)"
    );
    let line = |what: &str, spent: Spent| {
        println!(
            "{what:<44} {:>14.2} {:>14.2}",
            us(spent.wall),
            us(spent.cpu)
        )
    };
    line("ingest apply (no attributes)", ingest_bare);
    line("ingest apply (10 attributes, consumer idle)", ingest_with);
    line("ingest apply (10 attributes, interleaved)", ingest_live);
    line("catch-up upkeep, 0 attributes", upkeep_none);
    line("catch-up upkeep, 10 attributes", upkeep_ten);
    line("interleaved upkeep, 10 attributes", upkeep_live);
    let ratio = |what: &str, upkeep: Spent, ingest: Spent| {
        println!(
            "{what:<44} {:>13.1}% {:>13.1}%",
            100.0 * upkeep.wall / ingest.wall,
            100.0 * upkeep.cpu / ingest.cpu
        )
    };
    ratio(
        "catch-up upkeep(10) / ingest apply",
        upkeep_ten,
        ingest_bare,
    );
    ratio(
        "interleaved upkeep(10) / ingest apply",
        upkeep_live,
        ingest_bare,
    );
    // Values are read back, so the work is not optimised away and the states decode.
    let (mut read_back, mut state_bytes, mut states) = (0usize, 0usize, 0usize);
    for store in [&with, &live] {
        for graph in tessera_identity::graphs(store, &tenant, None, 100).expect("graphs") {
            read_back += upkeep::values(store, &tenant, graph.id, NOW)
                .expect("values")
                .len();
            let key = computed::store::key(&tenant, graph.id);
            if let Some(bytes) = store.get(Table::ComputedAttributes, &key).expect("state") {
                state_bytes += bytes.len();
                states += 1;
            }
        }
    }
    println!(
        "(values read back for the first 100 profiles: {read_back}; stored state {} bytes per profile)",
        state_bytes / states.max(1)
    );
}
