//! Profile-enabled schemas of one class form its union; a schema that types a field
//! differently from a union member is refused with both schema ids and the field path.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod common;

use common::{fixture, id_of, schema_body, PROFILE};
use serde_json::{json, Value};
use tessera_schema::Error;

fn with_tenant_field(title: &str, field: Value, union: bool) -> Value {
    let mut body = schema_body(
        title,
        PROFILE,
        &["https://ns.adobe.com/xdm/context/profile-person-details"],
    );
    body["allOf"]
        .as_array_mut()
        .unwrap()
        .push(json!({"properties": {"_acme": {"type": "object", "properties": {"tier": field}}}}));
    if union {
        body["meta:immutableTags"] = json!(["union"]);
    }
    body
}

#[test]
fn conflicting_union_member_is_refused_naming_both_schemas() -> Result<(), Error> {
    let f = fixture();
    let first = f.registry.create_schema(
        &f.tenant,
        with_tenant_field("CRM", json!({"type": "string"}), true),
    )?;
    // Not profile-enabled: may disagree with the union.
    let loner = f.registry.create_schema(
        &f.tenant,
        with_tenant_field("Staging", json!({"type": "integer"}), false),
    )?;

    match f.registry.create_schema(
        &f.tenant,
        with_tenant_field("Loyalty", json!({"type": "integer"}), true),
    ) {
        Err(Error::UnionConflict(conflict)) => {
            let tessera_schema::UnionConflict {
                class,
                path,
                existing,
                existing_type,
                incoming,
                incoming_type,
            } = *conflict;
            assert_eq!(class, PROFILE);
            assert_eq!(path, "/_acme/tier");
            assert_eq!(existing, id_of(&first));
            assert_eq!(existing_type, "string");
            assert!(incoming.starts_with("https://ns.adobe.com/acme/schemas/"));
            assert_eq!(incoming_type, "integer(long)");
        }
        other => panic!("{other:?}"),
    }
    // Enabling the lone schema for Profile later is refused the same way.
    let patch = json!([{"op": "add", "path": "/meta:immutableTags", "value": ["union"]}]);
    match f.registry.patch_schema(&f.tenant, &id_of(&loner), &patch) {
        Err(Error::UnionConflict(conflict)) => {
            assert_eq!(
                (conflict.existing, conflict.incoming, conflict.path),
                (id_of(&first), id_of(&loner), "/_acme/tier".to_owned())
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(!f.registry.get_schema(&f.tenant, &id_of(&loner))?["meta:immutableTags"].is_array());

    // The union holds the member's fields plus identityMap and segmentMembership.
    let unions = f.registry.list_unions(&f.tenant)?;
    assert_eq!(
        unions,
        vec![
            json!({"title": "XDM Individual Profile", "$id": "https://ns.adobe.com/xdm/context/profile__union",
                     "meta:altId": "_xdm.context.profile__union", "version": "1"})
        ]
    );
    let full = f
        .registry
        .get_union(&f.tenant, "_xdm.context.profile__union", true)?;
    assert_eq!(full["meta:resourceType"], "unions");
    assert_eq!(
        full["properties"]["_acme"]["properties"]["tier"]["type"],
        "string"
    );
    assert_eq!(full["properties"]["identityMap"]["meta:xdmType"], "map");
    assert!(full["properties"]["segmentMembership"].is_object());
    let raw = f.registry.get_union(
        &f.tenant,
        "https://ns.adobe.com/xdm/context/profile__union",
        false,
    )?;
    assert_eq!(raw["allOf"][0]["$ref"], PROFILE);
    assert_eq!(
        raw["allOf"][1]["$ref"],
        "https://ns.adobe.com/xdm/context/profile-person-details"
    );
    assert_eq!(raw["allOf"][2]["$ref"], id_of(&first));

    // The union compiles for validation (what PQL and profile lookups see).
    let union = f
        .registry
        .compiled(&f.tenant, "_xdm.context.profile__union")?;
    assert!(union.profile_enabled());
    union.validate(&json!({"_acme": {"tier": "gold"}, "segmentMembership": {"ups": {"s1": {"status": "realized"}}}})).unwrap();
    let violations = union
        .validate(&json!({"segmentMembership": {"ups": {"s1": {"status": "gone"}}}}))
        .unwrap_err();
    assert_eq!(violations[0].path, "/segmentMembership/ups/s1/status");

    // The union tag is immutable.
    let remove = json!([{"op": "remove", "path": "/meta:immutableTags"}]);
    assert!(matches!(
        f.registry.patch_schema(&f.tenant, &id_of(&first), &remove),
        Err(Error::InvalidState(_))
    ));
    // No event union exists yet.
    assert!(matches!(
        f.registry.get_union(
            &f.tenant,
            "https://ns.adobe.com/xdm/context/experienceevent__union",
            true
        ),
        Err(Error::NotFound { kind: "union", .. })
    ));
    Ok(())
}
