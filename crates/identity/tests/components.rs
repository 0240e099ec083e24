#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! DESIGN.md invariant 2: the stored graph equals the connected components of the admitted
//! links, and every member resolves to the same graph — whatever the arrival order, and
//! whether records are applied one per batch or many per batch.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use tessera_identity::{resolve, GraphConfig, GraphTxn, IdentityKey};
use tessera_model::Tenant;
use tessera_store::{EmbeddedStore, Store, StoreOptions, WriteBatch};

fn key(n: u8) -> IdentityKey {
    // Two namespaces over a small value space, so merges happen often.
    IdentityKey::new(
        if n.is_multiple_of(2) { "Email" } else { "ECID" },
        format!("v{}", n / 2),
    )
}

fn expected_components(records: &[Vec<u8>]) -> Vec<BTreeSet<IdentityKey>> {
    let mut parent: BTreeMap<IdentityKey, IdentityKey> = BTreeMap::new();
    fn find(parent: &mut BTreeMap<IdentityKey, IdentityKey>, x: &IdentityKey) -> IdentityKey {
        let mut root = x.clone();
        while let Some(p) = parent.get(&root) {
            if p == &root {
                break;
            }
            root = p.clone();
        }
        root
    }
    for record in records {
        for n in record {
            parent.entry(key(*n)).or_insert_with(|| key(*n));
        }
        if let Some(first) = record.first() {
            for n in record.iter().skip(1) {
                let a = find(&mut parent, &key(*first));
                let b = find(&mut parent, &key(*n));
                if a != b {
                    parent.insert(a, b);
                }
            }
        }
    }
    let mut groups: BTreeMap<IdentityKey, BTreeSet<IdentityKey>> = BTreeMap::new();
    for identity in parent.keys().cloned().collect::<Vec<_>>() {
        let root = find(&mut parent, &identity);
        groups.entry(root).or_default().insert(identity);
    }
    groups.into_values().collect()
}

/// A record's identities, each once, in the order it names them.
fn identities_of(record: &[u8]) -> Vec<IdentityKey> {
    let mut identities: Vec<IdentityKey> = Vec::new();
    for n in record {
        if !identities.contains(&key(*n)) {
            identities.push(key(*n));
        }
    }
    identities
}

/// A transaction whose graph limit never fires, so components are all that decide.
fn unlimited_txn<'s>(store: &'s EmbeddedStore, tenant: &Tenant) -> GraphTxn<'s> {
    GraphTxn::new(
        store,
        tenant.clone(),
        GraphConfig {
            max_identities: 1000,
        },
        |_| 0,
    )
}

fn apply(store: &EmbeddedStore, tenant: &Tenant, records: &[Vec<u8>], per_batch: usize) {
    for (chunk_index, chunk) in records.chunks(per_batch).enumerate() {
        let mut txn = unlimited_txn(store, tenant);
        for (i, record) in chunk.iter().enumerate() {
            let identities = identities_of(record);
            let at = (chunk_index * per_batch + i) as i64;
            txn.link(&identities, at, "ds", "x").unwrap();
        }
        let mut batch = WriteBatch::new();
        txn.finish(&mut batch).unwrap();
        store.commit(batch).unwrap();
    }
}

fn check(store: &EmbeddedStore, tenant: &Tenant, records: &[Vec<u8>]) -> Result<(), TestCaseError> {
    for component in expected_components(records) {
        let mut ids = BTreeSet::new();
        for identity in &component {
            let graph = resolve(store, tenant, identity)
                .unwrap()
                .expect("every seen identity resolves");
            let members: BTreeSet<IdentityKey> = graph.identities().cloned().collect();
            prop_assert_eq!(
                &members,
                &component,
                "graph of {} differs from its component",
                identity
            );
            ids.insert(graph.id);
        }
        prop_assert_eq!(
            ids.len(),
            1,
            "members of one component resolve to several graphs"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn graph_equals_connected_components(
        (records, shuffled) in proptest::collection::vec(proptest::collection::vec(0u8..16, 1..4), 1..40)
            .prop_flat_map(|records| (Just(records.clone()), Just(records).prop_shuffle())),
        per_batch in prop_oneof![Just(1usize), Just(7usize), Just(100usize)],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), StoreOptions { durability: tessera_store::Durability::Relaxed, ..StoreOptions::default() }).unwrap();
        let tenant = Tenant::parse("P@AdobeOrg", "prod").unwrap();
        apply(&store, &tenant, &records, per_batch);
        check(&store, &tenant, &records)?;

        // Arrival order does not change the components: any order of the same records gives
        // the components of the original order.
        let dir2 = tempfile::tempdir().unwrap();
        let store2 = EmbeddedStore::open(dir2.path(), StoreOptions { durability: tessera_store::Durability::Relaxed, ..StoreOptions::default() }).unwrap();
        apply(&store2, &tenant, &shuffled, per_batch);
        check(&store2, &tenant, &records)?;
    }
}

#[test]
fn merge_keeps_the_oldest_graph_id_and_redirects_the_absorbed_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
    let tenant = Tenant::parse("P@AdobeOrg", "prod").unwrap();
    let link = |ids: &[IdentityKey], at: i64| {
        let mut txn = GraphTxn::new(&store, tenant.clone(), GraphConfig::default(), |_| 0);
        let outcome = txn.link(ids, at, "ds", &format!("x{at}")).unwrap().unwrap();
        let mut batch = WriteBatch::new();
        txn.finish(&mut batch).unwrap();
        store.commit(batch).unwrap();
        outcome
    };
    let email = IdentityKey::new("Email", "a@x.com");
    let ecid = IdentityKey::new("ECID", "1".repeat(38));
    let crm = IdentityKey::new("CRMID", "c1");
    let older = link(std::slice::from_ref(&email), 1).graph;
    let younger = link(std::slice::from_ref(&ecid), 2).graph;
    assert_ne!(older, younger);
    let merged = link(&[crm.clone(), email.clone(), ecid.clone()], 3);
    assert_eq!(merged.graph, older);
    assert_eq!(merged.absorbed, vec![younger]);
    let merged_history = tessera_identity::history(&store, &tenant, older).unwrap();
    let last = merged_history.last().unwrap();
    assert_eq!(
        (
            last.event.as_str(),
            last.graphs.clone(),
            last.xaction_id.as_deref()
        ),
        ("merged", vec![younger], Some("x3"))
    );
    let via_old_id = tessera_identity::graph::graph_by_id(&store, &tenant, younger)
        .unwrap()
        .unwrap();
    assert_eq!(via_old_id.id, older, "the absorbed id redirects");
    let graph = tessera_identity::resolve_with_links(&store, &tenant, &ecid)
        .unwrap()
        .unwrap();
    assert_eq!(graph.members.len(), 3);
    assert_eq!(
        graph.links.len(),
        3,
        "a record links every pair of its identities"
    );
    assert!(graph.links.iter().all(|l| l.xaction_id == "x3"));
}

#[test]
fn graph_over_the_limit_evicts_oldest_lowest_ranked_identities_never_the_current_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
    let tenant = Tenant::parse("P@AdobeOrg", "prod").unwrap();
    let crm = IdentityKey::new("CRMID", "c1");
    // Cookies (rank 0) go before emails (rank 1); CRM ids (rank 9) last.
    let rank = |ns: &str| match ns {
        "ECID" => 0,
        "Email" => 1,
        _ => 9,
    };
    let mut at = 0;
    let mut link = |ids: Vec<IdentityKey>| {
        at += 1;
        let mut txn = GraphTxn::new(
            &store,
            tenant.clone(),
            GraphConfig { max_identities: 5 },
            rank,
        );
        let outcome = txn.link(&ids, at, "ds", "x").unwrap().unwrap();
        let mut batch = WriteBatch::new();
        txn.finish(&mut batch).unwrap();
        store.commit(batch).unwrap();
        outcome
    };
    link(vec![crm.clone(), IdentityKey::new("Email", "e1")]);
    link(vec![crm.clone(), IdentityKey::new("ECID", "old")]);
    link(vec![crm.clone(), IdentityKey::new("ECID", "newer")]);
    let full = link(vec![crm.clone(), IdentityKey::new("Email", "e2")]);
    assert!(full.evicted.is_empty());
    // A fifth identity: the least recently seen cookie goes, not the email, not the current ones.
    let over = link(vec![crm.clone(), IdentityKey::new("Email", "e3")]);
    assert_eq!(over.evicted, vec![IdentityKey::new("ECID", "old")]);
    assert!(resolve(&store, &tenant, &IdentityKey::new("ECID", "old"))
        .unwrap()
        .is_none());
    let graph = resolve(&store, &tenant, &crm).unwrap().unwrap();
    assert_eq!(graph.members.len(), 5);
    // The current record's identities are kept even when they rank lowest.
    let cookie = link(vec![IdentityKey::new("ECID", "brand-new"), crm.clone()]);
    assert_eq!(cookie.evicted, vec![IdentityKey::new("ECID", "newer")]);
}

#[test]
fn evicting_a_hub_splits_what_it_held_together() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
    let tenant = Tenant::parse("P@AdobeOrg", "prod").unwrap();
    let rank = |ns: &str| if ns == "ECID" { 0 } else { 5 };
    let device = IdentityKey::new("ECID", "shared");
    let (a, c, d) = (
        IdentityKey::new("Email", "a"),
        IdentityKey::new("Email", "c"),
        IdentityKey::new("Email", "d"),
    );
    let mut at = 0;
    let mut link = |ids: Vec<IdentityKey>| {
        at += 1;
        let mut txn = GraphTxn::new(
            &store,
            tenant.clone(),
            GraphConfig { max_identities: 3 },
            rank,
        );
        let outcome = txn.link(&ids, at, "ds", "x").unwrap().unwrap();
        let mut batch = WriteBatch::new();
        txn.finish(&mut batch).unwrap();
        store.commit(batch).unwrap();
        outcome
    };
    link(vec![device.clone(), a.clone()]);
    link(vec![device.clone(), c.clone()]);
    let outcome = link(vec![a.clone(), d.clone()]);
    assert_eq!(outcome.evicted, vec![device.clone()]);
    assert_eq!(
        outcome.split_off.len(),
        1,
        "c was held in the graph only through the device"
    );
    let left = resolve(&store, &tenant, &a).unwrap().unwrap();
    let right = resolve(&store, &tenant, &c).unwrap().unwrap();
    assert_ne!(left.id, right.id);
    assert_eq!(
        left.identities().cloned().collect::<BTreeSet<_>>(),
        [a.clone(), d.clone()].into_iter().collect()
    );
    assert_eq!(
        right.identities().cloned().collect::<Vec<_>>(),
        vec![c.clone()]
    );
    assert_eq!(resolve(&store, &tenant, &d).unwrap().unwrap().id, left.id);
    assert!(resolve(&store, &tenant, &device).unwrap().is_none());
}

/// Several writers link records over one small pool of identities at once, each record in
/// its own transaction, retrying a record whose commit lost a race (as ingestion does): the
/// graphs end as the components of all their records, and no merge is half done.
#[test]
fn concurrent_writers_of_the_same_graphs_end_in_the_components_of_all_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(
        dir.path(),
        StoreOptions {
            durability: tessera_store::Durability::Relaxed,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let tenant = Tenant::parse("P@AdobeOrg", "prod").unwrap();
    let writers: Vec<Vec<Vec<u8>>> = (0..4_usize)
        .map(|writer| {
            (0..80_usize)
                .map(|n| {
                    let pick = |salt: usize| ((writer * 7919 + n * 104_729 + salt * 31) % 40) as u8;
                    if n % 5 == 4 {
                        vec![pick(1)]
                    } else {
                        vec![pick(1), pick(2)]
                    }
                })
                .collect()
        })
        .collect();
    let conflicts = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for (writer, records) in writers.iter().enumerate() {
            let (store, tenant, conflicts) = (&store, &tenant, &conflicts);
            scope.spawn(move || {
                for (n, record) in records.iter().enumerate() {
                    let identities = identities_of(record);
                    let at = (n * 4 + writer) as i64;
                    loop {
                        let mut txn = unlimited_txn(store, tenant);
                        txn.link(&identities, at, "ds", &format!("w{writer}-{n}"))
                            .unwrap();
                        let mut batch = WriteBatch::new();
                        txn.finish(&mut batch).unwrap();
                        match store.commit(batch) {
                            Ok(_) => break,
                            Err(tessera_store::Error::Conflict { .. }) => {
                                conflicts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            Err(other) => panic!("commit: {other}"),
                        }
                    }
                }
            });
        }
    });
    let all: Vec<Vec<u8>> = writers.into_iter().flatten().collect();
    check(&store, &tenant, &all).unwrap();
    // Not asserted (it depends on scheduling), but worth seeing when the test is run by hand.
    eprintln!(
        "commits retried after losing a race: {}",
        conflicts.into_inner()
    );
}
