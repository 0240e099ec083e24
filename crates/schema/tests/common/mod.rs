//! A registry on a real store in a temp dir, and schema bodies used across scenarios.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::{json, Value};
use tessera_model::Tenant;
use tessera_schema::SchemaRegistry;

pub const PROFILE: &str = "https://ns.adobe.com/xdm/context/profile";
pub const EVENT: &str = "https://ns.adobe.com/xdm/context/experienceevent";

pub struct Fixture {
    pub registry: SchemaRegistry,
    pub store: Arc<dyn tessera_store::Store>,
    pub tenant: Tenant,
    _dir: tempfile::TempDir,
}

pub fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn tessera_store::Store> =
        Arc::new(tessera_store::EmbeddedStore::open(dir.path(), Default::default()).unwrap());
    Fixture {
        registry: SchemaRegistry::new(Arc::clone(&store)),
        store,
        tenant: Tenant::parse("ACME@AdobeOrg", "prod").unwrap(),
        _dir: dir,
    }
}

pub fn schema_body(title: &str, class: &str, groups: &[&str]) -> Value {
    let mut all_of = vec![json!({"$ref": class})];
    all_of.extend(groups.iter().map(|g| json!({"$ref": g})));
    json!({"title": title, "type": "object", "allOf": all_of})
}

pub fn id_of(doc: &Value) -> String {
    doc["$id"].as_str().unwrap().to_owned()
}
