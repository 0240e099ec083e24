#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! Walking every live graph of a sandbox, in pages.

use tessera_identity::{graphs, GraphConfig, GraphTxn, IdentityKey};
use tessera_model::Tenant;
use tessera_store::{EmbeddedStore, Store, StoreOptions, WriteBatch};

fn link(store: &EmbeddedStore, tenant: &Tenant, ids: &[(&str, &str)]) {
    let keys: Vec<IdentityKey> = ids
        .iter()
        .map(|(ns, id)| IdentityKey::new(*ns, *id))
        .collect();
    let mut txn = GraphTxn::new(store, tenant.clone(), GraphConfig::default(), |_| 0);
    txn.link(&keys, 1, "ds", "x").unwrap();
    let mut batch = WriteBatch::new();
    txn.finish(&mut batch).unwrap();
    store.commit(batch).unwrap();
}

#[test]
fn live_graphs_page_by_page_without_redirects() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
    let tenant = Tenant::parse("A@AdobeOrg", "prod").unwrap();
    link(&store, &tenant, &[("Email", "a@x.com")]);
    link(&store, &tenant, &[("Email", "b@x.com")]);
    link(&store, &tenant, &[("Email", "c@x.com"), ("CRMID", "c")]);
    // Joins a and b: one of them becomes a redirect.
    link(
        &store,
        &tenant,
        &[("Email", "a@x.com"), ("Email", "b@x.com")],
    );
    let all = graphs(&store, &tenant, None, 100).unwrap();
    assert_eq!(all.len(), 2);
    let sizes: Vec<usize> = all.iter().map(|g| g.members.len()).collect();
    assert_eq!(sizes, [2, 2]);
    let first = graphs(&store, &tenant, None, 1).unwrap();
    let second = graphs(&store, &tenant, Some(first[0].id), 1).unwrap();
    assert_eq!(second.len(), 1);
    assert_ne!(first[0].id, second[0].id);
    assert!(graphs(&store, &tenant, Some(second[0].id), 1)
        .unwrap()
        .is_empty());
    let other = Tenant::parse("A@AdobeOrg", "dev").unwrap();
    assert!(graphs(&store, &other, None, 10).unwrap().is_empty());
}
