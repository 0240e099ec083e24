//! The per-sandbox blocklist: identity values that never link (e.g. `test@test.com`, a
//! call centre's placeholder phone). A blocked identity in a record is ignored by the graph;
//! the record itself is still accepted. Blocking does not unlink existing links — unlink
//! them explicitly, and re-ingestion will not re-create them.

use std::collections::HashSet;

use tessera_model::Tenant;
use tessera_store::{Direction, Key, KeyReader, ScanRange, Store, Table, WriteBatch};

use crate::error::{Error, Result};
use crate::key::IdentityKey;

/// A blocklist entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Blocked {
    /// Namespace code.
    pub namespace: String,
    /// Value (normalised).
    pub id: String,
    /// Why it is blocked.
    #[serde(default)]
    pub reason: String,
    /// When it was blocked (ms).
    pub created: i64,
}

fn prefix(tenant: &Tenant) -> Key {
    // Namespace codes are letters and digits (plus `_` and `.` for standard ones), so this
    // leading element can never be an identity pointer's namespace.
    Key::tenant(tenant).str("~blocked").finish()
}

fn key(tenant: &Tenant, identity: &IdentityKey) -> Key {
    Key::extend(&prefix(tenant))
        .str(&identity.namespace)
        .str(&identity.id)
        .finish()
}

/// Blocks `identity`.
pub fn block(
    store: &dyn Store,
    tenant: &Tenant,
    identity: &IdentityKey,
    reason: &str,
    at: i64,
) -> Result<Blocked> {
    let entry = Blocked {
        namespace: identity.namespace.clone(),
        id: identity.id.clone(),
        reason: reason.to_owned(),
        created: at,
    };
    let bytes = serde_json::to_vec(&entry).map_err(|e| Error::Corrupt {
        what: "blocklist entry",
        reason: e.to_string(),
    })?;
    let mut batch = WriteBatch::new();
    batch.put(Table::Identities, &key(tenant, identity), bytes);
    store.commit(batch)?;
    Ok(entry)
}

/// Unblocks `identity`; `false` when it was not blocked.
pub fn unblock(store: &dyn Store, tenant: &Tenant, identity: &IdentityKey) -> Result<bool> {
    let key = key(tenant, identity);
    let Some(current) = store.get(Table::Identities, &key)? else {
        return Ok(false);
    };
    let mut batch = WriteBatch::new();
    batch
        .expect(Table::Identities, &key, Some(current))
        .delete(Table::Identities, &key);
    store.commit(batch)?;
    Ok(true)
}

/// Every blocked identity of the sandbox.
pub fn list(store: &dyn Store, tenant: &Tenant) -> Result<Vec<Blocked>> {
    store
        .scan(
            Table::Identities,
            &ScanRange::prefix(prefix(tenant)),
            Direction::Forward,
            100_000,
        )?
        .iter()
        .map(|row| {
            serde_json::from_slice(&row.value).map_err(|e| Error::Corrupt {
                what: "blocklist entry",
                reason: e.to_string(),
            })
        })
        .collect()
}

/// The blocked identities as a set, for the write path.
pub fn load(store: &dyn Store, tenant: &Tenant) -> Result<HashSet<IdentityKey>> {
    let prefix = prefix(tenant);
    let prefix_len = prefix.as_bytes().len();
    store
        .scan(
            Table::Identities,
            &ScanRange::prefix(prefix),
            Direction::Forward,
            100_000,
        )?
        .iter()
        .map(|row| {
            let mut reader = KeyReader::new(row.key.get(prefix_len..).unwrap_or_default());
            Ok(IdentityKey::new(reader.string()?, reader.string()?))
        })
        .collect()
}
