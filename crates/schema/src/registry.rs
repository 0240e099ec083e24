//! [`SchemaRegistry`]: tenant schemas, descriptors and unions in the store, plus a cache of
//! compiled schemas.
//!
//! Storage (all in `Table::Schemas`, under the tenant's scope):
//! - `("schema", $id)` → `{"format": 1, "doc": <schema document as the API returns it>}`
//! - `("descriptor", @id)` → `{"format": 1, "doc": <descriptor>}`
//! - `("generation",)` → big-endian `u64`, bumped by every write
//! - `("tenantId",)` → the tenant id, when set explicitly (otherwise derived from the org)
//!
//! Every write is one atomic batch that `expect`s the generation it read and stores the next
//! one, so registry writes of one tenant are serialised across threads *and* processes: a
//! union check can never race another schema joining the union.
//!
//! Cache: compiled schemas are kept per process, each stamped with the generation it was
//! built at. [`SchemaRegistry::compiled`] reads the stored generation (one point read) and
//! recompiles when it moved, so a change made through another process or node is seen by
//! the next call — correctness never depends on one process. Entries of deleted schemas
//! stay until the process ends (bounded by the schemas a tenant ever had).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::{json, Map, Value};
use tessera_model::Tenant;
use tessera_store::{Direction, Key, ScanRange, Store, Table, WriteBatch};

use crate::builtin::{Builtins, IDENTITY_MAP_FIELD_GROUP, PROFILE_CLASS, SEGMENTATION_FIELD_GROUP};
use crate::compose::{self, compose, external_ref, resolve_local_entry, Composed, Part};
use crate::descriptor::{self, IdentityDescriptor, IDENTITY_DESCRIPTOR};
use crate::error::{Error, Result};
use crate::ids::{self, alt_id_of, canonical_id, UNION_SUFFIX};
use crate::patch;
use crate::schema::{CompiledSchema, XdmClass};
use crate::validator;

/// Stored-record format version (see module docs).
const FORMAT: u64 = 1;
/// Most resources a scan returns (AEP caps sandboxes at 4000 descriptors).
const SCAN_LIMIT: usize = 100_000;
/// The tag that makes a schema join its class's union.
const UNION_TAG: &str = "union";

/// Decides whether a schema is still in use (by a dataset); wired to the catalog.
pub type UsageCheck = Arc<dyn Fn(&Tenant, &str) -> bool + Send + Sync>;

/// The schema registry service. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct SchemaRegistry {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    builtins: Builtins,
    /// Compiled built-in classes (they never change).
    classes: HashMap<String, Arc<CompiledSchema>>,
    cache: RwLock<HashMap<(Tenant, String), Arc<CompiledSchema>>>,
    usage: RwLock<Option<UsageCheck>>,
}

impl std::fmt::Debug for SchemaRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaRegistry").finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn corrupt(what: &'static str, reason: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        what,
        reason: reason.to_string(),
    }
}

fn invalid(path: &str, reason: impl Into<String>) -> Error {
    Error::InvalidSchema {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn not_found(kind: &'static str, id: &str) -> Error {
    Error::NotFound {
        kind,
        id: id.to_owned(),
    }
}

fn has_union_tag(doc: &Value) -> bool {
    doc.get("meta:immutableTags")
        .and_then(Value::as_array)
        .is_some_and(|tags| tags.iter().any(|t| t == UNION_TAG))
}

fn str_field<'a>(doc: &'a Value, key: &str) -> &'a str {
    doc.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// `"1.3"` → `"1.4"`.
fn next_version(version: &str) -> String {
    let (major, minor) = version.split_once('.').unwrap_or((version, "0"));
    let minor: u64 = minor.parse().unwrap_or(0);
    format!("{major}.{}", minor + 1)
}

fn encode(doc: &Value) -> Vec<u8> {
    json!({"format": FORMAT, "doc": doc})
        .to_string()
        .into_bytes()
}

fn decode(what: &'static str, bytes: &[u8]) -> Result<Value> {
    let mut record: Value = serde_json::from_slice(bytes).map_err(|e| corrupt(what, e))?;
    match record.get("format").and_then(Value::as_u64) {
        Some(FORMAT) => {}
        other => return Err(corrupt(what, format!("unsupported format {other:?}"))),
    }
    record
        .get_mut("doc")
        .map(Value::take)
        .ok_or_else(|| corrupt(what, "no doc"))
}

impl SchemaRegistry {
    /// A registry over `store`, with the built-in classes and field groups loaded.
    pub fn new(store: Arc<dyn Store>) -> Self {
        let builtins = Builtins::load();
        let mut classes = HashMap::new();
        for class in builtins.classes() {
            let composed = Composed {
                properties: class.part.properties.clone(),
                required: class.part.required.clone(),
            };
            // Built-in classes are tested to compile (`tests::builtin_classes_compile`);
            // one that did not would simply not resolve as a schema reference.
            if let Ok(root) = validator::compile(&composed.to_schema(), "", 0) {
                let compiled = CompiledSchema {
                    id: class.id.clone(),
                    alt_id: class.alt_id.clone(),
                    version: str_field(&class.doc, "version").to_owned(),
                    class: XdmClass::from_id(&class.id),
                    profile_enabled: false,
                    root,
                    identities: Vec::new(),
                    generation: 0,
                    resolved: composed.to_schema(),
                };
                classes.insert(class.id.clone(), Arc::new(compiled));
            }
        }
        Self {
            inner: Arc::new(Inner {
                store,
                builtins,
                classes,
                cache: RwLock::new(HashMap::new()),
                usage: RwLock::new(None),
            }),
        }
    }

    /// Installs the "is this schema used by a dataset" check consulted by deletes. Until
    /// one is installed nothing counts as in use.
    pub fn set_usage_check(&self, check: UsageCheck) {
        if let Ok(mut usage) = self.inner.usage.write() {
            *usage = Some(check);
        }
    }

    /// The global classes and field groups.
    pub fn builtins(&self) -> &Builtins {
        &self.inner.builtins
    }

    fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    fn key(tenant: &Tenant, kind: &str, id: &str) -> Key {
        Key::builder(&ids::scope(tenant)).str(kind).str(id).finish()
    }

    fn singleton_key(tenant: &Tenant, name: &str) -> Key {
        Key::builder(&ids::scope(tenant)).str(name).finish()
    }

    fn scan_kind(&self, tenant: &Tenant, kind: &'static str) -> Result<Vec<Value>> {
        let prefix = Key::builder(&ids::scope(tenant)).str(kind).finish();
        self.store()
            .scan(
                Table::Schemas,
                &ScanRange::prefix(prefix),
                Direction::Forward,
                SCAN_LIMIT,
            )?
            .iter()
            .map(|entry| decode(kind, &entry.value))
            .collect()
    }

    /// Reads the tenant's registry generation (raw bytes for the write precondition).
    fn generation(&self, tenant: &Tenant) -> Result<(u64, Option<Vec<u8>>)> {
        let raw = self
            .store()
            .get(Table::Schemas, &Self::singleton_key(tenant, "generation"))?;
        let value = match &raw {
            None => 0,
            Some(bytes) => u64::from_be_bytes(
                bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| corrupt("registry generation", "not 8 bytes"))?,
            ),
        };
        Ok((value, raw))
    }

    /// Commits `batch` only if the generation is still `seen`, bumping it.
    fn commit(
        &self,
        tenant: &Tenant,
        seen: (u64, Option<Vec<u8>>),
        mut batch: WriteBatch,
    ) -> Result<()> {
        let key = Self::singleton_key(tenant, "generation");
        batch.expect(Table::Schemas, &key, seen.1);
        batch.put(Table::Schemas, &key, (seen.0 + 1).to_be_bytes().to_vec());
        self.store().commit(batch)?;
        Ok(())
    }

    // ------------------------------------------------------------------ tenant id

    /// The tenant id (`TENANT_ID`) that namespaces this tenant's schema ids and custom fields.
    pub fn tenant_id(&self, tenant: &Tenant) -> Result<String> {
        match self
            .store()
            .get(Table::Schemas, &Self::singleton_key(tenant, "tenantId"))?
        {
            Some(bytes) => String::from_utf8(bytes).map_err(|e| corrupt("tenant id", e)),
            None => Ok(ids::derive_tenant_id(&tenant.org)),
        }
    }

    /// Chooses the tenant id explicitly (for operators who need a known namespace such as
    /// `_tessera`). Allowed only while the tenant has no schemas.
    pub fn set_tenant_id(&self, tenant: &Tenant, tenant_id: &str) -> Result<()> {
        ids::validate_tenant_id(tenant_id).map_err(|reason| invalid("/tenantId", reason))?;
        let seen = self.generation(tenant)?;
        if !self.scan_kind(tenant, "schema")?.is_empty() {
            return Err(Error::InvalidState(
                "the tenant id cannot change once the tenant has schemas".into(),
            ));
        }
        let mut batch = WriteBatch::new();
        batch.put(
            Table::Schemas,
            &Self::singleton_key(tenant, "tenantId"),
            tenant_id.as_bytes().to_vec(),
        );
        self.commit(tenant, seen, batch)
    }

    // ------------------------------------------------------------------ schemas

    fn load_schema(&self, tenant: &Tenant, id: &str) -> Result<Option<Value>> {
        self.store()
            .get(Table::Schemas, &Self::key(tenant, "schema", id))?
            .map(|bytes| decode("schema", &bytes))
            .transpose()
    }

    /// A tenant schema document by `$id` or `meta:altId`.
    pub fn get_schema(&self, tenant: &Tenant, reference: &str) -> Result<Value> {
        let id = canonical_id(reference);
        self.load_schema(tenant, &id)?
            .ok_or_else(|| not_found("schema", reference))
    }

    /// Every tenant schema document, ordered by `$id`.
    pub fn list_schemas(&self, tenant: &Tenant) -> Result<Vec<Value>> {
        self.scan_kind(tenant, "schema")
    }

    /// Resolves a schema document's `allOf` into its class and composed fields.
    fn compose_schema(
        &self,
        doc: &Value,
        tenant_id: &str,
    ) -> Result<(XdmClass, Composed, Vec<String>)> {
        let entries = doc
            .get("allOf")
            .and_then(Value::as_array)
            .filter(|entries| !entries.is_empty())
            .ok_or_else(|| invalid("/allOf", "must be a non-empty array naming a class"))?;
        let own_id = str_field(doc, "$id");
        let namespace = format!("_{tenant_id}");
        let mut class: Option<&crate::builtin::Builtin> = None;
        let mut groups = Vec::new();
        let mut locals = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            let path = format!("/allOf/{index}");
            match external_ref(entry) {
                Some(reference) => {
                    let builtins = &self.inner.builtins;
                    if let Some(found) = builtins.class(reference) {
                        if class.is_some() {
                            return Err(invalid(&path, "a schema implements exactly one class"));
                        }
                        class = Some(found);
                    } else if let Some(group) = builtins.field_group(reference) {
                        if !groups
                            .iter()
                            .any(|g: &&crate::builtin::Builtin| g.id == group.id)
                        {
                            groups.push(group);
                        }
                    } else {
                        return Err(invalid(
                            &format!("{path}/$ref"),
                            format!("{reference:?} is not a known class or field group"),
                        ));
                    }
                }
                None => {
                    if !entry.is_object() {
                        return Err(invalid(&path, "allOf entries must be objects"));
                    }
                    let part = resolve_local_entry(doc, entry, own_id, &path)?;
                    // AEP: custom fields live under the tenant namespace object, so they can
                    // never collide with standard XDM fields.
                    if let Some(name) = part.properties.keys().find(|name| **name != namespace) {
                        return Err(invalid(
                            &format!("{path}/properties/{name}"),
                            format!("custom fields must be nested under {namespace:?}"),
                        ));
                    }
                    locals.push(part);
                }
            }
        }
        let class = class.ok_or_else(|| invalid("/allOf", "no class is referenced"))?;
        for group in &groups {
            if !group.intended_to_extend.contains(&class.id) {
                return Err(invalid(
                    "/allOf",
                    format!(
                        "field group {} cannot be used with class {}",
                        group.id, class.id
                    ),
                ));
            }
        }
        let mut parts: Vec<Part> = Vec::with_capacity(groups.len() + locals.len() + 1);
        parts.push(class.part.clone());
        parts.extend(groups.iter().map(|g| g.part.clone()));
        parts.extend(locals);
        let composed = compose(&parts)?;
        let mut extends = vec![class.id.clone()];
        if let Some(behaviour) = class.doc.get("meta:extends").and_then(Value::as_array) {
            extends.extend(
                behaviour
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned),
            );
        }
        extends.extend(groups.iter().map(|g| g.id.clone()));
        Ok((XdmClass::from_id(&class.id), composed, extends))
    }

    /// Checks that a profile-enabled schema agrees with every other member of its union.
    fn check_union(
        &self,
        tenant: &Tenant,
        tenant_id: &str,
        id: &str,
        class: &XdmClass,
        composed: &Composed,
    ) -> Result<()> {
        for member in self.list_schemas(tenant)? {
            let member_id = str_field(&member, "$id");
            if member_id == id
                || !has_union_tag(&member)
                || str_field(&member, "meta:class") != class.id()
            {
                continue;
            }
            let (_, other, _) = self.compose_schema(&member, tenant_id)?;
            if let Some(conflict) =
                compose::first_conflict(&other.properties, &composed.properties, "")
            {
                return Err(Error::UnionConflict(Box::new(
                    crate::error::UnionConflict {
                        class: class.id().to_owned(),
                        path: conflict.path,
                        existing: member_id.to_owned(),
                        existing_type: conflict.first,
                        incoming: id.to_owned(),
                        incoming_type: conflict.second,
                    },
                )));
            }
        }
        Ok(())
    }

    /// Fills the read-only fields the registry owns.
    fn finish_doc(
        doc: &mut Map<String, Value>,
        tenant: &Tenant,
        tenant_id: &str,
        class: &XdmClass,
        extends: Vec<String>,
    ) {
        doc.insert("type".into(), json!("object"));
        doc.insert("meta:class".into(), json!(class.id()));
        doc.insert("meta:extends".into(), json!(extends));
        doc.insert("meta:abstract".into(), json!(false));
        doc.insert("meta:extensible".into(), json!(false));
        doc.insert("meta:containerId".into(), json!("tenant"));
        doc.insert("meta:resourceType".into(), json!("schemas"));
        doc.insert("meta:xdmType".into(), json!("object"));
        doc.insert(
            "meta:tenantNamespace".into(),
            json!(format!("_{tenant_id}")),
        );
        doc.insert("imsOrg".into(), json!(tenant.org.as_str()));
        doc.insert("meta:sandboxId".into(), json!(tenant.sandbox.as_str()));
    }

    /// Creates a schema from a POST body; returns the stored document (201 body).
    pub fn create_schema(&self, tenant: &Tenant, body: Value) -> Result<Value> {
        let Value::Object(mut doc) = body else {
            return Err(invalid("", "a schema must be a JSON object"));
        };
        let title = doc
            .get("title")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| invalid("/title", "a schema needs a non-empty title"))?
            .to_owned();
        if let Some(kind) = doc.get("type") {
            if kind != "object" {
                return Err(invalid("/type", "a schema's type must be \"object\""));
            }
        }
        if doc.get("meta:immutableTags").is_some_and(|t| !t.is_array()) {
            return Err(invalid(
                "/meta:immutableTags",
                "must be an array of strings",
            ));
        }
        let seen = self.generation(tenant)?;
        let tenant_id = self.tenant_id(tenant)?;
        let id = ids::mint_schema_id(&tenant_id);
        doc.insert("$id".into(), json!(id));
        doc.insert("meta:altId".into(), json!(alt_id_of(&id)));
        doc.insert("version".into(), json!("1.0"));
        let now = now_ms();
        doc.insert(
            "meta:registryMetadata".into(),
            json!({"repo:createdDate": now, "repo:lastModifiedDate": now, "eTag": "1"}),
        );
        let snapshot = Value::Object(doc.clone());
        let (class, composed, extends) = self.compose_schema(&snapshot, &tenant_id)?;
        // Compiling now means a stored schema always compiles later.
        validator::compile(&composed.to_schema(), "", 0)?;
        for existing in self.list_schemas(tenant)? {
            if str_field(&existing, "title") == title {
                return Err(Error::AlreadyExists {
                    kind: "schema with title",
                    id: title,
                });
            }
        }
        if has_union_tag(&snapshot) {
            self.check_union(tenant, &tenant_id, &id, &class, &composed)?;
        }
        Self::finish_doc(&mut doc, tenant, &tenant_id, &class, extends);
        let doc = Value::Object(doc);
        let mut batch = WriteBatch::new();
        batch.put(
            Table::Schemas,
            &Self::key(tenant, "schema", &id),
            encode(&doc),
        );
        self.commit(tenant, seen, batch)?;
        tracing::info!(schema = %id, class = class.id(), "schema created");
        Ok(doc)
    }

    /// Applies a JSON Patch to a schema; returns the updated document.
    pub fn patch_schema(
        &self,
        tenant: &Tenant,
        reference: &str,
        patch_body: &Value,
    ) -> Result<Value> {
        let seen = self.generation(tenant)?;
        let current = self.get_schema(tenant, reference)?;
        let id = str_field(&current, "$id").to_owned();
        let patched = patch::apply(&current, patch_body)?;
        for key in ["$id", "meta:altId", "meta:containerId", "imsOrg"] {
            if patched.get(key) != current.get(key) {
                return Err(invalid(&format!("/{key}"), "is read-only"));
            }
        }
        if has_union_tag(&current) && !has_union_tag(&patched) {
            return Err(Error::InvalidState(
                "the \"union\" tag is immutable: once set it cannot be removed".into(),
            ));
        }
        let Value::Object(mut doc) = patched else {
            return Err(invalid("", "a schema must be a JSON object"));
        };
        if doc
            .get("title")
            .and_then(Value::as_str)
            .is_none_or(|t| t.trim().is_empty())
        {
            return Err(invalid("/title", "a schema needs a non-empty title"));
        }
        let tenant_id = self.tenant_id(tenant)?;
        let snapshot = Value::Object(doc.clone());
        let (class, composed, extends) = self.compose_schema(&snapshot, &tenant_id)?;
        validator::compile(&composed.to_schema(), "", 0)?;
        if str_field(&current, "meta:class") != class.id() && has_union_tag(&current) {
            return Err(Error::InvalidState(
                "the class of a profile-enabled schema cannot change".into(),
            ));
        }
        if has_union_tag(&snapshot) {
            self.check_union(tenant, &tenant_id, &id, &class, &composed)?;
        }
        for existing in self.list_descriptors(tenant)? {
            if str_field(&existing, "xdm:sourceSchema") == id {
                if let Err(error) = descriptor::check(&existing, &composed) {
                    return Err(Error::InvalidState(format!(
                        "descriptor {} no longer fits the schema: {error}",
                        str_field(&existing, "@id")
                    )));
                }
            }
        }
        let version = next_version(str_field(&current, "version"));
        doc.insert("version".into(), json!(version));
        let mut metadata = current
            .get("meta:registryMetadata")
            .cloned()
            .unwrap_or_else(|| json!({}));
        if let Some(object) = metadata.as_object_mut() {
            let etag = object
                .get("eTag")
                .and_then(Value::as_str)
                .and_then(|e| e.parse::<u64>().ok())
                .unwrap_or(1);
            object.insert("repo:lastModifiedDate".into(), json!(now_ms()));
            object.insert("eTag".into(), json!((etag + 1).to_string()));
        }
        doc.insert("meta:registryMetadata".into(), metadata);
        Self::finish_doc(&mut doc, tenant, &tenant_id, &class, extends);
        let doc = Value::Object(doc);
        let mut batch = WriteBatch::new();
        batch.put(
            Table::Schemas,
            &Self::key(tenant, "schema", &id),
            encode(&doc),
        );
        self.commit(tenant, seen, batch)?;
        tracing::info!(schema = %id, version = %version, "schema patched");
        Ok(doc)
    }

    /// Deletes a schema and its descriptors, unless a dataset uses it.
    pub fn delete_schema(&self, tenant: &Tenant, reference: &str) -> Result<()> {
        let seen = self.generation(tenant)?;
        let current = self.get_schema(tenant, reference)?;
        let id = str_field(&current, "$id").to_owned();
        let in_use = match self.inner.usage.read() {
            Ok(usage) => usage.as_ref().is_some_and(|check| check(tenant, &id)),
            // A poisoned lock means a usage check panicked: refuse rather than guess.
            Err(_) => true,
        };
        if in_use {
            return Err(Error::InUse { id });
        }
        let mut batch = WriteBatch::new();
        batch.delete(Table::Schemas, &Self::key(tenant, "schema", &id));
        for existing in self.list_descriptors(tenant)? {
            if str_field(&existing, "xdm:sourceSchema") == id {
                batch.delete(
                    Table::Schemas,
                    &Self::key(tenant, "descriptor", str_field(&existing, "@id")),
                );
            }
        }
        self.commit(tenant, seen, batch)?;
        tracing::info!(schema = %id, "schema deleted");
        Ok(())
    }

    /// The `xed-full` form of a schema: its document without `allOf`, with the resolved
    /// `properties` (and `required`).
    pub fn resolved_schema(&self, tenant: &Tenant, reference: &str) -> Result<Value> {
        let doc = self.get_schema(tenant, reference)?;
        let tenant_id = self.tenant_id(tenant)?;
        let (_, composed, _) = self.compose_schema(&doc, &tenant_id)?;
        Ok(full_form(&doc, &composed))
    }

    // ------------------------------------------------------------------ descriptors

    /// Every descriptor of the tenant.
    pub fn list_descriptors(&self, tenant: &Tenant) -> Result<Vec<Value>> {
        self.scan_kind(tenant, "descriptor")
    }

    /// One descriptor by `@id`.
    pub fn get_descriptor(&self, tenant: &Tenant, id: &str) -> Result<Value> {
        self.store()
            .get(Table::Schemas, &Self::key(tenant, "descriptor", id))?
            .map(|bytes| decode("descriptor", &bytes))
            .transpose()?
            .ok_or_else(|| not_found("descriptor", id))
    }

    /// Creates a descriptor; returns it with its `@id`.
    pub fn create_descriptor(&self, tenant: &Tenant, body: Value) -> Result<Value> {
        let seen = self.generation(tenant)?;
        let (kind, source) = descriptor::head(&body)?;
        let schema_id = canonical_id(source);
        let schema =
            self.load_schema(tenant, &schema_id)?
                .ok_or_else(|| Error::InvalidDescriptor {
                    path: "/xdm:sourceSchema".into(),
                    reason: format!("schema {source} does not exist"),
                })?;
        let tenant_id = self.tenant_id(tenant)?;
        let (_, composed, _) = self.compose_schema(&schema, &tenant_id)?;
        descriptor::check(&body, &composed)?;
        if kind == IDENTITY_DESCRIPTOR {
            let incoming = descriptor::identity_of(&body);
            for existing in self.list_descriptors(tenant)? {
                if str_field(&existing, "xdm:sourceSchema") != schema_id {
                    continue;
                }
                let (Some(new), Some(old)) = (&incoming, descriptor::identity_of(&existing)) else {
                    continue;
                };
                if new.source_property == old.source_property {
                    return Err(Error::AlreadyExists {
                        kind: "identity descriptor for field",
                        id: new.source_property.clone(),
                    });
                }
                if new.is_primary && old.is_primary {
                    return Err(Error::InvalidDescriptor {
                        path: "/xdm:isPrimary".into(),
                        reason: format!(
                            "schema already has a primary identity ({}, descriptor {})",
                            old.source_property,
                            str_field(&existing, "@id")
                        ),
                    });
                }
            }
        }
        let Value::Object(mut doc) = body else {
            return Err(invalid("", "a descriptor must be a JSON object"));
        };
        let id = ids::mint_descriptor_id();
        let now = now_ms();
        doc.insert("xdm:sourceSchema".into(), json!(schema_id));
        doc.insert("meta:containerId".into(), json!("tenant"));
        doc.insert("imsOrg".into(), json!(tenant.org.as_str()));
        doc.insert("created".into(), json!(now));
        doc.insert("updated".into(), json!(now));
        doc.insert("@id".into(), json!(id));
        let doc = Value::Object(doc);
        let mut batch = WriteBatch::new();
        batch.put(
            Table::Schemas,
            &Self::key(tenant, "descriptor", &id),
            encode(&doc),
        );
        self.commit(tenant, seen, batch)?;
        Ok(doc)
    }

    /// Deletes a descriptor.
    pub fn delete_descriptor(&self, tenant: &Tenant, id: &str) -> Result<()> {
        let seen = self.generation(tenant)?;
        self.get_descriptor(tenant, id)?;
        let mut batch = WriteBatch::new();
        batch.delete(Table::Schemas, &Self::key(tenant, "descriptor", id));
        self.commit(tenant, seen, batch)
    }

    fn identities_of(
        &self,
        tenant: &Tenant,
        schema_ids: &[&str],
    ) -> Result<Vec<IdentityDescriptor>> {
        let mut identities: Vec<IdentityDescriptor> = Vec::new();
        for doc in self.list_descriptors(tenant)? {
            if !schema_ids.contains(&str_field(&doc, "xdm:sourceSchema")) {
                continue;
            }
            if let Some(identity) = descriptor::identity_of(&doc) {
                if !identities.contains(&identity) {
                    identities.push(identity);
                }
            }
        }
        Ok(identities)
    }

    // ------------------------------------------------------------------ unions

    fn union_members(&self, tenant: &Tenant, class_id: &str) -> Result<Vec<Value>> {
        Ok(self
            .list_schemas(tenant)?
            .into_iter()
            .filter(|doc| has_union_tag(doc) && str_field(doc, "meta:class") == class_id)
            .collect())
    }

    /// One summary per class with at least one profile-enabled schema.
    pub fn list_unions(&self, tenant: &Tenant) -> Result<Vec<Value>> {
        let mut classes: Vec<String> = Vec::new();
        for doc in self.list_schemas(tenant)? {
            let class = str_field(&doc, "meta:class").to_owned();
            if has_union_tag(&doc) && !classes.contains(&class) {
                classes.push(class);
            }
        }
        Ok(classes
            .iter()
            .map(|class| {
                let title = self
                    .inner
                    .builtins
                    .class(class)
                    .map_or(class.as_str(), |c| c.title());
                let id = ids::union_id(class);
                json!({"title": title, "$id": id, "meta:altId": alt_id_of(&id), "version": "1"})
            })
            .collect())
    }

    fn union_parts(
        &self,
        tenant: &Tenant,
        reference: &str,
    ) -> Result<(String, Vec<Value>, Composed)> {
        let id = canonical_id(reference);
        let class_id = id
            .strip_suffix(UNION_SUFFIX)
            .ok_or_else(|| not_found("union", reference))?
            .to_owned();
        let class = self
            .inner
            .builtins
            .class(&class_id)
            .ok_or_else(|| not_found("union", reference))?;
        let members = self.union_members(tenant, &class_id)?;
        if members.is_empty() {
            return Err(not_found("union", reference));
        }
        let tenant_id = self.tenant_id(tenant)?;
        let mut parts = vec![class.part.clone()];
        // The registry adds these to every union (AEP: identityMap, segmentMembership).
        let mut automatic = vec![IDENTITY_MAP_FIELD_GROUP];
        if class_id == PROFILE_CLASS {
            automatic.push(SEGMENTATION_FIELD_GROUP);
        }
        for group in automatic {
            if let Some(group) = self.inner.builtins.field_group(group) {
                parts.push(group.part.clone());
            }
        }
        for member in &members {
            let (_, composed, _) = self.compose_schema(member, &tenant_id)?;
            parts.push(Part {
                owner: str_field(member, "$id").to_owned(),
                properties: composed.properties,
                required: Vec::new(),
            });
        }
        let composed = compose(&parts)?;
        Ok((class_id, members, composed))
    }

    /// The union of a class, raw (`xed+json`: `allOf` of the class, field groups and member
    /// schemas) or resolved (`xed-full+json`).
    pub fn get_union(&self, tenant: &Tenant, reference: &str, resolved: bool) -> Result<Value> {
        let (class_id, members, composed) = self.union_parts(tenant, reference)?;
        let id = ids::union_id(&class_id);
        let mut refs: Vec<String> = vec![class_id.clone()];
        let mut extends: Vec<String> = Vec::new();
        for member in &members {
            for entry in member
                .get("allOf")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let target = match external_ref(entry) {
                    Some(reference) => canonical_id(reference),
                    None => str_field(member, "$id").to_owned(),
                };
                if !refs.contains(&target) {
                    refs.push(target);
                }
            }
            for extended in member
                .get("meta:extends")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(extended) = extended
                    .as_str()
                    .filter(|e| !extends.iter().any(|x| x == e))
                {
                    extends.push(extended.to_owned());
                }
            }
        }
        let mut doc = json!({
            "type": "object",
            "description": format!("Union view of all schemas that extend {class_id}"),
            "meta:extends": extends,
            "title": format!("Union object for {class_id}"),
            "$id": id,
            "meta:containerId": "tenant",
            "meta:class": class_id,
            "meta:altId": alt_id_of(&id),
            "version": "1.0",
            "meta:resourceType": "unions",
            "meta:registryMetadata": {},
        });
        if let Some(object) = doc.as_object_mut() {
            if resolved {
                object.insert("properties".into(), Value::Object(composed.properties));
            } else {
                let all_of: Vec<Value> = refs.iter().map(|r| json!({"$ref": r})).collect();
                object.insert("allOf".into(), json!(all_of));
            }
        }
        Ok(doc)
    }

    // ------------------------------------------------------------------ compiled

    /// The compiled schema named by `$id` or `meta:altId`: a tenant schema, a built-in class
    /// (class fields only) or a union (`…__union`). Cached; recompiled when the registry
    /// changed since (see module docs).
    pub fn compiled(&self, tenant: &Tenant, schema_ref: &str) -> Result<Arc<CompiledSchema>> {
        let id = canonical_id(schema_ref);
        if let Some(class) = self.inner.classes.get(&id) {
            return Ok(Arc::clone(class));
        }
        let (generation, _) = self.generation(tenant)?;
        let cache_key = (tenant.clone(), id.clone());
        if let Ok(cache) = self.inner.cache.read() {
            if let Some(hit) = cache.get(&cache_key).filter(|c| c.generation == generation) {
                return Ok(Arc::clone(hit));
            }
        }
        let compiled = Arc::new(self.compile(tenant, &id, schema_ref, generation)?);
        if let Ok(mut cache) = self.inner.cache.write() {
            // Keep the newer of two racing compilations.
            let keep = cache
                .get(&cache_key)
                .is_none_or(|existing| existing.generation <= generation);
            if keep {
                cache.insert(cache_key, Arc::clone(&compiled));
            }
        }
        Ok(compiled)
    }

    fn compile(
        &self,
        tenant: &Tenant,
        id: &str,
        reference: &str,
        generation: u64,
    ) -> Result<CompiledSchema> {
        if id.ends_with(UNION_SUFFIX) {
            let (class_id, members, composed) = self.union_parts(tenant, reference)?;
            let member_ids: Vec<&str> = members.iter().map(|m| str_field(m, "$id")).collect();
            let resolved = composed.to_schema();
            return Ok(CompiledSchema {
                id: id.to_owned(),
                alt_id: alt_id_of(id).unwrap_or_else(|| id.to_owned()),
                version: "1.0".into(),
                class: XdmClass::from_id(&class_id),
                profile_enabled: true,
                root: validator::compile(&resolved, "", 0)?,
                identities: self.identities_of(tenant, &member_ids)?,
                generation,
                resolved,
            });
        }
        let doc = self
            .load_schema(tenant, id)?
            .ok_or_else(|| not_found("schema", reference))?;
        let tenant_id = self.tenant_id(tenant)?;
        let (class, composed, _) = self.compose_schema(&doc, &tenant_id)?;
        let resolved = composed.to_schema();
        Ok(CompiledSchema {
            id: id.to_owned(),
            alt_id: str_field(&doc, "meta:altId").to_owned(),
            version: str_field(&doc, "version").to_owned(),
            class,
            profile_enabled: has_union_tag(&doc),
            root: validator::compile(&resolved, "", 0)?,
            identities: self.identities_of(tenant, &[id])?,
            generation,
            resolved,
        })
    }

    // ------------------------------------------------------------------ stats

    /// `GET /stats`: tenant id, counts and which schemas use which class.
    pub fn stats(&self, tenant: &Tenant) -> Result<Value> {
        let schemas = self.list_schemas(tenant)?;
        let unions = self.list_unions(tenant)?;
        let mut class_usage = Map::new();
        for doc in &schemas {
            let entry = class_usage
                .entry(str_field(doc, "meta:class").to_owned())
                .or_insert_with(|| json!([]));
            if let Some(list) = entry.as_array_mut() {
                list.push(json!({
                    "$id": doc.get("$id"),
                    "title": doc.get("title"),
                    "description": doc.get("description"),
                }));
            }
        }
        Ok(json!({
            "imsOrg": tenant.org.as_str(),
            "tenantId": self.tenant_id(tenant)?,
            "counts": {
                "schemas": schemas.len(),
                "mixins": 0,
                "datatypes": 0,
                "classes": 0,
                "unions": unions.len(),
            },
            "recentlyCreatedResources": [],
            "recentlyUpdatedResources": [],
            "classUsage": class_usage,
        }))
    }
}

/// A document in `xed-full` form: `allOf` replaced by the resolved fields.
pub(crate) fn full_form(doc: &Value, composed: &Composed) -> Value {
    let mut full = doc.clone();
    if let Some(object) = full.as_object_mut() {
        object.remove("allOf");
        object.remove("definitions");
        object.insert(
            "properties".into(),
            Value::Object(composed.properties.clone()),
        );
        if !composed.required.is_empty() {
            object.insert("required".into(), json!(composed.required));
        }
    }
    full
}

/// The `xed-full` form of a built-in class or field group.
pub fn builtin_full_form(builtin: &crate::builtin::Builtin) -> Value {
    full_form(
        &builtin.doc,
        &Composed {
            properties: builtin.part.properties.clone(),
            required: builtin.part.required.clone(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_count_minor_changes() {
        assert_eq!(next_version("1.0"), "1.1");
        assert_eq!(next_version("1.9"), "1.10");
        assert_eq!(next_version("2"), "2.1");
    }

    #[test]
    fn builtin_classes_compile() {
        let dir = tempfile::tempdir().unwrap();
        let store = tessera_store::EmbeddedStore::open(dir.path(), Default::default()).unwrap();
        let registry = SchemaRegistry::new(Arc::new(store));
        assert_eq!(registry.inner.classes.len(), 2);
    }
}
