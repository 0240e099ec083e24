//! The upsert patch: how a partial record updates a stored fragment.
//!
//! PATCH semantics as AEP's upsert documents them: fields present in the patch overwrite,
//! nested objects merge recursively, arrays replace whole, and an explicit `null` removes
//! the field.

use serde_json::{Map, Value};

/// Applies `patch` onto `base` in place.
pub fn deep_merge(base: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (field, value) in patch {
        match value {
            Value::Null => {
                base.remove(field);
            }
            Value::Object(patch_object) => match base.get_mut(field) {
                Some(Value::Object(base_object)) => deep_merge(base_object, patch_object),
                _ => {
                    let mut fresh = Map::new();
                    deep_merge(&mut fresh, patch_object);
                    base.insert(field.clone(), Value::Object(fresh));
                }
            },
            other => {
                base.insert(field.clone(), other.clone());
            }
        }
    }
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
