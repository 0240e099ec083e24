//! The compiled validator: a resolved XDM schema turned once into a tree of typed nodes
//! (regexes compiled, enums collected, object fields sorted for binary search), then used
//! to walk each record exactly once, collecting every violation.
//!
//! Rules (decided here, documented in the crate README):
//! - fields a schema does not define are rejected (`unknown_field`), as AEP's streaming
//!   validation rejects extraneous keys; maps (`additionalProperties` schemas) take any key;
//!   an `object` with neither `properties` nor `additionalProperties` takes anything;
//! - `null` counts as absent: accepted for optional fields, `missing_required` for required
//!   ones (upserts and CSV rows use null for "no value");
//! - XDM integer types get their ranges: `byte` ±2^7, `short` ±2^15, `int` ±2^31, `long`
//!   (and a bare `integer`) ±(2^53−1); explicit `minimum`/`maximum` narrow further;
//! - `meta:enum` is only display text; only `enum` constrains.

use regex::Regex;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::format::Format;
use crate::violation::{pointer, Segment, Violation, ViolationCode};

/// Largest integer a `long` (and JSON numbers in general, via JavaScript) holds exactly.
const LONG_MAX: i64 = 9_007_199_254_740_991;
/// How deep a schema may nest; deeper means a cycle or an abuse.
const MAX_DEPTH: usize = 64;

/// A compiled field.
#[derive(Debug)]
pub(crate) enum Node {
    /// Anything goes (no type given).
    Any,
    String(Box<StringRule>),
    Number {
        min: Option<f64>,
        max: Option<f64>,
    },
    Integer {
        min: i64,
        max: i64,
    },
    Boolean,
    Object(Box<ObjectNode>),
    /// `additionalProperties` schema: any key, each value checked against the node.
    Map(Box<Node>),
    Array {
        items: Box<Node>,
        min_items: Option<usize>,
        max_items: Option<usize>,
    },
}

#[derive(Debug, Default)]
pub(crate) struct StringRule {
    format: Option<Format>,
    min_length: Option<usize>,
    max_length: Option<usize>,
    pattern: Option<(Regex, String)>,
    allowed: Option<Box<[String]>>,
}

#[derive(Debug, Default)]
pub(crate) struct ObjectNode {
    /// Sorted by name for binary search.
    fields: Vec<(Box<str>, Node)>,
    required: Box<[Box<str>]>,
}

impl ObjectNode {
    fn field(&self, name: &str) -> Option<&Node> {
        self.fields
            .binary_search_by(|(key, _)| key.as_ref().cmp(name))
            .ok()
            .and_then(|index| self.fields.get(index))
            .map(|(_, node)| node)
    }
}

fn invalid(path: &str, reason: impl Into<String>) -> Error {
    Error::InvalidSchema {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn usize_keyword(schema: &Map<String, Value>, key: &str, path: &str) -> Result<Option<usize>> {
    match schema.get(key) {
        None => Ok(None),
        Some(value) => value
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| invalid(path, format!("{key} must be a non-negative integer"))),
    }
}

fn number_keyword(schema: &Map<String, Value>, key: &str, path: &str) -> Result<Option<f64>> {
    match schema.get(key) {
        None => Ok(None),
        Some(value) => value
            .as_f64()
            .map(Some)
            .ok_or_else(|| invalid(path, format!("{key} must be a number"))),
    }
}

/// The declared type of a resolved field schema (`object` when only `properties` is given).
pub(crate) fn declared_type(schema: &Map<String, Value>) -> Option<&str> {
    match schema.get("type") {
        Some(Value::String(name)) => Some(name.as_str()),
        // `["string", "null"]`: nullable is how we treat every field anyway.
        Some(Value::Array(names)) => names
            .iter()
            .filter_map(Value::as_str)
            .find(|name| *name != "null"),
        _ if schema.contains_key("properties") => Some("object"),
        _ => None,
    }
}

/// Integer bounds of an XDM integer type.
fn integer_range(xdm_type: Option<&str>) -> (i64, i64) {
    match xdm_type {
        Some("byte") => (-128, 127),
        Some("short") => (-32_768, 32_767),
        Some("int") => (-2_147_483_648, 2_147_483_647),
        _ => (-LONG_MAX, LONG_MAX),
    }
}

/// Compiles a resolved (ref-free) field schema. `path` is the field's record pointer, for
/// errors.
pub(crate) fn compile(schema: &Value, path: &str, depth: usize) -> Result<Node> {
    if depth > MAX_DEPTH {
        return Err(invalid(path, "schema nests too deeply"));
    }
    let Some(schema) = schema.as_object() else {
        return Err(invalid(path, "a field definition must be an object"));
    };
    let node = match declared_type(schema) {
        None => Node::Any,
        Some("string") => {
            let mut rule = StringRule {
                format: schema
                    .get("format")
                    .and_then(Value::as_str)
                    .and_then(Format::parse),
                min_length: usize_keyword(schema, "minLength", path)?,
                max_length: usize_keyword(schema, "maxLength", path)?,
                ..StringRule::default()
            };
            if let Some(pattern) = schema.get("pattern") {
                let text = pattern
                    .as_str()
                    .ok_or_else(|| invalid(path, "pattern must be a string"))?;
                let regex = Regex::new(text)
                    .map_err(|e| invalid(path, format!("pattern does not compile: {e}")))?;
                rule.pattern = Some((regex, text.to_owned()));
            }
            if let Some(values) = schema.get("enum") {
                let values = values
                    .as_array()
                    .ok_or_else(|| invalid(path, "enum must be an array"))?;
                let allowed = values
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| invalid(path, "enum values of a string must be strings"))
                    })
                    .collect::<Result<Vec<_>>>()?;
                rule.allowed = Some(allowed.into_boxed_slice());
            }
            Node::String(Box::new(rule))
        }
        Some("number") => Node::Number {
            min: number_keyword(schema, "minimum", path)?,
            max: number_keyword(schema, "maximum", path)?,
        },
        Some("integer") => {
            let (low, high) = integer_range(schema.get("meta:xdmType").and_then(Value::as_str));
            // Explicit bounds narrow the type's range; they never widen it.
            let min = number_keyword(schema, "minimum", path)?
                .map_or(low, |m| (m.ceil() as i64).max(low));
            let max = number_keyword(schema, "maximum", path)?
                .map_or(high, |m| (m.floor() as i64).min(high));
            Node::Integer { min, max }
        }
        Some("boolean") => Node::Boolean,
        Some("array") => {
            let items = match schema.get("items") {
                Some(items) => compile(items, &format!("{path}/items"), depth + 1)?,
                None => Node::Any,
            };
            Node::Array {
                items: Box::new(items),
                min_items: usize_keyword(schema, "minItems", path)?,
                max_items: usize_keyword(schema, "maxItems", path)?,
            }
        }
        Some("object") => compile_object(schema, path, depth)?,
        Some(other) => return Err(invalid(path, format!("unsupported type {other:?}"))),
    };
    Ok(node)
}

fn compile_object(schema: &Map<String, Value>, path: &str, depth: usize) -> Result<Node> {
    if let Some(properties) = schema.get("properties") {
        let properties = properties
            .as_object()
            .ok_or_else(|| invalid(path, "properties must be an object"))?;
        let mut fields = Vec::with_capacity(properties.len());
        for (name, field) in properties {
            let child = format!("{path}/{name}");
            fields.push((name.as_str().into(), compile(field, &child, depth + 1)?));
        }
        fields.sort_by(|(a, _), (b, _)| Box::<str>::cmp(a, b));
        let required = match schema.get("required") {
            None => Box::default(),
            Some(Value::Array(names)) => names
                .iter()
                .map(|n| {
                    n.as_str()
                        .map(Into::into)
                        .ok_or_else(|| invalid(path, "required must list field names"))
                })
                .collect::<Result<Vec<Box<str>>>>()?
                .into_boxed_slice(),
            Some(_) => return Err(invalid(path, "required must be an array")),
        };
        return Ok(Node::Object(Box::new(ObjectNode { fields, required })));
    }
    match schema.get("additionalProperties") {
        Some(Value::Object(_)) => {
            let values = schema
                .get("additionalProperties")
                .map(|v| compile(v, &format!("{path}/*"), depth + 1))
                .transpose()?
                .unwrap_or(Node::Any);
            Ok(Node::Map(Box::new(values)))
        }
        _ => Ok(Node::Map(Box::new(Node::Any))),
    }
}

/// Walks one record against a compiled root.
pub(crate) struct Walker<'r> {
    path: Vec<Segment<'r>>,
    pub(crate) violations: Vec<Violation>,
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl<'r> Walker<'r> {
    pub(crate) fn new() -> Self {
        Self {
            path: Vec::with_capacity(16),
            violations: Vec::new(),
        }
    }

    fn report(&mut self, code: ViolationCode, message: String) {
        self.violations.push(Violation {
            path: pointer(&self.path),
            code,
            message,
        });
    }

    fn wrong_type(&mut self, expected: &str, value: &Value) {
        let found = type_name(value);
        self.report(
            ViolationCode::WrongType,
            format!("expected {expected}, found {found}"),
        );
    }

    pub(crate) fn walk(&mut self, node: &'r Node, value: &'r Value) {
        match node {
            Node::Any => {}
            Node::String(rule) => match value {
                Value::String(text) => self.string(rule, text),
                other => self.wrong_type("string", other),
            },
            Node::Number { min, max } => match value.as_f64() {
                Some(number) => {
                    if min.is_some_and(|m| number < m) || max.is_some_and(|m| number > m) {
                        self.report(
                            ViolationCode::OutOfRange,
                            format!("{number} is outside {}", range_text(*min, *max)),
                        );
                    }
                }
                None => self.wrong_type("number", value),
            },
            Node::Integer { min, max } => self.integer(*min, *max, value),
            Node::Boolean => {
                if !value.is_boolean() {
                    self.wrong_type("boolean", value);
                }
            }
            Node::Object(object) => match value {
                Value::Object(fields) => self.object(object, fields),
                other => self.wrong_type("object", other),
            },
            Node::Map(values) => match value {
                Value::Object(fields) => {
                    for (key, item) in fields {
                        self.path.push(Segment::Key(key));
                        if item.is_null() {
                            self.wrong_type("a value", item);
                        } else {
                            self.walk(values, item);
                        }
                        self.path.pop();
                    }
                }
                other => self.wrong_type("object", other),
            },
            Node::Array {
                items,
                min_items,
                max_items,
            } => match value {
                Value::Array(elements) => {
                    if min_items.is_some_and(|m| elements.len() < m) {
                        self.report(
                            ViolationCode::TooFewItems,
                            format!(
                                "{} items, at least {} required",
                                elements.len(),
                                min_items.unwrap_or_default()
                            ),
                        );
                    }
                    if max_items.is_some_and(|m| elements.len() > m) {
                        self.report(
                            ViolationCode::TooManyItems,
                            format!(
                                "{} items, at most {} allowed",
                                elements.len(),
                                max_items.unwrap_or_default()
                            ),
                        );
                    }
                    for (index, element) in elements.iter().enumerate() {
                        self.path.push(Segment::Index(index));
                        self.walk(items, element);
                        self.path.pop();
                    }
                }
                other => self.wrong_type("array", other),
            },
        }
    }

    fn string(&mut self, rule: &StringRule, text: &str) {
        if let Some(allowed) = &rule.allowed {
            if !allowed.iter().any(|a| a == text) {
                self.report(
                    ViolationCode::NotInEnum,
                    format!("{text:?} is not one of {}", allowed.join(", ")),
                );
            }
        }
        if rule.min_length.is_some() || rule.max_length.is_some() {
            let length = text.chars().count();
            if let Some(min) = rule.min_length.filter(|m| length < *m) {
                self.report(
                    ViolationCode::TooShort,
                    format!("length {length} is below the minimum {min}"),
                );
            }
            if let Some(max) = rule.max_length.filter(|m| length > *m) {
                self.report(
                    ViolationCode::TooLong,
                    format!("length {length} exceeds the maximum {max}"),
                );
            }
        }
        if let Some((regex, source)) = &rule.pattern {
            if !regex.is_match(text) {
                self.report(
                    ViolationCode::PatternMismatch,
                    format!("{text:?} does not match pattern {source}"),
                );
            }
        }
        if let Some(format) = rule.format {
            if !format.check(text) {
                self.report(
                    ViolationCode::BadFormat,
                    format!("{text:?} is not a valid {}", format.name()),
                );
            }
        }
    }

    fn integer(&mut self, min: i64, max: i64, value: &Value) {
        let Value::Number(number) = value else {
            self.wrong_type("integer", value);
            return;
        };
        let in_range = if let Some(i) = number.as_i64() {
            (min..=max).contains(&i)
        } else if number.as_u64().is_some() {
            // Only values above i64::MAX land here: beyond every XDM integer type.
            false
        } else {
            match number.as_f64() {
                // JSON Schema: a number with a zero fractional part is an integer.
                Some(f) if f.is_finite() && f.fract() == 0.0 => f >= min as f64 && f <= max as f64,
                _ => {
                    self.wrong_type("integer", value);
                    return;
                }
            }
        };
        if !in_range {
            self.report(
                ViolationCode::OutOfRange,
                format!("{number} is outside [{min}, {max}]"),
            );
        }
    }

    fn object(&mut self, node: &'r ObjectNode, fields: &'r Map<String, Value>) {
        for (key, value) in fields {
            self.path.push(Segment::Key(key));
            match node.field(key) {
                Some(child) if !value.is_null() => self.walk(child, value),
                Some(_) => {}
                None => self.report(
                    ViolationCode::UnknownField,
                    format!("field {key:?} is not defined by the schema"),
                ),
            }
            self.path.pop();
        }
        for name in node.required.iter() {
            if fields.get(name.as_ref()).is_none_or(Value::is_null) {
                self.path.push(Segment::Key(name));
                self.report(
                    ViolationCode::MissingRequired,
                    format!("required field {name:?} is missing"),
                );
                self.path.pop();
            }
        }
    }
}

fn range_text(min: Option<f64>, max: Option<f64>) -> String {
    let low = min.map_or("-inf".to_owned(), |m| m.to_string());
    let high = max.map_or("+inf".to_owned(), |m| m.to_string());
    format!("[{low}, {high}]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(schema: Value, record: Value) -> Vec<(String, ViolationCode)> {
        let node = compile(&schema, "", 0).unwrap();
        let mut walker = Walker::new();
        walker.walk(&node, &record);
        walker
            .violations
            .into_iter()
            .map(|v| (v.path, v.code))
            .collect()
    }

    #[test]
    fn integer_types_have_xdm_ranges() {
        let schema = json!({"properties": {
            "b": {"type": "integer", "meta:xdmType": "byte"},
            "s": {"type": "integer", "meta:xdmType": "short", "minimum": 1},
            "l": {"type": "integer"}}});
        assert!(check(
            schema.clone(),
            json!({"b": 127, "s": 1, "l": 9007199254740991_i64})
        )
        .is_empty());
        assert_eq!(
            check(
                schema.clone(),
                json!({"b": 128, "s": 0, "l": 9007199254740992_i64})
            ),
            vec![
                ("/b".into(), ViolationCode::OutOfRange),
                ("/l".into(), ViolationCode::OutOfRange),
                ("/s".into(), ViolationCode::OutOfRange)
            ]
        );
        assert_eq!(
            check(schema, json!({"b": 1.5, "l": 2.0})),
            vec![("/b".into(), ViolationCode::WrongType)]
        );
    }

    #[test]
    fn null_is_absent() {
        let schema = json!({"properties": {"a": {"type": "string"}, "b": {"type": "string"}}, "required": ["b"]});
        assert_eq!(
            check(schema, json!({"a": null, "b": null})),
            vec![("/b".into(), ViolationCode::MissingRequired)]
        );
    }

    #[test]
    fn open_objects_and_maps() {
        let schema = json!({"properties": {
            "free": {"type": "object"},
            "m": {"type": "object", "additionalProperties": {"type": "integer"}}}});
        assert_eq!(
            check(
                schema,
                json!({"free": {"x": [1]}, "m": {"a": 1, "b": "two"}})
            ),
            vec![("/m/b".into(), ViolationCode::WrongType)]
        );
    }

    #[test]
    fn bad_patterns_are_schema_errors() {
        let error = compile(&json!({"type": "string", "pattern": "("}), "/x", 0).unwrap_err();
        assert!(matches!(error, Error::InvalidSchema { ref path, .. } if path == "/x"));
    }
}
