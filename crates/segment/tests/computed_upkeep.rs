#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! The computed-attribute invariant: whatever the interleaving of events, identity merges,
//! unlinks, consumer passes and attribute creation (with its backfill), once the consumer has
//! caught up every profile's value equals a from-scratch fold over that profile's events, and
//! no state is left for a graph that no longer exists.

use proptest::prelude::*;
use serde_json::{json, Value};
use tessera_identity::{GraphConfig, GraphTxn, IdentityKey, LinkOutcome};
use tessera_ingest::change_feed::{self, ChangeEntry, ChangeKind, GraphGrowth};
use tessera_ingest::recent::{Digester, RecentEvents};
use tessera_ingest::unlink::{self, Unlink};
use tessera_model::Tenant;
use tessera_profile::event::{self, NewEvent};
use tessera_segment::computed::definition::{self, Compiled};
use tessera_segment::computed::upkeep;
use tessera_segment::computed::window::fold_from_scratch;
use tessera_store::{
    Direction, EmbeddedStore, Key, KeyReader, ScanRange, Scope, StoreOptions, Table, WriteBatch,
};

const NOW: i64 = 1_750_000_000_000;
const HOUR: i64 = 3_600_000;

fn tenant() -> Tenant {
    Tenant::parse("S@AdobeOrg", "prod").unwrap()
}

#[derive(Debug, Clone)]
enum Op {
    /// Person `p` buys for `amount` (or views when `amount` is 0), `hours_ago` before NOW.
    Event {
        person: u8,
        slot: u8,
        hours_ago: u8,
        amount: u8,
    },
    /// Person `p`'s CRM id and their identity `with` (1: email, 2: device) meet: their
    /// graphs merge, or one joins the other's graph for the first time.
    Link { person: u8, with: u8 },
    /// Person `p`'s two identities are unlinked through the identity API: the graph splits.
    Unlink { person: u8 },
    /// The consumer catches up.
    Pass,
    /// The next attribute is created and backfilled.
    Define,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..4, 0u8..3, 0u8..80, 0u8..50).prop_map(|(person, slot, hours_ago, amount)| Op::Event { person, slot, hours_ago, amount }),
        1 => (0u8..4, 1u8..3).prop_map(|(person, with)| Op::Link { person, with }),
        1 => (0u8..4).prop_map(|person| Op::Unlink { person }),
        1 => Just(Op::Pass),
        1 => Just(Op::Define),
    ]
}

const ATTRIBUTES: [(&str, &str); 4] = [
    (
        "spend",
        r#"xEvent[eventType = "commerce.purchases"].sum(commerce.order.priceTotal)"#,
    ),
    ("events", "xEvent.count()"),
    ("biggest", "xEvent.max(commerce.order.priceTotal)"),
    (
        "last",
        "xEvent.topN(timestamp, 1).head().commerce.order.priceTotal",
    ),
];

fn identity(person: u8, slot: u8) -> IdentityKey {
    match slot {
        0 => IdentityKey::new("CRMID", format!("p{person}")),
        1 => IdentityKey::new("Email", format!("p{person}@x.com")),
        _ => IdentityKey::new("ECID", format!("{person:038}")),
    }
}

/// Links `ids` as the `n`th op's record (so graphs made earlier are older and survive
/// merges).
fn link(
    store: &EmbeddedStore,
    ids: &[IdentityKey],
    n: usize,
    batch: &mut WriteBatch,
) -> LinkOutcome {
    let mut txn = GraphTxn::new(store, tenant(), GraphConfig::default(), |_| 0);
    let at = i64::try_from(n).unwrap();
    let outcome = txn.link(ids, at, "ds", "x").unwrap().unwrap();
    txn.finish(batch).unwrap();
    outcome
}

/// What ingestion reports of a record's linking (its sandbox holds no unlinked events).
fn growth(outcome: &LinkOutcome) -> GraphGrowth {
    GraphGrowth {
        created: outcome.created,
        grew_by_new_identities: outcome.grew_by_new_identities,
        clean_merge: outcome.clean_merge,
    }
}

fn entry(
    kind: ChangeKind,
    who: &IdentityKey,
    graph: u64,
    xaction: &str,
    at: Option<i64>,
    event_id: Option<&str>,
) -> ChangeEntry {
    ChangeEntry {
        org: "S@AdobeOrg".into(),
        sandbox: "prod".into(),
        dataset_id: "ev".into(),
        kind,
        namespace: who.namespace.clone(),
        id: who.id.clone(),
        identities: vec![(who.namespace.clone(), who.id.clone())],
        xaction_id: xaction.into(),
        applied_ms: NOW,
        event_ms: at,
        event_id: event_id.map(str::to_owned),
        graph: Some(graph),
        segment: None,
        absorbed: Vec::new(),
        growth: Default::default(),
    }
}

/// The feed entry of the `n`th op's profile record carrying `ids` (the first primary), as
/// ingestion writes it: every identity, the record's growth, and the graphs it merged away.
fn record_entry(ids: &[IdentityKey], outcome: LinkOutcome, n: usize) -> ChangeEntry {
    let mut record = entry(
        ChangeKind::Record,
        &ids[0],
        outcome.graph,
        &format!("x{n}"),
        None,
        None,
    );
    record.identities = ids
        .iter()
        .map(|i| (i.namespace.clone(), i.id.clone()))
        .collect();
    record.growth = growth(&outcome);
    record.absorbed = outcome.absorbed;
    record
}

fn iso(ms: i64) -> String {
    tessera_pql::time::format_timestamp(ms)
}

fn define(store: &EmbeddedStore, defined: &mut usize) {
    let Some((name, pql)) = ATTRIBUTES.get(*defined) else {
        return;
    };
    *defined += 1;
    let body = json!({"name": name, "expression": {"type": "PQL", "format": "pql/text", "value": pql},
        "duration": {"count": 2, "unit": "DAYS"}, "status": "NEW"});
    definition::create(store, &tenant(), &body, "_s", NOW).unwrap();
    upkeep::backfill(store, &|| NOW).unwrap();
}

fn apply(
    store: &EmbeddedStore,
    consumer: &mut upkeep::Consumer,
    recent: &RecentEvents,
    op: &Op,
    n: usize,
    defined: &mut usize,
) {
    let mut batch = WriteBatch::new();
    // The event ingestion would hand the consumer in memory, by the entry's sequence number.
    let mut applied = None;
    match op {
        Op::Event {
            person,
            slot,
            hours_ago,
            amount,
        } => {
            let who = identity(*person, *slot);
            let outcome = link(store, std::slice::from_ref(&who), n, &mut batch);
            let at = NOW - i64::from(*hours_ago) * HOUR;
            let id = format!("e{n}");
            let xaction = format!("x{n}");
            let new = NewEvent {
                dataset: "ev",
                identity: &who,
                timestamp_ms: at,
                event_id: &id,
                xaction_id: &xaction,
            };
            let body = if *amount == 0 {
                json!({"_id": id, "timestamp": iso(at), "eventType": "web.webpagedetails.pageViews"})
            } else {
                json!({"_id": id, "timestamp": iso(at), "eventType": "commerce.purchases",
                    "commerce": {"order": {"priceTotal": amount}}})
            };
            event::append(&mut batch, &tenant(), &new, body.as_object().unwrap()).unwrap();
            // Every other entry without `_id`, as written before the feed carried it: the
            // consumer then finds the event by its receipt.
            let event_id = n.is_multiple_of(2).then_some(id.as_str());
            if event_id.is_some() {
                // Now and then another event under the entry's number: the consumer must
                // notice and read the store.
                let held = if n.is_multiple_of(3) {
                    json!({"_id": "not-this-one", "timestamp": iso(at), "eventType": "commerce.purchases",
                        "commerce": {"order": {"priceTotal": 999}}})
                } else {
                    body.clone()
                };
                let held_id = held["_id"].as_str().unwrap().to_owned();
                applied = held.as_object().cloned().map(|held| (held_id, at, held));
            }
            let mut event = entry(
                ChangeKind::Event,
                &who,
                outcome.graph,
                &xaction,
                Some(at),
                event_id,
            );
            event.growth = growth(&outcome);
            change_feed::append(&mut batch, &event).unwrap();
        }
        Op::Link { person, with } => {
            let ids = [identity(*person, 0), identity(*person, *with)];
            let outcome = link(store, &ids, n, &mut batch);
            change_feed::append(&mut batch, &record_entry(&ids, outcome, n)).unwrap();
        }
        Op::Unlink { person } => {
            let what = Unlink::Link(identity(*person, 0), identity(*person, 1));
            // `None`: not linked (yet, or any more); nothing happens.
            unlink::unlink(store, &tenant(), &what, NOW).unwrap();
            return;
        }
        // The long-lived consumer (as the server's worker keeps one), so what it keeps
        // between passes is under test too.
        Op::Pass => {
            consumer.catch_up(store, &|| NOW).unwrap();
            return;
        }
        Op::Define => {
            define(store, defined);
            return;
        }
    }
    let committed = tessera_store::Store::commit(store, batch).unwrap();
    if let (Some((id, at, event)), Some(seq)) = (applied, committed.appended.last()) {
        recent.put(*seq, &tenant(), &id, at, event);
    }
}

/// A profile's values folded from scratch over its stored events.
fn expected(
    store: &EmbeddedStore,
    graph: &tessera_identity::Graph,
    live: &[Compiled],
) -> Vec<(String, Value)> {
    let mut docs = Vec::new();
    for member in graph.identities() {
        for stored in
            event::for_identity(store, &tenant(), member, Direction::Forward, 10_000).unwrap()
        {
            docs.push(Value::Object(stored.event));
        }
    }
    let mut out = Vec::new();
    for attr in live {
        let def = &attr.definition;
        let mut events = Vec::new();
        for doc in &docs {
            let ts =
                tessera_pql::time::parse_timestamp(doc["timestamp"].as_str().unwrap()).unwrap();
            let single = tessera_pql::EventSet::new(vec![doc.clone()]);
            if attr.accepts(&single, ts) {
                events.push((ts, attr.value_of(doc).cloned()));
            }
        }
        if let Some(v) = fold_from_scratch(def.merge_function, &def.duration, &events, NOW) {
            out.push((def.name.clone(), v));
        }
    }
    out
}

/// Runs `ops` on a fresh store with the first attribute defined, through one long-lived
/// consumer (as the server's worker keeps one, so what it keeps between passes is under test
/// too), and catches it up; returns the store (with its directory) and how many attributes
/// were defined.
fn run(ops: &[Op]) -> (tempfile::TempDir, EmbeddedStore, usize) {
    let mut fixture = Fixture::new();
    fixture.apply(ops, 0);
    fixture.consumer.catch_up(&fixture.store, &|| NOW).unwrap();
    (fixture.dir, fixture.store, fixture.defined)
}

/// A purchase of 5 by person 1, `hours_ago` before `NOW`.
fn purchase(hours_ago: u8) -> Op {
    Op::Event {
        person: 1,
        slot: 0,
        hours_ago,
        amount: 5,
    }
}

/// A fresh store with the first attribute defined, and one long-lived consumer.
struct Fixture {
    dir: tempfile::TempDir,
    store: EmbeddedStore,
    recent: std::sync::Arc<RecentEvents>,
    consumer: upkeep::Consumer,
    defined: usize,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        let recent = std::sync::Arc::new(RecentEvents::new(8));
        let consumer = upkeep::Consumer::with_recent_events(std::sync::Arc::clone(&recent));
        let mut defined = 0;
        define(&store, &mut defined);
        Self {
            dir,
            store,
            recent,
            consumer,
            defined,
        }
    }

    /// A fresh fixture after one purchase (`purchase(2)`) and a pass: ingestion digests the
    /// sandbox's events from then on.
    fn past_a_first_pass() -> Self {
        let mut fixture = Fixture::new();
        fixture.apply(&[purchase(2)], 0);
        assert_eq!(
            fixture.recent.stats().held,
            0,
            "no pass has seen the sandbox yet"
        );
        fixture.consumer.catch_up(&fixture.store, &|| NOW).unwrap();
        fixture
    }

    /// Applies `ops`, numbering them from `first`.
    fn apply(&mut self, ops: &[Op], first: usize) {
        for (n, op) in ops.iter().enumerate() {
            apply(
                &self.store,
                &mut self.consumer,
                &self.recent,
                op,
                first + n,
                &mut self.defined,
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]
    #[test]
    fn caught_up_values_equal_a_fold_from_scratch(ops in proptest::collection::vec(op(), 1..40)) {
        let (_dir, store, defined) = run(&ops);
        let live = definition::live(&store, &tenant()).unwrap();
        prop_assert_eq!(live.len(), defined);
        for graph in tessera_identity::graphs(&store, &tenant(), None, 100).unwrap() {
            let values: Vec<(String, Value)> = upkeep::values(&store, &tenant(), graph.id, NOW)
                .unwrap()
                .into_iter()
                .map(|(_, name, v)| (name, v))
                .collect();
            let mut want = expected(&store, &graph, &live);
            let mut got = values;
            want.sort_by(|a, b| a.0.cmp(&b.0));
            got.sort_by(|a, b| a.0.cmp(&b.0));
            prop_assert_eq!(got, want, "graph {}", graph.id);
        }
        for graph in stored_states(&store) {
            let live = tessera_identity::graph::graph_by_id(&store, &tenant(), graph).unwrap();
            prop_assert!(
                live.is_some_and(|g| g.id == graph),
                "state left for graph {} that no longer exists",
                graph
            );
        }
    }
}

/// Graphs that have a stored state.
fn stored_states(store: &EmbeddedStore) -> Vec<u64> {
    let prefix = Key::builder(&Scope::Tenant(tenant())).str("cav").finish();
    tessera_store::Store::scan(
        store,
        Table::ComputedAttributes,
        &ScanRange::prefix(prefix),
        Direction::Forward,
        10_000,
    )
    .unwrap()
    .iter()
    .map(|row| {
        let mut reader = KeyReader::with_scope(&row.key).unwrap().1;
        assert_eq!(reader.string().unwrap(), "cav");
        reader.u64().unwrap()
    })
    .collect()
}

/// Found by the property test: a pass refreshes a profile to its graph after an unlink,
/// then meets an older event of the identity the unlink moved out. The event belongs to the
/// identity's new graph (rebuilt by the unlink's `graphChanged` entry), not to the graph the
/// entry names.
#[test]
fn an_event_of_an_identity_unlinked_since_stays_out_of_its_old_graph() {
    let ops = [
        Op::Event {
            person: 3,
            slot: 0,
            hours_ago: 0,
            amount: 0,
        },
        Op::Pass,
        Op::Link { person: 3, with: 1 },
        Op::Event {
            person: 3,
            slot: 1,
            hours_ago: 0,
            amount: 1,
        },
        Op::Unlink { person: 3 },
    ];
    let (_dir, store, _) = run(&ops);
    let spend = |identity: IdentityKey| {
        let graph = tessera_identity::resolve(&store, &tenant(), &identity)
            .unwrap()
            .unwrap();
        upkeep::values(&store, &tenant(), graph.id, NOW)
            .unwrap()
            .into_iter()
            .find(|(_, name, _)| name == "spend")
            .map(|(_, _, v)| v)
    };
    assert_eq!(
        spend(identity(3, 0)),
        Some(json!(0)),
        "the page view's graph"
    );
    assert_eq!(
        spend(identity(3, 1)),
        Some(json!(1)),
        "the purchase's graph"
    );
}

/// Spend of the profile `identity` belongs to.
fn spend_of(store: &EmbeddedStore, identity: &IdentityKey) -> Option<Value> {
    let graph = tessera_identity::resolve(store, &tenant(), identity)
        .unwrap()
        .unwrap();
    upkeep::values(store, &tenant(), graph.id, NOW)
        .unwrap()
        .into_iter()
        .find(|(_, name, _)| name == "spend")
        .map(|(_, _, v)| v)
}

/// A record that brings identities never seen before starts or extends the profile's state
/// without reading events back; one that merges two graphs combines their states.
#[test]
fn identities_without_a_past_join_a_state_without_a_recomputation() {
    let mut fixture = Fixture::new();
    let mut step = |ops: &[Op], first: usize| {
        fixture.apply(ops, first);
        let outcome = fixture.consumer.pass(&fixture.store, NOW).unwrap();
        (outcome.extended, outcome.combined, outcome.recomputed)
    };
    let buy = |slot, amount| Op::Event {
        person: 0,
        slot,
        hours_ago: 1,
        amount,
    };
    assert_eq!(step(&[buy(0, 10)], 0), (1, 0, 0), "a new profile");
    assert_eq!(
        step(&[Op::Link { person: 0, with: 1 }, buy(1, 5)], 10),
        (1, 0, 0),
        "a new email"
    );
    assert_eq!(step(&[buy(2, 30)], 20), (1, 0, 0), "a device, alone");
    assert_eq!(
        step(&[Op::Link { person: 0, with: 2 }, buy(2, 1)], 30),
        (0, 1, 0),
        "a merge"
    );
    assert_eq!(spend_of(&fixture.store, &identity(0, 0)), Some(json!(46)));
    assert_eq!(
        stored_states(&fixture.store).len(),
        1,
        "the absorbed graph's state is gone"
    );
}

/// A record grows a graph by a new identity; before the consumer reads it, another record
/// merges a graph with a past into it. The consumer follows the feed, not the graph as it
/// is now: the first entry adds the new identity to the state, the second adds the merged
/// graph's state to it, so the merged graph's events count.
#[test]
fn a_member_that_joined_later_with_a_past_is_not_taken_in_unread() {
    let buy = |slot, amount| Op::Event {
        person: 0,
        slot,
        hours_ago: 1,
        amount,
    };
    let ops = [
        buy(0, 10),
        buy(2, 30),
        Op::Pass,
        Op::Link { person: 0, with: 1 },
        Op::Link { person: 0, with: 2 },
    ];
    let (_dir, store, _) = run(&ops);
    assert_eq!(spend_of(&store, &identity(0, 1)), Some(json!(40)));
}

/// A record merges two graphs and brings back an identity that left its graph with its
/// events: the merge is not clean, the profile is recomputed and counts those events too.
#[test]
fn a_merge_that_brings_back_an_identity_with_a_past_recomputes() {
    let mut fixture = Fixture::new();
    let buy = |slot, amount| Op::Event {
        person: 0,
        slot,
        hours_ago: 1,
        amount,
    };
    fixture.apply(&[buy(0, 10), buy(1, 5), buy(2, 30), Op::Pass], 0);
    unlink::unlink(
        &fixture.store,
        &tenant(),
        &Unlink::Identity(identity(0, 1)),
        NOW,
    )
    .unwrap();
    fixture.consumer.catch_up(&fixture.store, &|| NOW).unwrap();
    let ids = [identity(0, 0), identity(0, 2), identity(0, 1)];
    let mut batch = WriteBatch::new();
    let outcome = link(&fixture.store, &ids, 10, &mut batch);
    assert_eq!(outcome.absorbed.len(), 1, "the device's graph merged");
    assert!(!outcome.clean_merge, "the email has a past");
    change_feed::append(&mut batch, &record_entry(&ids, outcome, 10)).unwrap();
    tessera_store::Store::commit(&fixture.store, batch).unwrap();
    let pass = fixture.consumer.pass(&fixture.store, NOW).unwrap();
    assert_eq!((pass.combined, pass.recomputed), (0, 1));
    assert_eq!(spend_of(&fixture.store, &identity(0, 0)), Some(json!(45)));
}

/// Digests as another set of definitions would make them: one plausible but wrong value.
#[derive(Debug)]
struct Stranger;

impl Digester for Stranger {
    fn serial(&self) -> u64 {
        // `Live` serials start at 1.
        0
    }

    fn digest(&self, _: &Value, _: i64) -> Vec<Value> {
        vec![json!(999)]
    }
}

/// A digest made by other definitions than the consumer's (before an attribute changed) is
/// not folded: the consumer reads the event from the store.
#[test]
fn a_digest_made_by_other_definitions_is_not_folded() {
    let mut fixture = Fixture::past_a_first_pass();
    let stranger: std::sync::Arc<dyn Digester> = std::sync::Arc::new(Stranger);
    fixture
        .recent
        .set_digesters(std::sync::Arc::new(std::collections::HashMap::from([(
            tenant(),
            stranger,
        )])));
    fixture.apply(&[purchase(1)], 2);
    assert_eq!(fixture.recent.stats().held, 1);
    fixture.consumer.catch_up(&fixture.store, &|| NOW).unwrap();
    assert_eq!(fixture.recent.stats().hits, 1, "found, then refused");
    assert_eq!(spend_of(&fixture.store, &identity(1, 0)), Some(json!(10)));
}

#[test]
fn events_the_consumer_goes_past_without_taking_are_let_go() {
    // A purchase where the attribute lives, digested by ingestion ...
    let mut fixture = Fixture::past_a_first_pass();
    fixture.apply(&[purchase(1)], 2);
    let mut consumer = fixture.consumer;
    // ... and an event of an identity in no graph: the consumer has nothing to fold it into
    // and does not take it.
    let who = identity(9, 0);
    let mut batch = WriteBatch::new();
    let mut outside = entry(
        ChangeKind::Event,
        &who,
        0,
        "x-other",
        Some(NOW - HOUR),
        Some("o1"),
    );
    outside.graph = None;
    change_feed::append(&mut batch, &outside).unwrap();
    let committed = tessera_store::Store::commit(&fixture.store, batch).unwrap();
    let seq = *committed.appended.last().unwrap();
    let held = json!({"_id": "o1", "timestamp": iso(NOW - HOUR), "eventType": "x"});
    let put = || {
        let event = held.as_object().cloned().unwrap();
        fixture.recent.put(seq, &tenant(), "o1", NOW - HOUR, event);
    };
    put();
    assert_eq!(fixture.recent.stats().held, 2);
    consumer.catch_up(&fixture.store, &|| NOW).unwrap();
    let stats = fixture.recent.stats();
    assert_eq!((stats.held, stats.hits), (0, 1), "{stats:?}");
    // Put after the consumer went past it (ingestion can hand an event over after a pass
    // already read its entry): not kept.
    put();
    assert_eq!(fixture.recent.stats().held, 0);
}
