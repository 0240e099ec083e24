//! Experience events: time-stamped records filed under their primary identity.
//!
//! Keys in `Table::Events` (tenant scope):
//! - event: `"e", namespace, id, timestamp ms (i64), dataset, _id` → `{"v":1,"xactionId","event"}`;
//!   a profile's events scan in time order, either direction.
//! - idempotency index: `"x", dataset, _id` → the event key. `_id` is unique per dataset;
//!   the write expects the index entry absent, so a replay (even a concurrent one) cannot
//!   store the event twice. The index doubles as the list of a dataset's events, which is
//!   how deleting a dataset finds them without scanning every profile.
//! - batch index: `"b", dataset, batch id, _id` → the event key, written for events ingested
//!   through a batch (file upload), so deleting one batch's events walks only that batch.
//!   Events stored before this index existed are not in it (a batch delete misses them).

use serde_json::{Map, Value};
use tessera_model::Tenant;
use tessera_store::{Direction, Key, ScanRange, Store, Table, WriteBatch};

use crate::error::{Error, Result};
use tessera_identity::IdentityKey;

const FORMAT: u64 = 1;

/// A stored event.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredEvent {
    /// Format version.
    pub v: u64,
    /// Receipt of the write that stored it.
    pub xaction_id: String,
    /// Dataset it came from.
    pub dataset: String,
    /// The XDM event.
    pub event: Map<String, Value>,
}

impl StoredEvent {
    /// When the write that stored the event was received (ms), read from its receipt id
    /// (`<receivedMs>:<node>:<counter>`); `None` for receipts of another form.
    pub fn received_ms(&self) -> Option<i64> {
        receipt_ms(&self.xaction_id)
    }
}

/// When the write behind a receipt id (`<receivedMs>:<node>:<counter>`) was received (ms);
/// `None` for receipts of another form (tests and imports may use their own).
pub fn receipt_ms(xaction_id: &str) -> Option<i64> {
    xaction_id.split(':').next()?.parse().ok()
}

fn tenant_key(tenant: &Tenant) -> tessera_store::KeyBuilder {
    Key::tenant(tenant)
}

/// Prefix of every event of `identity`.
pub fn identity_prefix(tenant: &Tenant, identity: &IdentityKey) -> Key {
    tenant_key(tenant)
        .str("e")
        .str(&identity.namespace)
        .str(&identity.id)
        .finish()
}

/// The position of `timestamp_ms` among `identity`'s events: below every event at that time
/// and above every earlier one, so it bounds a time window of a scan.
pub fn time_key(tenant: &Tenant, identity: &IdentityKey, timestamp_ms: i64) -> Key {
    Key::extend(&identity_prefix(tenant, identity))
        .i64(timestamp_ms)
        .finish()
}

/// Key of one event.
pub fn key(
    tenant: &Tenant,
    identity: &IdentityKey,
    timestamp_ms: i64,
    dataset: &str,
    event_id: &str,
) -> Key {
    Key::extend(&identity_prefix(tenant, identity))
        .i64(timestamp_ms)
        .str(dataset)
        .str(event_id)
        .finish()
}

/// Key of the `_id` idempotency entry.
pub fn id_index_key(tenant: &Tenant, dataset: &str, event_id: &str) -> Key {
    tenant_key(tenant)
        .str("x")
        .str(dataset)
        .str(event_id)
        .finish()
}

/// Prefix of `dataset`'s idempotency entries: one per stored event of the dataset.
pub fn dataset_index_prefix(tenant: &Tenant, dataset: &str) -> Key {
    tenant_key(tenant).str("x").str(dataset).finish()
}

/// Prefix of the batch index of `dataset`, of one of its batches when `batch` is given.
pub fn batch_index_prefix(tenant: &Tenant, dataset: &str, batch: Option<&str>) -> Key {
    let builder = tenant_key(tenant).str("b").str(dataset);
    match batch {
        Some(batch) => builder.str(batch).finish(),
        None => builder.finish(),
    }
}

/// Key of the batch-index entry of one event.
pub fn batch_index_key(tenant: &Tenant, dataset: &str, batch: &str, event_id: &str) -> Key {
    Key::extend(&batch_index_prefix(tenant, dataset, Some(batch)))
        .str(event_id)
        .finish()
}

/// The parts of an event key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventKey {
    /// Identity the event is filed under.
    pub identity: IdentityKey,
    /// `timestamp` in ms since epoch.
    pub timestamp_ms: i64,
    /// Dataset.
    pub dataset: String,
    /// `_id`.
    pub event_id: String,
}

/// Decodes an event key (as stored in the index entries' values).
pub fn decode_key(bytes: &[u8]) -> Result<EventKey> {
    let (_, mut reader) = tessera_store::KeyReader::with_scope(bytes)?;
    let tag = reader.string()?;
    if tag != "e" {
        return Err(Error::Corrupt {
            what: "event key",
            reason: format!("expected an event key, found tag {tag:?}"),
        });
    }
    let namespace = reader.string()?;
    let id = reader.string()?;
    Ok(EventKey {
        identity: IdentityKey::new(namespace, id),
        timestamp_ms: reader.i64()?,
        dataset: reader.string()?,
        event_id: reader.string()?,
    })
}

/// Whether `dataset` already holds an event with this `_id`.
pub fn exists(store: &dyn Store, tenant: &Tenant, dataset: &str, event_id: &str) -> Result<bool> {
    Ok(store
        .get(Table::Events, &id_index_key(tenant, dataset, event_id))?
        .is_some())
}

/// What appending an event needs.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    /// Dataset.
    pub dataset: &'a str,
    /// Primary identity it is filed under.
    pub identity: &'a IdentityKey,
    /// `timestamp` in ms since epoch.
    pub timestamp_ms: i64,
    /// `_id`.
    pub event_id: &'a str,
    /// Receipt.
    pub xaction_id: &'a str,
}

/// Adds the event and its idempotency entry to `batch`; the batch fails with
/// [`tessera_store::Error::Conflict`] if the `_id` was stored meanwhile.
pub fn append(
    batch: &mut WriteBatch,
    tenant: &Tenant,
    new: &NewEvent<'_>,
    event: &Map<String, Value>,
) -> Result<()> {
    let event_key = key(
        tenant,
        new.identity,
        new.timestamp_ms,
        new.dataset,
        new.event_id,
    );
    let index_key = id_index_key(tenant, new.dataset, new.event_id);
    // The stored form of `StoredEvent`, serialised from borrowed parts: ingestion keeps the
    // event (for the computed-attribute consumer) instead of copying it to write it.
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Stored<'a> {
        v: u64,
        xaction_id: &'a str,
        dataset: &'a str,
        event: &'a Map<String, Value>,
    }
    let stored = Stored {
        v: FORMAT,
        xaction_id: new.xaction_id,
        dataset: new.dataset,
        event,
    };
    let bytes = serde_json::to_vec(&stored).map_err(|e| Error::Corrupt {
        what: "event",
        reason: e.to_string(),
    })?;
    batch
        .expect(Table::Events, &index_key, None)
        .put(Table::Events, &index_key, event_key.as_bytes().to_vec())
        .put(Table::Events, &event_key, bytes);
    Ok(())
}

/// Adds to `batch` the batch-index entry recording that `new` came in ingestion batch
/// `batch_id`; call it with [`append`] in the same write batch.
pub fn index_batch(batch: &mut WriteBatch, tenant: &Tenant, new: &NewEvent<'_>, batch_id: &str) {
    let event_key = key(
        tenant,
        new.identity,
        new.timestamp_ms,
        new.dataset,
        new.event_id,
    );
    batch.put(
        Table::Events,
        &batch_index_key(tenant, new.dataset, batch_id, new.event_id),
        event_key.into_bytes(),
    );
}

/// Events of `identity`, oldest first or newest first, at most `limit`.
pub fn for_identity(
    store: &dyn Store,
    tenant: &Tenant,
    identity: &IdentityKey,
    direction: Direction,
    limit: usize,
) -> Result<Vec<StoredEvent>> {
    let rows = store.scan(
        Table::Events,
        &ScanRange::prefix(identity_prefix(tenant, identity)),
        direction,
        limit,
    )?;
    rows.iter()
        .map(|row| {
            serde_json::from_slice(&row.value).map_err(|e| Error::Corrupt {
                what: "event",
                reason: e.to_string(),
            })
        })
        .collect()
}

/// Events of `identity` with a timestamp at or after `from_ms`, newest first, at most
/// `limit`: a window's worth, without reading older history.
pub fn since(
    store: &dyn Store,
    tenant: &Tenant,
    identity: &IdentityKey,
    from_ms: i64,
    limit: usize,
) -> Result<Vec<StoredEvent>> {
    let range = ScanRange::prefix(identity_prefix(tenant, identity)).narrow_lower(
        std::ops::Bound::Included(time_key(tenant, identity, from_ms).into_bytes()),
    );
    let rows = store.scan(Table::Events, &range, Direction::Reverse, limit)?;
    rows.iter()
        .map(|row| {
            serde_json::from_slice(&row.value).map_err(|e| Error::Corrupt {
                what: "event",
                reason: e.to_string(),
            })
        })
        .collect()
}
