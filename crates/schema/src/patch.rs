//! JSON Patch (RFC 6902) on schema documents: `add`, `remove`, `replace`, `move`, `copy`,
//! `test`, applied all-or-nothing (on a copy; the caller stores the result only if every
//! operation succeeded).

use serde_json::Value;

use crate::error::{Error, Result};

/// Applies `patch` (a JSON array of operations) to a copy of `doc`.
pub fn apply(doc: &Value, patch: &Value) -> Result<Value> {
    let operations = patch.as_array().ok_or_else(|| Error::InvalidPatch {
        index: 0,
        op: String::new(),
        path: String::new(),
        reason: "a JSON Patch body must be an array of operations".into(),
    })?;
    let mut target = doc.clone();
    for (index, operation) in operations.iter().enumerate() {
        let op = operation
            .get("op")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let path = operation
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let fail = |reason: &str| Error::InvalidPatch {
            index,
            op: op.to_owned(),
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        if operation.get("path").and_then(Value::as_str).is_none() {
            return Err(fail("operation has no string \"path\""));
        }
        let value = || {
            operation
                .get("value")
                .cloned()
                .ok_or_else(|| fail("operation has no \"value\""))
        };
        let from = || {
            operation
                .get("from")
                .and_then(Value::as_str)
                .ok_or_else(|| fail("operation has no string \"from\""))
        };
        match op {
            "add" => add(&mut target, path, value()?).map_err(&fail)?,
            "remove" => {
                remove(&mut target, path).map_err(&fail)?;
            }
            "replace" => {
                remove(&mut target, path).map_err(&fail)?;
                add(&mut target, path, value()?).map_err(&fail)?;
            }
            "move" => {
                let from = from()?;
                if path.starts_with(&format!("{from}/")) {
                    return Err(fail("cannot move a value into itself"));
                }
                let moved = remove(&mut target, from).map_err(&fail)?;
                add(&mut target, path, moved).map_err(&fail)?;
            }
            "copy" => {
                let copied = target
                    .pointer(from()?)
                    .cloned()
                    .ok_or_else(|| fail("\"from\" does not exist"))?;
                add(&mut target, path, copied).map_err(&fail)?;
            }
            "test" => {
                if target.pointer(path) != Some(&value()?) {
                    return Err(fail("test failed: the value differs"));
                }
            }
            _ => {
                return Err(fail(
                    "unknown operation (add, remove, replace, move, copy, test)",
                ))
            }
        }
    }
    Ok(target)
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn split(path: &str) -> std::result::Result<(&str, String), &'static str> {
    if path.is_empty() {
        return Err("the whole document cannot be replaced by a patch");
    }
    let (parent, last) = path.rsplit_once('/').ok_or("a path must start with '/'")?;
    Ok((parent, unescape(last)))
}

fn add(doc: &mut Value, path: &str, value: Value) -> std::result::Result<(), &'static str> {
    let (parent, key) = split(path)?;
    match doc
        .pointer_mut(parent)
        .ok_or("the parent of the path does not exist")?
    {
        Value::Object(object) => {
            object.insert(key, value);
            Ok(())
        }
        Value::Array(array) => {
            if key == "-" {
                array.push(value);
                return Ok(());
            }
            let index: usize = key.parse().map_err(|_| "array index is not a number")?;
            if index > array.len() {
                return Err("array index is out of bounds");
            }
            array.insert(index, value);
            Ok(())
        }
        _ => Err("the parent of the path is not an object or array"),
    }
}

fn remove(doc: &mut Value, path: &str) -> std::result::Result<Value, &'static str> {
    let (parent, key) = split(path)?;
    match doc.pointer_mut(parent).ok_or("the path does not exist")? {
        Value::Object(object) => object.remove(&key).ok_or("the path does not exist"),
        Value::Array(array) => {
            let index: usize = key.parse().map_err(|_| "array index is not a number")?;
            if index >= array.len() {
                return Err("array index is out of bounds");
            }
            Ok(array.remove(index))
        }
        _ => Err("the path does not exist"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documented_schema_patch_applies() {
        let doc = json!({"allOf": [{"$ref": "c"}], "meta:extends": ["c"]});
        let patch = json!([
            {"op": "add", "path": "/meta:extends/-", "value": "fg"},
            {"op": "add", "path": "/allOf/-", "value": {"$ref": "fg"}},
            {"op": "add", "path": "/meta:immutableTags", "value": ["union"]}
        ]);
        let patched = apply(&doc, &patch).unwrap();
        assert_eq!(patched["allOf"][1]["$ref"], "fg");
        assert_eq!(patched["meta:extends"], json!(["c", "fg"]));
        assert_eq!(patched["meta:immutableTags"], json!(["union"]));
    }

    #[test]
    fn every_operation() {
        let doc = json!({"a": {"b": 1}, "list": [1, 2, 3]});
        let patch = json!([
            {"op": "test", "path": "/a/b", "value": 1},
            {"op": "replace", "path": "/a/b", "value": 2},
            {"op": "copy", "from": "/a", "path": "/c"},
            {"op": "move", "from": "/list/0", "path": "/first"},
            {"op": "remove", "path": "/list/1"}
        ]);
        assert_eq!(
            apply(&doc, &patch).unwrap(),
            json!({"a": {"b": 2}, "c": {"b": 2}, "list": [2], "first": 1})
        );
    }

    #[test]
    fn failures_name_the_operation_and_leave_nothing_half_done() {
        let doc = json!({"a": 1});
        let patch =
            json!([{"op": "add", "path": "/b", "value": 2}, {"op": "remove", "path": "/zzz"}]);
        match apply(&doc, &patch) {
            Err(Error::InvalidPatch {
                index, op, path, ..
            }) => {
                assert_eq!((index, op.as_str(), path.as_str()), (1, "remove", "/zzz"));
            }
            other => panic!("{other:?}"),
        }
        assert!(apply(&doc, &json!({"op": "add"})).is_err());
        assert!(apply(&doc, &json!([{"op": "test", "path": "/a", "value": 2}])).is_err());
        assert!(apply(&doc, &json!([{"op": "frobnicate", "path": "/a"}])).is_err());
    }
}
