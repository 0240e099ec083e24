//! Schema composition: turning a class, field groups and tenant fields (each a document
//! with `definitions` and an `allOf`) into one resolved tree of fields, and detecting
//! fields that two parts define with different types.
//!
//! Resolution inlines every local `$ref` (`#/definitions/...`); references to other
//! documents are only allowed at the top of a schema's `allOf` (class and field groups),
//! which the registry resolves. The same conflict check serves composition (two parts of
//! one schema) and unions (two schemas of one class).

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::validator::declared_type;

/// How deep `$ref` inlining may go before it is called a cycle.
const MAX_REF_DEPTH: usize = 32;

/// One contributing part of a schema: who defined it and the fields it adds.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    /// `$id` of the class or field group, or the schema's own `$id` for inline fields.
    pub owner: String,
    /// Top-level fields, resolved (no `$ref` left).
    pub properties: Map<String, Value>,
    /// Top-level required fields.
    pub required: Vec<String>,
}

/// The resolved fields of a whole schema.
#[derive(Debug, Clone, Default)]
pub(crate) struct Composed {
    pub properties: Map<String, Value>,
    pub required: Vec<String>,
}

impl Composed {
    /// The resolved tree as a JSON schema object (the body of `xed-full` answers).
    pub(crate) fn to_schema(&self) -> Value {
        let mut schema = json!({"type": "object", "properties": self.properties});
        if !self.required.is_empty() {
            if let Some(object) = schema.as_object_mut() {
                object.insert("required".into(), json!(self.required));
            }
        }
        schema
    }

    /// The field schema at a record JSON pointer (`/person/name/firstName`).
    pub(crate) fn field_at(&self, pointer: &str) -> Option<&Map<String, Value>> {
        let mut properties = Some(&self.properties);
        let mut found = None;
        for segment in pointer.strip_prefix('/')?.split('/') {
            let name = segment.replace("~1", "/").replace("~0", "~");
            let field = properties?.get(&name)?.as_object()?;
            found = Some(field);
            properties = field.get("properties").and_then(Value::as_object);
        }
        found
    }
}

fn invalid(path: &str, reason: impl Into<String>) -> Error {
    Error::InvalidSchema {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Inlines local references of `value`, found in `doc`'s `definitions`.
pub(crate) fn inline(doc: &Value, value: &Value, path: &str, depth: usize) -> Result<Value> {
    if depth > MAX_REF_DEPTH {
        return Err(invalid(path, "references nest too deeply (a cycle?)"));
    }
    let Some(object) = value.as_object() else {
        return Ok(value.clone());
    };
    let mut out = match object.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let target = local_definition(doc, reference)
                .ok_or_else(|| invalid(path, format!("unresolvable reference {reference:?}")))?;
            let mut merged = inline(doc, target, path, depth + 1)?
                .as_object()
                .cloned()
                .unwrap_or_default();
            // Sibling keywords (title, description) override the referenced definition's.
            for (key, sibling) in object {
                if key != "$ref" {
                    merged.insert(key.clone(), sibling.clone());
                }
            }
            merged
        }
        None => object.clone(),
    };
    if let Some(Value::Object(properties)) = out.get("properties") {
        let mut resolved = Map::with_capacity(properties.len());
        for (name, field) in properties {
            resolved.insert(
                name.clone(),
                inline(doc, field, &format!("{path}/{name}"), depth + 1)?,
            );
        }
        out.insert("properties".into(), Value::Object(resolved));
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child @ Value::Object(_)) = out.get(key) {
            let resolved = inline(doc, child, &format!("{path}/*"), depth + 1)?;
            out.insert(key.into(), resolved);
        }
    }
    Ok(Value::Object(out))
}

fn local_definition<'d>(doc: &'d Value, reference: &str) -> Option<&'d Value> {
    let name = reference.strip_prefix("#/definitions/")?;
    doc.get("definitions")?.get(name)
}

/// Whether an `allOf` entry refers to another document (class or field group).
pub(crate) fn external_ref(entry: &Value) -> Option<&str> {
    entry
        .get("$ref")
        .and_then(Value::as_str)
        .filter(|reference| !reference.starts_with('#'))
}

/// Resolves one `allOf` entry that lives in `doc` itself (a local `$ref` or an inline
/// object with `properties`) into a part.
pub(crate) fn resolve_local_entry(
    doc: &Value,
    entry: &Value,
    owner: &str,
    path: &str,
) -> Result<Part> {
    let resolved = inline(doc, entry, path, 0)?;
    let properties = resolved
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let required = resolved
        .get("required")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok(Part {
        owner: owner.to_owned(),
        properties,
        required,
    })
}

/// Resolves every local `allOf` entry of a document (classes and field groups have only
/// local ones) into one part.
pub(crate) fn resolve_document(doc: &Value, owner: &str) -> Result<Part> {
    let mut parts = Vec::new();
    let entries = doc
        .get("allOf")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (index, entry) in entries.iter().enumerate() {
        if external_ref(entry).is_some() {
            continue;
        }
        parts.push(resolve_local_entry(
            doc,
            entry,
            owner,
            &format!("/allOf/{index}"),
        )?);
    }
    let composed = compose(&parts)?;
    Ok(Part {
        owner: owner.to_owned(),
        properties: composed.properties,
        required: composed.required,
    })
}

/// A short type description used to compare two definitions of one field.
pub(crate) fn signature(field: &Value) -> String {
    let Some(field) = field.as_object() else {
        return "invalid".into();
    };
    match declared_type(field) {
        Some("object") if field.contains_key("properties") => "object".into(),
        Some("object") => match field.get("additionalProperties") {
            Some(values @ Value::Object(_)) => format!("map<{}>", signature(values)),
            _ => "object".into(),
        },
        Some("array") => match field.get("items") {
            Some(items) => format!("array<{}>", signature(items)),
            None => "array".into(),
        },
        Some("integer") => format!(
            "integer({})",
            field
                .get("meta:xdmType")
                .and_then(Value::as_str)
                .unwrap_or("long")
        ),
        Some("string") => match field.get("format").and_then(Value::as_str) {
            Some(format) => format!("string({format})"),
            None => "string".into(),
        },
        Some(other) => other.to_owned(),
        None => "any".into(),
    }
}

/// A conflicting field: its path and the two signatures.
pub(crate) struct Conflict {
    pub path: String,
    pub first: String,
    pub second: String,
}

/// The first field both trees define with different types, if any.
pub(crate) fn first_conflict(
    first: &Map<String, Value>,
    second: &Map<String, Value>,
    path: &str,
) -> Option<Conflict> {
    for (name, b) in second {
        let Some(a) = first.get(name) else { continue };
        let field_path = format!("{path}/{name}");
        if let Some(conflict) = field_conflict(a, b, &field_path) {
            return Some(conflict);
        }
    }
    None
}

fn field_conflict(a: &Value, b: &Value, path: &str) -> Option<Conflict> {
    let (sig_a, sig_b) = (signature(a), signature(b));
    if sig_a != sig_b {
        return Some(Conflict {
            path: path.to_owned(),
            first: sig_a,
            second: sig_b,
        });
    }
    if let (Some(pa), Some(pb)) = (
        a.get("properties").and_then(Value::as_object),
        b.get("properties").and_then(Value::as_object),
    ) {
        return first_conflict(pa, pb, path);
    }
    for key in ["items", "additionalProperties"] {
        if let (Some(ia @ Value::Object(_)), Some(ib @ Value::Object(_))) = (a.get(key), b.get(key))
        {
            return field_conflict(ia, ib, &format!("{path}/*"));
        }
    }
    None
}

/// Deep-merges compatible field trees (call [`first_conflict`] first).
pub(crate) fn merge_into(target: &mut Map<String, Value>, source: &Map<String, Value>) {
    for (name, field) in source {
        match target.get_mut(name) {
            None => {
                target.insert(name.clone(), field.clone());
            }
            Some(existing) => merge_field(existing, field),
        }
    }
}

fn merge_field(existing: &mut Value, incoming: &Value) {
    let (Some(existing), Some(incoming)) = (existing.as_object_mut(), incoming.as_object()) else {
        return;
    };
    if let (Some(Value::Object(into)), Some(Value::Object(from))) =
        (existing.get_mut("properties"), incoming.get("properties"))
    {
        merge_into(into, from);
        let mut required: Vec<Value> = existing
            .get("required")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for name in incoming
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !required.contains(name) {
                required.push(name.clone());
            }
        }
        if !required.is_empty() {
            existing.insert("required".into(), Value::Array(required));
        }
        return;
    }
    for key in ["items", "additionalProperties"] {
        if let (Some(into), Some(from)) = (existing.get_mut(key), incoming.get(key)) {
            merge_field(into, from);
        }
    }
}

/// Composes parts into one tree, refusing fields two parts type differently.
pub(crate) fn compose(parts: &[Part]) -> Result<Composed> {
    let mut composed = Composed::default();
    for (index, part) in parts.iter().enumerate() {
        for earlier in parts.iter().take(index) {
            if let Some(conflict) = first_conflict(&earlier.properties, &part.properties, "") {
                return Err(Error::FieldConflict {
                    path: conflict.path,
                    first: earlier.owner.clone(),
                    first_type: conflict.first,
                    second: part.owner.clone(),
                    second_type: conflict.second,
                });
            }
        }
        merge_into(&mut composed.properties, &part.properties);
        for name in &part.required {
            if !composed.required.contains(name) {
                composed.required.push(name.clone());
            }
        }
    }
    Ok(composed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(owner: &str, properties: Value) -> Part {
        Part {
            owner: owner.into(),
            properties: properties.as_object().cloned().unwrap(),
            required: vec![],
        }
    }

    #[test]
    fn inlines_local_references_with_sibling_overrides() {
        let doc = json!({
            "definitions": {"measure": {"type": "object", "title": "Measure", "properties": {"value": {"type": "number"}}}},
            "allOf": [{"properties": {"m": {"$ref": "#/definitions/measure", "title": "Views"}}}]
        });
        let part = resolve_document(&doc, "fg").unwrap();
        assert_eq!(part.properties["m"]["title"], "Views");
        assert_eq!(
            part.properties["m"]["properties"]["value"]["type"],
            "number"
        );
    }

    #[test]
    fn cycles_are_refused() {
        let doc = json!({"definitions": {"a": {"properties": {"x": {"$ref": "#/definitions/a"}}}},
                         "allOf": [{"$ref": "#/definitions/a"}]});
        assert!(matches!(
            resolve_document(&doc, "fg"),
            Err(Error::InvalidSchema { .. })
        ));
    }

    #[test]
    fn nested_conflicts_name_the_path_and_both_parts() {
        let a = part(
            "A",
            json!({"person": {"type": "object", "properties": {"age": {"type": "integer"}}}}),
        );
        let b = part(
            "B",
            json!({"person": {"type": "object", "properties": {"age": {"type": "string"}}}}),
        );
        match compose(&[a, b]) {
            Err(Error::FieldConflict {
                path,
                first,
                second,
                first_type,
                second_type,
            }) => {
                assert_eq!(path, "/person/age");
                assert_eq!((first.as_str(), second.as_str()), ("A", "B"));
                assert_eq!(
                    (first_type.as_str(), second_type.as_str()),
                    ("integer(long)", "string")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn compatible_parts_merge_deeply() {
        let a = part(
            "A",
            json!({"p": {"type": "object", "properties": {"x": {"type": "string"}}}}),
        );
        let b = part(
            "B",
            json!({"p": {"type": "object", "properties": {"y": {"type": "string"}}}}),
        );
        let composed = compose(&[a, b]).unwrap();
        let fields = composed.properties["p"]["properties"].as_object().unwrap();
        assert_eq!(fields.len(), 2);
        assert!(composed.field_at("/p/y").is_some());
        assert!(composed.field_at("/p/z").is_none());
    }
}
