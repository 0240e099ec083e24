//! Laying one record over another, field by field: nested objects merge recursively,
//! everything else (arrays included) replaces. Two uses differ only in what `null` means:
//!
//! - the upsert patch (AEP's PATCH semantics): an explicit `null` removes the field;
//! - the timestamp-ordered profile merge: a `null` is an absent value, so an older
//!   fragment's value stays.

use serde_json::{Map, Value};

/// What a `null` in the upper record does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nulls {
    /// Removes the field (upsert patches).
    Delete,
    /// Leaves the field as it is (merging fragments).
    Ignore,
}

/// Lays `top` over `base` in place.
pub fn overlay(base: &mut Map<String, Value>, top: &Map<String, Value>, nulls: Nulls) {
    for (field, value) in top {
        match value {
            Value::Null => {
                if nulls == Nulls::Delete {
                    base.remove(field);
                }
            }
            Value::Object(top_object) => match base.get_mut(field) {
                Some(Value::Object(base_object)) => overlay(base_object, top_object, nulls),
                _ => {
                    let mut fresh = Map::new();
                    overlay(&mut fresh, top_object, nulls);
                    base.insert(field.clone(), Value::Object(fresh));
                }
            },
            other => {
                base.insert(field.clone(), other.clone());
            }
        }
    }
}

/// Applies an upsert `patch` onto `base` in place (`null` removes).
pub fn deep_merge(base: &mut Map<String, Value>, patch: &Map<String, Value>) {
    overlay(base, patch, Nulls::Delete);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn merged(base: Value, patch: Value) -> Value {
        let mut base = base.as_object().unwrap().clone();
        deep_merge(&mut base, patch.as_object().unwrap());
        Value::Object(base)
    }

    #[test]
    fn patch_semantics() {
        let base = json!({
            "person": {"name": {"firstName": "Jane", "lastName": "Doe"}, "gender": "female"},
            "loyalty": {"points": 10, "tier": "gold"},
            "tags": ["a", "b"],
            "keep": 1
        });
        let patch = json!({
            "person": {"name": {"lastName": "Smith"}},
            "loyalty": {"tier": null},
            "tags": ["c"],
            "homeAddress": {"city": "Basel", "note": null}
        });
        assert_eq!(
            merged(base, patch),
            json!({
                "person": {"name": {"firstName": "Jane", "lastName": "Smith"}, "gender": "female"},
                "loyalty": {"points": 10},
                "tags": ["c"],
                "keep": 1,
                "homeAddress": {"city": "Basel"}
            })
        );
    }

    #[test]
    fn object_replaces_scalar_and_scalar_replaces_object() {
        assert_eq!(
            merged(json!({"a": 1}), json!({"a": {"b": 2}})),
            json!({"a": {"b": 2}})
        );
        assert_eq!(
            merged(json!({"a": {"b": 2}}), json!({"a": 3})),
            json!({"a": 3})
        );
    }
}
