//! A profile schema composed from the class, standard field groups and tenant fields under
//! `_{TENANT_ID}`; what the registry stores and resolves, and which compositions it refuses.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod common;

use common::{fixture, id_of, schema_body, EVENT, PROFILE};
use serde_json::json;
use tessera_schema::Error;

#[test]
fn class_field_groups_and_tenant_fields_compose() -> Result<(), Error> {
    let f = fixture();
    assert_eq!(f.registry.tenant_id(&f.tenant)?, "acme");
    let mut body = schema_body(
        "Loyalty members",
        PROFILE,
        &[
            "https://ns.adobe.com/xdm/context/identitymap",
            "_xdm.context.profile-person-details",
            "https://ns.adobe.com/xdm/context/profile-personal-details",
        ],
    );
    body["definitions"] = json!({"custom": {"properties": {"_acme": {"type": "object", "properties": {
        "vipLevel": {"type": "integer", "meta:xdmType": "byte", "minimum": 0, "maximum": 5}}}}}});
    body["allOf"]
        .as_array_mut()
        .unwrap()
        .push(json!({"$ref": "#/definitions/custom"}));
    let doc = f.registry.create_schema(&f.tenant, body)?;

    let id = id_of(&doc);
    assert!(id.starts_with("https://ns.adobe.com/acme/schemas/"));
    assert_eq!(doc["meta:altId"], format!("_acme.schemas.{}", &id[34..]));
    assert_eq!(doc["version"], "1.0");
    assert_eq!(doc["meta:class"], PROFILE);
    assert_eq!(doc["meta:containerId"], "tenant");
    assert_eq!(doc["meta:resourceType"], "schemas");
    assert_eq!(doc["meta:tenantNamespace"], "_acme");
    assert_eq!(doc["imsOrg"], "ACME@AdobeOrg");
    assert_eq!(
        doc["meta:extends"],
        json!([
            PROFILE,
            "https://ns.adobe.com/xdm/data/record",
            "https://ns.adobe.com/xdm/common/auditable",
            "https://ns.adobe.com/xdm/context/identitymap",
            "https://ns.adobe.com/xdm/context/profile-person-details",
            "https://ns.adobe.com/xdm/context/profile-personal-details"
        ])
    );

    let full = f.registry.resolved_schema(&f.tenant, &id)?;
    assert!(full.get("allOf").is_none());
    let properties = &full["properties"];
    assert_eq!(
        properties["person"]["properties"]["birthDate"]["format"],
        "date"
    );
    assert_eq!(
        properties["personalEmail"]["properties"]["address"]["format"],
        "email"
    );
    assert_eq!(properties["identityMap"]["meta:xdmType"], "map");
    assert_eq!(properties["_acme"]["properties"]["vipLevel"]["maximum"], 5);
    assert_eq!(properties["_id"]["type"], "string");

    let compiled = f.registry.compiled(&f.tenant, &id)?;
    compiled
        .validate(&json!({"_id": "1", "person": {"name": {"firstName": "Ann"}}, "_acme": {"vipLevel": 3}}))
        .unwrap();
    let violations = compiled
        .validate(&json!({"_acme": {"vipLevel": 6}}))
        .unwrap_err();
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].path, "/_acme/vipLevel");
    assert_eq!(violations[0].code.as_str(), "out_of_range");
    Ok(())
}

#[test]
fn bad_compositions_are_refused_and_name_the_place() {
    let f = fixture();
    let refused = |body: serde_json::Value| f.registry.create_schema(&f.tenant, body).unwrap_err();

    // A field group meant for events on a profile schema.
    match refused(schema_body(
        "a",
        PROFILE,
        &["https://ns.adobe.com/xdm/context/experienceevent-web"],
    )) {
        Error::InvalidSchema { path, reason } => {
            assert_eq!(path, "/allOf");
            assert!(reason.contains("experienceevent-web"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // No class, two classes, unknown reference.
    assert!(
        matches!(refused(json!({"title": "b", "allOf": []})), Error::InvalidSchema { path, .. } if path == "/allOf")
    );
    assert!(
        matches!(refused(schema_body("c", PROFILE, &[EVENT])), Error::InvalidSchema { path, .. } if path == "/allOf/1")
    );
    assert!(matches!(
        refused(schema_body("d", PROFILE, &["https://ns.adobe.com/xdm/nope"])),
        Error::InvalidSchema { path, .. } if path == "/allOf/1/$ref"
    ));
    // Custom fields outside the tenant namespace.
    let mut body = schema_body("e", PROFILE, &[]);
    body["allOf"]
        .as_array_mut()
        .unwrap()
        .push(json!({"properties": {"loyaltyLevel": {"type": "string"}}}));
    assert!(
        matches!(refused(body), Error::InvalidSchema { path, .. } if path == "/allOf/1/properties/loyaltyLevel")
    );
    // A tenant field that redefines a standard one inside the namespace is fine, but two
    // parts typing one field differently are not.
    let mut body = schema_body("f", PROFILE, &[]);
    let list = body["allOf"].as_array_mut().unwrap();
    list.push(json!({"properties": {"_acme": {"type": "object", "properties": {"x": {"type": "string"}}}}}));
    list.push(json!({"properties": {"_acme": {"type": "object", "properties": {"x": {"type": "number"}}}}}));
    match refused(body) {
        Error::FieldConflict {
            path,
            first_type,
            second_type,
            ..
        } => {
            assert_eq!(path, "/_acme/x");
            assert_eq!(
                (first_type.as_str(), second_type.as_str()),
                ("string", "number")
            );
        }
        other => panic!("{other:?}"),
    }
    // Missing title; duplicate title.
    assert!(
        matches!(refused(json!({"allOf": [{"$ref": PROFILE}]})), Error::InvalidSchema { path, .. } if path == "/title")
    );
    f.registry
        .create_schema(&f.tenant, schema_body("taken", PROFILE, &[]))
        .unwrap();
    assert!(matches!(
        refused(schema_body("taken", PROFILE, &[])),
        Error::AlreadyExists { .. }
    ));
    assert_eq!(f.registry.list_schemas(&f.tenant).unwrap().len(), 1);
}
