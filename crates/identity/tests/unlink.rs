#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! Unlinking an identity or a link splits the graph into the parts still connected, with new
//! ids for split-off parts, and the history records each step.

use std::collections::BTreeSet;

use tessera_identity::{history, resolve, GraphConfig, GraphTxn, IdentityKey};
use tessera_model::Tenant;
use tessera_store::{EmbeddedStore, Store, StoreOptions, WriteBatch};

fn commit(store: &EmbeddedStore, tenant: &Tenant, change: impl FnOnce(&mut GraphTxn<'_>)) {
    let mut txn = GraphTxn::new(store, tenant.clone(), GraphConfig::default(), |_| 2);
    change(&mut txn);
    let mut batch = WriteBatch::new();
    txn.finish(&mut batch).unwrap();
    store.commit(batch).unwrap();
}

fn members(store: &EmbeddedStore, tenant: &Tenant, key: &IdentityKey) -> BTreeSet<IdentityKey> {
    resolve(store, tenant, key)
        .unwrap()
        .map(|g| g.identities().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn unlinking_a_shared_device_splits_the_household() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
    let tenant = Tenant::parse("U@AdobeOrg", "prod").unwrap();
    let device = IdentityKey::new("ECID", "shared");
    let (alice, bob, alice_mail) = (
        IdentityKey::new("CRMID", "alice"),
        IdentityKey::new("CRMID", "bob"),
        IdentityKey::new("Email", "a@x"),
    );
    commit(&store, &tenant, |txn| {
        txn.link(&[alice.clone(), alice_mail.clone()], 1, "crm", "r1")
            .unwrap();
        txn.link(&[device.clone(), alice.clone()], 2, "web", "r2")
            .unwrap();
        txn.link(&[device.clone(), bob.clone()], 3, "web", "r3")
            .unwrap();
    });
    let household = resolve(&store, &tenant, &bob).unwrap().unwrap();
    assert_eq!(household.members.len(), 4);

    let mut after = Vec::new();
    commit(&store, &tenant, |txn| {
        after = txn.unlink_identity(&device, 4).unwrap().unwrap()
    });
    assert_eq!(
        after.len(),
        2,
        "alice's part keeps the id, bob's gets a new one"
    );
    assert_eq!(after[0], household.id);
    assert!(resolve(&store, &tenant, &device).unwrap().is_none());
    assert_eq!(
        members(&store, &tenant, &alice),
        [alice.clone(), alice_mail.clone()].into_iter().collect()
    );
    assert_eq!(
        members(&store, &tenant, &bob),
        [bob.clone()].into_iter().collect()
    );
    assert_eq!(
        resolve(&store, &tenant, &bob).unwrap().unwrap().id,
        after[1]
    );

    let events: Vec<String> = history(&store, &tenant, household.id)
        .unwrap()
        .into_iter()
        .map(|h| h.event)
        .collect();
    assert_eq!(
        events,
        ["created", "unlinked-identity", "split"],
        "the device and bob joined an existing graph: no merge"
    );
    let bobs = history(&store, &tenant, after[1]).unwrap();
    assert_eq!(bobs[0].event, "created");
    assert_eq!(bobs[0].graphs, vec![household.id]);

    // Re-ingesting bob's visit re-creates exactly its link: the device joins bob, not alice.
    commit(&store, &tenant, |txn| {
        txn.link(&[device.clone(), bob.clone()], 5, "web", "r5")
            .unwrap();
    });
    assert_eq!(
        members(&store, &tenant, &bob),
        [bob.clone(), device.clone()].into_iter().collect()
    );
    assert_eq!(
        members(&store, &tenant, &alice),
        [alice.clone(), alice_mail.clone()].into_iter().collect()
    );
    let again = tessera_identity::resolve_with_links(&store, &tenant, &bob)
        .unwrap()
        .unwrap();
    assert_eq!(again.links.len(), 1);
    assert!(again
        .links
        .iter()
        .all(|l| (l.a == device && l.b == bob) && l.first_seen == 5 && l.xaction_id == "r5"));
}

#[test]
fn unlinking_one_link_splits_only_when_nothing_else_connects() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
    let tenant = Tenant::parse("U@AdobeOrg", "prod").unwrap();
    let (a, b, c) = (
        IdentityKey::new("CRMID", "a"),
        IdentityKey::new("Email", "b"),
        IdentityKey::new("Phone", "c"),
    );
    commit(&store, &tenant, |txn| {
        txn.link(&[a.clone(), b.clone(), c.clone()], 1, "ds", "r1")
            .unwrap();
        txn.link(&[b.clone(), c.clone()], 2, "ds", "r2").unwrap();
    });
    // a–b goes, but a–c and b–c keep one graph.
    let mut after = Vec::new();
    commit(&store, &tenant, |txn| {
        after = txn.unlink(&a, &b, 3).unwrap().unwrap()
    });
    assert_eq!(after.len(), 1);
    assert_eq!(members(&store, &tenant, &a).len(), 3);
    // a–c goes too: a is on its own now.
    commit(&store, &tenant, |txn| {
        after = txn.unlink(&c, &a, 4).unwrap().unwrap()
    });
    assert_eq!(after.len(), 2);
    assert_eq!(
        members(&store, &tenant, &a),
        [a.clone()].into_iter().collect()
    );
    assert_eq!(
        members(&store, &tenant, &b),
        [b.clone(), c.clone()].into_iter().collect()
    );
    // No such link.
    commit(&store, &tenant, |txn| {
        assert!(txn.unlink(&a, &b, 5).unwrap().is_none())
    });
}

#[test]
fn blocked_identities_are_listed_and_unblocked() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
    let tenant = Tenant::parse("U@AdobeOrg", "prod").unwrap();
    let junk = IdentityKey::new("Email", "test@test.com");
    tessera_identity::blocklist::block(&store, &tenant, &junk, "placeholder", 1).unwrap();
    assert!(tessera_identity::blocklist::load(&store, &tenant)
        .unwrap()
        .contains(&junk));
    assert_eq!(
        tessera_identity::blocklist::list(&store, &tenant).unwrap()[0].reason,
        "placeholder"
    );
    // The blocklist shares a table with identity pointers but never reads as one.
    assert!(resolve(&store, &tenant, &junk).unwrap().is_none());
    assert!(tessera_identity::blocklist::unblock(&store, &tenant, &junk).unwrap());
    assert!(!tessera_identity::blocklist::unblock(&store, &tenant, &junk).unwrap());
    assert!(tessera_identity::blocklist::load(&store, &tenant)
        .unwrap()
        .is_empty());
    let _ = store.flush();
}
