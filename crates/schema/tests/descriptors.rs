//! Identity descriptors: created against a schema field, exposed on the compiled schema,
//! one primary per schema, primary field mandatory, removed with their schema.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod common;

use common::{fixture, id_of, schema_body, PROFILE};
use serde_json::json;
use tessera_schema::{Error, IdentityDescriptor, ViolationCode};

#[test]
fn identity_descriptors_feed_the_compiled_schema() -> Result<(), Error> {
    let f = fixture();
    let schema = f.registry.create_schema(
        &f.tenant,
        schema_body(
            "CRM",
            PROFILE,
            &["https://ns.adobe.com/xdm/context/profile-personal-details"],
        ),
    )?;
    let id = id_of(&schema);
    let email = f.registry.create_descriptor(
        &f.tenant,
        json!({
            "@type": "xdm:descriptorIdentity",
            "xdm:sourceSchema": id,
            "xdm:sourceVersion": 1,
            "xdm:sourceProperty": "/personalEmail/address",
            "xdm:namespace": "Email",
            "xdm:property": "xdm:code",
            "xdm:isPrimary": true
        }),
    )?;
    let descriptor_id = email["@id"].as_str().unwrap().to_owned();
    assert_eq!(descriptor_id.len(), 40);
    assert_eq!(email["meta:containerId"], "tenant");
    assert_eq!(
        f.registry.get_descriptor(&f.tenant, &descriptor_id)?["xdm:namespace"],
        "Email"
    );

    // By altId as source schema; a second, non-primary identity.
    f.registry.create_descriptor(
        &f.tenant,
        json!({
            "@type": "xdm:descriptorIdentity",
            "xdm:sourceSchema": schema["meta:altId"],
            "xdm:sourceProperty": "/mobilePhone/number",
            "xdm:namespace": "Phone",
            "xdm:property": "xdm:code",
            "xdm:isPrimary": false
        }),
    )?;
    // A second primary, a duplicate field, an unknown schema, an unknown field: refused.
    let second_primary = f.registry.create_descriptor(&f.tenant, json!({
        "@type": "xdm:descriptorIdentity", "xdm:sourceSchema": id,
        "xdm:sourceProperty": "/homePhone/number", "xdm:namespace": "Phone", "xdm:isPrimary": true}));
    assert!(
        matches!(second_primary, Err(Error::InvalidDescriptor { ref path, .. }) if path == "/xdm:isPrimary")
    );
    let duplicate = f.registry.create_descriptor(
        &f.tenant,
        json!({
        "@type": "xdm:descriptorIdentity", "xdm:sourceSchema": id,
        "xdm:sourceProperty": "/personalEmail/address", "xdm:namespace": "Email"}),
    );
    assert!(matches!(duplicate, Err(Error::AlreadyExists { .. })));
    let unknown_schema = f.registry.create_descriptor(&f.tenant, json!({
        "@type": "xdm:descriptorIdentity", "xdm:sourceSchema": "https://ns.adobe.com/acme/schemas/nope",
        "xdm:sourceProperty": "/personalEmail/address", "xdm:namespace": "Email"}));
    assert!(
        matches!(unknown_schema, Err(Error::InvalidDescriptor { ref path, .. }) if path == "/xdm:sourceSchema")
    );
    let unknown_field = f.registry.create_descriptor(
        &f.tenant,
        json!({
        "@type": "xdm:descriptorIdentity", "xdm:sourceSchema": id,
        "xdm:sourceProperty": "/workEmail/address", "xdm:namespace": "Email"}),
    );
    assert!(
        matches!(unknown_field, Err(Error::InvalidDescriptor { ref path, .. }) if path == "/xdm:sourceProperty")
    );

    let compiled = f.registry.compiled(&f.tenant, &id)?;
    let mut identities = compiled.identity_descriptors().to_vec();
    identities.sort_by(|a, b| a.namespace.cmp(&b.namespace));
    assert_eq!(
        identities,
        vec![
            IdentityDescriptor {
                source_property: "/personalEmail/address".into(),
                namespace: "Email".into(),
                is_primary: true
            },
            IdentityDescriptor {
                source_property: "/mobilePhone/number".into(),
                namespace: "Phone".into(),
                is_primary: false
            },
        ]
    );
    // The primary identity field is mandatory.
    let violations = compiled
        .validate(&json!({"mobilePhone": {"number": "+1 555"}}))
        .unwrap_err();
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].path, "/personalEmail/address");
    assert_eq!(violations[0].code, ViolationCode::MissingRequired);
    compiled
        .validate(&json!({"personalEmail": {"address": "a@example.com"}}))
        .unwrap();

    // A patch that would remove the descriptor's field is refused.
    let drop_group = json!([{"op": "remove", "path": "/allOf/1"}]);
    assert!(matches!(
        f.registry.patch_schema(&f.tenant, &id, &drop_group),
        Err(Error::InvalidState(_))
    ));

    // Deleting a descriptor updates the compiled schema; deleting the schema removes the rest.
    f.registry.delete_descriptor(&f.tenant, &descriptor_id)?;
    assert_eq!(
        f.registry
            .compiled(&f.tenant, &id)?
            .identity_descriptors()
            .len(),
        1
    );
    assert!(matches!(
        f.registry.get_descriptor(&f.tenant, &descriptor_id),
        Err(Error::NotFound { .. })
    ));
    f.registry.delete_schema(&f.tenant, &id)?;
    assert!(f.registry.list_descriptors(&f.tenant)?.is_empty());
    Ok(())
}
