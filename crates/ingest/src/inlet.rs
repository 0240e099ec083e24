//! Streaming connections (inlets): the `{connectionId}` of `POST /collection/{id}`.
//!
//! A streaming message carries no tenant headers: the inlet says which organisation and
//! sandbox it writes into, optionally which dataset, and whether callers must authenticate.
//! Records are kept twice in `Table::Inlets` in one batch: by id under the system scope (the
//! collection route resolves it) and under the tenant (listing).

use tessera_model::Tenant;
use tessera_store::{Direction, Key, ScanRange, Scope, Store, Table, WriteBatch};

use crate::error::{Error, Result};
use crate::ids;

/// Longest operator-chosen inlet id.
const MAX_ID_LEN: usize = 128;

/// A streaming connection.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Inlet {
    /// Connection id (also the inlet id).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Optional description.
    #[serde(default)]
    pub description: String,
    /// Organisation it writes into.
    pub org: String,
    /// Sandbox it writes into.
    pub sandbox: String,
    /// Dataset messages go to when they do not name one in `header.datasetId`.
    #[serde(default)]
    pub dataset_id: Option<String>,
    /// Whether callers must present credentials with write access to the sandbox.
    pub authentication_required: bool,
    /// Creation time, ms.
    pub created: i64,
    /// Who created it.
    pub created_by: String,
}

impl Inlet {
    /// The tenant the inlet writes into.
    pub fn tenant(&self) -> Result<Tenant> {
        Tenant::parse(&self.org, &self.sandbox).map_err(|e| Error::Corrupt {
            what: "inlet",
            reason: e.to_string(),
        })
    }
}

/// What creating an inlet takes.
#[derive(Debug, Clone)]
pub struct NewInlet {
    /// Operator-chosen id; a UUID is minted when absent.
    pub id: Option<String>,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Bound dataset.
    pub dataset_id: Option<String>,
    /// Require credentials.
    pub authentication_required: bool,
}

fn by_id(id: &str) -> Key {
    Key::builder(&Scope::System).str("inlet").str(id).finish()
}

fn by_tenant(tenant: &Tenant, id: &str) -> Key {
    Key::tenant(tenant).str(id).finish()
}

fn decode(bytes: &[u8]) -> Result<Inlet> {
    serde_json::from_slice(bytes).map_err(|e| Error::Corrupt {
        what: "inlet",
        reason: e.to_string(),
    })
}

fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "id",
            "must be 1-128 characters of letters, digits, '-', '_' or '.' (it appears in URLs)",
        ))
    }
}

/// Creates an inlet in `tenant`. The dataset, when given, must exist (checked by the caller,
/// which owns the catalog).
pub fn create(store: &dyn Store, tenant: &Tenant, new: NewInlet, user: &str) -> Result<Inlet> {
    let id = match new.id {
        Some(id) => {
            validate_id(&id)?;
            id
        }
        None => ids::uuid_like(),
    };
    if new.name.trim().is_empty() {
        return Err(Error::invalid("name", "must not be empty"));
    }
    let inlet = Inlet {
        id,
        name: new.name,
        description: new.description,
        org: tenant.org.to_string(),
        sandbox: tenant.sandbox.to_string(),
        dataset_id: new.dataset_id,
        authentication_required: new.authentication_required,
        created: ids::now_ms(),
        created_by: user.to_owned(),
    };
    let bytes = serde_json::to_vec(&inlet).map_err(|e| Error::Corrupt {
        what: "inlet",
        reason: e.to_string(),
    })?;
    let global = by_id(&inlet.id);
    let mut batch = WriteBatch::new();
    batch
        .expect(Table::Inlets, &global, None)
        .put(Table::Inlets, &global, bytes.clone())
        .put(Table::Inlets, &by_tenant(tenant, &inlet.id), bytes);
    store.commit(batch).map_err(|error| match error {
        tessera_store::Error::Conflict { .. } => Error::AlreadyExists {
            what: "streaming connection",
            id: inlet.id.clone(),
        },
        other => other.into(),
    })?;
    Ok(inlet)
}

/// Resolves an inlet by id, whatever its tenant (the collection routes carry no tenant).
pub fn resolve(store: &dyn Store, id: &str) -> Result<Inlet> {
    match store.get(Table::Inlets, &by_id(id))? {
        Some(bytes) => decode(&bytes),
        None => Err(Error::InletNotFound { id: id.to_owned() }),
    }
}

/// An inlet of `tenant`: another tenant's inlet is reported as absent.
pub fn get(store: &dyn Store, tenant: &Tenant, id: &str) -> Result<Inlet> {
    match store.get(Table::Inlets, &by_tenant(tenant, id))? {
        Some(bytes) => decode(&bytes),
        None => Err(Error::InletNotFound { id: id.to_owned() }),
    }
}

/// Inlets of `tenant`.
pub fn list(store: &dyn Store, tenant: &Tenant) -> Result<Vec<Inlet>> {
    let prefix = Key::scope_prefix(&Scope::Tenant(tenant.clone()));
    store
        .scan(
            Table::Inlets,
            &ScanRange::prefix(prefix),
            Direction::Forward,
            10_000,
        )?
        .iter()
        .map(|row| decode(&row.value))
        .collect()
}

/// Deletes an inlet of `tenant`.
pub fn delete(store: &dyn Store, tenant: &Tenant, id: &str) -> Result<()> {
    let local = by_tenant(tenant, id);
    let Some(bytes) = store.get(Table::Inlets, &local)? else {
        return Err(Error::InletNotFound { id: id.to_owned() });
    };
    let mut batch = WriteBatch::new();
    batch
        .expect(Table::Inlets, &local, Some(bytes))
        .delete(Table::Inlets, &local)
        .delete(Table::Inlets, &by_id(id));
    store.commit(batch)?;
    Ok(())
}
