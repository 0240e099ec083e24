#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! The streaming invariant: once the change-feed consumer has caught up, a batch evaluation
//! at the same instant finds nothing to change — streaming memberships equal batch results.

use std::sync::Mutex;

use proptest::prelude::*;
use serde_json::json;
use tessera_identity::{GraphConfig, GraphTxn, IdentityKey};
use tessera_ingest::change_feed::{self, ChangeEntry, ChangeKind};
use tessera_model::Tenant;
use tessera_profile::event::{self, NewEvent};
use tessera_profile::fragment::{self, WriteMode};
use tessera_segment::batch::{self, Change, Outcome, Run};
use tessera_segment::definition::{self, Enabled, EvaluationInfo, Expression, SegmentDefinition};
use tessera_segment::membership;
use tessera_segment::streaming;
use tessera_store::{EmbeddedStore, Store, StoreOptions, WriteBatch};

const NOW: i64 = 1_750_000_000_000; // 2025-06-15T15:06:40Z
const HOUR: i64 = 3_600_000;

fn tenant() -> Tenant {
    Tenant::parse("S@AdobeOrg", "prod").unwrap()
}

fn timestamp(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let (day, rem) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // 2025-06-15 is day 20254 since the epoch; the generated events stay within June.
    let dom = 15 + (day - 20_254);
    format!(
        "2025-06-{dom:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[derive(Debug, Clone)]
enum Op {
    /// Person `p` (0..6) records a city (0..3), filed under identity slot `s` (0..2).
    City { person: u8, slot: u8, city: u8 },
    /// Person `p` buys something `hours_ago` hours before NOW, filed under slot `s`.
    Buy { person: u8, slot: u8, hours_ago: u8 },
    /// Person `p`'s two identities meet (a login): their graphs merge.
    Link { person: u8 },
    /// The consumer catches up.
    Pass,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..6, 0u8..2, 0u8..3).prop_map(|(person, slot, city)| Op::City { person, slot, city }),
        (0u8..6, 0u8..2, 0u8..100).prop_map(|(person, slot, hours_ago)| Op::Buy {
            person,
            slot,
            hours_ago
        }),
        (0u8..6).prop_map(|person| Op::Link { person }),
        Just(Op::Pass),
    ]
}

fn identity(person: u8, slot: u8) -> IdentityKey {
    if slot == 0 {
        IdentityKey::new("CRMID", format!("p{person}"))
    } else {
        IdentityKey::new("Email", format!("p{person}@x.com"))
    }
}

fn link(store: &EmbeddedStore, ids: &[IdentityKey], batch: &mut WriteBatch) -> (u64, Vec<u64>) {
    let mut txn = GraphTxn::new(store, tenant(), GraphConfig::default(), |_| 0);
    let outcome = txn.link(ids, 1, "ds", "x").unwrap().unwrap();
    txn.finish(batch).unwrap();
    (outcome.graph, outcome.absorbed)
}

fn feed(
    batch: &mut WriteBatch,
    kind: ChangeKind,
    who: &IdentityKey,
    graph: u64,
    absorbed: Vec<u64>,
) {
    change_feed::append(
        batch,
        &ChangeEntry {
            org: "S@AdobeOrg".into(),
            sandbox: "prod".into(),
            dataset_id: "ds".into(),
            kind,
            namespace: who.namespace.clone(),
            id: who.id.clone(),
            identities: vec![(who.namespace.clone(), who.id.clone())],
            xaction_id: "x".into(),
            applied_ms: NOW,
            event_ms: None,
            event_id: None,
            graph: Some(graph),
            segment: None,
            absorbed,
            growth: Default::default(),
        },
    )
    .unwrap();
}

fn apply(store: &EmbeddedStore, op: &Op, n: usize) {
    let mut batch = WriteBatch::new();
    match op {
        Op::City { person, slot, city } => {
            let who = identity(*person, *slot);
            let (graph, _) = link(store, std::slice::from_ref(&who), &mut batch);
            let name = ["Basel", "Bern", "Chur"]
                .get(*city as usize)
                .copied()
                .unwrap_or("Basel");
            let record = json!({"homeAddress": {"city": name}});
            fragment::write(
                store,
                &mut batch,
                &tenant(),
                "ds",
                &who,
                record.as_object().unwrap().clone(),
                WriteMode::Replace,
                n as i64,
                "x",
            )
            .unwrap();
            tessera_profile::view::invalidate(&mut batch, &tenant(), graph);
            feed(&mut batch, ChangeKind::Record, &who, graph, Vec::new());
        }
        Op::Buy {
            person,
            slot,
            hours_ago,
        } => {
            let who = identity(*person, *slot);
            let (graph, _) = link(store, std::slice::from_ref(&who), &mut batch);
            let at = NOW - i64::from(*hours_ago) * HOUR;
            let id = format!("e{n}");
            let new = NewEvent {
                dataset: "ev",
                identity: &who,
                timestamp_ms: at,
                event_id: &id,
                xaction_id: "x",
            };
            let body =
                json!({"_id": id, "timestamp": timestamp(at), "eventType": "commerce.purchases"});
            event::append(&mut batch, &tenant(), &new, body.as_object().unwrap()).unwrap();
            feed(&mut batch, ChangeKind::Event, &who, graph, Vec::new());
        }
        Op::Link { person } => {
            let ids = [identity(*person, 0), identity(*person, 1)];
            let (graph, absorbed) = link(store, &ids, &mut batch);
            tessera_profile::view::invalidate(&mut batch, &tenant(), graph);
            feed(&mut batch, ChangeKind::Record, &ids[0], graph, absorbed);
        }
        Op::Pass => {
            while streaming::pass(store, NOW, 50).unwrap().entries > 0 {}
            return;
        }
    }
    store.commit(batch).unwrap();
}

fn define(store: &EmbeddedStore, id: &str, pql: &str, dependencies: &[&str]) {
    let dependencies = dependencies.iter().map(|d| (*d).to_owned()).collect();
    let segment = SegmentDefinition {
        evaluation_info: EvaluationInfo {
            continuous: Enabled { enabled: true },
            ..EvaluationInfo::default()
        },
        ..SegmentDefinition::new(id, Expression::pql_text(pql), dependencies, 0)
    };
    let mut batch = WriteBatch::new();
    definition::put(&mut batch, &tenant(), &segment, None).unwrap();
    store.commit(batch).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn caught_up_streaming_equals_batch(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        define(&store, "basel", r#"homeAddress.city = "Basel""#, &[]);
        define(&store, "recent", "xEvent[timestamp occurs <= 48 hours before now].count() >= 2", &[]);
        define(&store, "both", r#"inSegment("basel") and inSegment("recent")"#, &["basel", "recent"]);
        for (n, op) in ops.iter().enumerate() {
            apply(&store, op, n);
        }
        while streaming::pass(&store, NOW, 50).unwrap().entries > 0 {}

        // Graphs a merge absorbed keep no memberships (the survivor carries the person).
        let live: std::collections::BTreeSet<u64> = tessera_identity::graphs(&store, &tenant(), None, 1_000)
            .unwrap()
            .into_iter()
            .map(|g| g.id)
            .collect();
        for segment in ["basel", "recent", "both"] {
            for graph in membership::graphs_of_segment(&store, &tenant(), segment, None, 1_000).unwrap() {
                prop_assert!(live.contains(&graph), "{segment}: membership of absorbed graph {graph}");
            }
        }

        // A batch run at the same instant finds nothing to add or remove.
        let segments = streaming::continuous_segments(&store, &tenant()).unwrap();
        let moved = Mutex::new(Vec::<Change>::new());
        let record = |_: &mut WriteBatch, page: &[Change]| {
            moved.lock().unwrap().extend_from_slice(page);
            Ok(())
        };
        let never = || false;
        let t = tenant();
        let run = Run { store: &store, tenant: &t, now_ms: NOW, max_identities: 50, should_stop: &never, record: &record, use_views: false };
        let outcome = batch::run(&run, &segments).unwrap();
        prop_assert!(matches!(outcome, Outcome::Completed(_)));
        let moved = moved.into_inner().unwrap();
        prop_assert!(moved.is_empty(), "batch changed what streaming decided: {:?}", moved);
        // And every profile's memberships are members-or-exited consistently per graph.
        for graph in tessera_identity::graphs(&store, &tenant(), None, 100).unwrap() {
            let _ = membership::of_graph(&store, &tenant(), graph.id).unwrap();
        }
    }
}
