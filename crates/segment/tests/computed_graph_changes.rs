#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! Computed attributes follow identity-graph changes that are not events: a merge drops the
//! absorbed graph's state, an unlink through the identity API (the library call its route
//! makes) splits the values so each part counts only its own events, an erasure removes the
//! person's state, and an identity erased from the middle of a graph leaves parts that each
//! keep their own events — all once the change-feed consumer has caught up, with no event
//! arriving afterwards.

use serde_json::{json, Value};
use tessera_identity::{GraphConfig, GraphTxn, IdentityKey};
use tessera_ingest::change_feed::{self, ChangeEntry, ChangeKind};
use tessera_ingest::unlink::{self, Unlink};
use tessera_model::Tenant;
use tessera_profile::event::{self, NewEvent};
use tessera_segment::computed::upkeep;
use tessera_segment::computed::{definition, store as state_store};
use tessera_store::{EmbeddedStore, Store, StoreOptions, WriteBatch};

const NOW: i64 = 1_750_000_000_000;
const HOUR: i64 = 3_600_000;

fn tenant() -> Tenant {
    Tenant::parse("S@AdobeOrg", "prod").unwrap()
}

fn crm(id: &str) -> IdentityKey {
    IdentityKey::new("CRMID", id)
}

fn email(id: &str) -> IdentityKey {
    IdentityKey::new("Email", id)
}

fn entry(kind: ChangeKind, ids: &[IdentityKey], graph: u64, xaction: &str) -> ChangeEntry {
    ChangeEntry {
        org: "S@AdobeOrg".into(),
        sandbox: "prod".into(),
        dataset_id: "ev".into(),
        kind,
        namespace: ids[0].namespace.clone(),
        id: ids[0].id.clone(),
        identities: ids
            .iter()
            .map(|i| (i.namespace.clone(), i.id.clone()))
            .collect(),
        xaction_id: xaction.into(),
        applied_ms: NOW,
        event_ms: None,
        event_id: None,
        graph: Some(graph),
        segment: None,
        absorbed: Vec::new(),
        growth: Default::default(),
    }
}

/// What ingestion does for a profile record carrying `ids`: link them (the feed entry names
/// the graphs the record merged away) and append the entry, in one batch. Returns the
/// graphs it absorbed.
fn record(store: &EmbeddedStore, ids: &[IdentityKey], n: usize) -> Vec<u64> {
    let mut batch = WriteBatch::new();
    let mut txn = GraphTxn::new(store, tenant(), GraphConfig::default(), |_| 0);
    let outcome = txn
        .link(ids, NOW, "crm", &format!("r{n}"))
        .unwrap()
        .unwrap();
    txn.finish(&mut batch).unwrap();
    let mut feed = entry(ChangeKind::Record, ids, outcome.graph, &format!("r{n}"));
    feed.absorbed = outcome.absorbed.clone();
    change_feed::append(&mut batch, &feed).unwrap();
    store.commit(batch).unwrap();
    outcome.absorbed
}

/// What ingestion does for a purchase of `amount` by `who`, `hours_ago` before NOW.
fn purchase(store: &EmbeddedStore, who: &IdentityKey, amount: u32, hours_ago: i64, n: usize) {
    let mut batch = WriteBatch::new();
    let mut txn = GraphTxn::new(store, tenant(), GraphConfig::default(), |_| 0);
    let graph = txn
        .link(std::slice::from_ref(who), NOW, "ev", &format!("x{n}"))
        .unwrap()
        .unwrap()
        .graph;
    txn.finish(&mut batch).unwrap();
    let at = NOW - hours_ago * HOUR;
    let (id, xaction) = (format!("e{n}"), format!("x{n}"));
    let new = NewEvent {
        dataset: "ev",
        identity: who,
        timestamp_ms: at,
        event_id: &id,
        xaction_id: &xaction,
    };
    let body = json!({"_id": id, "timestamp": tessera_pql::time::format_timestamp(at),
        "eventType": "commerce.purchases", "commerce": {"order": {"priceTotal": amount}}});
    event::append(&mut batch, &tenant(), &new, body.as_object().unwrap()).unwrap();
    let mut feed = entry(
        ChangeKind::Event,
        std::slice::from_ref(who),
        graph,
        &xaction,
    );
    feed.event_ms = Some(at);
    change_feed::append(&mut batch, &feed).unwrap();
    store.commit(batch).unwrap();
}

fn define(store: &EmbeddedStore, name: &str, pql: &str) {
    let body = json!({"name": name, "expression": {"type": "PQL", "format": "pql/text", "value": pql},
        "duration": {"count": 7, "unit": "DAYS"}, "status": "NEW"});
    definition::create(store, &tenant(), &body, "_s", NOW).unwrap();
    upkeep::backfill(store, &|| NOW).unwrap();
}

fn graph_of(store: &EmbeddedStore, who: &IdentityKey) -> u64 {
    tessera_identity::graph_id(store, &tenant(), who)
        .unwrap()
        .unwrap_or_else(|| panic!("{who} is in no graph"))
}

/// `(spend, purchases)` of the profile `who` belongs to.
fn values(store: &EmbeddedStore, who: &IdentityKey) -> (Value, Value) {
    let values = upkeep::values(store, &tenant(), graph_of(store, who), NOW).unwrap();
    let get = |name: &str| {
        values
            .iter()
            .find(|(_, n, _)| n == name)
            .map(|(_, _, v)| v.clone())
            .unwrap_or(Value::Null)
    };
    (get("spend"), get("purchases"))
}

fn has_state(store: &EmbeddedStore, graph: u64) -> bool {
    state_store::load(store, &tenant(), graph)
        .unwrap()
        .is_some()
}

fn catch_up(store: &EmbeddedStore) {
    upkeep::catch_up(store, &|| NOW).unwrap();
}

fn erase(store: &EmbeddedStore, who: &IdentityKey, whole_graph: bool) {
    // The same feed record as `DELETE /access/entities` writes.
    tessera_profile::erase::erase(store, &tenant(), who, whole_graph, NOW, |batch, erased| {
        change_feed::append_erased(batch, &tenant(), who, erased, "erase:test", NOW).map_err(|e| {
            tessera_profile::Error::Corrupt {
                what: "change feed entry",
                reason: e.to_string(),
            }
        })
    })
    .unwrap()
    .unwrap();
}

#[test]
fn unlink_split_and_erasure_leave_each_profile_with_its_own_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
    define(
        &store,
        "spend",
        r#"xEvent[eventType = "commerce.purchases"].sum(commerce.order.priceTotal)"#,
    );
    define(&store, "purchases", "xEvent.count()");
    let (ann, ann_mail) = (crm("ann"), email("ann@example.com"));

    // Two identities buy separately, each in its own graph with its own state.
    purchase(&store, &ann, 10, 1, 1);
    purchase(&store, &ann, 20, 2, 2);
    purchase(&store, &ann_mail, 5, 3, 3);
    catch_up(&store);
    let mail_graph = graph_of(&store, &ann_mail);
    assert!(has_state(&store, mail_graph));
    assert_eq!(values(&store, &ann_mail), (json!(5), json!(1)));

    // A record links them: one profile, and the absorbed graph's state goes.
    let absorbed = record(&store, &[ann.clone(), ann_mail.clone()], 4);
    assert_eq!(absorbed.len(), 1, "one of the two graphs is merged away");
    let merged = graph_of(&store, &ann);
    assert_eq!(graph_of(&store, &ann_mail), merged);
    catch_up(&store);
    assert_eq!(values(&store, &ann), (json!(35), json!(3)));
    assert!(
        !has_state(&store, absorbed[0]),
        "the absorbed graph's state is an orphan and is removed"
    );

    // Unlinking them (the identity API's library call) writes no event; after the consumer
    // caught up, each part holds its own events only.
    let graphs = unlink::unlink(
        &store,
        &tenant(),
        &Unlink::Link(ann.clone(), ann_mail.clone()),
        NOW,
    )
    .unwrap()
    .unwrap();
    assert_eq!(graphs.len(), 2);
    let (ann_graph, mail_graph) = (graph_of(&store, &ann), graph_of(&store, &ann_mail));
    assert_ne!(ann_graph, mail_graph);
    let before = change_feed::checkpoint(&store, upkeep::CONSUMER).unwrap();
    let outcome = upkeep::pass(&store, NOW).unwrap();
    assert_eq!(outcome.entries, 2, "one graph-changed entry per part");
    assert_eq!(outcome.recomputed, 2, "survivor and split-off part");
    assert!(change_feed::checkpoint(&store, upkeep::CONSUMER).unwrap() > before);
    assert_eq!(values(&store, &ann), (json!(30), json!(2)));
    assert_eq!(values(&store, &ann_mail), (json!(5), json!(1)));
    // A second pass finds nothing to do: nothing is counted twice.
    assert_eq!(upkeep::pass(&store, NOW).unwrap().entries, 0);
    assert_eq!(values(&store, &ann), (json!(30), json!(2)));

    // Later events fold into the right part incrementally.
    purchase(&store, &ann_mail, 8, 1, 5);
    catch_up(&store);
    assert_eq!(values(&store, &ann_mail), (json!(13), json!(2)));
    assert_eq!(values(&store, &ann), (json!(30), json!(2)));

    // Erasing the e-mail's person removes its state (its member list names them).
    erase(&store, &ann_mail, true);
    catch_up(&store);
    assert!(
        !has_state(&store, mail_graph),
        "an erased person leaves no state"
    );
    assert_eq!(values(&store, &ann), (json!(30), json!(2)));

    // An identity that holds a graph together is erased alone: the parts left keep their own
    // events (the split-off one has a new id that no record named).
    let (hub, left, right) = (
        crm("hub"),
        email("left@example.com"),
        email("right@example.com"),
    );
    purchase(&store, &left, 1, 1, 6);
    purchase(&store, &right, 2, 1, 7);
    purchase(&store, &hub, 4, 1, 8);
    record(&store, &[hub.clone(), left.clone()], 9);
    record(&store, &[hub.clone(), right.clone()], 10);
    catch_up(&store);
    assert_eq!(values(&store, &left), (json!(7), json!(3)));
    erase(&store, &hub, false);
    catch_up(&store);
    assert_ne!(graph_of(&store, &left), graph_of(&store, &right));
    assert_eq!(values(&store, &left), (json!(1), json!(1)));
    assert_eq!(values(&store, &right), (json!(2), json!(1)));

    // Unlinking the only member of a graph leaves no graph: its state goes too.
    let bob = crm("bob");
    purchase(&store, &bob, 3, 1, 11);
    catch_up(&store);
    let bob_graph = graph_of(&store, &bob);
    assert!(has_state(&store, bob_graph));
    let left_over = unlink::unlink(&store, &tenant(), &Unlink::Identity(bob.clone()), NOW)
        .unwrap()
        .unwrap();
    assert!(left_over.is_empty());
    catch_up(&store);
    assert!(!has_state(&store, bob_graph));
}
