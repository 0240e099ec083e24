//! Segment definitions as stored: AEP's `/segment/definitions` object.
//!
//! Key: `tenant, "sd", id` in `Table::Segments`. The expression is kept as the client sent it
//! (`pql/text` or `pql/json`); [`SegmentDefinition::parsed`] turns it into an AST.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tessera_model::Tenant;
use tessera_store::{Direction, Key, ScanRange, Scope, Store, Table, WriteBatch};

use crate::error::{Error, Result};

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
    /// The expression as an AST.
    pub fn parsed(&self) -> Result<tessera_pql::Expr> {
        let invalid = |message: String| Error::Invalid {
            field: "expression.value".into(),
            message,
        };
        match self.expression.format.as_str() {
            "pql/text" => {
                tessera_pql::parse(&self.expression.value).map_err(|e| invalid(e.to_string()))
            }
            "pql/json" => {
                let json: Value = serde_json::from_str(&self.expression.value)
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
    Key::builder(&Scope::Tenant(tenant.clone()))
        .str("sd")
        .finish()
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
