//! Segment definitions as stored: AEP's `/segment/definitions` object, and the rules for
//! creating, changing and deleting them.
//!
//! Key: `tenant, "sd", id` in `Table::Segments`. The expression is kept as the client sent it
//! (`pql/text` or `pql/json`); [`SegmentDefinition::parsed`] turns it into an AST.
//!
//! Writes ([`create`], [`update`], [`delete`]) validate first and save nothing on error
//! (DESIGN.md invariant 6): the body ([`Draft::from_json`]), the expression's syntax, its
//! types (the caller's `check`, which knows the sandbox's union schema), the merge policy, and
//! the `inSegment` dependencies (each must exist; no cycle; a definition others read cannot
//! be deleted — see [`crate::dependency`]). Every write of a sandbox's definitions also bumps
//! one revision key (`tenant, "sdv"`) under compare-and-set, so that checks which read other
//! definitions (cycles, dependents) cannot race each other; a lost race is re-read and
//! retried. Definitions are control-plane data written rarely; serialising them per sandbox
//! costs nothing that matters.
//!
//! AEP's streaming and edge eligibility is computed for information only ([`eligibility`]):
//! Tessera evaluates every definition continuously or on lookup, so no evaluation type is
//! refused.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tessera_model::Tenant;
use tessera_pql::classify::{self, AudienceKind, Method};
use tessera_pql::Expr;
use tessera_store::{Direction, Key, ScanRange, Store, Table, WriteBatch};

use crate::dependency;
use crate::error::{Error, Result};

/// `expression.format` of PQL text.
pub const PQL_TEXT: &str = "pql/text";
/// `expression.format` of the PQL JSON AST.
pub const PQL_JSON: &str = "pql/json";
/// `schema.name` of a profile segment.
pub const PROFILE_SCHEMA_NAME: &str = "_xdm.context.profile";
/// `schema.id` of a profile segment (the profile union schema).
pub const PROFILE_UNION_ID: &str = "https://ns.adobe.com/xdm/context/profile__union";
/// Longest `name`, in characters.
pub const MAX_NAME_CHARS: usize = 256;

/// `expression`: the PQL of a definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expression {
    /// Always `PQL`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `pql/text` or `pql/json`.
    pub format: String,
    /// The expression (for `pql/json`, the AST as a JSON string).
    pub value: String,
}

/// One `evaluationInfo` flag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enabled {
    /// Whether this evaluation method is on.
    #[serde(default)]
    pub enabled: bool,
}

/// `evaluationInfo`: batch, continuous (streaming) and synchronous (edge).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvaluationInfo {
    /// Batch evaluation.
    #[serde(default)]
    pub batch: Enabled,
    /// Streaming evaluation.
    #[serde(default)]
    pub continuous: Enabled,
    /// Edge (on lookup) evaluation.
    #[serde(default)]
    pub synchronous: Enabled,
}

impl Default for EvaluationInfo {
    /// AEP: omitted means batch.
    fn default() -> Self {
        Self {
            batch: Enabled { enabled: true },
            continuous: Enabled::default(),
            synchronous: Enabled::default(),
        }
    }
}

/// A stored segment definition (the API adds `imsOrgId` and `sandbox`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentDefinition {
    /// Id (UUID).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// `{"name": "_xdm.context.profile"}`.
    pub schema: Value,
    /// Always `ups`.
    pub profile_instance_id: String,
    /// The PQL.
    pub expression: Expression,
    /// Merge policy the profiles are merged with; `None`: the sandbox default at evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_policy_id: Option<String>,
    /// Evaluation methods.
    #[serde(default)]
    pub evaluation_info: EvaluationInfo,
    /// Segments this one reads through `inSegment` (kept for dependency checks).
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// Membership lifetime in days, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_in_days: Option<u32>,
    /// Other fields the client sent (`dataGovernancePolicy`, `payloadSchema`, ...), kept as is.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, Value>,
    /// Created, ms.
    pub creation_time: i64,
    /// Last change, ms.
    pub update_time: i64,
    /// Last change, seconds.
    pub update_epoch: i64,
}

impl SegmentDefinition {
    /// A batch-evaluated definition of the profile class, named `id`, made at `at_ms`, the
    /// sandbox's default merge policy and defaults for the rest: evaluations that are not
    /// stored definitions (previews) and tests.
    pub fn new(
        id: impl Into<String>,
        expression: Expression,
        dependencies: Vec<String>,
        at_ms: i64,
    ) -> Self {
        let id = id.into();
        Self {
            name: id.clone(),
            id,
            description: String::new(),
            schema: serde_json::json!({ "name": tessera_profile::policy::PROFILE_CLASS }),
            profile_instance_id: "ups".into(),
            expression,
            merge_policy_id: None,
            evaluation_info: EvaluationInfo::default(),
            dependencies,
            ttl_in_days: None,
            extra: serde_json::Map::new(),
            creation_time: at_ms,
            update_time: at_ms,
            update_epoch: at_ms / 1000,
        }
    }

    /// The expression as an AST.
    pub fn parsed(&self) -> Result<tessera_pql::Expr> {
        self.expression.parsed()
    }
}

impl Expression {
    /// A PQL text expression.
    pub fn pql_text(value: impl Into<String>) -> Self {
        Self {
            kind: "PQL".into(),
            format: "pql/text".into(),
            value: value.into(),
        }
    }

    /// The expression as an AST; errors name `expression.value` (with the line:column of a
    /// pql/text syntax error, or the JSON pointer of a bad pql/json node).
    pub fn parsed(&self) -> Result<tessera_pql::Expr> {
        let invalid = |message: String| Error::Invalid {
            field: "expression.value".into(),
            message,
        };
        match self.format.as_str() {
            PQL_TEXT => tessera_pql::parse(&self.value).map_err(|e| invalid(e.to_string())),
            PQL_JSON => {
                let json: Value = serde_json::from_str(&self.value)
                    .map_err(|e| invalid(format!("pql/json value is not JSON: {e}")))?;
                tessera_pql::json::from_json(&json).map_err(|e| invalid(e.to_string()))
            }
            other => Err(Error::Invalid {
                field: "expression.format".into(),
                message: format!(
                    "expression format {other} is not supported; use pql/text or pql/json"
                ),
            }),
        }
    }
}

fn prefix(tenant: &Tenant) -> Key {
    Key::tenant(tenant).str("sd").finish()
}

/// Key of definition `id`.
pub fn key(tenant: &Tenant, id: &str) -> Key {
    Key::extend(&prefix(tenant)).str(id).finish()
}

fn decode(bytes: &[u8]) -> Result<SegmentDefinition> {
    serde_json::from_slice(bytes).map_err(|e| Error::Corrupt {
        what: "segment definition",
        reason: e.to_string(),
    })
}

/// Encodes a definition for storage.
pub fn encode(definition: &SegmentDefinition) -> Result<Vec<u8>> {
    serde_json::to_vec(definition).map_err(|e| Error::Corrupt {
        what: "segment definition",
        reason: e.to_string(),
    })
}

/// One definition with its stored bytes (for compare-and-set updates).
pub fn get_raw(
    store: &dyn Store,
    tenant: &Tenant,
    id: &str,
) -> Result<Option<(SegmentDefinition, Vec<u8>)>> {
    store
        .get(Table::Segments, &key(tenant, id))?
        .map(|bytes| decode(&bytes).map(|d| (d, bytes)))
        .transpose()
}

/// One definition.
pub fn get(store: &dyn Store, tenant: &Tenant, id: &str) -> Result<Option<SegmentDefinition>> {
    Ok(get_raw(store, tenant, id)?.map(|(d, _)| d))
}

/// Every definition of the sandbox, in id order (AEP allows 4,000 per sandbox).
pub fn list(store: &dyn Store, tenant: &Tenant) -> Result<Vec<SegmentDefinition>> {
    store
        .scan(
            Table::Segments,
            &ScanRange::prefix(prefix(tenant)),
            Direction::Forward,
            100_000,
        )?
        .iter()
        .map(|row| decode(&row.value))
        .collect()
}

/// Adds the write of `definition` to `batch`, on condition that its stored bytes are still
/// `expected` (`None`: it must not exist yet).
pub fn put(
    batch: &mut WriteBatch,
    tenant: &Tenant,
    definition: &SegmentDefinition,
    expected: Option<Vec<u8>>,
) -> Result<()> {
    let key = key(tenant, &definition.id);
    batch
        .expect(Table::Segments, &key, expected)
        .put(Table::Segments, &key, encode(definition)?);
    Ok(())
}

// ---------------------------------------------------------------------------- drafts

/// Fields the API computes or owns. A client may send them back from a read (AEP's PATCH
/// example does, with zeros); they are ignored rather than refused or kept in `extra`.
const READ_ONLY: [&str; 11] = [
    "id",
    "imsOrgId",
    "sandbox",
    "creationTime",
    "updateTime",
    "updateEpoch",
    "baselineTime",
    "profileInstanceId",
    "dependents",
    "dependencies",
    "aepEligibility",
];

/// Fields [`Draft::from_json`] reads.
const KNOWN: [&str; 7] = [
    "name",
    "description",
    "schema",
    "expression",
    "evaluationInfo",
    "mergePolicyId",
    "ttlInDays",
];

fn invalid(field: &str, message: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// The user-settable part of a definition, validated, with its expression parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    /// Display name (1 to [`MAX_NAME_CHARS`] characters).
    pub name: String,
    /// Description (may be empty).
    pub description: String,
    /// `{"name": "_xdm.context.profile"}` or `{"id": "...profile__union"}`, as sent.
    pub schema: Value,
    /// The expression as sent.
    pub expression: Expression,
    /// The expression parsed (syntax checked; types are checked by [`create`]/[`update`]).
    pub parsed: Expr,
    /// Merge policy, when given.
    pub merge_policy_id: Option<String>,
    /// Evaluation methods (batch when none is enabled).
    pub evaluation_info: EvaluationInfo,
    /// Membership lifetime in days.
    pub ttl_in_days: Option<u32>,
    /// Unknown fields, kept as sent (`dataGovernancePolicy`, `payloadSchema`, ...).
    pub extra: Map<String, Value>,
}

/// Reads and parses an `expression` object: `{"type": "PQL", "format": "pql/text" |
/// "pql/json", "value": ...}`. A pql/json `value` may be the AST as a JSON string (as AEP
/// sends it) or as a JSON object; it is stored as a string either way.
pub fn read_expression(value: Option<&Value>) -> Result<(Expression, Expr)> {
    let Some(Value::Object(object)) = value else {
        return Err(invalid(
            "expression",
            "expression is required: {\"type\": \"PQL\", \"format\": \"pql/text\" or \"pql/json\", \"value\": ...}",
        ));
    };
    match object.get("type") {
        // AEP documents PQL as the only type; an omitted type can only mean it.
        None | Some(Value::Null) => {}
        Some(Value::String(kind)) if kind == "PQL" => {}
        Some(other) => {
            return Err(invalid(
                "expression.type",
                format!("expression type {other} is not supported; use PQL"),
            ))
        }
    }
    let format = match object.get("format") {
        Some(Value::String(f)) if f == PQL_TEXT || f == PQL_JSON => f.clone(),
        Some(other) => {
            return Err(invalid(
                "expression.format",
                format!("expression format {other} is not supported; use pql/text or pql/json"),
            ))
        }
        None => {
            return Err(invalid(
                "expression.format",
                "expression.format is required: pql/text or pql/json",
            ))
        }
    };
    let value = match object.get("value") {
        Some(Value::String(text)) => text.clone(),
        Some(ast @ Value::Object(_)) if format == PQL_JSON => ast.to_string(),
        _ => {
            return Err(invalid(
                "expression.value",
                "expression.value is required: the PQL as a string",
            ))
        }
    };
    let expression = Expression {
        kind: "PQL".into(),
        format,
        value,
    };
    let parsed = expression.parsed()?;
    Ok((expression, parsed))
}

fn read_schema(value: Option<&Value>) -> Result<Value> {
    let wrong = || {
        invalid(
            "schema",
            format!(
                "segment definitions apply to profiles: schema must be {{\"name\": \"{PROFILE_SCHEMA_NAME}\"}} or {{\"id\": \"{PROFILE_UNION_ID}\"}}"
            ),
        )
    };
    let Some(value) = value.filter(|v| !v.is_null()) else {
        // Every AEP example sends it; omitted can only mean the one class segments apply to.
        return Ok(json!({ "name": PROFILE_SCHEMA_NAME }));
    };
    if let Some(name) = value.get("name").and_then(Value::as_str) {
        return if name == PROFILE_SCHEMA_NAME {
            Ok(json!({ "name": name }))
        } else {
            Err(wrong())
        };
    }
    match value.get("id").and_then(Value::as_str) {
        Some(id) if id == PROFILE_UNION_ID || id == "_xdm.context.profile__union" => {
            Ok(json!({ "id": id }))
        }
        _ => Err(wrong()),
    }
}

fn read_enabled(info: &Map<String, Value>, method: &str) -> Result<Enabled> {
    let field = format!("evaluationInfo.{method}");
    match info.get(method) {
        None | Some(Value::Null) => Ok(Enabled::default()),
        Some(Value::Object(flag)) => match flag.get("enabled") {
            None | Some(Value::Null) => Ok(Enabled::default()),
            Some(Value::Bool(enabled)) => Ok(Enabled { enabled: *enabled }),
            Some(_) => Err(invalid(
                &format!("{field}.enabled"),
                format!("{field}.enabled must be true or false"),
            )),
        },
        Some(_) => Err(invalid(
            &field,
            format!("{field} must be an object {{\"enabled\": true|false}}"),
        )),
    }
}

fn read_evaluation_info(value: Option<&Value>) -> Result<EvaluationInfo> {
    let info = match value {
        None | Some(Value::Null) => return Ok(EvaluationInfo::default()),
        Some(Value::Object(info)) => info,
        Some(_) => {
            return Err(invalid(
                "evaluationInfo",
                "evaluationInfo must be an object with batch, continuous and synchronous",
            ))
        }
    };
    if let Some(unknown) = info
        .keys()
        .find(|k| !["batch", "continuous", "synchronous"].contains(&k.as_str()))
    {
        return Err(invalid(
            &format!("evaluationInfo.{unknown}"),
            format!("evaluationInfo.{unknown} is unknown; use batch, continuous or synchronous"),
        ));
    }
    let read = EvaluationInfo {
        batch: read_enabled(info, "batch")?,
        continuous: read_enabled(info, "continuous")?,
        synchronous: read_enabled(info, "synchronous")?,
    };
    // AEP: an omitted evaluationInfo means batch; one with nothing enabled means the same.
    if !read.batch.enabled && !read.continuous.enabled && !read.synchronous.enabled {
        return Ok(EvaluationInfo::default());
    }
    Ok(read)
}

impl Draft {
    /// Parses and validates a create body (or the result of a PATCH). Read-only fields are
    /// ignored; unknown fields are kept in `extra`.
    pub fn from_json(body: &Value) -> Result<Self> {
        let Value::Object(body) = body else {
            return Err(invalid("", "the body must be a segment definition object"));
        };
        let name = match body.get("name") {
            Some(Value::String(name)) => name.trim().to_owned(),
            None | Some(Value::Null) => String::new(),
            Some(_) => return Err(invalid("name", "name must be a string")),
        };
        if name.is_empty() {
            return Err(invalid("name", "name is required"));
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(invalid(
                "name",
                format!("name is longer than {MAX_NAME_CHARS} characters"),
            ));
        }
        let description = match body.get("description") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(d)) => d.clone(),
            Some(_) => return Err(invalid("description", "description must be a string")),
        };
        let (expression, parsed) = read_expression(body.get("expression"))?;
        let merge_policy_id = match body.get("mergePolicyId") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) if !id.is_empty() => Some(id.clone()),
            Some(_) => {
                return Err(invalid(
                    "mergePolicyId",
                    "mergePolicyId must be a merge policy id",
                ))
            }
        };
        let ttl_in_days = match body.get("ttlInDays") {
            None | Some(Value::Null) => None,
            Some(value) => match value.as_u64().and_then(|d| u32::try_from(d).ok()) {
                Some(days) if days > 0 => Some(days),
                _ => {
                    return Err(invalid(
                        "ttlInDays",
                        "ttlInDays must be a positive whole number of days",
                    ))
                }
            },
        };
        let extra: Map<String, Value> = body
            .iter()
            .filter(|(k, _)| !KNOWN.contains(&k.as_str()) && !READ_ONLY.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(Draft {
            name,
            description,
            schema: read_schema(body.get("schema"))?,
            expression,
            parsed,
            merge_policy_id,
            evaluation_info: read_evaluation_info(body.get("evaluationInfo"))?,
            ttl_in_days,
            extra,
        })
    }
}

/// The user-settable fields of `definition` as a body [`Draft::from_json`] reads back: the
/// base a PATCH is applied to.
fn editable(definition: &SegmentDefinition) -> Result<Map<String, Value>> {
    let Value::Object(mut map) = serde_json::to_value(definition).map_err(|e| Error::Corrupt {
        what: "segment definition",
        reason: e.to_string(),
    })?
    else {
        return Err(Error::Corrupt {
            what: "segment definition",
            reason: "does not serialize to an object".into(),
        });
    };
    let extra = match map.remove("extra") {
        Some(Value::Object(extra)) => extra,
        _ => Map::new(),
    };
    map.retain(|k, _| !READ_ONLY.contains(&k.as_str()));
    for (k, v) in extra {
        map.entry(k).or_insert(v);
    }
    Ok(map)
}

/// Applies a PATCH body to `definition`'s settable fields:
/// - an object (AEP sends the whole definition): its top-level fields replace the current
///   ones, `null` resets a field to its default, absent fields are kept;
/// - a JSON Patch array (or one operation object) of `add` / `replace` / `remove` with JSON
///   Pointer paths such as `/expression/value`.
fn patched(definition: &SegmentDefinition, body: &Value) -> Result<Draft> {
    let mut document = editable(definition)?;
    match body {
        Value::Object(fields) if fields.contains_key("op") && fields.contains_key("path") => {
            apply_json_patch(&mut document, std::slice::from_ref(body))?;
        }
        Value::Object(fields) => {
            for (k, v) in fields {
                if READ_ONLY.contains(&k.as_str()) {
                    continue;
                }
                if v.is_null() {
                    document.remove(k);
                } else {
                    document.insert(k.clone(), v.clone());
                }
            }
        }
        Value::Array(operations) => apply_json_patch(&mut document, operations)?,
        _ => {
            return Err(invalid(
                "",
                "the body must be the segment definition or a JSON Patch array",
            ))
        }
    }
    Draft::from_json(&Value::Object(document))
}

fn apply_json_patch(document: &mut Map<String, Value>, operations: &[Value]) -> Result<()> {
    let mut root = Value::Object(std::mem::take(document));
    for (index, operation) in operations.iter().enumerate() {
        let field = format!("patch[{index}]");
        let op = operation.get("op").and_then(Value::as_str).unwrap_or("");
        let path = operation
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(&field, "each patch operation needs a path"))?;
        let Some((parent_path, last)) = path.rsplit_once('/') else {
            return Err(invalid(
                &field,
                format!("path {path} is not a JSON pointer"),
            ));
        };
        let last = last.replace("~1", "/").replace("~0", "~");
        if parent_path.is_empty() && READ_ONLY.contains(&last.as_str()) {
            continue;
        }
        let Some(parent) = root.pointer_mut(parent_path) else {
            return Err(invalid(
                &field,
                format!("path {parent_path} does not exist"),
            ));
        };
        match (op, parent) {
            ("add" | "replace", Value::Object(object)) => {
                let value = operation
                    .get("value")
                    .ok_or_else(|| invalid(&field, format!("{op} needs a value")))?;
                if op == "replace" && !object.contains_key(&last) {
                    return Err(invalid(&field, format!("path {path} does not exist")));
                }
                object.insert(last, value.clone());
            }
            ("remove", Value::Object(object)) => {
                if object.remove(&last).is_none() {
                    return Err(invalid(&field, format!("path {path} does not exist")));
                }
            }
            ("add" | "replace" | "remove", _) => {
                return Err(invalid(
                    &field,
                    format!("path {path} must name a field of an object"),
                ))
            }
            (other, _) => {
                return Err(invalid(
                    &field,
                    format!("op {other:?} is not supported; use add, replace or remove"),
                ))
            }
        }
    }
    if let Value::Object(map) = root {
        *document = map;
    }
    Ok(())
}

// ---------------------------------------------------------------------------- writes

fn revision_key(tenant: &Tenant) -> Key {
    Key::tenant(tenant).str("sdv").finish()
}

/// The sandbox's definitions revision: its stored bytes (for compare-and-set) and value.
fn read_revision(store: &dyn Store, tenant: &Tenant) -> Result<(Option<Vec<u8>>, u64)> {
    let bytes = store.get(Table::Segments, &revision_key(tenant))?;
    let value = match bytes.as_deref() {
        None => 0,
        Some(raw) => {
            let array: [u8; 8] = raw.try_into().map_err(|_| Error::Corrupt {
                what: "segment definitions revision",
                reason: format!("{} bytes, expected 8", raw.len()),
            })?;
            u64::from_be_bytes(array)
        }
    };
    Ok((bytes, value))
}

/// The sandbox's definitions revision: changes with every create, update and delete, so a
/// cache of compiled definitions is revalidated with one point read.
pub fn revision(store: &dyn Store, tenant: &Tenant) -> Result<u64> {
    Ok(read_revision(store, tenant)?.1)
}

/// Starts the batch of a definitions write: it succeeds only if no other write of the
/// sandbox's definitions committed since `read_revision`.
fn revision_batch(tenant: &Tenant, revision: (Option<Vec<u8>>, u64)) -> WriteBatch {
    let (bytes, value) = revision;
    let mut batch = WriteBatch::new();
    batch
        .expect(Table::Segments, &revision_key(tenant), bytes)
        .put(
            Table::Segments,
            &revision_key(tenant),
            value.wrapping_add(1).to_be_bytes().to_vec(),
        );
    batch
}

fn commit(store: &dyn Store, batch: WriteBatch) -> Result<()> {
    match store.commit(batch) {
        Ok(_) => Ok(()),
        Err(tessera_store::Error::Conflict { .. }) => Err(Error::Conflict),
        Err(other) => Err(other.into()),
    }
}

/// How many times a write is re-read and retried when another write raced it.
const SAVE_ATTEMPTS: usize = 32;

fn with_retries<T>(mut attempt: impl FnMut() -> Result<T>) -> Result<T> {
    for _ in 1..SAVE_ATTEMPTS {
        match attempt() {
            Err(Error::Conflict) => continue,
            other => return other,
        }
    }
    attempt()
}

fn check_merge_policy(store: &dyn Store, tenant: &Tenant, id: Option<&str>) -> Result<()> {
    let Some(id) = id else {
        return Ok(());
    };
    if tessera_profile::policy::load(store, tenant)?
        .get(id)
        .is_none()
    {
        return Err(invalid(
            "mergePolicyId",
            format!("merge policy {id} does not exist in this sandbox"),
        ));
    }
    Ok(())
}

fn check_dependencies_exist(store: &dyn Store, tenant: &Tenant, ids: &[String]) -> Result<()> {
    for id in ids {
        if get_raw(store, tenant, id)?.is_none() {
            return Err(Error::UnknownDependency { id: id.clone() });
        }
    }
    Ok(())
}

fn from_draft(draft: Draft, id: String, creation_time: i64, now_ms: i64) -> SegmentDefinition {
    SegmentDefinition {
        dependencies: draft.parsed.segment_dependencies(),
        id,
        name: draft.name,
        description: draft.description,
        schema: draft.schema,
        profile_instance_id: "ups".into(),
        expression: draft.expression,
        merge_policy_id: draft.merge_policy_id,
        evaluation_info: draft.evaluation_info,
        ttl_in_days: draft.ttl_in_days,
        extra: draft.extra,
        creation_time,
        update_time: now_ms,
        update_epoch: now_ms.div_euclid(1000),
    }
}

/// Creates a definition from `draft`: `check` type-checks the expression (against the
/// sandbox's union schemas; the caller knows them), the merge policy and every `inSegment`
/// target must exist. `now_ms` is milliseconds since the epoch. Nothing is saved on error.
pub fn create(
    store: &dyn Store,
    tenant: &Tenant,
    draft: Draft,
    check: &dyn Fn(&Expr) -> Result<()>,
    now_ms: i64,
) -> Result<SegmentDefinition> {
    check(&draft.parsed)?;
    check_merge_policy(store, tenant, draft.merge_policy_id.as_deref())?;
    let definition = from_draft(draft, uuid::Uuid::new_v4().to_string(), now_ms, now_ms);
    // A new id has no dependents yet, so a create cannot close a cycle.
    with_retries(|| {
        let revision = read_revision(store, tenant)?;
        check_dependencies_exist(store, tenant, &definition.dependencies)?;
        let mut batch = revision_batch(tenant, revision);
        put(&mut batch, tenant, &definition, None)?;
        for child in &definition.dependencies {
            dependency::add_edge(&mut batch, tenant, child, &definition.id);
        }
        commit(store, batch)?;
        Ok(definition.clone())
    })
}

/// Changes definition `id` with a PATCH `body` (the whole object, as AEP sends it; a JSON
/// Patch array is accepted too — see `patched`). The result is validated as [`create`]
/// does, and must not make `id` depend on itself through `inSegment`. Dependencies are
/// re-computed from the new expression. Fails with [`Error::NotFound`] for an unknown id.
pub fn update(
    store: &dyn Store,
    tenant: &Tenant,
    id: &str,
    body: &Value,
    check: &dyn Fn(&Expr) -> Result<()>,
    now_ms: i64,
) -> Result<SegmentDefinition> {
    with_retries(|| {
        let revision = read_revision(store, tenant)?;
        let (current, raw) =
            get_raw(store, tenant, id)?.ok_or_else(|| Error::NotFound(id.to_owned()))?;
        let draft = patched(&current, body)?;
        check(&draft.parsed)?;
        if draft.merge_policy_id != current.merge_policy_id {
            check_merge_policy(store, tenant, draft.merge_policy_id.as_deref())?;
        }
        let updated = from_draft(draft, current.id.clone(), current.creation_time, now_ms);
        let unchanged = SegmentDefinition {
            update_time: current.update_time,
            update_epoch: current.update_epoch,
            ..updated.clone()
        } == current;
        if unchanged {
            // Nothing to save: keep the times, so a repeated PATCH is idempotent.
            return Ok(current);
        }
        let new_deps = updated.dependencies.clone();
        check_dependencies_exist(
            store,
            tenant,
            &new_deps
                .iter()
                .filter(|d| d.as_str() != id)
                .cloned()
                .collect::<Vec<_>>(),
        )?;
        let cycle = dependency::find_cycle(id, &mut |node| {
            if node == id {
                return Ok(new_deps.clone());
            }
            Ok(get(store, tenant, node)?
                .map(|d| d.dependencies)
                .unwrap_or_default())
        })?;
        if let Some(path) = cycle {
            return Err(Error::Cycle { path });
        }
        let mut batch = revision_batch(tenant, revision);
        put(&mut batch, tenant, &updated, Some(raw))?;
        for gone in current
            .dependencies
            .iter()
            .filter(|d| !new_deps.contains(d))
        {
            dependency::remove_edge(&mut batch, tenant, gone, id);
        }
        for child in new_deps
            .iter()
            .filter(|d| !current.dependencies.contains(d))
        {
            dependency::add_edge(&mut batch, tenant, child, id);
        }
        commit(store, batch)?;
        Ok(updated)
    })
}

/// Deletes definition `id`; `false` when it does not exist. Refused with [`Error::InUse`]
/// while other definitions read it with `inSegment`.
pub fn delete(store: &dyn Store, tenant: &Tenant, id: &str) -> Result<bool> {
    with_retries(|| {
        let revision = read_revision(store, tenant)?;
        let Some((current, raw)) = get_raw(store, tenant, id)? else {
            return Ok(false);
        };
        let dependents = dependency::dependents(store, tenant, id)?;
        if !dependents.is_empty() {
            return Err(Error::InUse {
                id: id.to_owned(),
                dependents,
            });
        }
        let key = key(tenant, id);
        let mut batch = revision_batch(tenant, revision);
        batch
            .expect(Table::Segments, &key, Some(raw))
            .delete(Table::Segments, &key);
        for child in &current.dependencies {
            dependency::remove_edge(&mut batch, tenant, child, id);
        }
        commit(store, batch)?;
        Ok(true)
    })
}

// ---------------------------------------------------------------------------- reads

/// AEP's streaming and edge eligibility of an expression (a Tessera extension shown as
/// `aepEligibility`): information for users who also run AEP, never a refusal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Eligibility {
    /// `batch`, `streaming` or `edge`: the most specific method AEP would accept.
    pub method: &'static str,
    /// Whether AEP would evaluate it as streaming.
    pub streaming: bool,
    /// Whether AEP would evaluate it on the edge.
    pub edge: bool,
    /// The kind of query (`profile only`, `single event`, `segment of segments`, ...).
    pub shape: String,
    /// Why AEP would not stream it (empty when it would).
    pub not_streaming: Vec<String>,
    /// Why AEP would not evaluate it on the edge (empty when it would).
    pub not_edge: Vec<String>,
}

/// What an audience is for the edge rules: profile-only or event-reading. `None` when its
/// expression does not parse (stored data from elsewhere).
pub fn audience_kind(definition: &SegmentDefinition) -> Option<AudienceKind> {
    let expr = definition.parsed().ok()?;
    Some(if expr.uses_events() {
        AudienceKind::Events
    } else {
        AudienceKind::ProfileOnly
    })
}

/// AEP eligibility of `expr`; `kind_of` tells what each `inSegment` target is.
pub fn eligibility(expr: &Expr, kind_of: &dyn Fn(&str) -> Option<AudienceKind>) -> Eligibility {
    let c = classify::classify_with(expr, kind_of);
    Eligibility {
        method: c.method.as_str(),
        streaming: c.method != Method::Batch,
        edge: c.method == Method::Edge,
        shape: c.shape,
        not_streaming: c.not_streaming,
        not_edge: c.not_edge,
    }
}

/// A definition with what is derived from its neighbours, as reads show it.
#[derive(Debug, Clone)]
pub struct Described {
    /// The stored definition.
    pub definition: SegmentDefinition,
    /// Definitions that read it with `inSegment`.
    pub dependents: Vec<String>,
    /// AEP eligibility; `None` when the stored expression does not parse.
    pub eligibility: Option<Eligibility>,
}

/// Describes one definition, reading its neighbours from the store.
pub fn describe(
    store: &dyn Store,
    tenant: &Tenant,
    definition: SegmentDefinition,
) -> Result<Described> {
    let dependents = dependency::dependents(store, tenant, &definition.id)?;
    let mut kinds: Vec<(String, Option<AudienceKind>)> = Vec::new();
    for child in &definition.dependencies {
        let kind = get(store, tenant, child)?.as_ref().and_then(audience_kind);
        kinds.push((child.clone(), kind));
    }
    let kind_of = |id: &str| kinds.iter().find(|(k, _)| k == id).and_then(|(_, v)| *v);
    let eligibility = definition
        .parsed()
        .ok()
        .map(|expr| eligibility(&expr, &kind_of));
    Ok(Described {
        definition,
        dependents,
        eligibility,
    })
}

/// Describes every definition of a full listing ([`list`]) without further reads.
pub fn describe_all(definitions: Vec<SegmentDefinition>) -> Vec<Described> {
    let kinds: std::collections::HashMap<String, Option<AudienceKind>> = definitions
        .iter()
        .map(|d| (d.id.clone(), audience_kind(d)))
        .collect();
    let mut dependents: std::collections::HashMap<String, Vec<String>> =
        std::collections::HashMap::new();
    for d in &definitions {
        for child in &d.dependencies {
            dependents
                .entry(child.clone())
                .or_default()
                .push(d.id.clone());
        }
    }
    let kind_of = |id: &str| kinds.get(id).copied().flatten();
    definitions
        .into_iter()
        .map(|definition| {
            let eligibility = definition
                .parsed()
                .ok()
                .map(|expr| eligibility(&expr, &kind_of));
            Described {
                dependents: dependents.remove(&definition.id).unwrap_or_default(),
                definition,
                eligibility,
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use tessera_store::{Durability, EmbeddedStore, StoreOptions};

    use super::*;

    fn store() -> (tempfile::TempDir, EmbeddedStore) {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions {
            durability: Durability::Relaxed,
            ..StoreOptions::default()
        };
        let store = EmbeddedStore::open(dir.path(), options).unwrap();
        (dir, store)
    }

    fn tenant() -> Tenant {
        Tenant::parse("ORG@AdobeOrg", "prod").unwrap()
    }

    fn no_check(_: &Expr) -> Result<()> {
        Ok(())
    }

    fn body(name: &str, pql: &str) -> Value {
        json!({"name": name, "expression": {"type": "PQL", "format": "pql/text", "value": pql}})
    }

    fn make(store: &dyn Store, name: &str, pql: &str) -> SegmentDefinition {
        let draft = Draft::from_json(&body(name, pql)).unwrap();
        create(store, &tenant(), draft, &no_check, 1_000_000).unwrap()
    }

    #[test]
    fn draft_defaults_and_keeps_unknown_fields() {
        let mut value = body("a", r#"person.name = "x""#);
        value["dataGovernancePolicy"] = json!({"excludeOptOut": true});
        value["creationTime"] = json!(0);
        value["id"] = json!("ignored");
        let draft = Draft::from_json(&value).unwrap();
        assert_eq!(draft.evaluation_info, EvaluationInfo::default());
        assert_eq!(draft.schema, json!({"name": PROFILE_SCHEMA_NAME}));
        assert_eq!(
            draft.extra.keys().collect::<Vec<_>>(),
            ["dataGovernancePolicy"]
        );
    }

    #[test]
    fn draft_refusals_name_the_field() {
        let field_of = |v: Value| match Draft::from_json(&v) {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field_of(json!({"expression": body("a", "a = 1")["expression"]})),
            "name"
        );
        assert_eq!(field_of(body(&"n".repeat(257), "a = 1")), "name");
        assert_eq!(field_of(json!({"name": "a"})), "expression");
        assert_eq!(field_of(body("a", "a = ")), "expression.value");
        let mut bad_schema = body("a", "a = 1");
        bad_schema["schema"] = json!({"name": "_xdm.context.experienceevent"});
        assert_eq!(field_of(bad_schema), "schema");
        let mut bad_eval = body("a", "a = 1");
        bad_eval["evaluationInfo"] = json!({"continuous": {"enabled": "yes"}});
        assert_eq!(field_of(bad_eval), "evaluationInfo.continuous.enabled");
        let mut bad_ttl = body("a", "a = 1");
        bad_ttl["ttlInDays"] = json!(-3);
        assert_eq!(field_of(bad_ttl), "ttlInDays");
    }

    #[test]
    fn dependencies_are_tracked_both_ways() {
        let (_dir, store) = store();
        let child = make(&store, "child", "person.age > 3");
        let parent = make(&store, "parent", &format!(r#"inSegment("{}")"#, child.id));
        assert_eq!(parent.dependencies, [child.id.as_str()]);
        assert_eq!(
            dependency::dependents(&store, &tenant(), &child.id).unwrap(),
            [parent.id.as_str()]
        );
        let grand = make(&store, "grand", &format!(r#"inSegment("{}")"#, parent.id));
        assert_eq!(
            dependency::affected(&store, &tenant(), &child.id).unwrap(),
            [parent.id.clone(), grand.id.clone()]
        );
        // Deleting a definition others read is refused, naming them.
        match delete(&store, &tenant(), &child.id) {
            Err(Error::InUse { dependents, .. }) => assert_eq!(dependents, [parent.id.as_str()]),
            other => panic!("{other:?}"),
        }
        // Once the parent no longer reads it, it can go.
        let body = json!({"expression": {"format": "pql/text", "value": "person.age > 9"}});
        let changed = update(&store, &tenant(), &parent.id, &body, &no_check, 2_000_000).unwrap();
        assert!(changed.dependencies.is_empty());
        assert_eq!(changed.creation_time, 1_000_000);
        assert_eq!(changed.update_epoch, 2_000);
        assert!(dependency::dependents(&store, &tenant(), &child.id)
            .unwrap()
            .is_empty());
        assert!(delete(&store, &tenant(), &child.id).unwrap());
        assert!(!delete(&store, &tenant(), &child.id).unwrap());
    }

    #[test]
    fn unknown_dependency_and_cycles_save_nothing() {
        let (_dir, store) = store();
        let draft = Draft::from_json(&body("a", r#"inSegment("nope")"#)).unwrap();
        assert!(matches!(
            create(&store, &tenant(), draft, &no_check, 1),
            Err(Error::UnknownDependency { id }) if id == "nope"
        ));
        assert!(list(&store, &tenant()).unwrap().is_empty());

        let a = make(&store, "a", "person.age > 3");
        let b = make(&store, "b", &format!(r#"inSegment("{}")"#, a.id));
        let c = make(&store, "c", &format!(r#"inSegment("{}")"#, b.id));
        let closing = json!({"expression": {"format": "pql/text",
            "value": format!(r#"inSegment("{}")"#, c.id)}});
        match update(&store, &tenant(), &a.id, &closing, &no_check, 5) {
            Err(Error::Cycle { path }) => {
                assert_eq!(
                    path,
                    [a.id.clone(), c.id.clone(), b.id.clone(), a.id.clone()]
                )
            }
            other => panic!("{other:?}"),
        }
        let itself = json!({"expression": {"format": "pql/text",
            "value": format!(r#"inSegment("{}")"#, a.id)}});
        assert!(matches!(
            update(&store, &tenant(), &a.id, &itself, &no_check, 5),
            Err(Error::Cycle { .. })
        ));
        assert_eq!(get(&store, &tenant(), &a.id).unwrap().unwrap(), a);
    }

    #[test]
    fn check_failure_saves_nothing() {
        let (_dir, store) = store();
        let draft = Draft::from_json(&body("a", "person.age > 3")).unwrap();
        let refuse = |_: &Expr| -> Result<()> { Err(invalid("expression.value", "no")) };
        assert!(create(&store, &tenant(), draft, &refuse, 1).is_err());
        assert!(list(&store, &tenant()).unwrap().is_empty());
    }

    #[test]
    fn json_patch_and_whole_object_patch() {
        let (_dir, store) = store();
        let a = make(&store, "a", "person.age > 3");
        let ops = json!([
            {"op": "replace", "path": "/name", "value": "renamed"},
            {"op": "add", "path": "/evaluationInfo/continuous", "value": {"enabled": true}},
            {"op": "add", "path": "/dataGovernancePolicy", "value": {"excludeOptOut": true}}
        ]);
        let patched = update(&store, &tenant(), &a.id, &ops, &no_check, 7).unwrap();
        assert_eq!(patched.name, "renamed");
        assert!(patched.evaluation_info.continuous.enabled);
        assert!(patched.extra.contains_key("dataGovernancePolicy"));
        // AEP's whole-object PATCH, read-only zeros included.
        let whole = json!({"id": a.id, "name": "whole", "creationTime": 0, "updateTime": 0,
            "expression": {"type": "PQL", "format": "pql/text", "value": "person.age > 4"}});
        let replaced = update(&store, &tenant(), &a.id, &whole, &no_check, 9).unwrap();
        assert_eq!(replaced.name, "whole");
        assert_eq!(replaced.creation_time, a.creation_time);
        assert!(replaced.extra.contains_key("dataGovernancePolicy"));
        let bad = json!([{"op": "replace", "path": "/nope/x", "value": 1}]);
        assert!(update(&store, &tenant(), &a.id, &bad, &no_check, 9).is_err());
        assert!(matches!(
            update(&store, &tenant(), "missing", &whole, &no_check, 9),
            Err(Error::NotFound(_))
        ));
    }

    #[test]
    fn eligibility_is_reported_not_enforced() {
        let (_dir, store) = store();
        let profile_only = make(&store, "p", r#"homeAddress.country.equals("US", false)"#);
        let d = describe(&store, &tenant(), profile_only).unwrap();
        let e = d.eligibility.unwrap();
        assert_eq!((e.method, e.streaming, e.edge), ("edge", true, true));
        let mut frequency = body("f", r#"xEvent[eventType = "x"].count() > 3"#);
        frequency["evaluationInfo"] = json!({"continuous": {"enabled": true}});
        let draft = Draft::from_json(&frequency).unwrap();
        let created = create(&store, &tenant(), draft, &no_check, 1).unwrap();
        assert!(created.evaluation_info.continuous.enabled);
        let all = describe_all(list(&store, &tenant()).unwrap());
        let f = all.iter().find(|d| d.definition.name == "f").unwrap();
        let e = f.eligibility.as_ref().unwrap();
        assert!(!e.streaming);
        assert!(!e.not_streaming.is_empty());
    }
}
