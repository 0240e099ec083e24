#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use serde_json::json;
use tessera_model::Tenant;
use tessera_profile::event::{self, NewEvent};
use tessera_profile::fragment::{self, WriteMode};
use tessera_profile::IdentityKey;
use tessera_store::{Direction, EmbeddedStore, Store, StoreOptions, WriteBatch};

fn object(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    v.as_object().unwrap().clone()
}

#[test]
fn fragments_replace_or_upsert_per_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
    let tenant = Tenant::parse("A@AdobeOrg", "prod").unwrap();
    let jane = IdentityKey::new("Email", "jane@example.com");

    for (mode, record, ms) in [
        (
            WriteMode::Replace,
            json!({"person": {"name": {"firstName": "Jane"}}, "a": 1}),
            1,
        ),
        (
            WriteMode::Replace,
            json!({"person": {"name": {"lastName": "Doe"}}}),
            2,
        ),
    ] {
        let mut batch = WriteBatch::new();
        fragment::write(
            &store,
            &mut batch,
            &tenant,
            "crm",
            &jane,
            object(record),
            mode,
            ms,
            "x",
        )
        .unwrap();
        store.commit(batch).unwrap();
    }
    let replaced = fragment::get(&store, &tenant, "crm", &jane)
        .unwrap()
        .unwrap();
    assert_eq!(
        replaced.record,
        object(json!({"person": {"name": {"lastName": "Doe"}}}))
    );
    assert_eq!(replaced.last_modified, 2);

    for record in [
        json!({"loyalty": {"tier": "gold", "points": 5}}),
        json!({"loyalty": {"points": 7}}),
    ] {
        let mut batch = WriteBatch::new();
        fragment::write(
            &store,
            &mut batch,
            &tenant,
            "loyalty",
            &jane,
            object(record),
            WriteMode::Upsert,
            3,
            "y",
        )
        .unwrap();
        store.commit(batch).unwrap();
    }
    let all = fragment::for_identity(&store, &tenant, &jane).unwrap();
    let datasets: Vec<&str> = all.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(datasets, ["crm", "loyalty"]);
    assert_eq!(
        all[1].1.record,
        object(json!({"loyalty": {"tier": "gold", "points": 7}}))
    );

    // Another tenant and another identity see nothing.
    let other = Tenant::parse("B@AdobeOrg", "prod").unwrap();
    assert!(fragment::for_identity(&store, &other, &jane)
        .unwrap()
        .is_empty());
    let janet = IdentityKey::new("Email", "jane@example.co");
    assert!(fragment::for_identity(&store, &tenant, &janet)
        .unwrap()
        .is_empty());
}

#[test]
fn events_are_time_ordered_and_idempotent_on_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
    let tenant = Tenant::parse("A@AdobeOrg", "prod").unwrap();
    let ecid = IdentityKey::new("ECID", "1".repeat(38));
    for (id, ts) in [("e2", 200), ("e1", 100), ("e3", 300)] {
        let mut batch = WriteBatch::new();
        let new = NewEvent {
            dataset: "web",
            identity: &ecid,
            timestamp_ms: ts,
            event_id: id,
            xaction_id: "t",
        };
        event::append(&mut batch, &tenant, &new, &object(json!({"_id": id}))).unwrap();
        store.commit(batch).unwrap();
    }
    // Replaying e1 conflicts on the index and stores nothing more.
    let mut replay = WriteBatch::new();
    let new = NewEvent {
        dataset: "web",
        identity: &ecid,
        timestamp_ms: 999,
        event_id: "e1",
        xaction_id: "t2",
    };
    event::append(&mut replay, &tenant, &new, &object(json!({"_id": "e1"}))).unwrap();
    assert!(matches!(
        store.commit(replay),
        Err(tessera_store::Error::Conflict { .. })
    ));
    assert!(event::exists(&store, &tenant, "web", "e1").unwrap());
    assert!(!event::exists(&store, &tenant, "other-dataset", "e1").unwrap());

    let ids = |direction| -> Vec<String> {
        event::for_identity(&store, &tenant, &ecid, direction, 10)
            .unwrap()
            .iter()
            .map(|e| e.event["_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(Direction::Forward), ["e1", "e2", "e3"]);
    assert_eq!(ids(Direction::Reverse), ["e3", "e2", "e1"]);
}
