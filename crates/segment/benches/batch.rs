//! Batch segmentation benchmark (issue 8's figure), run with
//! `cargo bench -p tessera-segment --bench batch`.
//!
//! `TESSERA_BENCH_PROFILES` profiles (default 100,000; the issue's figure is 1,000,000), each a
//! graph of 2 identities with one CRM fragment and on average 20 experience events over 60
//! days, written straight through the profile and identity layers (relaxed durability). Then
//! one batch run of 20 mixed segments (attribute, event-window, count, sum, segment-of-segment)
//! over every profile: profiles/s and the projected time for 1,000,000 profiles.
//!
//! `TESSERA_BENCH_DATA=<dir>` keeps the generated data set in `<dir>` (built on the first run)
//! and runs on a fresh copy of it each time, so comparisons need not rebuild a million
//! profiles (four to five minutes) per run.
//!
//! `TESSERA_BENCH_CACHE_MB` sets the block cache (default: the store's, 256 MB).
//!
//! Timings are printed, never asserted.

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use tessera_identity::{GraphConfig, GraphTxn, IdentityKey};
use tessera_model::Tenant;
use tessera_profile::event::{self, NewEvent};
use tessera_profile::fragment::{self, WriteMode};
use tessera_segment::batch::{self, Change, Outcome, Run};
use tessera_segment::definition::{Expression, SegmentDefinition};
use tessera_store::{Durability, EmbeddedStore, Store, StoreOptions, WriteBatch};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const NOW: i64 = 1_750_000_000_000; // 2025-06-15T15:06:40Z
const DAY: i64 = 86_400_000;
const CITIES: [&str; 5] = ["Basel", "Bern", "Zurich", "Geneva", "Lugano"];
const TYPES: [&str; 4] = [
    "web.webpagedetails.pageViews",
    "commerce.productViews",
    "commerce.purchases",
    "directMarketing.emailOpened",
];

fn timestamp(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let rem = seconds.rem_euclid(86_400);
    // Civil date from days since the epoch (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

fn segment(id: usize, pql: &str, dependencies: &[String]) -> SegmentDefinition {
    SegmentDefinition::new(
        format!("s{id:02}"),
        Expression::pql_text(pql),
        dependencies.to_vec(),
        0,
    )
}

fn segments() -> Vec<SegmentDefinition> {
    let mut out = Vec::new();
    for (i, city) in CITIES.iter().enumerate() {
        out.push(segment(i, &format!(r#"homeAddress.city = "{city}""#), &[]));
    }
    out.push(segment(5, r#"loyalty.tier = "gold""#, &[]));
    out.push(segment(6, "person.birthYear < 1980", &[]));
    out.push(segment(
        7,
        r#"loyalty.points > 5000 and homeAddress.city in ["Basel", "Bern"]"#,
        &[],
    ));
    out.push(segment(
        8,
        "xEvent[timestamp occurs <= 7 days before now].count() > 0",
        &[],
    ));
    out.push(segment(
        9,
        "xEvent[timestamp occurs <= 30 days before now].count() >= 10",
        &[],
    ));
    out.push(segment(10, r#"xEvent[eventType = "commerce.purchases" and timestamp occurs <= 30 days before now].count() > 0"#, &[]));
    out.push(segment(
        11,
        r#"xEvent[eventType = "commerce.purchases"].sum(commerce.order.priceTotal) > 500"#,
        &[],
    ));
    out.push(segment(12, r#"xEvent[eventType = "directMarketing.emailOpened" and timestamp occurs <= 14 days before now].count() >= 2"#, &[]));
    out.push(segment(
        13,
        r#"xEvent[eventType = "commerce.productViews"].count() > 5"#,
        &[],
    ));
    out.push(segment(
        14,
        r#"not(xEvent[eventType = "commerce.purchases"].count() > 0)"#,
        &[],
    ));
    out.push(segment(15, r#"homeAddress.city = "Zurich" and xEvent[timestamp occurs <= 3 days before now].count() > 0"#, &[]));
    out.push(segment(
        16,
        r#"person.birthYear >= 1990 and loyalty.tier in ["silver", "gold"]"#,
        &[],
    ));
    out.push(segment(
        17,
        r#"inSegment("s10") and inSegment("s05")"#,
        &["s10".into(), "s05".into()],
    ));
    out.push(segment(
        18,
        r#"inSegment("s08") and not(inSegment("s10"))"#,
        &["s08".into(), "s10".into()],
    ));
    out.push(segment(19, r#"xEvent[eventType = "web.webpagedetails.pageViews" and timestamp occurs <= 1 days before now].count() > 0"#, &[]));
    out
}

fn main() {
    let profiles: u64 = std::env::var("TESSERA_BENCH_PROFILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let options = StoreOptions {
        durability: Durability::Relaxed,
        cache_bytes: std::env::var("TESSERA_BENCH_CACHE_MB")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(StoreOptions::default().cache_bytes, |mb| mb * 1024 * 1024),
        ..StoreOptions::default()
    };
    let tenant = Tenant::parse("BENCH@AdobeOrg", "prod").expect("tenant");
    let dir = tempfile::tempdir().expect("temp dir");
    let kept = std::env::var_os("TESSERA_BENCH_DATA").map(std::path::PathBuf::from);
    let marker = kept.as_ref().map(|d| d.join(format!("loaded-{profiles}")));
    let reuse = marker.as_ref().is_some_and(|m| m.exists());
    if !reuse {
        let target = kept.clone().unwrap_or_else(|| dir.path().to_path_buf());
        let store = EmbeddedStore::open(&target, options.clone()).expect("store");
        load(&store, &tenant, profiles);
        drop(store);
        if let Some(marker) = &marker {
            std::fs::write(marker, b"").expect("marker");
        }
    }
    if let Some(kept) = &kept {
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", kept.display()))
            .arg(dir.path())
            .status()
            .expect("cp");
        assert!(status.success(), "copying the kept data set failed");
        println!("running on a copy of {}", kept.display());
    }
    let store = EmbeddedStore::open(dir.path(), options).expect("store");
    run_jobs(&store, &tenant);
}

/// Writes `profiles` generated profiles with their events.
fn load(store: &EmbeddedStore, tenant: &Tenant, profiles: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let started = Instant::now();
    let mut events_written = 0u64;
    let mut batch = WriteBatch::new();
    for p in 0..profiles {
        let crm = IdentityKey::new("CRMID", format!("c{p:08}"));
        let ecid = IdentityKey::new("ECID", format!("{p:038}"));
        let mut txn = GraphTxn::new(store, tenant.clone(), GraphConfig::default(), |_| 0);
        txn.link(&[crm.clone(), ecid.clone()], 1, "crm", "x")
            .expect("link");
        txn.finish(&mut batch).expect("graph");
        let city = CITIES
            .get(rng.gen_range(0..CITIES.len()))
            .copied()
            .unwrap_or("Basel");
        let tier = ["bronze", "silver", "gold"]
            .get(rng.gen_range(0..3))
            .copied()
            .unwrap_or("gold");
        let record = json!({"homeAddress": {"city": city}, "person": {"birthYear": rng.gen_range(1940..2005)},
            "loyalty": {"tier": tier, "points": rng.gen_range(0..10_000)}});
        let serde_json::Value::Object(record) = record else {
            continue;
        };
        fragment::write(
            store,
            &mut batch,
            tenant,
            "crm",
            &crm,
            record,
            WriteMode::Replace,
            1,
            "x",
        )
        .expect("fragment");
        let n = rng.gen_range(0..=40);
        for e in 0..n {
            let at = NOW - rng.gen_range(0..60 * DAY);
            let id = format!("{p}-{e}");
            let kind = TYPES
                .get(rng.gen_range(0..TYPES.len()))
                .copied()
                .unwrap_or("commerce.purchases");
            let body = json!({"_id": id, "timestamp": timestamp(at), "eventType": kind,
                "commerce": {"order": {"priceTotal": rng.gen_range(5..300)}}});
            let serde_json::Value::Object(body) = body else {
                continue;
            };
            let new = NewEvent {
                dataset: "web",
                identity: &ecid,
                timestamp_ms: at,
                event_id: &id,
                xaction_id: "x",
            };
            event::append(&mut batch, tenant, &new, &body).expect("event");
            events_written += 1;
        }
        if p % 200 == 199 {
            store.commit(std::mem::take(&mut batch)).expect("commit");
        }
    }
    store.commit(batch).expect("commit");
    println!(
        "loaded {profiles} profiles, {events_written} events ({:.1} per profile) in {:.1} s",
        events_written as f64 / profiles as f64,
        started.elapsed().as_secs_f64()
    );
}

/// Two segment jobs over everything, timed.
fn run_jobs(store: &EmbeddedStore, tenant: &Tenant) {
    let policies = tessera_profile::policy::load(store, tenant).expect("policies");
    let compiled = batch::compile(segments(), &policies).expect("compile");
    let never = || false;
    let record = |_: &mut WriteBatch, _: &[Change]| Ok(());
    let run = Run {
        store,
        tenant,
        now_ms: NOW,
        max_identities: 50,
        should_stop: &never,
        record: &record,
        use_views: false,
    };
    for pass in [
        "first run (every membership new)",
        "second run (statuses move to existing)",
    ] {
        let at = Instant::now();
        let outcome = batch::run(&run, &compiled).expect("run");
        let seconds = at.elapsed().as_secs_f64();
        let Outcome::Completed(metrics) = outcome else {
            panic!("stopped")
        };
        let members: u64 = metrics.segmented_profile_counter.values().sum();
        println!(
            "{pass}: {} profiles x {} segments in {seconds:.1} s = {:.0} profiles/s; {members} memberships; projected 1,000,000 profiles: {:.0} s",
            metrics.total_profiles,
            compiled.len(),
            metrics.total_profiles as f64 / seconds,
            1_000_000.0 * seconds / metrics.total_profiles.max(1) as f64
        );
    }
}
