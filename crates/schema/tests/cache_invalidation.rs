//! Compiled schemas are cached, and a PATCH (through this registry or another one sharing
//! the store, as another process would) is seen by the next `compiled` call.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod common;

use std::sync::Arc;

use common::{fixture, id_of, schema_body, PROFILE};
use serde_json::json;
use tessera_schema::{Error, SchemaRegistry, ViolationCode};

#[test]
fn patch_invalidates_the_compiled_schema() -> Result<(), Error> {
    let f = fixture();
    let doc = f
        .registry
        .create_schema(&f.tenant, schema_body("CRM", PROFILE, &[]))?;
    let id = id_of(&doc);
    let record = json!({"loyalty": {"tier": "gold"}});

    let before = f.registry.compiled(&f.tenant, &id)?;
    assert_eq!(before.version(), "1.0");
    let violations = before.validate(&record).unwrap_err();
    assert_eq!(
        (violations[0].path.as_str(), violations[0].code),
        ("/loyalty", ViolationCode::UnknownField)
    );
    // Unchanged registry: the same compiled object is handed out.
    assert!(Arc::ptr_eq(&before, &f.registry.compiled(&f.tenant, &id)?));

    // A second registry on the same store stands for another process.
    let other_process = SchemaRegistry::new(Arc::clone(&f.store));
    let patch = json!([
        {"op": "add", "path": "/meta:extends/-", "value": "https://ns.adobe.com/xdm/mixins/profile/profile-loyalty-details"},
        {"op": "add", "path": "/allOf/-", "value": {"$ref": "https://ns.adobe.com/xdm/mixins/profile/profile-loyalty-details"}}
    ]);
    let patched =
        other_process.patch_schema(&f.tenant, doc["meta:altId"].as_str().unwrap(), &patch)?;
    assert_eq!(patched["version"], "1.1");
    assert_eq!(patched["meta:registryMetadata"]["eTag"], "2");

    let after = f.registry.compiled(&f.tenant, &id)?;
    assert!(!Arc::ptr_eq(&before, &after));
    assert_eq!(after.version(), "1.1");
    after.validate(&record).unwrap();
    // The old compiled object is unchanged for whoever still holds it.
    assert!(before.validate(&record).is_err());

    // A patch that fails leaves the schema as it was.
    let bad = json!([{"op": "add", "path": "/allOf/-", "value": {"$ref": "https://ns.adobe.com/xdm/nope"}}]);
    assert!(matches!(
        f.registry.patch_schema(&f.tenant, &id, &bad),
        Err(Error::InvalidSchema { .. })
    ));
    assert_eq!(f.registry.get_schema(&f.tenant, &id)?["version"], "1.1");
    assert!(Arc::ptr_eq(&after, &f.registry.compiled(&f.tenant, &id)?));

    // Deleting is refused while the usage hook says a dataset uses it.
    let used = id.clone();
    f.registry
        .set_usage_check(Arc::new(move |_, schema| schema == used));
    assert!(matches!(
        f.registry.delete_schema(&f.tenant, &id),
        Err(Error::InUse { .. })
    ));
    f.registry.set_usage_check(Arc::new(|_, _| false));
    f.registry.delete_schema(&f.tenant, &id)?;
    assert!(matches!(
        f.registry.compiled(&f.tenant, &id),
        Err(Error::NotFound { .. })
    ));
    Ok(())
}
