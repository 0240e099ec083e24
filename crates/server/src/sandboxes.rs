//! Sandboxes of an organisation: the registry behind the AEP sandbox management API and the
//! existence check every sandbox-scoped request goes through.
//!
//! Records live under the organisation's scope in `Table::Sandboxes`. The default
//! production sandbox `prod` exists in every organisation without being created; it is
//! materialised on first change. Deleting marks a sandbox `deleted` (AEP keeps it readable)
//! and makes data routes refuse it.

use tessera_model::{OrgId, SandboxName};
use tessera_store::{Direction, Key, ScanRange, Scope, Store, Table, WriteBatch};
use time::macros::format_description;
use time::OffsetDateTime;

use crate::error::{ApiError, ApiResult, ErrorCode};

/// Lifecycle state as AEP reports it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SandboxState {
    /// Usable. Tessera provisions synchronously, so sandboxes never linger in `creating`.
    Active,
    /// Deleted: readable through the management API, refused by data routes.
    Deleted,
}

/// Sandbox type.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SandboxType {
    /// Production sandbox.
    Production,
    /// Development sandbox.
    Development,
}

/// A sandbox record, in AEP's field names (also the stored form).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sandbox {
    /// Name used in `x-sandbox-name`.
    pub name: String,
    /// Display name.
    pub title: String,
    /// Lifecycle state.
    pub state: SandboxState,
    /// Production or development.
    #[serde(rename = "type")]
    pub kind: SandboxType,
    /// Where the data lives; always `local` for the embedded store.
    pub region: String,
    /// Whether this is the organisation's default production sandbox.
    pub is_default: bool,
    /// Version, incremented on every change.
    pub e_tag: u64,
    /// `YYYY-MM-DD HH:MM:SS` UTC, as AEP writes it.
    pub created_date: String,
    /// `YYYY-MM-DD HH:MM:SS` UTC.
    pub last_modified_date: String,
    /// Client id (or `dev`) that created it.
    pub created_by: String,
    /// Client id (or `dev`) that changed it last.
    pub modified_by: String,
}

fn now_text() -> String {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    OffsetDateTime::now_utc()
        .format(format)
        .unwrap_or_else(|_| "1970-01-01 00:00:00".to_owned())
}

fn key(org: &OrgId, name: &str) -> Key {
    Key::builder(&Scope::Org(org.clone())).str(name).finish()
}

fn default_sandbox() -> Sandbox {
    Sandbox {
        name: SandboxName::DEFAULT.to_owned(),
        title: "Production".to_owned(),
        state: SandboxState::Active,
        kind: SandboxType::Production,
        region: "local".to_owned(),
        is_default: true,
        e_tag: 1,
        created_date: "1970-01-01 00:00:00".to_owned(),
        last_modified_date: "1970-01-01 00:00:00".to_owned(),
        created_by: "system".to_owned(),
        modified_by: "system".to_owned(),
    }
}

fn decode(bytes: &[u8]) -> ApiResult<Sandbox> {
    serde_json::from_slice(bytes).map_err(|e| {
        tracing::error!(error = %e, "stored sandbox record does not decode");
        ApiError::problem(ErrorCode::Internal, "a stored sandbox record is unreadable")
    })
}

fn encode(sandbox: &Sandbox) -> ApiResult<Vec<u8>> {
    serde_json::to_vec(sandbox)
        .map_err(|e| ApiError::problem(ErrorCode::Internal, format!("encode sandbox: {e}")))
}

/// Reads a sandbox with the raw stored bytes (for compare-and-set); the default sandbox is
/// synthesised when it was never stored.
fn read(
    store: &dyn Store,
    org: &OrgId,
    name: &str,
) -> ApiResult<Option<(Sandbox, Option<Vec<u8>>)>> {
    match store.get(Table::Sandboxes, &key(org, name))? {
        Some(bytes) => Ok(Some((decode(&bytes)?, Some(bytes)))),
        None if name == SandboxName::DEFAULT => Ok(Some((default_sandbox(), None))),
        None => Ok(None),
    }
}

/// Whether `sandbox` exists and is active in `org` (checked on every sandbox-scoped call).
pub fn is_active(store: &dyn Store, org: &OrgId, sandbox: &SandboxName) -> ApiResult<bool> {
    Ok(read(store, org, sandbox.as_str())?.is_some_and(|(s, _)| s.state == SandboxState::Active))
}

/// One sandbox, or 404.
pub fn get(store: &dyn Store, org: &OrgId, name: &str) -> ApiResult<Sandbox> {
    read(store, org, name)?
        .map(|(sandbox, _)| sandbox)
        .ok_or_else(|| not_found(name))
}

fn not_found(name: &str) -> ApiError {
    ApiError::problem(
        ErrorCode::NotFound,
        format!("sandbox {name:?} does not exist"),
    )
}

/// Every sandbox of the organisation (default first, then by name), deleted ones included.
pub fn list(store: &dyn Store, org: &OrgId) -> ApiResult<Vec<Sandbox>> {
    let prefix = Key::scope_prefix(&Scope::Org(org.clone()));
    // An organisation holds at most a few hundred sandboxes (AEP caps licences at 75).
    let rows = store.scan(
        Table::Sandboxes,
        &ScanRange::prefix(prefix),
        Direction::Forward,
        10_000,
    )?;
    let mut sandboxes = rows
        .iter()
        .map(|row| decode(&row.value))
        .collect::<ApiResult<Vec<_>>>()?;
    if !sandboxes.iter().any(|s| s.name == SandboxName::DEFAULT) {
        sandboxes.push(default_sandbox());
    }
    sandboxes.sort_by(|a, b| {
        b.is_default
            .cmp(&a.is_default)
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(sandboxes)
}

/// What a create request carries.
#[derive(Debug, Clone)]
pub struct NewSandbox {
    /// Name (validated here).
    pub name: String,
    /// Display title.
    pub title: String,
    /// Type.
    pub kind: SandboxType,
}

/// Creates a sandbox; 409 when the name is taken (including by a deleted sandbox, whose
/// data may still be being purged).
pub fn create(store: &dyn Store, org: &OrgId, request: NewSandbox, by: &str) -> ApiResult<Sandbox> {
    let name = SandboxName::parse(&request.name)?;
    let title = request.title.trim();
    if title.is_empty() {
        return Err(ApiError::problem(
            ErrorCode::InvalidField,
            "title must not be empty",
        ));
    }
    if read(store, org, name.as_str())?.is_some() {
        return Err(ApiError::problem(
            ErrorCode::AlreadyExists,
            format!(
                "sandbox {:?} already exists in organization {org}",
                name.as_str()
            ),
        ));
    }
    let now = now_text();
    let sandbox = Sandbox {
        name: name.as_str().to_owned(),
        title: title.to_owned(),
        state: SandboxState::Active,
        kind: request.kind,
        region: "local".to_owned(),
        is_default: false,
        e_tag: 1,
        created_date: now.clone(),
        last_modified_date: now,
        created_by: by.to_owned(),
        modified_by: by.to_owned(),
    };
    let key = key(org, name.as_str());
    let mut batch = WriteBatch::new();
    batch
        .expect(Table::Sandboxes, &key, None)
        .put(Table::Sandboxes, &key, encode(&sandbox)?);
    store.commit(batch).map_err(|error| match error {
        tessera_store::Error::Conflict { .. } => ApiError::problem(
            ErrorCode::AlreadyExists,
            format!(
                "sandbox {:?} already exists in organization {org}",
                name.as_str()
            ),
        ),
        other => other.into(),
    })?;
    Ok(sandbox)
}

/// Applies `change` to an existing sandbox atomically and bumps its eTag.
fn modify(
    store: &dyn Store,
    org: &OrgId,
    name: &str,
    by: &str,
    change: impl FnOnce(&mut Sandbox) -> ApiResult<()>,
) -> ApiResult<Sandbox> {
    let (mut sandbox, stored) = read(store, org, name)?.ok_or_else(|| not_found(name))?;
    change(&mut sandbox)?;
    sandbox.e_tag += 1;
    sandbox.last_modified_date = now_text();
    sandbox.modified_by = by.to_owned();
    let key = key(org, name);
    let mut batch = WriteBatch::new();
    batch
        .expect(Table::Sandboxes, &key, stored)
        .put(Table::Sandboxes, &key, encode(&sandbox)?);
    store.commit(batch)?;
    Ok(sandbox)
}

/// Changes the title (the only mutable field, as in AEP).
pub fn update_title(
    store: &dyn Store,
    org: &OrgId,
    name: &str,
    title: &str,
    by: &str,
) -> ApiResult<Sandbox> {
    let title = title.trim().to_owned();
    if title.is_empty() {
        return Err(ApiError::problem(
            ErrorCode::InvalidField,
            "title must not be empty",
        ));
    }
    modify(store, org, name, by, |sandbox| {
        sandbox.title = title;
        Ok(())
    })
}

/// Marks a sandbox deleted. The default production sandbox cannot be deleted.
pub fn delete(store: &dyn Store, org: &OrgId, name: &str, by: &str) -> ApiResult<Sandbox> {
    modify(store, org, name, by, |sandbox| {
        if sandbox.is_default {
            return Err(ApiError::problem(
                ErrorCode::InvalidState,
                "the default production sandbox cannot be deleted",
            ));
        }
        if sandbox.state == SandboxState::Deleted {
            return Err(ApiError::problem(
                ErrorCode::InvalidState,
                "the sandbox is already deleted",
            ));
        }
        sandbox.state = SandboxState::Deleted;
        Ok(())
    })
}
