//! Erasing one person: `DELETE /access/entities` (a data subject's deletion request).
//!
//! Removes the fragments and experience events of the identities concerned (the whole graph
//! when the merge policy stitches, else the one identity), their idempotency entries, the
//! identities themselves from the graph tables (pointers, graph, links, history), and
//! invalidates the graph's materialized view. Events go first, in bounded batches (a long
//! history must not become one huge write); the fragments, the graph and the caller's audit
//! entry then go in one atomic batch, so a lookup sees the profile either whole or gone.
//!
//! Not covered: history logs of graphs this one absorbed long ago keep the identity values
//! they recorded at that time (they are unreachable from any identity after the erasure).

use tessera_identity::{GraphConfig, GraphTxn};
use tessera_model::Tenant;
use tessera_store::{Direction, Key, KeyReader, ScanRange, Store, Table, WriteBatch};

use crate::error::{Error, Result};
use crate::event::{self, StoredEvent};
use crate::{fragment, view, IdentityKey};

/// What an erasure removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Erased {
    /// Identities whose data was removed.
    pub identities: Vec<IdentityKey>,
    /// Fragments removed.
    pub fragments: usize,
    /// Events removed.
    pub events: usize,
    /// The graph that was erased (whole-graph erasure) or left (one identity), if any.
    pub graph: Option<u64>,
    /// When one identity left its graph: the members of every graph that remains of it
    /// (the survivor and any part split off because the identity held it together), so
    /// the caller can tell derived readers about parts no record names.
    pub remaining: Vec<Vec<IdentityKey>>,
}

/// Events removed per write.
const EVENT_CHUNK: usize = 1_000;
/// Attempts of the final batch when concurrent writes to the graph win.
const ATTEMPTS: usize = 16;

fn corrupt(reason: impl Into<String>) -> Error {
    Error::Corrupt {
        what: "event key",
        reason: reason.into(),
    }
}

/// Removes every event of `identity`, returning how many.
fn erase_events(store: &dyn Store, tenant: &Tenant, identity: &IdentityKey) -> Result<usize> {
    let prefix = event::identity_prefix(tenant, identity);
    let prefix_len = prefix.as_bytes().len();
    let mut removed = 0;
    loop {
        let rows = store.scan(
            Table::Events,
            &ScanRange::prefix(prefix.clone()),
            Direction::Forward,
            EVENT_CHUNK,
        )?;
        if rows.is_empty() {
            return Ok(removed);
        }
        let mut batch = WriteBatch::new();
        for row in &rows {
            let mut reader = KeyReader::new(
                row.key
                    .get(prefix_len..)
                    .ok_or_else(|| corrupt("shorter than its prefix"))?,
            );
            reader.i64()?;
            let dataset = reader.string()?;
            let event_id = reader.string()?;
            let stored: StoredEvent = serde_json::from_slice(&row.value)
                .map_err(|e| corrupt(format!("event document: {e}")))?;
            debug_assert_eq!(stored.dataset, dataset);
            batch.delete(
                Table::Events,
                &event::id_index_key(tenant, &dataset, &event_id),
            );
            // A batch-ingested event is also indexed under its batch (its receipt starts
            // with the batch id); that entry holds the event key, identity value included.
            // For a streamed event the candidate key does not exist and the delete is a no-op.
            if let Some(batch_id) = stored.xaction_id.split(':').next() {
                batch.delete(
                    Table::Events,
                    &event::batch_index_key(tenant, &dataset, batch_id, &event_id),
                );
            }
            batch.delete(Table::Events, &Key::from_stored(row.key.clone()));
        }
        store.commit(batch)?;
        removed += rows.len();
    }
}

/// Erases `identity` (and, with `whole_graph`, every identity of its graph). `audit` adds
/// the caller's record of the erasure to the final atomic batch. `None` when nothing at all
/// was stored for the identity.
pub fn erase(
    store: &dyn Store,
    tenant: &Tenant,
    identity: &IdentityKey,
    whole_graph: bool,
    at_ms: i64,
    mut audit: impl FnMut(&mut WriteBatch, &Erased) -> Result<()>,
) -> Result<Option<Erased>> {
    let members: Vec<IdentityKey> = match (
        whole_graph,
        tessera_identity::resolve(store, tenant, identity)?,
    ) {
        (true, Some(graph)) => graph.identities().cloned().collect(),
        _ => vec![identity.clone()],
    };
    let mut erased = Erased {
        identities: members.clone(),
        ..Erased::default()
    };
    for member in &members {
        erased.events += erase_events(store, tenant, member)?;
    }
    for _ in 0..ATTEMPTS {
        let mut batch = WriteBatch::new();
        let mut fragments = 0;
        for member in &members {
            for (dataset, _) in fragment::for_identity(store, tenant, member)? {
                batch.delete(Table::Fragments, &fragment::key(tenant, &dataset, member));
                fragments += 1;
            }
        }
        let mut txn = GraphTxn::new(
            store,
            tenant.clone(),
            GraphConfig {
                max_identities: usize::MAX,
            },
            |_| 0,
        );
        let graph = tessera_identity::graph_id(store, tenant, identity)?;
        let mut remaining = Vec::new();
        let had_graph = if whole_graph {
            txn.erase_graph(identity)?.is_some()
        } else {
            match txn.erase_identity(identity, at_ms)? {
                Some(graphs) => {
                    for id in graphs {
                        remaining.push(txn.members_of(id)?);
                    }
                    true
                }
                None => false,
            }
        };
        if !had_graph && fragments == 0 && erased.events == 0 {
            return Ok(None);
        }
        for graph in txn.reshaped() {
            view::invalidate(&mut batch, tenant, *graph);
        }
        txn.finish(&mut batch)?;
        let this_round = Erased {
            fragments,
            graph,
            remaining,
            ..erased.clone()
        };
        audit(&mut batch, &this_round)?;
        match store.commit(batch) {
            Ok(_) => return Ok(Some(this_round)),
            Err(tessera_store::Error::Conflict { .. }) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(Error::Conflict)
}
