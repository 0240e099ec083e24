#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! The namespace cache answers from memory but never serves settings older than the store's.

use tessera_identity::namespace::{create, NamespaceRequest};
use tessera_identity::{LinkingRules, NamespaceCache};
use tessera_model::Tenant;
use tessera_store::{EmbeddedStore, StoreOptions};

#[test]
fn cached_namespaces_follow_creations_and_rule_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
    let tenant = Tenant::parse("A@AdobeOrg", "prod").unwrap();
    let cache = NamespaceCache::new();
    let first = cache.get(&store, &tenant).unwrap();
    assert!(first.by_code("Loyalty").is_none());
    let again = cache.get(&store, &tenant).unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&first, &again),
        "unchanged settings come from memory"
    );

    let request = NamespaceRequest {
        name: Some("Loyalty".into()),
        code: Some("Loyalty".into()),
        id_type: Some("CROSS_DEVICE".into()),
        description: None,
    };
    create(&store, &tenant, &request, 1).unwrap().unwrap();
    assert!(cache
        .get(&store, &tenant)
        .unwrap()
        .by_code("loyalty")
        .is_some());

    let rules: LinkingRules = serde_json::from_value(serde_json::json!({
        "uniqueNamespaces": ["CRMID"], "namespacePriority": ["CRMID", "Email"]
    }))
    .unwrap();
    assert!(rules.is_active());
    tessera_identity::rules::save(&store, &tenant, &rules).unwrap();
    assert_eq!(cache.get(&store, &tenant).unwrap().rules(), &rules);
    // Another sandbox has its own entry.
    let dev = Tenant::parse("A@AdobeOrg", "dev").unwrap();
    assert!(cache
        .get(&store, &dev)
        .unwrap()
        .by_code("Loyalty")
        .is_none());
}
