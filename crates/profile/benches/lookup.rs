//! Profile lookup benchmark (issue 6's in-process figures), run with
//! `cargo bench -p tessera-profile --bench lookup`.
//!
//! `TESSERA_BENCH_PEOPLE` people (default 10,000), each with 5 identities (CRMID, 2 Email,
//! Phone, ECID) in one graph, 3 fragments (3 datasets under 3 of the identities) and 50
//! experience events. Lookups by a random identity of a random person under the built-in
//! policy (timestamp-ordered, graph stitched), each timed, p50/p99/p99.9 from an HDR
//! histogram:
//! 1. hot: the materialized view answers (after one lookup per person filled it);
//! 2. cold: the merge from fragments (`lookup::compute`), what a lookup after a write pays.
//!
//! Timings are printed, never asserted.

use std::time::Instant;

use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use tessera_identity::{GraphConfig, GraphTxn, IdentityKey};
use tessera_model::Tenant;
use tessera_profile::event::{self, NewEvent};
use tessera_profile::fragment::{self, WriteMode};
use tessera_profile::lookup::{self, Lookup};
use tessera_profile::policy;
use tessera_store::{Durability, EmbeddedStore, StoreOptions, WriteBatch};

// The same allocator as the `tessera` binary, so the figures are the server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn identities(person: u64) -> [IdentityKey; 5] {
    [
        IdentityKey::new("CRMID", format!("crm-{person:08}")),
        IdentityKey::new("Email", format!("p{person}@example.com")),
        IdentityKey::new("Email", format!("p{person}@work.example")),
        IdentityKey::new("Phone", format!("+4161{person:07}")),
        IdentityKey::new("ECID", format!("{person:038}")),
    ]
}

fn object(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match value {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

fn report(name: &str, histogram: &Histogram<u64>) {
    println!(
        "{name:<28} n={:>8}  p50 {:>7.1} µs  p99 {:>7.1} µs  p99.9 {:>7.1} µs  max {:>8.1} µs",
        histogram.len(),
        histogram.value_at_quantile(0.5) as f64 / 1000.0,
        histogram.value_at_quantile(0.99) as f64 / 1000.0,
        histogram.value_at_quantile(0.999) as f64 / 1000.0,
        histogram.max() as f64 / 1000.0,
    );
}

fn main() {
    let people: u64 = std::env::var("TESSERA_BENCH_PEOPLE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = EmbeddedStore::open(
        dir.path(),
        StoreOptions {
            durability: Durability::Relaxed,
            ..StoreOptions::default()
        },
    )
    .expect("open store");
    let tenant = Tenant::parse("BENCH@AdobeOrg", "prod").expect("tenant");
    let started = Instant::now();
    for person in 0..people {
        let ids = identities(person);
        let mut batch = WriteBatch::new();
        let mut txn = GraphTxn::new(&store, tenant.clone(), GraphConfig::default(), |_| 0);
        txn.link(&ids, 1, "crm", "x").expect("link");
        txn.finish(&mut batch).expect("graph");
        for (slot, dataset, record) in [
            (
                0,
                "crm",
                json!({"person": {"name": {"firstName": "Ada", "lastName": format!("P{person}")}, "birthDate": "1980-01-01"},
                "homeAddress": {"city": "Basel", "postalCode": "4051", "country": "CH"}, "loyalty": {"tier": "gold", "points": 1200}}),
            ),
            (
                1,
                "web",
                json!({"personalEmail": {"address": format!("p{person}@example.com")}, "person": {"name": {"lastName": "Changed"}},
                "preferences": {"language": "de", "channels": ["email", "sms"]}}),
            ),
            (
                3,
                "callcentre",
                json!({"mobilePhone": {"number": format!("+4161{person:07}")}, "notes": "prefers mornings", "loyalty": {"points": 1350}}),
            ),
        ] {
            let (Some(identity), modified) = (ids.get(slot), 10 + slot as i64) else {
                continue;
            };
            fragment::write(
                &store,
                &mut batch,
                &tenant,
                dataset,
                identity,
                object(record),
                WriteMode::Replace,
                modified,
                "x",
            )
            .expect("fragment");
        }
        for n in 0..50i64 {
            let identity = &ids[4];
            let id = format!("{person}-{n}");
            let new = NewEvent {
                dataset: "web-events",
                identity,
                timestamp_ms: 1_700_000_000_000 + n * 60_000,
                event_id: &id,
                xaction_id: "x",
            };
            let body = json!({"_id": id, "eventType": "web.webpagedetails.pageViews", "web": {"webPageDetails": {"name": format!("page {n}"), "URL": "https://example.com/p"}},
                "commerce": {"order": {"priceTotal": n as f64 * 1.5}}});
            event::append(&mut batch, &tenant, &new, &object(body)).expect("event");
        }
        tessera_store::Store::commit(&store, batch).expect("commit");
    }
    println!(
        "loaded {people} people (5 identities, 3 fragments, 50 events each) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let policy = policy::load(&store, &tenant)
        .expect("policies")
        .default_for(policy::PROFILE_CLASS);
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let samples = 200_000;

    // Fill every view once, then time hot lookups.
    for person in 0..people {
        let ids = identities(person);
        let _ = lookup::lookup(&store, &tenant, &ids[0], &policy, 50).expect("fill");
    }
    let mut hot = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram");
    for _ in 0..samples {
        let ids = identities(rng.gen_range(0..people));
        let identity = ids
            .get(rng.gen_range(0..ids.len()))
            .expect("index drawn below the length");
        let at = Instant::now();
        let found = lookup::lookup(&store, &tenant, identity, &policy, 50).expect("lookup");
        let took = at.elapsed().as_nanos() as u64;
        assert!(matches!(found, Lookup::Found(_)));
        let _ = hot.record(took.max(1));
    }
    report("hot (materialized view)", &hot);

    let mut cold = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram");
    for _ in 0..samples / 4 {
        let ids = identities(rng.gen_range(0..people));
        let at = Instant::now();
        let graph = tessera_identity::resolve(&store, &tenant, &ids[1])
            .expect("resolve")
            .expect("graph");
        let members: Vec<IdentityKey> = graph.identities().cloned().collect();
        let entry = lookup::compute(&store, &tenant, members, &policy, 50).expect("merge");
        let took = at.elapsed().as_nanos() as u64;
        assert!(matches!(entry, tessera_profile::view::Entry::Found { .. }));
        let _ = cold.record(took.max(1));
    }
    report("cold (resolve + merge)", &cold);
}
