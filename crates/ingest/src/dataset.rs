//! Catalog datasets (`/data/foundation/catalog/dataSets`).
//!
//! A dataset is stored as the catalog object clients see (AEP's field names, unknown
//! client fields kept, as the Catalog service does), under `Table::Datasets` keyed by
//! tenant and id. Server-owned fields (`created`, `updated`, `imsOrg`, users, `version`)
//! cannot be set by clients. The flags ingestion needs are read from the tags AEP uses:
//! `unifiedProfile: ["enabled:true", "isUpsert:true"]` and `unifiedIdentity: ["enabled:true"]`.
//!
//! Retention: `extensions.adobe_unifiedProfile.rowExpiration.ttlValue` (an ISO-8601 period,
//! see [`crate::retention`]; `null` disables) bounds how long an experience-event dataset's
//! events stay in the profile store. `extensions.adobe_lakeHouse.rowExpiration.ttlValue` is
//! validated and stored the same way but has no effect: Tessera has no data lake. Both are
//! refused on datasets whose schema is not of the ExperienceEvent class. A PATCH merges
//! `extensions` key by key (the two settings are independent, as in AEP); every other
//! top-level field is replaced.
//!
//! Stored besides the dataset, in the same atomic batch: the system-scope retention index
//! `"ttl", org, sandbox, dataset id` → the `ttlValue` text, present exactly while the dataset
//! has a profile TTL. Reads of events scan one sandbox's entries to hide expired events, and
//! the retention sweeper scans all of them, without decoding every dataset of every tenant.

use serde_json::{Map, Value};
use tessera_model::Tenant;
use tessera_schema::{SchemaRegistry, XdmClass};
use tessera_store::{Direction, Key, KeyReader, ScanRange, Scope, Store, Table, WriteBatch};

use crate::error::{Error, Result};
use crate::ids;
use crate::retention::Ttl;

/// Path of the profile-store TTL in a catalog object.
pub const PROFILE_TTL_FIELD: &str = "extensions.adobe_unifiedProfile.rowExpiration.ttlValue";
/// Path of the data-lake TTL (stored, without effect here).
pub const LAKE_TTL_FIELD: &str = "extensions.adobe_lakeHouse.rowExpiration.ttlValue";

/// Fields only the server writes.
const SERVER_FIELDS: [&str; 7] = [
    "id",
    "created",
    "updated",
    "imsOrg",
    "createdUser",
    "updatedUser",
    "version",
];

/// A dataset: its id and catalog object.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Catalog id.
    pub id: String,
    /// The catalog object without its id.
    pub doc: Map<String, Value>,
}

fn tag_values<'a>(doc: &'a Map<String, Value>, tag: &str) -> impl Iterator<Item = &'a str> {
    doc.get("tags")
        .and_then(|tags| tags.get(tag))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

impl Dataset {
    /// Display name.
    pub fn name(&self) -> &str {
        self.doc
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// `schemaRef.id`.
    pub fn schema_id(&self) -> Option<&str> {
        self.doc
            .get("schemaRef")
            .and_then(|r| r.get("id"))
            .and_then(Value::as_str)
    }

    /// Whether records feed the profile store (`tags.unifiedProfile` has `enabled:true`).
    pub fn profile_enabled(&self) -> bool {
        tag_values(&self.doc, "unifiedProfile").any(|v| v == "enabled:true")
    }

    /// Whether records feed the identity graph (`tags.unifiedIdentity` has `enabled:true`).
    pub fn identity_enabled(&self) -> bool {
        tag_values(&self.doc, "unifiedIdentity").any(|v| v == "enabled:true")
    }

    /// Whether records are partial updates deep-merged into the fragment.
    pub fn upsert(&self) -> bool {
        tag_values(&self.doc, "unifiedProfile").any(|v| v == "isUpsert:true")
    }

    /// The profile-store retention of the dataset's events
    /// (`extensions.adobe_unifiedProfile.rowExpiration.ttlValue`); `None` when absent or
    /// `null`. Values are validated when written, so a stored value always parses.
    pub fn event_ttl(&self) -> Option<Ttl> {
        ttl_text(&self.doc, "adobe_unifiedProfile").and_then(|text| Ttl::parse(text).ok())
    }

    /// The object as AEP returns it inside `{id: {...}}`, optionally only some properties.
    pub fn view(&self, properties: Option<&[&str]>) -> Value {
        match properties {
            None => Value::Object(self.doc.clone()),
            Some(wanted) => Value::Object(
                self.doc
                    .iter()
                    .filter(|(k, _)| wanted.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
        }
    }
}

/// `extensions.{extension}.rowExpiration.ttlValue` when it is a string.
fn ttl_text<'a>(doc: &'a Map<String, Value>, extension: &str) -> Option<&'a str> {
    doc.get("extensions")?
        .get(extension)?
        .get("rowExpiration")?
        .get("ttlValue")?
        .as_str()
}

/// Checks one `extensions.{extension}.rowExpiration.ttlValue`: each level an object, the
/// value a valid period or `null`, and a non-null value only on experience-event datasets.
fn check_row_expiration(doc: &Map<String, Value>, extension: &str, class: &XdmClass) -> Result<()> {
    let Some(extensions) = doc.get("extensions") else {
        return Ok(());
    };
    if !extensions.is_object() {
        return Err(Error::invalid("extensions", "must be an object"));
    }
    let Some(settings) = extensions.get(extension) else {
        return Ok(());
    };
    let field = format!("extensions.{extension}");
    if !settings.is_object() {
        return Err(Error::invalid(field, "must be an object"));
    }
    let Some(expiration) = settings.get("rowExpiration") else {
        return Ok(());
    };
    let field = format!("{field}.rowExpiration");
    if !expiration.is_object() {
        return Err(Error::invalid(field, "must be an object"));
    }
    let field = format!("{field}.ttlValue");
    match expiration.get("ttlValue") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(text)) => {
            Ttl::parse(text).map_err(|e| Error::invalid(field.clone(), e.to_string()))?;
            if *class != XdmClass::ExperienceEvent {
                return Err(Error::invalid(
                    field,
                    "row expiration applies only to datasets of the XDM ExperienceEvent class (time-series schemas)",
                ));
            }
            Ok(())
        }
        Some(_) => Err(Error::invalid(
            field,
            "must be an ISO-8601 period string (e.g. \"P30D\") or null",
        )),
    }
}

/// Merges `patch` into `target`: objects key by key, anything else (including `null`)
/// replaces, so `{"ttlValue": null}` is stored as an explicit `null` as AEP shows it.
fn merge_into(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                match target.get_mut(&key) {
                    Some(existing) if existing.is_object() && value.is_object() => {
                        merge_into(existing, value)
                    }
                    _ => {
                        target.insert(key, value);
                    }
                }
            }
        }
        (target, patch) => *target = patch,
    }
}

fn retention_prefix() -> Key {
    Key::builder(&Scope::System).str("ttl").finish()
}

fn retention_tenant_prefix(tenant: &Tenant) -> Key {
    Key::extend(&retention_prefix())
        .str(tenant.org.as_str())
        .str(tenant.sandbox.as_str())
        .finish()
}

fn retention_key(tenant: &Tenant, id: &str) -> Key {
    Key::extend(&retention_tenant_prefix(tenant))
        .str(id)
        .finish()
}

/// Adds to `batch` the retention-index change that keeps it in step with `dataset`.
fn index_retention(batch: &mut WriteBatch, tenant: &Tenant, dataset: &Dataset) {
    let key = retention_key(tenant, &dataset.id);
    match dataset.event_ttl() {
        Some(ttl) => batch.put(Table::Datasets, &key, ttl.as_str().as_bytes().to_vec()),
        None => batch.delete(Table::Datasets, &key),
    };
}

fn decode_ttl(bytes: &[u8]) -> Result<Ttl> {
    let text = std::str::from_utf8(bytes).map_err(|e| Error::Corrupt {
        what: "retention index entry",
        reason: e.to_string(),
    })?;
    Ttl::parse(text).map_err(|e| Error::Corrupt {
        what: "retention index entry",
        reason: e.to_string(),
    })
}

/// The datasets of `tenant` with a profile TTL, and their TTLs (datasets without one are
/// not listed). Reads only the retention index: one short prefix scan.
pub fn event_ttls(store: &dyn Store, tenant: &Tenant) -> Result<Vec<(String, Ttl)>> {
    let prefix = retention_tenant_prefix(tenant);
    let prefix_len = prefix.as_bytes().len();
    // A sandbox holds at most a few hundred datasets (AEP's cap).
    let rows = store.scan(
        Table::Datasets,
        &ScanRange::prefix(prefix),
        Direction::Forward,
        100_000,
    )?;
    rows.into_iter()
        .map(|row| {
            let id = row
                .key
                .get(prefix_len..)
                .map(KeyReader::new)
                .ok_or(tessera_store::Error::MalformedKey {
                    offset: prefix_len,
                    reason: "retention key shorter than its prefix",
                })
                .and_then(|mut reader| reader.string())?;
            Ok((id, decode_ttl(&row.value)?))
        })
        .collect()
}

/// One entry of the retention index across every tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionEntry {
    /// Whose dataset.
    pub tenant: Tenant,
    /// Dataset id.
    pub dataset: String,
    /// Its profile TTL.
    pub ttl: Ttl,
}

/// Every dataset of every tenant with a profile TTL, at most `limit`, after the index key
/// `after` (returned as the second element, for the next call) — the retention sweeper's
/// work list.
pub fn all_event_ttls(
    store: &dyn Store,
    after: Option<Vec<u8>>,
    limit: usize,
) -> Result<(Vec<RetentionEntry>, Option<Vec<u8>>)> {
    let mut range = ScanRange::prefix(retention_prefix());
    range.resume_after = after;
    let rows = store.scan(Table::Datasets, &range, Direction::Forward, limit)?;
    let last = rows.last().map(|row| row.key.clone());
    let entries = rows
        .into_iter()
        .map(|row| {
            let (_, mut reader) = KeyReader::with_scope(&row.key)?;
            let _tag = reader.string()?;
            let (org, sandbox, dataset) = (reader.string()?, reader.string()?, reader.string()?);
            let tenant = Tenant::parse(&org, &sandbox).map_err(|e| Error::Corrupt {
                what: "retention index key",
                reason: e.to_string(),
            })?;
            Ok(RetentionEntry {
                tenant,
                dataset,
                ttl: decode_ttl(&row.value)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((entries, last))
}

/// Whether `tenant` has a dataset `id` (the sweeper's check before trusting an index entry).
pub fn exists(store: &dyn Store, tenant: &Tenant, id: &str) -> Result<bool> {
    Ok(store.get(Table::Datasets, &key(tenant, id))?.is_some())
}

/// Drops the retention-index entry of a dataset that no longer exists (its sandbox was
/// deleted, which removes tenant-scoped data but not this system-scope entry).
pub fn forget_retention(store: &dyn Store, tenant: &Tenant, id: &str) -> Result<()> {
    let dataset_key = key(tenant, id);
    let mut batch = WriteBatch::new();
    // Only if the dataset is still gone, so a racing re-create keeps its entry.
    batch
        .expect(Table::Datasets, &dataset_key, None)
        .delete(Table::Datasets, &retention_key(tenant, id));
    match store.commit(batch) {
        Ok(_) | Err(tessera_store::Error::Conflict { .. }) => Ok(()),
        Err(other) => Err(other.into()),
    }
}

/// Datasets and their labels share the table under different leading elements, so a scan of
/// datasets never meets a label record.
fn datasets_prefix(tenant: &Tenant) -> Key {
    Key::tenant(tenant).str("d").finish()
}

fn key(tenant: &Tenant, id: &str) -> Key {
    Key::extend(&datasets_prefix(tenant)).str(id).finish()
}

fn labels_key(tenant: &Tenant, id: &str) -> Key {
    Key::tenant(tenant).str("l").str(id).finish()
}

fn decode(id: String, bytes: &[u8]) -> Result<Dataset> {
    let doc = serde_json::from_slice::<Map<String, Value>>(bytes).map_err(|e| Error::Corrupt {
        what: "dataset",
        reason: e.to_string(),
    })?;
    Ok(Dataset { id, doc })
}

fn encode(dataset: &Dataset) -> Result<Vec<u8>> {
    serde_json::to_vec(&dataset.doc).map_err(|e| Error::Corrupt {
        what: "dataset",
        reason: e.to_string(),
    })
}

/// Whether any dataset of `tenant` is built on `schema_id` (schemas in use cannot be
/// deleted). Works on the store alone so the schema registry can call it.
pub fn uses_schema(store: &dyn Store, tenant: &Tenant, schema_id: &str) -> Result<bool> {
    let prefix = datasets_prefix(tenant);
    // AEP caps a sandbox at a few hundred datasets; a full scan is cheap and rare.
    let rows = store.scan(
        Table::Datasets,
        &ScanRange::prefix(prefix),
        Direction::Forward,
        100_000,
    )?;
    for row in rows {
        let doc = serde_json::from_slice::<Map<String, Value>>(&row.value).map_err(|e| {
            Error::Corrupt {
                what: "dataset",
                reason: e.to_string(),
            }
        })?;
        let used = doc
            .get("schemaRef")
            .and_then(|r| r.get("id"))
            .and_then(Value::as_str)
            == Some(schema_id);
        if used {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Dataset operations over the store.
#[derive(Clone)]
pub struct Catalog {
    store: std::sync::Arc<dyn Store>,
    schemas: SchemaRegistry,
}

impl Catalog {
    /// A catalog over `store`, checking schema references against `schemas`.
    pub fn new(store: std::sync::Arc<dyn Store>, schemas: SchemaRegistry) -> Self {
        Self { store, schemas }
    }

    /// Reads one dataset.
    pub fn get(&self, tenant: &Tenant, id: &str) -> Result<Dataset> {
        match self.store.get(Table::Datasets, &key(tenant, id))? {
            Some(bytes) => decode(id.to_owned(), &bytes),
            None => Err(Error::DatasetNotFound { id: id.to_owned() }),
        }
    }

    /// Datasets in creation order, skipping `start`, at most `limit`.
    pub fn list(&self, tenant: &Tenant, start: usize, limit: usize) -> Result<Vec<Dataset>> {
        let prefix = datasets_prefix(tenant);
        let prefix_len = prefix.as_bytes().len();
        let rows = self.store.scan(
            Table::Datasets,
            &ScanRange::prefix(prefix),
            Direction::Forward,
            start.saturating_add(limit),
        )?;
        rows.into_iter()
            .skip(start)
            .map(|row| {
                let id = row
                    .key
                    .get(prefix_len..)
                    .map(KeyReader::new)
                    .ok_or(tessera_store::Error::MalformedKey {
                        offset: prefix_len,
                        reason: "dataset key shorter than its scope",
                    })
                    .and_then(|mut reader| reader.string())?;
                decode(id, &row.value)
            })
            .collect()
    }

    /// Checks a catalog object's client fields; returns the schema's class.
    fn check(&self, tenant: &Tenant, doc: &Map<String, Value>) -> Result<XdmClass> {
        match doc.get("name") {
            Some(Value::String(name)) if !name.trim().is_empty() => {}
            Some(_) => return Err(Error::invalid("name", "must be a non-empty string")),
            None => return Err(Error::invalid("name", "is required")),
        }
        if let Some(description) = doc.get("description") {
            if !description.is_string() {
                return Err(Error::invalid("description", "must be a string"));
            }
        }
        let schema_id = match doc.get("schemaRef") {
            Some(Value::Object(schema_ref)) => match schema_ref.get("id") {
                Some(Value::String(id)) if !id.is_empty() => id.clone(),
                _ => return Err(Error::invalid("schemaRef.id", "must be a non-empty string")),
            },
            Some(_) => return Err(Error::invalid("schemaRef", "must be an object with an id")),
            None => return Err(Error::invalid("schemaRef", "is required")),
        };
        if let Some(tags) = doc.get("tags") {
            let Some(tags) = tags.as_object() else {
                return Err(Error::invalid("tags", "must be an object of string arrays"));
            };
            for (tag, values) in tags {
                let all_strings = values
                    .as_array()
                    .is_some_and(|a| a.iter().all(Value::is_string));
                if !all_strings {
                    return Err(Error::invalid(
                        format!("tags.{tag}"),
                        "must be an array of strings",
                    ));
                }
            }
        }
        let schema = self
            .schemas
            .compiled(tenant, &schema_id)
            .map_err(|e| Error::invalid("schemaRef.id", e.to_string()))?;
        let probe = Dataset {
            id: String::new(),
            doc: doc.clone(),
        };
        if probe.upsert() && *schema.class() != XdmClass::Profile {
            return Err(Error::invalid(
                "tags.unifiedProfile",
                "isUpsert:true is only allowed for datasets of the XDM Individual Profile class",
            ));
        }
        if probe.profile_enabled() && !schema.profile_enabled() {
            return Err(Error::invalid(
                "tags.unifiedProfile",
                format!("schema {schema_id} is not enabled for Profile (meta:immutableTags must contain \"union\")"),
            ));
        }
        check_row_expiration(doc, "adobe_unifiedProfile", schema.class())?;
        check_row_expiration(doc, "adobe_lakeHouse", schema.class())?;
        Ok(schema.class().clone())
    }

    /// Creates a dataset from a client object; returns it with its new id.
    pub fn create(
        &self,
        tenant: &Tenant,
        mut doc: Map<String, Value>,
        user: &str,
    ) -> Result<Dataset> {
        for field in SERVER_FIELDS {
            doc.remove(field);
        }
        self.check(tenant, &doc)?;
        let now = ids::now_ms();
        doc.insert("imsOrg".into(), Value::String(tenant.org.to_string()));
        doc.insert("created".into(), now.into());
        doc.insert("updated".into(), now.into());
        doc.insert("createdUser".into(), user.into());
        doc.insert("updatedUser".into(), user.into());
        doc.insert("version".into(), "1.0.0".into());
        doc.entry("state")
            .or_insert_with(|| Value::String("DRAFT".into()));
        let dataset = Dataset {
            id: ids::catalog_id(now),
            doc,
        };
        let key = key(tenant, &dataset.id);
        let mut batch = WriteBatch::new();
        batch
            .expect(Table::Datasets, &key, None)
            .put(Table::Datasets, &key, encode(&dataset)?);
        index_retention(&mut batch, tenant, &dataset);
        self.store.commit(batch)?;
        Ok(dataset)
    }

    /// Applies a partial object: top-level fields replace, except `extensions`, which merges
    /// key by key (module docs). The schema cannot change.
    pub fn patch(
        &self,
        tenant: &Tenant,
        id: &str,
        patch: Map<String, Value>,
        user: &str,
    ) -> Result<Dataset> {
        let key = key(tenant, id);
        let stored = self
            .store
            .get(Table::Datasets, &key)?
            .ok_or_else(|| Error::DatasetNotFound { id: id.to_owned() })?;
        let mut dataset = decode(id.to_owned(), &stored)?;
        if let Some(schema_ref) = patch.get("schemaRef") {
            let new_id = schema_ref.get("id").and_then(Value::as_str);
            if new_id != dataset.schema_id() {
                return Err(Error::InvalidState(
                    "a dataset's schemaRef cannot change; create a new dataset".into(),
                ));
            }
        }
        for (field, value) in patch {
            if SERVER_FIELDS.contains(&field.as_str()) {
                continue;
            }
            match dataset.doc.get_mut(&field) {
                Some(existing) if field == "extensions" => merge_into(existing, value),
                _ => {
                    dataset.doc.insert(field, value);
                }
            }
        }
        self.check(tenant, &dataset.doc)?;
        dataset.doc.insert("updated".into(), ids::now_ms().into());
        dataset.doc.insert("updatedUser".into(), user.into());
        let mut batch = WriteBatch::new();
        batch.expect(Table::Datasets, &key, Some(stored)).put(
            Table::Datasets,
            &key,
            encode(&dataset)?,
        );
        index_retention(&mut batch, tenant, &dataset);
        self.store.commit(batch)?;
        Ok(dataset)
    }

    /// Removes a dataset from the catalog. Its profile data is removed by a profile delete
    /// job, not here.
    pub fn delete(&self, tenant: &Tenant, id: &str) -> Result<()> {
        let key = key(tenant, id);
        let stored = self
            .store
            .get(Table::Datasets, &key)?
            .ok_or_else(|| Error::DatasetNotFound { id: id.to_owned() })?;
        let mut batch = WriteBatch::new();
        batch
            .expect(Table::Datasets, &key, Some(stored))
            .delete(Table::Datasets, &key)
            .delete(Table::Datasets, &labels_key(tenant, id))
            .delete(Table::Datasets, &retention_key(tenant, id));
        self.store.commit(batch)?;
        Ok(())
    }

    /// The dataset's data usage labels (empty when none were set).
    pub fn labels(&self, tenant: &Tenant, id: &str) -> Result<Labels> {
        self.get(tenant, id)?;
        match self.store.get(Table::Datasets, &labels_key(tenant, id))? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
                what: "dataset labels",
                reason: e.to_string(),
            }),
            None => Ok(Labels::default()),
        }
    }

    /// Sets the labels: `create` refuses when labels exist already (AEP's POST), otherwise
    /// they are replaced (PUT).
    pub fn set_labels(
        &self,
        tenant: &Tenant,
        id: &str,
        labels: Labels,
        create: bool,
    ) -> Result<Labels> {
        self.get(tenant, id)?;
        labels.check()?;
        let key = labels_key(tenant, id);
        let current = self.store.get(Table::Datasets, &key)?;
        if create && current.is_some() {
            return Err(Error::AlreadyExists {
                what: "labels of dataset",
                id: id.to_owned(),
            });
        }
        let bytes = serde_json::to_vec(&labels).map_err(|e| Error::Corrupt {
            what: "dataset labels",
            reason: e.to_string(),
        })?;
        let mut batch = WriteBatch::new();
        batch
            .expect(Table::Datasets, &key, current)
            .put(Table::Datasets, &key, bytes);
        self.store.commit(batch)?;
        Ok(labels)
    }

    /// Removes the labels.
    pub fn delete_labels(&self, tenant: &Tenant, id: &str) -> Result<()> {
        self.get(tenant, id)?;
        let mut batch = WriteBatch::new();
        batch.delete(Table::Datasets, &labels_key(tenant, id));
        self.store.commit(batch)?;
        Ok(())
    }
}

/// Data usage labels of a dataset (AEP Catalog's shape); activation checks them against
/// marketing actions.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Labels {
    /// Labels on the whole dataset, e.g. `C1`, `I1`, `S2`.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Labels on optional fields or schemas of the dataset.
    #[serde(default)]
    pub optional_labels: Vec<OptionalLabels>,
}

/// Labels on one field of the dataset's schema.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionalLabels {
    /// Which schema and field.
    pub option: LabelOption,
    /// Its labels.
    pub labels: Vec<String>,
}

/// The field an optional label applies to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelOption {
    /// Schema `$id`.
    pub id: String,
    /// Schema content type.
    #[serde(default)]
    pub content_type: String,
    /// Path of the field in the schema (`/properties/...`).
    pub schema_path: String,
}

fn check_label(label: &str, field: &str) -> Result<()> {
    let ok = !label.is_empty()
        && label.len() <= 64
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("label {label:?} must be 1-64 letters, digits, '_' or '-'"),
        ))
    }
}

impl Labels {
    fn check(&self) -> Result<()> {
        for label in &self.labels {
            check_label(label, "labels")?;
        }
        for (index, optional) in self.optional_labels.iter().enumerate() {
            let field = format!("optionalLabels[{index}]");
            if optional.option.id.is_empty() || !optional.option.schema_path.starts_with('/') {
                return Err(Error::invalid(
                    format!("{field}.option"),
                    "needs the schema id and a schemaPath starting with '/'",
                ));
            }
            for label in &optional.labels {
                check_label(label, &format!("{field}.labels"))?;
            }
        }
        Ok(())
    }
}
