//! Fragments: the record one dataset holds for one primary identity.
//!
//! Key: `tenant, "f", namespace, id, dataset` in `Table::Fragments`. Identity comes before
//! dataset because the hot read is "every fragment of this identity" (profile lookup merges
//! them); deleting a dataset's fragments is a rare background job that scans.
//!
//! Value: JSON `{"v": 1, "lastModified": ms, "xactionId": "...", "record": {...}}`.

use serde_json::{Map, Value};
use tessera_model::Tenant;
use tessera_store::{Direction, Key, KeyReader, ScanRange, Store, Table, WriteBatch};

use crate::error::{Error, Result};
use crate::merge::deep_merge;
use tessera_identity::IdentityKey;

const FORMAT: u64 = 1;

/// A stored fragment.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fragment {
    /// Format version of this document.
    pub v: u64,
    /// When the fragment last changed (ms since epoch): ingest time, or the record's
    /// `extSourceSystemAudit.lastUpdatedDate` when it carries one.
    pub last_modified: i64,
    /// Receipt of the write that last changed it.
    pub xaction_id: String,
    /// The XDM record.
    pub record: Map<String, Value>,
}

fn identity_prefix(tenant: &Tenant, identity: &IdentityKey) -> Key {
    Key::tenant(tenant)
        .str("f")
        .str(&identity.namespace)
        .str(&identity.id)
        .finish()
}

/// Prefix of every fragment of the tenant (whole-tenant scans: deletion by dataset, reports).
pub fn tenant_prefix(tenant: &Tenant) -> Key {
    Key::tenant(tenant).str("f").finish()
}

/// Decodes a fragment key into its identity and dataset.
pub fn decode_key(bytes: &[u8]) -> Result<(IdentityKey, String)> {
    let (_, mut reader) = KeyReader::with_scope(bytes)?;
    let tag = reader.string()?;
    if tag != "f" {
        return Err(Error::Corrupt {
            what: "fragment key",
            reason: format!("expected a fragment key, found tag {tag:?}"),
        });
    }
    let namespace = reader.string()?;
    let id = reader.string()?;
    let dataset = reader.string()?;
    Ok((IdentityKey::new(namespace, id), dataset))
}

/// Key of `dataset`'s fragment for `identity`.
pub fn key(tenant: &Tenant, dataset: &str, identity: &IdentityKey) -> Key {
    Key::extend(&identity_prefix(tenant, identity))
        .str(dataset)
        .finish()
}

fn decode(bytes: &[u8]) -> Result<Fragment> {
    serde_json::from_slice(bytes).map_err(|e| Error::Corrupt {
        what: "fragment",
        reason: e.to_string(),
    })
}

fn encode(fragment: &Fragment) -> Result<Vec<u8>> {
    serde_json::to_vec(fragment).map_err(|e| Error::Corrupt {
        what: "fragment",
        reason: e.to_string(),
    })
}

/// Reads one fragment.
pub fn get(
    store: &dyn Store,
    tenant: &Tenant,
    dataset: &str,
    identity: &IdentityKey,
) -> Result<Option<Fragment>> {
    store
        .get(Table::Fragments, &key(tenant, dataset, identity))?
        .map(|bytes| decode(&bytes))
        .transpose()
}

/// Every fragment of `identity`, with its dataset id, in dataset order.
pub fn for_identity(
    store: &dyn Store,
    tenant: &Tenant,
    identity: &IdentityKey,
) -> Result<Vec<(String, Fragment)>> {
    let prefix = identity_prefix(tenant, identity);
    let prefix_len = prefix.as_bytes().len();
    // A person holds a handful of fragments (one per profile dataset; AEP caps at 20).
    let rows = store.scan(
        Table::Fragments,
        &ScanRange::prefix(prefix),
        Direction::Forward,
        1_000,
    )?;
    rows.iter()
        .map(|row| {
            let dataset = row
                .key
                .get(prefix_len..)
                .map(KeyReader::new)
                .ok_or(tessera_store::Error::MalformedKey {
                    offset: prefix_len,
                    reason: "fragment key too short",
                })
                .and_then(|mut reader| reader.string())?;
            Ok((dataset, decode(&row.value)?))
        })
        .collect()
}

/// How a new record changes the stored fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// The record replaces the fragment (record datasets without upsert).
    Replace,
    /// The record is a patch deep-merged into the fragment (upsert datasets).
    Upsert,
}

/// Adds the write of `record` as `dataset`'s fragment for `identity` to `batch`. For upserts
/// the current fragment is read and the batch expects it unchanged, so a concurrent write
/// to the same fragment makes the commit fail with a conflict (retry) instead of losing
/// one of the two patches.
#[allow(clippy::too_many_arguments)]
pub fn write(
    store: &dyn Store,
    batch: &mut WriteBatch,
    tenant: &Tenant,
    dataset: &str,
    identity: &IdentityKey,
    record: Map<String, Value>,
    mode: WriteMode,
    modified_ms: i64,
    xaction_id: &str,
) -> Result<Fragment> {
    let key = key(tenant, dataset, identity);
    let merged = match mode {
        WriteMode::Replace => record,
        WriteMode::Upsert => {
            let current = store.get(Table::Fragments, &key)?;
            let mut base = match &current {
                Some(bytes) => decode(bytes)?.record,
                None => Map::new(),
            };
            deep_merge(&mut base, &record);
            batch.expect(Table::Fragments, &key, current);
            base
        }
    };
    let fragment = Fragment {
        v: FORMAT,
        last_modified: modified_ms,
        xaction_id: xaction_id.to_owned(),
        record: merged,
    };
    batch.put(Table::Fragments, &key, encode(&fragment)?);
    Ok(fragment)
}
