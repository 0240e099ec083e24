#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! A profile TTL on an experience-event dataset: events past it stop being returned the
//! moment it is set, the sweeper (woken by the PATCH) deletes exactly those events with
//! their idempotency and batch-index entries, events of other datasets are untouched, and
//! `null` turns retention off again.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::ingest::{dataset, get, load_batch, setup, Setup, ORG, TENANT};
use common::{send, TestServer};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use tessera_model::Tenant;
use tessera_profile::event;
use tessera_store::{Direction, ScanRange, Store, Table};

const EVENTS: &str = "/data/core/ups/access/entities?schema.name=_xdm.context.experienceevent";
const ECID: &str = "12345678901234567890123456789012345678";
const DAY_MS: i64 = 86_400_000;

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// A page view of [`ECID`], `days_ago` days old.
fn view(id: &str, days_ago: i64) -> Value {
    json!({
        "_id": id,
        "timestamp": rfc3339(now_ms() - days_ago * DAY_MS),
        "identityMap": {"ECID": [{"id": ECID, "primary": true}]},
        "web": {"webPageDetails": {"name": id}}
    })
}

fn message_to(setup: &Setup, dataset: &str, entity: Value) -> Value {
    json!({
        "header": {"schemaRef": {"id": setup.event_schema}, "imsOrgId": ORG, "datasetId": dataset},
        "body": {"xdmMeta": {"schemaRef": {"id": setup.event_schema}}, "xdmEntity": entity}
    })
}

async fn stream_to(setup: &Setup, dataset: &str, entity: Value) {
    let reply = setup.stream(message_to(setup, dataset, entity)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

/// Every event id the events API returns for [`ECID`] (one page is enough here).
async fn visible(base: &str) -> BTreeSet<String> {
    let reply = get(
        base,
        &format!("{EVENTS}&relatedEntityId={ECID}&relatedEntityIdNS=ECID&limit=100"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let body = reply.json();
    assert_eq!(body["_page"]["next"], "", "{body}");
    body["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|child| child["entityId"].as_str().unwrap().to_owned())
        .collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|id| (*id).to_owned()).collect()
}

/// `_id`s of a dataset's events in the store, through the idempotency index.
fn stored(store: &dyn Store, tenant: &Tenant, dataset: &str) -> BTreeSet<String> {
    let rows = store
        .scan(
            Table::Events,
            &ScanRange::prefix(event::dataset_index_prefix(tenant, dataset)),
            Direction::Forward,
            1_000,
        )
        .unwrap();
    let mut ids = BTreeSet::new();
    for row in rows {
        let key = event::decode_key(&row.value).unwrap();
        // The event itself is there too, not only its index entry.
        let at = event::key(
            tenant,
            &key.identity,
            key.timestamp_ms,
            &key.dataset,
            &key.event_id,
        );
        assert!(store.get(Table::Events, &at).unwrap().is_some(), "{key:?}");
        ids.insert(key.event_id);
    }
    ids
}

/// `_id`s in a dataset's batch index.
fn batch_indexed(store: &dyn Store, tenant: &Tenant, dataset: &str) -> BTreeSet<String> {
    store
        .scan(
            Table::Events,
            &ScanRange::prefix(event::batch_index_prefix(tenant, dataset, None)),
            Direction::Forward,
            1_000,
        )
        .unwrap()
        .iter()
        .map(|row| event::decode_key(&row.value).unwrap().event_id)
        .collect()
}

async fn patch_ttl(base: &str, dataset: &str, ttl: Value) {
    let reply = send(
        Method::PATCH,
        &format!("{base}/data/foundation/catalog/v2/datasets/{dataset}"),
        &TENANT,
        Some(json!({"extensions": {"adobe_unifiedProfile": {"rowExpiration": {"ttlValue": ttl}}}})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

#[tokio::test]
async fn expired_events_stop_counting_and_are_purged() {
    // Only the PATCH wakes the sweeper during the test.
    let server = TestServer::start(Some("[retention]\nsweep_interval_secs = 3600\n")).await;
    let setup = setup(&server.url("")).await;
    let base = setup.base.clone();
    let web = setup.event_dataset.clone();
    let app = dataset(&base, "App", &setup.event_schema, false).await;
    let tenant = Tenant::parse(ORG, "prod").unwrap();
    let store = std::sync::Arc::clone(&server.state.store);

    // Streamed and batch-loaded events on both sides of a 30-day TTL, and old events of
    // another dataset that has no TTL.
    for (id, days) in [("old-40", 40), ("old-31", 31), ("mid-29", 29), ("new-0", 0)] {
        stream_to(&setup, &web, view(id, days)).await;
    }
    let (_, batch) = load_batch(
        &setup,
        &web,
        &[view("batch-old-60", 60), view("batch-new-1", 1)],
    )
    .await;
    assert_eq!(batch["metrics"]["recordsWritten"], 2, "{batch}");
    stream_to(&setup, &app, view("app-old-90", 90)).await;
    let everything = set(&[
        "old-40",
        "old-31",
        "mid-29",
        "new-0",
        "batch-old-60",
        "batch-new-1",
        "app-old-90",
    ]);
    assert_eq!(visible(&base).await, everything);

    patch_ttl(&base, &web, json!("P30D")).await;
    // Reads cut off at once, whether or not the sweeper has run yet.
    let kept = set(&["mid-29", "new-0", "batch-new-1", "app-old-90"]);
    assert_eq!(visible(&base).await, kept);

    // The sweeper, woken by the PATCH, deletes exactly the expired events of `web`.
    let web_kept = set(&["mid-29", "new-0", "batch-new-1"]);
    let mut swept = false;
    for _ in 0..200 {
        let (store, tenant, web) = (store.clone(), tenant.clone(), web.clone());
        let now = tokio::task::spawn_blocking(move || stored(store.as_ref(), &tenant, &web))
            .await
            .unwrap();
        if now == web_kept {
            swept = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(swept, "the sweeper did not delete the expired events");
    assert_eq!(
        batch_indexed(store.as_ref(), &tenant, &web),
        set(&["batch-new-1"])
    );
    assert_eq!(stored(store.as_ref(), &tenant, &app), set(&["app-old-90"]));
    assert_eq!(visible(&base).await, kept);

    // A sweep now finds nothing more.
    let sweeper = tessera_server::retention::Sweeper::new(store.clone(), 2);
    let again = tokio::task::spawn_blocking(move || sweeper.sweep(&|| true))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again, 0);

    // An expired event re-sent is stored again (its `_id` entry is gone, as in AEP once the
    // event is deleted) but still not returned, and the next sweep removes it.
    stream_to(&setup, &web, view("old-40", 40)).await;
    assert_eq!(visible(&base).await, kept);
    let sweeper = tessera_server::retention::Sweeper::new(store.clone(), 500);
    let removed = tokio::task::spawn_blocking(move || sweeper.sweep(&|| true))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(removed, 1);

    // `null` turns retention off: old events are returned and kept again.
    patch_ttl(&base, &web, Value::Null).await;
    stream_to(&setup, &web, view("ancient-400", 400)).await;
    let sweeper = tessera_server::retention::Sweeper::new(store.clone(), 500);
    let removed = tokio::task::spawn_blocking(move || sweeper.sweep(&|| true))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(removed, 0);
    let mut with_ancient = kept.clone();
    with_ancient.insert("ancient-400".to_owned());
    assert_eq!(visible(&base).await, with_ancient);
    server.stop().await;
}
