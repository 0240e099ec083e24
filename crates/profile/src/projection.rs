//! Field projection: keeping only the dotted paths a caller asked for (`fields=a.b,c`).
//!
//! Shared by the profile lookup, the event lookup and profile export, so that every API that
//! takes AEP's `fields` parameter reads it the same way: paths are comma-separated, blanks are
//! ignored, a path that does not exist (or runs through a non-object) contributes nothing, and
//! arrays are kept whole (AEP projects into objects only).

use serde_json::{Map, Value};

/// Keeps only the requested dotted paths of `entity`.
pub fn project(entity: &Map<String, Value>, fields: &str) -> Map<String, Value> {
    let mut out = Map::new();
    for field in fields.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let parts: Vec<&str> = field.split('.').collect();
        let mut source = Some(entity);
        let mut value = None;
        for (index, part) in parts.iter().enumerate() {
            let Some(map) = source else { break };
            match map.get(*part) {
                Some(found) if index + 1 == parts.len() => value = Some(found.clone()),
                Some(Value::Object(next)) => source = Some(next),
                _ => break,
            }
        }
        let Some(value) = value else { continue };
        let mut target = &mut out;
        for (index, part) in parts.iter().enumerate() {
            if index + 1 == parts.len() {
                target.insert((*part).to_owned(), value.clone());
                break;
            }
            let entry = target
                .entry((*part).to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            match entry {
                Value::Object(next) => target = next,
                _ => break,
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keeps_requested_paths_and_ignores_missing_ones() {
        let entity = json!({"person": {"name": {"firstName": "J", "lastName": "D"}, "age": 3},
            "tags": ["a"], "x": 1});
        let projected = project(
            entity.as_object().unwrap(),
            " person.name.firstName, tags ,nope.deeper,x.y,",
        );
        assert_eq!(
            Value::Object(projected),
            json!({"person": {"name": {"firstName": "J"}}, "tags": ["a"]})
        );
    }
}
