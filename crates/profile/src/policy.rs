//! Merge policies: how a profile's fragments combine on read.
//!
//! Two choices make a policy: the attribute merge (`timestampOrdered`: the most recently
//! updated fragment wins per field; `dataSetPrecedence`: an ordered dataset list wins, and
//! datasets not listed are left out) and the identity graph (`pdg`: every identity of the
//! graph contributes; `none`: only the looked-up identity's fragments).
//!
//! Every sandbox has a built-in policy ([`BUILTIN_ID`], timestamp-ordered over the graph) that
//! needs no setup. It exists virtually until it is edited, is the default while no stored
//! policy is, and cannot be deleted: lookups always have a policy to fall back on.
//!
//! Key: `tenant, "mp", id` in `Table::MergePolicies`, plus `tenant, "mps"` holding the policy
//! set's revision. Every change reads that revision and commits expecting it unchanged, so
//! concurrent edits serialize and the per-class rules (one default; one policy active on
//! edge) cannot be broken by two requests racing. The revision also lets readers cache the
//! policy set and revalidate it with one point read.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tessera_model::Tenant;
use tessera_store::{Direction, Key, ScanRange, Store, Table, WriteBatch};

use crate::error::{Error, Result};

/// Id of the built-in policy.
pub const BUILTIN_ID: &str = "timestampOrdered-pdg";
/// The XDM class profile merge policies apply to.
pub const PROFILE_CLASS: &str = "_xdm.context.profile";
/// Longest `dataSetPrecedence` order accepted (AEP's guardrail: 20 profile datasets).
const MAX_ORDER: usize = 100;

/// Which identities contribute fragments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum GraphType {
    /// Only the looked-up identity.
    None,
    /// Every identity of its graph.
    Pdg,
}

/// How conflicting fields resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MergeType {
    /// Most recently updated fragment wins.
    TimestampOrdered,
    /// The earliest dataset of `order` wins; unlisted datasets are excluded.
    DataSetPrecedence,
}

/// `identityGraph` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityGraph {
    /// `none` or `pdg`.
    #[serde(rename = "type")]
    pub kind: GraphType,
}

/// `attributeMerge` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeMerge {
    /// `timestampOrdered` or `dataSetPrecedence`.
    #[serde(rename = "type")]
    pub kind: MergeType,
    /// Dataset ids, highest priority first (`dataSetPrecedence` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<Vec<String>>,
}

/// `schema` object: the XDM class the policy applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaClass {
    /// Class name, e.g. `_xdm.context.profile`.
    pub name: String,
}

/// A merge policy as stored (the API adds `imsOrgId` and `sandbox`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MergePolicy {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Class.
    pub schema: SchemaClass,
    /// Starts at 1; every change increments it.
    pub version: u64,
    /// Graph choice.
    pub identity_graph: IdentityGraph,
    /// Attribute choice.
    pub attribute_merge: AttributeMerge,
    /// Used by edge lookups and edge segments; one per sandbox.
    pub is_active_on_edge: bool,
    /// The class's default.
    pub default: bool,
    /// Last change, seconds since epoch.
    pub update_epoch: i64,
}

impl MergePolicy {
    /// Whether fragments of the whole identity graph contribute.
    pub fn stitches(&self) -> bool {
        self.identity_graph.kind == GraphType::Pdg
    }

    /// Identifies this exact revision (a changed policy must not serve views made under an
    /// older one).
    pub fn revision_tag(&self) -> String {
        format!("{}@{}", self.id, self.version)
    }
}

/// The built-in policy as it is before anyone edits it.
fn builtin(default: bool) -> MergePolicy {
    MergePolicy {
        id: BUILTIN_ID.to_owned(),
        name: "Default Timebased".to_owned(),
        schema: SchemaClass {
            name: PROFILE_CLASS.to_owned(),
        },
        version: 1,
        identity_graph: IdentityGraph {
            kind: GraphType::Pdg,
        },
        attribute_merge: AttributeMerge {
            kind: MergeType::TimestampOrdered,
            order: None,
        },
        is_active_on_edge: false,
        default,
        update_epoch: 0,
    }
}

/// The user-settable part of a policy, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// Display name.
    pub name: String,
    /// Class.
    pub schema: SchemaClass,
    /// Graph choice.
    pub identity_graph: IdentityGraph,
    /// Attribute choice.
    pub attribute_merge: AttributeMerge,
    /// Edge flag.
    pub is_active_on_edge: bool,
    /// Default flag.
    pub default: bool,
}

/// Fields a client may send back unchanged from a `GET` (read-only, ignored).
const READ_ONLY: [&str; 5] = ["id", "imsOrgId", "sandbox", "version", "updateEpoch"];

fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidPolicy(message.into())
}

/// A boolean, or the strings `"true"`/`"false"` (AEP's own PATCH example sends a string).
fn flag(value: Option<&Value>, field: &str) -> Result<bool> {
    match value {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
        Some(other) => Err(invalid(format!(
            "{field} must be true or false, not {other}"
        ))),
    }
}

fn type_of<'a>(body: &'a Map<String, Value>, object: &str) -> Result<&'a str> {
    body.get(object)
        .and_then(|v| v.get("type"))
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{object}.type is required")))
}

impl Draft {
    /// Parses and validates a create/replace body.
    pub fn from_json(body: &Value) -> Result<Self> {
        let Value::Object(body) = body else {
            return Err(invalid("the body must be a merge policy object"));
        };
        const KNOWN: [&str; 6] = [
            "name",
            "schema",
            "identityGraph",
            "attributeMerge",
            "isActiveOnEdge",
            "default",
        ];
        if let Some(unknown) = body
            .keys()
            .find(|k| !KNOWN.contains(&k.as_str()) && !READ_ONLY.contains(&k.as_str()))
        {
            return Err(invalid(format!("unknown field {unknown}")));
        }
        let name = match body.get("name") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(name)) if name.chars().count() <= 256 => name.trim().to_owned(),
            Some(_) => return Err(invalid("name must be a string of at most 256 characters")),
        };
        let class = body
            .get("schema")
            .and_then(|s| s.get("name"))
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("schema.name is required"))?;
        if class != PROFILE_CLASS {
            return Err(invalid(format!(
                "schema.name {class} is not supported: merge policies apply to {PROFILE_CLASS}"
            )));
        }
        let graph = match type_of(body, "identityGraph")? {
            "none" => GraphType::None,
            "pdg" => GraphType::Pdg,
            other => {
                return Err(invalid(format!(
                    "identityGraph.type {other} is unknown; use none or pdg"
                )))
            }
        };
        let merge_kind = match type_of(body, "attributeMerge")? {
            "timestampOrdered" => MergeType::TimestampOrdered,
            "dataSetPrecedence" => MergeType::DataSetPrecedence,
            other => {
                return Err(invalid(format!(
                "attributeMerge.type {other} is unknown; use timestampOrdered or dataSetPrecedence"
            )))
            }
        };
        let order = match body.get("attributeMerge").and_then(|m| m.get("order")) {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => {
                let mut order = Vec::with_capacity(items.len());
                for item in items {
                    let Some(id) = item.as_str().filter(|s| !s.is_empty()) else {
                        return Err(invalid("attributeMerge.order lists dataset ids (strings)"));
                    };
                    if order.iter().any(|o| o == id) {
                        return Err(invalid(format!(
                            "attributeMerge.order lists dataset {id} twice"
                        )));
                    }
                    order.push(id.to_owned());
                }
                Some(order)
            }
            Some(_) => return Err(invalid("attributeMerge.order must be an array")),
        };
        let order = match (merge_kind, order) {
            (MergeType::DataSetPrecedence, Some(order)) if !order.is_empty() => {
                if order.len() > MAX_ORDER {
                    return Err(invalid(format!(
                        "attributeMerge.order lists more than {MAX_ORDER} datasets"
                    )));
                }
                Some(order)
            }
            (MergeType::DataSetPrecedence, _) => {
                return Err(invalid(
                    "dataSetPrecedence needs attributeMerge.order: the dataset ids, highest priority first",
                ))
            }
            (MergeType::TimestampOrdered, Some(order)) if !order.is_empty() => {
                return Err(invalid(
                    "attributeMerge.order applies only to dataSetPrecedence",
                ))
            }
            (MergeType::TimestampOrdered, _) => None,
        };
        Ok(Draft {
            name,
            schema: SchemaClass {
                name: class.to_owned(),
            },
            identity_graph: IdentityGraph { kind: graph },
            attribute_merge: AttributeMerge {
                kind: merge_kind,
                order,
            },
            is_active_on_edge: flag(body.get("isActiveOnEdge"), "isActiveOnEdge")?,
            default: flag(body.get("default"), "default")?,
        })
    }

    fn of(policy: &MergePolicy) -> Self {
        Draft {
            name: policy.name.clone(),
            schema: policy.schema.clone(),
            identity_graph: policy.identity_graph.clone(),
            attribute_merge: policy.attribute_merge.clone(),
            is_active_on_edge: policy.is_active_on_edge,
            default: policy.default,
        }
    }
}

/// Applies a JSON Patch (an array of operations, or one operation as AEP's own example
/// sends) to `policy`, returning the validated result. Paths may separate levels with `/` or
/// with `.` (`/identityGraph.type`, as AEP documents them).
pub fn patched(policy: &MergePolicy, patch: &Value) -> Result<Draft> {
    let operations: Vec<&Value> = match patch {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![patch],
        _ => return Err(invalid("the body must be a JSON Patch array")),
    };
    let mut document = serde_json::to_value(policy).map_err(|e| Error::Corrupt {
        what: "merge policy",
        reason: e.to_string(),
    })?;
    for operation in operations {
        let op = operation
            .get("op")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("each patch operation needs op"))?;
        let path = operation
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("each patch operation needs path"))?;
        let parts: Vec<&str> = path
            .trim_start_matches('/')
            .split(['/', '.'])
            .filter(|p| !p.is_empty())
            .collect();
        let Some((last, parents)) = parts.split_last() else {
            return Err(invalid("patch path must name a field"));
        };
        if parents.is_empty() && READ_ONLY.contains(last) {
            return Err(invalid(format!("{path} is read-only")));
        }
        let mut target = &mut document;
        for part in parents {
            target = target
                .get_mut(*part)
                .filter(|v| v.is_object())
                .ok_or_else(|| invalid(format!("patch path {path} does not exist")))?;
        }
        let Value::Object(map) = target else {
            return Err(invalid(format!("patch path {path} does not exist")));
        };
        match op {
            "add" | "replace" => {
                let value = operation
                    .get("value")
                    .cloned()
                    .ok_or_else(|| invalid(format!("{op} on {path} needs a value")))?;
                map.insert((*last).to_owned(), value);
            }
            "remove" => {
                map.remove(*last);
            }
            other => {
                return Err(invalid(format!(
                    "patch op {other} is not supported; use add, replace or remove"
                )))
            }
        }
    }
    Draft::from_json(&document)
}

fn policy_key(tenant: &Tenant, id: &str) -> Key {
    Key::tenant(tenant).str("mp").str(id).finish()
}

fn revision_key(tenant: &Tenant) -> Key {
    Key::tenant(tenant).str("mps").finish()
}

fn decode(bytes: &[u8]) -> Result<MergePolicy> {
    serde_json::from_slice(bytes).map_err(|e| Error::Corrupt {
        what: "merge policy",
        reason: e.to_string(),
    })
}

fn encode(policy: &MergePolicy) -> Result<Vec<u8>> {
    serde_json::to_vec(policy).map_err(|e| Error::Corrupt {
        what: "merge policy",
        reason: e.to_string(),
    })
}

/// The sandbox's policies as read at one revision, with what the save preconditions need.
#[derive(Debug, Clone)]
pub struct PolicySet {
    /// Revision of the set (0 before any change).
    pub revision: u64,
    revision_bytes: Option<Vec<u8>>,
    /// Every policy, the built-in included, in id order.
    pub policies: Vec<MergePolicy>,
    /// Whether the built-in has been edited (and so is stored); until then its `default`
    /// flag is derived, never written.
    builtin_stored: bool,
}

impl PolicySet {
    /// A policy by id.
    pub fn get(&self, id: &str) -> Option<&MergePolicy> {
        self.policies.iter().find(|p| p.id == id)
    }

    /// The default policy of `class`: the one marked default, else the built-in.
    pub fn default_for(&self, class: &str) -> MergePolicy {
        self.policies
            .iter()
            .find(|p| p.default && p.schema.name == class)
            .or_else(|| self.get(BUILTIN_ID))
            .cloned()
            .unwrap_or_else(|| builtin(true))
    }
}

/// Reads the revision only (one point read): enough to revalidate a cached [`PolicySet`].
pub fn revision(store: &dyn Store, tenant: &Tenant) -> Result<u64> {
    Ok(read_revision(store, tenant)?.0)
}

fn read_revision(store: &dyn Store, tenant: &Tenant) -> Result<(u64, Option<Vec<u8>>)> {
    let bytes = store.get(Table::MergePolicies, &revision_key(tenant))?;
    let revision = match &bytes {
        Some(b) => u64::from_be_bytes(b.as_slice().try_into().map_err(|_| Error::Corrupt {
            what: "merge policy revision",
            reason: format!("{} bytes, expected 8", b.len()),
        })?),
        None => 0,
    };
    Ok((revision, bytes))
}

/// Reads every policy of the sandbox.
pub fn load(store: &dyn Store, tenant: &Tenant) -> Result<PolicySet> {
    let (revision, revision_bytes) = read_revision(store, tenant)?;
    let prefix = Key::tenant(tenant).str("mp").finish();
    // A sandbox holds a handful of policies (AEP allows 5 per organisation).
    let rows = store.scan(
        Table::MergePolicies,
        &ScanRange::prefix(prefix),
        Direction::Forward,
        10_000,
    )?;
    let mut policies = rows
        .iter()
        .map(|row| decode(&row.value))
        .collect::<Result<Vec<_>>>()?;
    let builtin_stored = policies.iter().any(|p| p.id == BUILTIN_ID);
    if !builtin_stored {
        let other_default = policies
            .iter()
            .any(|p| p.default && p.schema.name == PROFILE_CLASS);
        policies.push(builtin(!other_default));
    }
    policies.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(PolicySet {
        revision,
        revision_bytes,
        policies,
        builtin_stored,
    })
}

/// Per-process cache of each sandbox's [`PolicySet`], revalidated against the stored revision
/// on every use (one point read instead of a scan; never stale, whichever node made the
/// change).
#[derive(Debug, Default)]
pub struct PolicyCache {
    entries: std::sync::Mutex<std::collections::HashMap<Tenant, std::sync::Arc<PolicySet>>>,
}

impl PolicyCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The sandbox's policies as currently stored.
    pub fn get(&self, store: &dyn Store, tenant: &Tenant) -> Result<std::sync::Arc<PolicySet>> {
        let (_, revision_bytes) = read_revision(store, tenant)?;
        {
            let entries = self
                .entries
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(set) = entries.get(tenant) {
                if set.revision_bytes == revision_bytes {
                    return Ok(std::sync::Arc::clone(set));
                }
            }
        }
        let set = std::sync::Arc::new(load(store, tenant)?);
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(tenant.clone(), std::sync::Arc::clone(&set));
        Ok(set)
    }
}

/// Saves `policy` (new or changed) against the set it was derived from, applying the rules
/// that involve other policies: a new default unsets the class's previous default; only one
/// policy may be active on edge. Fails with [`Error::Conflict`] if the set changed since
/// `set` was read (the caller reloads and retries).
fn save(store: &dyn Store, tenant: &Tenant, set: &PolicySet, policy: &MergePolicy) -> Result<()> {
    if policy.is_active_on_edge {
        if let Some(other) = set
            .policies
            .iter()
            .find(|p| p.is_active_on_edge && p.id != policy.id)
        {
            return Err(invalid(format!(
                "merge policy {} is already active on edge; only one policy per sandbox can be",
                other.id
            )));
        }
    }
    let mut batch = WriteBatch::new();
    batch.expect(
        Table::MergePolicies,
        &revision_key(tenant),
        set.revision_bytes.clone(),
    );
    batch.put(
        Table::MergePolicies,
        &revision_key(tenant),
        (set.revision + 1).to_be_bytes().to_vec(),
    );
    if policy.default {
        for other in set
            .policies
            .iter()
            .filter(|p| p.default && p.id != policy.id && p.schema.name == policy.schema.name)
            .filter(|p| p.id != BUILTIN_ID || set.builtin_stored)
        {
            let unset = MergePolicy {
                default: false,
                version: other.version + 1,
                update_epoch: policy.update_epoch,
                ..other.clone()
            };
            batch.put(
                Table::MergePolicies,
                &policy_key(tenant, &unset.id),
                encode(&unset)?,
            );
        }
    }
    batch.put(
        Table::MergePolicies,
        &policy_key(tenant, &policy.id),
        encode(policy)?,
    );
    match store.commit(batch) {
        Ok(_) => Ok(()),
        Err(tessera_store::Error::Conflict { .. }) => Err(Error::Conflict),
        Err(other) => Err(other.into()),
    }
}

/// How many times a policy change is re-read and retried when another change raced it.
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

/// Creates a policy from `draft`; `now` is seconds since epoch.
pub fn create(store: &dyn Store, tenant: &Tenant, draft: Draft, now: i64) -> Result<MergePolicy> {
    let id = uuid::Uuid::new_v4().to_string();
    with_retries(|| {
        let set = load(store, tenant)?;
        let policy = MergePolicy {
            id: id.clone(),
            name: draft.name.clone(),
            schema: draft.schema.clone(),
            version: 1,
            identity_graph: draft.identity_graph.clone(),
            attribute_merge: draft.attribute_merge.clone(),
            is_active_on_edge: draft.is_active_on_edge,
            default: draft.default,
            update_epoch: now,
        };
        save(store, tenant, &set, &policy)?;
        Ok(policy)
    })
}

/// Replaces policy `id` with the result of `change` applied to its current state; `None`
/// when no such policy exists.
pub fn update(
    store: &dyn Store,
    tenant: &Tenant,
    id: &str,
    now: i64,
    change: impl Fn(&MergePolicy) -> Result<Draft>,
) -> Result<Option<MergePolicy>> {
    with_retries(|| {
        let set = load(store, tenant)?;
        let Some(current) = set.get(id) else {
            return Ok(None);
        };
        let draft = change(current)?;
        if current.id == BUILTIN_ID && current.default && !draft.default {
            let others = set
                .policies
                .iter()
                .any(|p| p.default && p.id != BUILTIN_ID && p.schema.name == PROFILE_CLASS);
            if !others {
                return Err(invalid(
                    "the built-in policy stays the default until another policy is made default",
                ));
            }
        }
        if Draft::of(current) == draft {
            return Ok(Some(current.clone()));
        }
        let policy = MergePolicy {
            id: current.id.clone(),
            name: draft.name,
            schema: draft.schema,
            version: current.version + 1,
            identity_graph: draft.identity_graph,
            attribute_merge: draft.attribute_merge,
            is_active_on_edge: draft.is_active_on_edge,
            default: draft.default,
            update_epoch: now,
        };
        save(store, tenant, &set, &policy)?;
        Ok(Some(policy))
    })
}

/// Deletes policy `id`; `false` when it does not exist.
pub fn delete(store: &dyn Store, tenant: &Tenant, id: &str) -> Result<bool> {
    with_retries(|| {
        let set = load(store, tenant)?;
        let Some(current) = set.get(id) else {
            return Ok(false);
        };
        if current.id == BUILTIN_ID {
            return Err(invalid(
                "the built-in merge policy cannot be deleted; edit it, or make another policy the default",
            ));
        }
        if current.is_active_on_edge {
            return Err(invalid(
                "a merge policy active on edge cannot be deleted; set isActiveOnEdge to false first",
            ));
        }
        let mut batch = WriteBatch::new();
        batch
            .expect(
                Table::MergePolicies,
                &revision_key(tenant),
                set.revision_bytes.clone(),
            )
            .put(
                Table::MergePolicies,
                &revision_key(tenant),
                (set.revision + 1).to_be_bytes().to_vec(),
            )
            .delete(Table::MergePolicies, &policy_key(tenant, id));
        // The class keeps a default: an edited (stored) built-in takes the role back.
        if current.default && set.builtin_stored {
            if let Some(builtin) = set.get(BUILTIN_ID) {
                let restored = MergePolicy {
                    default: true,
                    version: builtin.version + 1,
                    ..builtin.clone()
                };
                batch.put(
                    Table::MergePolicies,
                    &policy_key(tenant, BUILTIN_ID),
                    encode(&restored)?,
                );
            }
        }
        match store.commit(batch) {
            Ok(_) => Ok(true),
            Err(tessera_store::Error::Conflict { .. }) => Err(Error::Conflict),
            Err(other) => Err(other.into()),
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use serde_json::json;
    use tessera_store::{Durability, EmbeddedStore, StoreOptions};

    use super::*;

    fn store() -> (tempfile::TempDir, EmbeddedStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(
            dir.path(),
            StoreOptions {
                durability: Durability::Relaxed,
                ..StoreOptions::default()
            },
        )
        .unwrap();
        (dir, store)
    }

    fn tenant() -> Tenant {
        Tenant::parse("ORG@AdobeOrg", "prod").unwrap()
    }

    fn draft(body: Value) -> Draft {
        Draft::from_json(&body).unwrap()
    }

    fn precedence(default: bool) -> Value {
        json!({"name": "crm first", "schema": {"name": "_xdm.context.profile"},
            "identityGraph": {"type": "none"},
            "attributeMerge": {"type": "dataSetPrecedence", "order": ["crm", "web"]},
            "default": default})
    }

    #[test]
    fn the_builtin_is_the_default_until_another_takes_over() {
        let (_dir, store) = store();
        let set = load(&store, &tenant()).unwrap();
        assert_eq!(set.policies.len(), 1);
        assert_eq!(set.default_for(PROFILE_CLASS).id, BUILTIN_ID);

        let mine = create(&store, &tenant(), draft(precedence(true)), 10).unwrap();
        let set = load(&store, &tenant()).unwrap();
        assert_eq!(set.default_for(PROFILE_CLASS).id, mine.id);
        assert!(!set.get(BUILTIN_ID).unwrap().default);

        // A second default unsets the first, bumping its version.
        let second = create(&store, &tenant(), draft(precedence(true)), 11).unwrap();
        let set = load(&store, &tenant()).unwrap();
        assert_eq!(set.default_for(PROFILE_CLASS).id, second.id);
        let first = set.get(&mine.id).unwrap();
        assert!(!first.default);
        assert_eq!(first.version, 2);
        assert_eq!(set.policies.iter().filter(|p| p.default).count(), 1);

        // Deleting the default hands it back to the built-in.
        assert!(delete(&store, &tenant(), &second.id).unwrap());
        let set = load(&store, &tenant()).unwrap();
        assert_eq!(set.default_for(PROFILE_CLASS).id, BUILTIN_ID);
        assert!(set.get(BUILTIN_ID).unwrap().default);
    }

    #[test]
    fn patches_bump_the_version_and_validate() {
        let (_dir, store) = store();
        let mine = create(&store, &tenant(), draft(precedence(false)), 10).unwrap();
        let patched_policy = update(&store, &tenant(), &mine.id, 20, |p| {
            patched(
                p,
                &json!([{"op": "add", "path": "/identityGraph.type", "value": "pdg"},
                        {"op": "replace", "path": "/default", "value": "true"}]),
            )
        })
        .unwrap()
        .unwrap();
        assert_eq!(patched_policy.version, 2);
        assert_eq!(patched_policy.identity_graph.kind, GraphType::Pdg);
        assert!(patched_policy.default);
        assert_eq!(patched_policy.update_epoch, 20);

        let error = update(&store, &tenant(), &mine.id, 21, |p| {
            patched(
                p,
                &json!({"op": "add", "path": "/attributeMerge/type", "value": "timestampOrdered"}),
            )
        })
        .unwrap_err();
        assert!(
            matches!(&error, Error::InvalidPolicy(m) if m.contains("order applies only")),
            "{error}"
        );
        let error = update(&store, &tenant(), &mine.id, 21, |p| {
            patched(p, &json!({"op": "add", "path": "/version", "value": 9}))
        })
        .unwrap_err();
        assert!(matches!(error, Error::InvalidPolicy(_)));
        assert_eq!(
            load(&store, &tenant())
                .unwrap()
                .get(&mine.id)
                .unwrap()
                .version,
            2,
            "refused patches change nothing"
        );
    }

    #[test]
    fn one_policy_active_on_edge_and_it_cannot_be_deleted() {
        let (_dir, store) = store();
        let mut body = precedence(false);
        body["isActiveOnEdge"] = json!(true);
        let edge = create(&store, &tenant(), draft(body.clone()), 1).unwrap();
        let error = create(&store, &tenant(), draft(body), 2).unwrap_err();
        assert!(matches!(&error, Error::InvalidPolicy(m) if m.contains("active on edge")));
        let error = delete(&store, &tenant(), &edge.id).unwrap_err();
        assert!(matches!(&error, Error::InvalidPolicy(m) if m.contains("cannot be deleted")));
        let error = delete(&store, &tenant(), BUILTIN_ID).unwrap_err();
        assert!(matches!(&error, Error::InvalidPolicy(m) if m.contains("built-in")));
    }

    #[test]
    fn drafts_reject_what_aep_rejects() {
        for (body, needle) in [
            (
                json!({"schema": {"name": "_xdm.context.profile"}, "attributeMerge": {"type": "timestampOrdered"}}),
                "identityGraph.type",
            ),
            (
                json!({"schema": {"name": "_xdm.context.profile"}, "identityGraph": {"type": "pdg"}, "attributeMerge": {"type": "dataSetPrecedence"}}),
                "needs attributeMerge.order",
            ),
            (
                json!({"schema": {"name": "_xdm.context.profile"}, "identityGraph": {"type": "auto"}, "attributeMerge": {"type": "timestampOrdered"}}),
                "unknown",
            ),
            (
                json!({"schema": {"name": "_xdm.context.experienceevent"}, "identityGraph": {"type": "pdg"}, "attributeMerge": {"type": "timestampOrdered"}}),
                "not supported",
            ),
            (
                json!({"schema": {"name": "_xdm.context.profile"}, "identityGraph": {"type": "pdg"}, "attributeMerge": {"type": "timestampOrdered"}, "colour": 1}),
                "unknown field",
            ),
        ] {
            let error = Draft::from_json(&body).unwrap_err();
            assert!(error.to_string().contains(needle), "{body}: {error}");
        }
    }

    #[test]
    fn the_cache_follows_every_change() {
        let (_dir, store) = store();
        let cache = PolicyCache::new();
        let first = cache.get(&store, &tenant()).unwrap();
        assert!(std::sync::Arc::ptr_eq(
            &first,
            &cache.get(&store, &tenant()).unwrap()
        ));
        let mine = create(&store, &tenant(), draft(precedence(true)), 1).unwrap();
        assert_eq!(
            cache
                .get(&store, &tenant())
                .unwrap()
                .default_for(PROFILE_CLASS)
                .id,
            mine.id
        );
        update(&store, &tenant(), &mine.id, 2, |p| {
            patched(p, &json!({"op": "add", "path": "/name", "value": "x"}))
        })
        .unwrap();
        assert_eq!(
            cache
                .get(&store, &tenant())
                .unwrap()
                .get(&mine.id)
                .unwrap()
                .name,
            "x"
        );
        delete(&store, &tenant(), &mine.id).unwrap();
        assert!(cache
            .get(&store, &tenant())
            .unwrap()
            .get(&mine.id)
            .is_none());
    }

    #[test]
    fn concurrent_defaults_leave_exactly_one() {
        let (_dir, store) = store();
        let store = std::sync::Arc::new(store);
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let store = std::sync::Arc::clone(&store);
                std::thread::spawn(move || {
                    create(store.as_ref(), &tenant(), draft(precedence(true)), i).unwrap()
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        let set = load(store.as_ref(), &tenant()).unwrap();
        assert_eq!(set.policies.len(), 9);
        assert_eq!(set.policies.iter().filter(|p| p.default).count(), 1);
    }
}
