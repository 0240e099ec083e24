//! Descriptors (`/tenant/descriptors`): metadata attached to a schema field. Identity
//! descriptors (`xdm:descriptorIdentity`) are checked in full and feed the compiled schema;
//! other descriptor types are kept as given, with only their common fields checked.

use serde_json::{Map, Value};

use crate::compose::Composed;
use crate::error::{Error, Result};

/// `@type` of identity descriptors.
pub const IDENTITY_DESCRIPTOR: &str = "xdm:descriptorIdentity";

/// An identity field of a schema, from an `xdm:descriptorIdentity` descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityDescriptor {
    /// JSON pointer of the field in a record (`/personalEmail/address`).
    pub source_property: String,
    /// Identity namespace code (or id) from `xdm:namespace` (`Email`, `ECID`...).
    pub namespace: String,
    /// `xdm:isPrimary`.
    pub is_primary: bool,
}

fn invalid(path: &str, reason: impl Into<String>) -> Error {
    Error::InvalidDescriptor {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn required_str<'a>(body: &'a Map<String, Value>, key: &str) -> Result<&'a str> {
    match body.get(key) {
        Some(Value::String(text)) if !text.trim().is_empty() => Ok(text),
        Some(_) => Err(invalid(&format!("/{key}"), "must be a non-empty string")),
        None => Err(invalid(&format!("/{key}"), "is required")),
    }
}

/// The `@type` and `xdm:sourceSchema` of a submitted descriptor (checked before the
/// schema is looked up).
pub(crate) fn head(body: &Value) -> Result<(&str, &str)> {
    let body = body
        .as_object()
        .ok_or_else(|| invalid("", "a descriptor must be a JSON object"))?;
    Ok((
        required_str(body, "@type")?,
        required_str(body, "xdm:sourceSchema")?,
    ))
}

/// Checks a descriptor against the composed fields of its source schema. For identity
/// descriptors the source property must name a string field of the schema.
pub(crate) fn check(body: &Value, schema: &Composed) -> Result<()> {
    let Some(object) = body.as_object() else {
        return Err(invalid("", "a descriptor must be a JSON object"));
    };
    if let Some(version) = object.get("xdm:sourceVersion") {
        if !version.is_u64() {
            return Err(invalid("/xdm:sourceVersion", "must be a positive integer"));
        }
    }
    let kind = required_str(object, "@type")?;
    if kind != IDENTITY_DESCRIPTOR {
        if let Some(property) = object.get("xdm:sourceProperty").and_then(Value::as_str) {
            check_pointer(property, schema)?;
        }
        return Ok(());
    }
    let property = required_str(object, "xdm:sourceProperty")?;
    let field = check_pointer(property, schema)?;
    if field.get("type").and_then(Value::as_str) != Some("string") {
        return Err(invalid(
            "/xdm:sourceProperty",
            format!("identity field {property} must be a string field"),
        ));
    }
    required_str(object, "xdm:namespace")?;
    match object.get("xdm:property").and_then(Value::as_str) {
        Some("xdm:code" | "xdm:id") | None => {}
        Some(_) => return Err(invalid("/xdm:property", "must be xdm:code or xdm:id")),
    }
    if object.get("xdm:isPrimary").is_some_and(|p| !p.is_boolean()) {
        return Err(invalid("/xdm:isPrimary", "must be a boolean"));
    }
    Ok(())
}

fn check_pointer<'s>(property: &str, schema: &'s Composed) -> Result<&'s Map<String, Value>> {
    if !property.starts_with('/') || property.ends_with('/') || property.contains("/properties/") {
        return Err(invalid(
            "/xdm:sourceProperty",
            "must be a record path such as /personalEmail/address (starting with /, without \"properties\")",
        ));
    }
    schema.field_at(property).ok_or_else(|| {
        invalid(
            "/xdm:sourceProperty",
            format!("the schema has no field {property}"),
        )
    })
}

/// The identity descriptor a stored descriptor document describes, if it is one.
pub(crate) fn identity_of(doc: &Value) -> Option<IdentityDescriptor> {
    if doc.get("@type").and_then(Value::as_str) != Some(IDENTITY_DESCRIPTOR) {
        return None;
    }
    Some(IdentityDescriptor {
        source_property: doc.get("xdm:sourceProperty")?.as_str()?.to_owned(),
        namespace: doc.get("xdm:namespace")?.as_str()?.to_owned(),
        is_primary: doc
            .get("xdm:isPrimary")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Composed {
        Composed {
            properties: json!({"personalEmail": {"type": "object", "properties": {
                "address": {"type": "string", "format": "email"}, "primary": {"type": "boolean"}}}})
            .as_object()
            .cloned()
            .unwrap(),
            required: vec![],
        }
    }

    #[test]
    fn identity_descriptor_from_the_docs_is_accepted() {
        let body = json!({
            "@type": "xdm:descriptorIdentity",
            "xdm:sourceSchema": "https://ns.adobe.com/acme/schemas/fbc52b243d04b5d4f41eaa72a8ba58be",
            "xdm:sourceVersion": 1,
            "xdm:sourceProperty": "/personalEmail/address",
            "xdm:namespace": "Email",
            "xdm:property": "xdm:code",
            "xdm:isPrimary": false
        });
        check(&body, &schema()).unwrap();
        assert_eq!(
            identity_of(&body),
            Some(IdentityDescriptor {
                source_property: "/personalEmail/address".into(),
                namespace: "Email".into(),
                is_primary: false
            })
        );
    }

    #[test]
    fn bad_identity_descriptors_name_the_field() {
        let base = json!({"@type": "xdm:descriptorIdentity", "xdm:sourceSchema": "s",
                          "xdm:sourceProperty": "/personalEmail/address", "xdm:namespace": "Email"});
        let cases = [
            (
                "xdm:sourceProperty",
                json!("/properties/personalEmail/properties/address"),
                "/xdm:sourceProperty",
            ),
            (
                "xdm:sourceProperty",
                json!("/personalEmail/missing"),
                "/xdm:sourceProperty",
            ),
            (
                "xdm:sourceProperty",
                json!("/personalEmail/primary"),
                "/xdm:sourceProperty",
            ),
            ("xdm:namespace", json!(""), "/xdm:namespace"),
            ("xdm:isPrimary", json!("yes"), "/xdm:isPrimary"),
            ("xdm:property", json!("xdm:name"), "/xdm:property"),
        ];
        for (key, value, expected) in cases {
            let mut body = base.clone();
            body[key] = value;
            match check(&body, &schema()) {
                Err(Error::InvalidDescriptor { path, .. }) => assert_eq!(path, expected, "{key}"),
                other => panic!("{key}: {other:?}"),
            }
        }
    }
}
