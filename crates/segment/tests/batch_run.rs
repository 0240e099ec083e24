#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! Batch evaluation over profiles written through the profile and identity layers:
//! attribute, event and segment-of-segment audiences, status transitions across runs,
//! and memberships following a graph merge.

use std::sync::Mutex;

use serde_json::{json, Value};
use tessera_identity::{GraphConfig, GraphTxn, IdentityKey};
use tessera_model::Tenant;
use tessera_profile::event::{self, NewEvent};
use tessera_profile::fragment::{self, WriteMode};
use tessera_segment::batch::{self, Change, Outcome, Run};
use tessera_segment::definition::{Expression, SegmentDefinition};
use tessera_segment::membership::{self, Status};
use tessera_store::{EmbeddedStore, Store, StoreOptions, WriteBatch};

const NOW: i64 = 1_750_000_000_000;
const DAY: i64 = 86_400_000;

fn link(store: &EmbeddedStore, tenant: &Tenant, ids: &[IdentityKey]) -> u64 {
    let mut txn = GraphTxn::new(store, tenant.clone(), GraphConfig::default(), |_| 0);
    let outcome = txn.link(ids, 1, "crm", "x").unwrap().unwrap();
    let mut batch = WriteBatch::new();
    txn.finish(&mut batch).unwrap();
    store.commit(batch).unwrap();
    outcome.graph
}

fn profile(store: &EmbeddedStore, tenant: &Tenant, who: &IdentityKey, record: Value) {
    let mut batch = WriteBatch::new();
    fragment::write(
        store,
        &mut batch,
        tenant,
        "crm",
        who,
        record.as_object().unwrap().clone(),
        WriteMode::Replace,
        1,
        "x",
    )
    .unwrap();
    store.commit(batch).unwrap();
}

fn purchase(store: &EmbeddedStore, tenant: &Tenant, who: &IdentityKey, id: &str, at: i64) {
    let mut batch = WriteBatch::new();
    let new = NewEvent {
        dataset: "web",
        identity: who,
        timestamp_ms: at,
        event_id: id,
        xaction_id: "x",
    };
    let ts = time_text(at);
    let body = json!({"_id": id, "timestamp": ts, "eventType": "commerce.purchases"});
    event::append(&mut batch, tenant, &new, body.as_object().unwrap()).unwrap();
    store.commit(batch).unwrap();
}

fn time_text(ms: i64) -> String {
    // Events within a few days of NOW; format via seconds from a fixed anchor.
    let anchor_ms = 1_750_000_000_000i64; // 2025-06-15T15:06:40Z
    let offset = (ms - anchor_ms) / 1000;
    let total = 15 * 3600 + 6 * 60 + 40 + offset;
    let day = 15 + total.div_euclid(86_400);
    let rem = total.rem_euclid(86_400);
    format!(
        "2025-06-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

fn segment(id: &str, pql: &str, dependencies: &[&str]) -> SegmentDefinition {
    let dependencies = dependencies.iter().map(|d| (*d).to_owned()).collect();
    SegmentDefinition::new(id, Expression::pql_text(pql), dependencies, 0)
}

fn run_at(
    store: &EmbeddedStore,
    tenant: &Tenant,
    segments: &[batch::Compiled],
    now: i64,
) -> (batch::Metrics, Vec<Change>) {
    let changes = Mutex::new(Vec::new());
    let record = |_: &mut WriteBatch, page: &[Change]| {
        changes.lock().unwrap().extend_from_slice(page);
        Ok(())
    };
    let never = || false;
    let run = Run {
        store,
        tenant,
        now_ms: now,
        max_identities: 50,
        should_stop: &never,
        record: &record,
        use_views: false,
    };
    match batch::run(&run, segments).unwrap() {
        Outcome::Completed(metrics) => (metrics, changes.into_inner().unwrap()),
        Outcome::Stopped(_) => panic!("stopped"),
    }
}

#[test]
fn memberships_follow_profiles_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
    let tenant = Tenant::parse("A@AdobeOrg", "prod").unwrap();
    let ada = [
        IdentityKey::new("CRMID", "ada"),
        IdentityKey::new("Email", "ada@x.com"),
    ];
    let bob = [IdentityKey::new("CRMID", "bob")];
    let cy = [IdentityKey::new(
        "ECID",
        "12345678901234567890123456789012345678",
    )];
    let ada_graph = link(&store, &tenant, &ada);
    let bob_graph = link(&store, &tenant, &bob);
    let cy_graph = link(&store, &tenant, &cy);
    profile(
        &store,
        &tenant,
        &ada[0],
        json!({"homeAddress": {"city": "Basel"}}),
    );
    profile(
        &store,
        &tenant,
        &bob[0],
        json!({"homeAddress": {"city": "Bern"}}),
    );
    // Ada's purchases are filed under her email: the graph stitches them to her CRM profile.
    purchase(&store, &tenant, &ada[1], "p1", NOW - DAY);
    purchase(&store, &tenant, &ada[1], "p2", NOW - 2 * DAY);
    purchase(&store, &tenant, &cy[0], "p3", NOW - DAY);

    let policies = tessera_profile::policy::load(&store, &tenant).unwrap();
    // Deliberately out of dependency order: compile puts `both` last.
    let segments = batch::compile(
        vec![
            segment(
                "both",
                r#"inSegment("basel") and inSegment("buyers")"#,
                &["basel", "buyers"],
            ),
            segment("basel", r#"homeAddress.city = "Basel""#, &[]),
            segment(
                "buyers",
                "xEvent[timestamp occurs <= 7 days before now].count() >= 1",
                &[],
            ),
        ],
        &policies,
    )
    .unwrap();
    assert_eq!(segments.last().unwrap().definition.id, "both");

    let (metrics, changes) = run_at(&store, &tenant, &segments, NOW);
    assert_eq!(metrics.total_profiles, 3);
    assert_eq!(metrics.segmented_profile_counter["basel"], 1);
    assert_eq!(metrics.segmented_profile_counter["buyers"], 2);
    assert_eq!(metrics.segmented_profile_counter["both"], 1);
    assert_eq!(
        metrics.segmented_profile_by_namespace_counter["buyers"]["Email"],
        1
    );
    let ada_now = membership::of_graph(&store, &tenant, ada_graph).unwrap();
    assert_eq!(ada_now["both"].status, Status::Realized);
    assert!(membership::of_graph(&store, &tenant, bob_graph)
        .unwrap()
        .is_empty());
    assert_eq!(
        membership::of_graph(&store, &tenant, cy_graph).unwrap()["buyers"].status,
        Status::Realized
    );
    assert_eq!(changes.len(), 4, "{changes:?}");

    // Ten days later the purchases are out of the window: buyers and both exit, basel stays.
    let (metrics, changes) = run_at(&store, &tenant, &segments, NOW + 10 * DAY);
    assert_eq!(metrics.segmented_profile_counter["buyers"], 0);
    assert_eq!(
        metrics.segmented_profile_by_status_counter["buyers"]["exited"],
        2
    );
    let ada_later = membership::of_graph(&store, &tenant, ada_graph).unwrap();
    assert_eq!(ada_later["basel"].status, Status::Existing);
    assert_eq!(ada_later["both"].status, Status::Exited);
    assert_eq!(ada_later["both"].last_qualification_time, NOW);
    assert!(
        changes.iter().all(|c| c.status == Status::Exited),
        "{changes:?}"
    );
    assert_eq!(changes.len(), 3);

    // Bob and Cy turn out to be one person: Cy's graph merges into Bob's (older) graph; the
    // absorbed graph's memberships go, the survivor is evaluated with Cy's events.
    purchase(&store, &tenant, &cy[0], "p4", NOW + 10 * DAY - DAY);
    link(&store, &tenant, &[bob[0].clone(), cy[0].clone()]);
    let (_, _) = run_at(&store, &tenant, &segments, NOW + 10 * DAY);
    let survivor = tessera_identity::graph_id(&store, &tenant, &cy[0])
        .unwrap()
        .unwrap();
    let absorbed = if survivor == bob_graph {
        cy_graph
    } else {
        bob_graph
    };
    assert_eq!(
        membership::of_graph(&store, &tenant, survivor).unwrap()["buyers"].status,
        Status::Realized
    );
    assert!(membership::of_graph(&store, &tenant, absorbed)
        .unwrap()
        .is_empty());
    assert_eq!(
        membership::graphs_of_segment(&store, &tenant, "buyers", None, 10)
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn cycles_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
    let tenant = Tenant::parse("A@AdobeOrg", "prod").unwrap();
    let policies = tessera_profile::policy::load(&store, &tenant).unwrap();
    let result = batch::compile(
        vec![
            segment("a", r#"inSegment("b")"#, &["b"]),
            segment("b", r#"inSegment("a")"#, &["a"]),
        ],
        &policies,
    );
    assert!(matches!(
        result,
        Err(tessera_segment::Error::Invalid { .. })
    ));
}

#[test]
fn edge_evaluation_answers_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
    let tenant = Tenant::parse("A@AdobeOrg", "prod").unwrap();
    let ada = [IdentityKey::new("CRMID", "ada")];
    let graph_id = link(&store, &tenant, &ada);
    profile(
        &store,
        &tenant,
        &ada[0],
        json!({"homeAddress": {"city": "Basel"}}),
    );
    let mut edge = segment("edge-basel", r#"homeAddress.city = "Basel""#, &[]);
    edge.evaluation_info.synchronous.enabled = true;
    let mut batch = WriteBatch::new();
    tessera_segment::definition::put(&mut batch, &tenant, &edge, None).unwrap();
    store.commit(batch).unwrap();

    let cache = tessera_segment::edge::EdgeSegments::new();
    let segments = cache.segments(&store, &tenant).unwrap();
    assert_eq!(segments.len(), 1);
    let graph = tessera_identity::graph::graph_by_id(&store, &tenant, graph_id)
        .unwrap()
        .unwrap();
    let now =
        tessera_segment::edge::memberships(&store, &tenant, &graph, &segments, NOW, 50).unwrap();
    assert_eq!(now["edge-basel"].status, Status::Realized);
    assert!(
        membership::of_graph(&store, &tenant, graph_id)
            .unwrap()
            .is_empty(),
        "edge evaluation wrote"
    );
}
