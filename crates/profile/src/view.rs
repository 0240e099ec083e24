//! Materialized merged profiles: one stored document per identity graph holding the merged
//! profile for each merge policy (and, for policies without stitching, each identity) that
//! was looked up since the graph last changed, so a hot lookup is one point read.
//!
//! Exactness without locks: every write that can change a merged profile (a fragment write,
//! a change of the graph's membership, a deletion) puts a *tombstone with a fresh generation*
//! into the graph's view key inside its own atomic batch. A reader that fills the view first
//! reads the key, computes the merge from what it reads afterwards, and commits the fill with
//! the precondition "the view key still holds what I read". A write in between changes the
//! generation, the precondition fails and the (possibly stale) fill is dropped. A plain delete
//! would not do: absent → absent again would let a stale fill through (ABA).
//!
//! Key: `tenant, "v", graph` in `Table::ProfileViews`.

use tessera_identity::IdentityKey;
use tessera_model::Tenant;
use tessera_store::{Key, Scope, Store, Table, WriteBatch};

use crate::error::Result;

/// Key of `graph`'s view document.
pub fn key(tenant: &Tenant, graph: u64) -> Key {
    Key::builder(&Scope::Tenant(tenant.clone()))
        .str("v")
        .u64(graph)
        .finish()
}

/// A view document holding nothing, with a generation no earlier read can have seen.
fn tombstone() -> Vec<u8> {
    let generation = uuid::Uuid::new_v4().simple().to_string();
    serde_json::json!({ "gen": generation })
        .to_string()
        .into_bytes()
}

/// Adds to `batch` the invalidation of `graph`'s view.
pub fn invalidate(batch: &mut WriteBatch, tenant: &Tenant, graph: u64) {
    batch.put(Table::ProfileViews, &key(tenant, graph), tombstone());
}

/// Adds to `batch` the invalidation of the view of the graph `identity` belongs to (nothing
/// when it belongs to none: then no view can exist for it).
pub fn invalidate_identity(
    store: &dyn Store,
    batch: &mut WriteBatch,
    tenant: &Tenant,
    identity: &IdentityKey,
) -> Result<()> {
    if let Some(graph) = tessera_identity::graph_id(store, tenant, identity)? {
        invalidate(batch, tenant, graph);
    }
    Ok(())
}
