//! Unlinking through the identity API: the one graph change that no record causes.
//!
//! An unlink removes an identity from its graph (with its links) or one link; the graph
//! splits into the parts that stay connected. Like an applied record, it lands in one atomic
//! batch with everything derived readers need to hear about it: the graph change, the
//! invalidation of every merged view it reshapes, and one [`ChangeKind::GraphChanged`]
//! change-feed entry per resulting graph (see [`change_feed::append_graph_changes`]), so
//! feed consumers (computed attributes, streaming segmentation) re-derive what they keep per
//! profile for the survivor and for every part split off, exactly once.
//!
//! [`ChangeKind::GraphChanged`]: crate::change_feed::ChangeKind::GraphChanged

use tessera_identity::{GraphConfig, GraphTxn, IdentityKey};
use tessera_model::Tenant;
use tessera_store::{Store, WriteBatch};

use crate::change_feed;
use crate::error::Result;

/// Receipt of the feed entries an unlink writes.
pub const RECEIPT: &str = "identity-unlink";

/// What to unlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unlink {
    /// Remove this identity from its graph, with its links; it then belongs to no graph.
    Identity(IdentityKey),
    /// Remove the link between these two identities.
    Link(IdentityKey, IdentityKey),
}

/// Applies `what` durably and returns the graphs that exist afterwards (survivor first),
/// or `None` when there is nothing to unlink (the identity is in no graph, or no such link).
pub fn unlink(
    store: &dyn Store,
    tenant: &Tenant,
    what: &Unlink,
    at_ms: i64,
) -> Result<Option<Vec<u64>>> {
    // The eviction rank does not matter: an unlink only removes identities.
    let mut txn = GraphTxn::new(store, tenant.clone(), GraphConfig::default(), |_| 2);
    let anchor = match what {
        Unlink::Identity(identity) => identity,
        Unlink::Link(a, _) => a,
    };
    let Some(origin) = txn.graph_id_of(anchor)? else {
        return Ok(None);
    };
    let outcome = match what {
        Unlink::Identity(identity) => txn.unlink_identity(identity, at_ms)?,
        Unlink::Link(a, b) => txn.unlink(a, b, at_ms)?,
    };
    let Some(graphs) = outcome else {
        return Ok(None);
    };
    let mut batch = WriteBatch::new();
    // Merged profiles list their graph's identities: a split stales them.
    for graph in txn.reshaped() {
        tessera_profile::view::invalidate(&mut batch, tenant, *graph);
    }
    let mut parts = Vec::with_capacity(graphs.len());
    for graph in &graphs {
        parts.push(txn.members_of(*graph)?);
    }
    change_feed::append_graph_changes(&mut batch, tenant, origin, &parts, anchor, RECEIPT, at_ms)?;
    txn.finish(&mut batch)?;
    store.commit(batch)?;
    Ok(Some(graphs))
}
