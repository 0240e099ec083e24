#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! Histories. An identity's cluster history (the graphs it moved through) lives in its
//! pointer: it survives the identity leaving its graph, older moves spill into rows without
//! being lost, erasure removes all of it, and pointers and rows written before still read.
//! A graph's history is keyed by time and still reads logs written as append logs.

use tessera_identity::{
    cluster_history, graph_id, history, resolve, scan_identities, ClusterMove, GraphConfig,
    GraphTxn, HistoryEntry, IdentityKey,
};
use tessera_model::Tenant;
use tessera_store::{EmbeddedStore, Key, Store, StoreOptions, Table, WriteBatch};

fn commit<T>(
    store: &EmbeddedStore,
    tenant: &Tenant,
    change: impl FnOnce(&mut GraphTxn<'_>) -> T,
) -> T {
    let mut txn = GraphTxn::new(store, tenant.clone(), GraphConfig::default(), |_| 2);
    let out = change(&mut txn);
    let mut batch = WriteBatch::new();
    txn.finish(&mut batch).unwrap();
    store.commit(batch).unwrap();
    out
}

/// Links `identities` in a commit of their own; the graph they end up in.
fn linked(store: &EmbeddedStore, tenant: &Tenant, identities: &[IdentityKey], at: i64) -> u64 {
    commit(store, tenant, |txn| {
        txn.link(identities, at, "ds", "r").unwrap().unwrap().graph
    })
}

fn open() -> (tempfile::TempDir, EmbeddedStore, Tenant) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
    (dir, store, Tenant::parse("H@AdobeOrg", "prod").unwrap())
}

fn graphs_of(moves: &[ClusterMove]) -> Vec<u64> {
    moves.iter().map(|m| m.cluster).collect()
}

#[test]
fn moves_are_listed_newest_first_and_survive_leaving_the_graph() {
    let (_dir, store, tenant) = open();
    let device = IdentityKey::new("ECID", "d");
    let (alice, bob) = (
        IdentityKey::new("CRMID", "alice"),
        IdentityKey::new("CRMID", "bob"),
    );
    let first = linked(&store, &tenant, std::slice::from_ref(&alice), 1);
    let own = linked(&store, &tenant, &[device.clone(), bob.clone()], 2);
    // The device's graph is younger: it is absorbed into alice's.
    commit(&store, &tenant, |txn| {
        txn.link(&[alice.clone(), device.clone()], 3, "web", "r3")
            .unwrap()
    });
    let moves = cluster_history(&store, &tenant, &device).unwrap();
    assert_eq!(graphs_of(&moves), vec![first, own]);
    assert_eq!(moves[0].at, 3);

    commit(&store, &tenant, |txn| {
        txn.unlink_identity(&device, 4).unwrap()
    });
    assert!(resolve(&store, &tenant, &device).unwrap().is_none());
    assert_eq!(graph_id(&store, &tenant, &device).unwrap(), None);
    assert_eq!(
        graphs_of(&cluster_history(&store, &tenant, &device).unwrap()),
        vec![first, own],
        "leaving a graph keeps the history"
    );
    let listed = scan_identities(&store, &tenant, None, 100).unwrap();
    assert!(
        listed.identities.iter().all(|(id, _)| id != &device),
        "an identity without a graph is not listed: {:?}",
        listed.identities
    );
    assert_eq!(listed.identities.len(), 2);

    let again = linked(
        &store,
        &tenant,
        &[device.clone(), IdentityKey::new("Email", "d@x")],
        5,
    );
    assert_eq!(
        graphs_of(&cluster_history(&store, &tenant, &device).unwrap()),
        vec![again, first, own]
    );
}

#[test]
fn an_identity_that_moves_often_keeps_every_move() {
    let (_dir, store, tenant) = open();
    let roamer = IdentityKey::new("ECID", "roamer");
    let mut joined = Vec::new();
    for round in 0..45_i64 {
        let partner = IdentityKey::new("CRMID", format!("p{round}"));
        // Separate commits: a move is what a commit changed, and joining and leaving in one
        // transaction changes nothing.
        let outcome = commit(&store, &tenant, |txn| {
            txn.link(&[roamer.clone(), partner], 10 * round, "web", "r")
                .unwrap()
                .unwrap()
        });
        commit(&store, &tenant, |txn| {
            txn.unlink_identity(&roamer, 10 * round + 1).unwrap()
        });
        joined.push(outcome.graph);
    }
    let moves = cluster_history(&store, &tenant, &roamer).unwrap();
    joined.reverse();
    assert_eq!(graphs_of(&moves), joined);
    assert!(moves.windows(2).all(|w| w[0].at > w[1].at));
}

#[test]
fn erasing_an_identity_removes_its_history() {
    let (_dir, store, tenant) = open();
    let (jane, mail) = (
        IdentityKey::new("CRMID", "jane"),
        IdentityKey::new("Email", "j@x"),
    );
    for round in 0..40_i64 {
        commit(&store, &tenant, |txn| {
            txn.link(&[jane.clone(), mail.clone()], 2 * round, "crm", "r")
                .unwrap()
        });
        commit(&store, &tenant, |txn| {
            txn.unlink_identity(&jane, 2 * round + 1).unwrap()
        });
    }
    commit(&store, &tenant, |txn| {
        txn.link(&[jane.clone(), mail.clone()], 100, "crm", "r")
            .unwrap()
    });
    assert!(cluster_history(&store, &tenant, &jane).unwrap().len() > 32);
    commit(&store, &tenant, |txn| {
        txn.erase_identity(&jane, 101).unwrap()
    });
    assert_eq!(cluster_history(&store, &tenant, &jane).unwrap(), vec![]);
    assert!(resolve(&store, &tenant, &jane).unwrap().is_none());
    let left = store
        .scan(
            Table::Identities,
            &tessera_store::ScanRange::prefix(Key::tenant(&tenant).finish()),
            tessera_store::Direction::Forward,
            1_000,
        )
        .unwrap();
    assert!(
        left.iter()
            .all(|row| !String::from_utf8_lossy(&row.key).contains("jane")),
        "no row names the erased identity"
    );
}

#[test]
fn pointers_and_history_rows_written_before_still_read() {
    let (_dir, store, tenant) = open();
    let (old, other) = (
        IdentityKey::new("CRMID", "old"),
        IdentityKey::new("Email", "old@x"),
    );
    let graph = linked(&store, &tenant, &[old.clone(), other.clone()], 10);
    // The former layout: a bare graph id as the pointer, one JSON row per move.
    let pointer_key = Key::tenant(&tenant).str("CRMID").str("old").finish();
    let row = |at: i64, cluster: u64| {
        (
            Key::tenant(&tenant)
                .str("~clusters")
                .str("CRMID")
                .str("old")
                .i64(at)
                .u64(cluster)
                .finish(),
            serde_json::to_vec(&ClusterMove { cluster, at }).unwrap(),
        )
    };
    let mut batch = WriteBatch::new();
    batch.put(
        Table::Identities,
        &pointer_key,
        graph.to_be_bytes().to_vec(),
    );
    for (key, value) in [row(5, 77), row(10, graph)] {
        batch.put(Table::Identities, &key, value);
    }
    store.commit(batch).unwrap();
    assert_eq!(
        resolve(&store, &tenant, &old).unwrap().unwrap().id,
        graph,
        "a bare graph id still resolves"
    );
    assert_eq!(
        graphs_of(&cluster_history(&store, &tenant, &old).unwrap()),
        vec![graph, 77]
    );

    // Moving it writes the new layout and keeps the old rows.
    commit(&store, &tenant, |txn| {
        txn.unlink_identity(&old, 20).unwrap()
    });
    let newer = linked(
        &store,
        &tenant,
        &[old.clone(), IdentityKey::new("Email", "new@x")],
        30,
    );
    assert_eq!(
        graphs_of(&cluster_history(&store, &tenant, &old).unwrap()),
        vec![newer, graph, 77]
    );
}

#[test]
fn graph_history_is_in_time_order_after_entries_of_the_former_append_log() {
    let (_dir, store, tenant) = open();
    let (a, b, c) = (
        IdentityKey::new("CRMID", "a"),
        IdentityKey::new("CRMID", "b"),
        IdentityKey::new("Email", "c@x"),
    );
    let graph = linked(&store, &tenant, std::slice::from_ref(&a), 100);
    // An entry of the former numbered log, stamped later than anything below.
    let legacy = HistoryEntry {
        at: 9_999,
        event: "created".into(),
        graphs: Vec::new(),
        identities: Vec::new(),
        xaction_id: Some("legacy".into()),
    };
    let mut batch = WriteBatch::new();
    batch.put(
        Table::Graphs,
        &Key::tenant(&tenant)
            .str("history")
            .u64(graph)
            .u64(1)
            .finish(),
        serde_json::to_vec(&legacy).unwrap(),
    );
    store.commit(batch).unwrap();
    commit(&store, &tenant, |txn| {
        txn.link(&[b.clone(), c.clone()], 300, "crm", "r3").unwrap();
        // Joins the two graphs in the same transaction, at an earlier time.
        txn.link(&[a.clone(), b.clone()], 200, "crm", "r2").unwrap();
    });
    commit(&store, &tenant, |txn| txn.unlink_identity(&c, 400).unwrap());
    let events: Vec<(i64, String)> = history(&store, &tenant, graph)
        .unwrap()
        .into_iter()
        .map(|e| (e.at, e.event))
        .collect();
    assert_eq!(
        events,
        vec![
            (9_999, "created".to_owned()),
            (100, "created".to_owned()),
            (200, "merged".to_owned()),
            (400, "unlinked-identity".to_owned()),
        ]
    );
}
