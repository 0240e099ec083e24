//! Schemas resolve by `$id` and by `meta:altId`; built-in classes resolve too; other
//! tenants see nothing.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod common;

use common::{fixture, id_of, schema_body, EVENT, PROFILE};
use serde_json::json;
use tessera_model::Tenant;
use tessera_schema::{Error, ViolationCode, XdmClass};

#[test]
fn schemas_resolve_by_id_and_alt_id() -> Result<(), Error> {
    let f = fixture();
    let doc = f
        .registry
        .create_schema(&f.tenant, schema_body("Events", EVENT, &[]))?;
    let id = id_of(&doc);
    let alt = doc["meta:altId"].as_str().unwrap();
    assert_eq!(f.registry.get_schema(&f.tenant, alt)?, doc);
    assert_eq!(f.registry.get_schema(&f.tenant, &id)?, doc);
    let by_alt = f.registry.compiled(&f.tenant, alt)?;
    let by_id = f.registry.compiled(&f.tenant, &id)?;
    assert!(
        std::sync::Arc::ptr_eq(&by_alt, &by_id),
        "one cache entry for both names"
    );
    assert_eq!(by_id.id(), id);
    assert_eq!(by_id.version(), "1.0");
    assert_eq!(by_id.class(), &XdmClass::ExperienceEvent);
    assert!(!by_id.profile_enabled());

    for class in [EVENT, "_xdm.context.experienceevent"] {
        let compiled = f.registry.compiled(&f.tenant, class)?;
        assert_eq!(compiled.class(), &XdmClass::ExperienceEvent);
        let violations = compiled.validate(&json!({"eventType": "x"})).unwrap_err();
        let mut paths: Vec<_> = violations
            .iter()
            .map(|v| (v.path.as_str(), v.code))
            .collect();
        paths.sort_unstable_by_key(|(p, _)| *p);
        assert_eq!(
            paths,
            vec![
                ("/_id", ViolationCode::MissingRequired),
                ("/timestamp", ViolationCode::MissingRequired)
            ]
        );
    }
    assert_eq!(
        f.registry.compiled(&f.tenant, PROFILE)?.class(),
        &XdmClass::Profile
    );

    let other = Tenant::parse("ACME@AdobeOrg", "dev").unwrap();
    assert!(matches!(
        f.registry.compiled(&other, &id),
        Err(Error::NotFound { kind: "schema", .. })
    ));
    assert!(matches!(
        f.registry.get_schema(&other, alt),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        f.registry.compiled(&f.tenant, "_acme.schemas.nope"),
        Err(Error::NotFound { .. })
    ));
    Ok(())
}
