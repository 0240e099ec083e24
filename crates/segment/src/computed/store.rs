//! Stored incremental state of computed attributes, one record per profile.
//!
//! Key: `tenant, "cav", graph` in `Table::ComputedAttributes` → `[format byte] ++ bincode`
//! of [`GraphState`]: every live attribute's buckets for that identity graph. One record per
//! graph rather than per (graph, attribute) so that an event costs one read and one write
//! whatever the number of attributes (the ingestion-overhead budget is per event).
//!
//! Each attribute's state carries a watermark `seq`: the change-feed position up to which
//! its events are folded in. The consumer folds an entry only above it, and a recompute
//! sets it to the feed head it read after its scan; that is what makes a backfill running
//! beside the consumer count every event exactly once (see `upkeep`).
//!
//! `fingerprint` identifies the graph's member identities when the state was built: a
//! merge, split, eviction or erasure changes it, and the next write touching the graph
//! recomputes the state from the graph's events instead of guessing how to combine.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tessera_identity::Graph;
use tessera_model::Tenant;
use tessera_store::{Key, Scope, Store, Table};

use super::window::Window;
use crate::error::{Error, Result};

const FORMAT_V1: u8 = 1;

/// One attribute's state for one profile.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AttrState {
    /// Change-feed entries up to here are folded in.
    pub seq: u64,
    /// The buckets.
    pub window: Window,
}

/// Every live attribute's state for one profile.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GraphState {
    /// Which member identities the state was built for.
    pub fingerprint: u64,
    /// Attribute id → state.
    pub attrs: BTreeMap<String, AttrState>,
}

/// Key of a profile's state.
pub fn key(tenant: &Tenant, graph: u64) -> Key {
    Key::builder(&Scope::Tenant(tenant.clone()))
        .str("cav")
        .u64(graph)
        .finish()
}

/// Encodes a state.
pub fn encode(state: &GraphState) -> Result<Vec<u8>> {
    let mut bytes = vec![FORMAT_V1];
    bincode::serialize_into(&mut bytes, state).map_err(|e| Error::Corrupt {
        what: "computed attribute state",
        reason: e.to_string(),
    })?;
    Ok(bytes)
}

/// Decodes a state.
pub fn decode(bytes: &[u8]) -> Result<GraphState> {
    match bytes.split_first() {
        Some((&FORMAT_V1, body)) => bincode::deserialize(body).map_err(|e| Error::Corrupt {
            what: "computed attribute state",
            reason: e.to_string(),
        }),
        _ => Err(Error::Corrupt {
            what: "computed attribute state",
            reason: "unknown format".into(),
        }),
    }
}

/// A profile's state and its stored bytes (for compare-and-set), if any.
pub fn load(
    store: &dyn Store,
    tenant: &Tenant,
    graph: u64,
) -> Result<Option<(GraphState, Vec<u8>)>> {
    match store.get(Table::ComputedAttributes, &key(tenant, graph))? {
        Some(bytes) => Ok(Some((decode(&bytes)?, bytes))),
        None => Ok(None),
    }
}

/// FNV-1a over the sorted member identities: stable across builds and processes (the std
/// hasher is not promised to be), and only ever compared for equality.
pub fn fingerprint(graph: &Graph) -> u64 {
    let mut members: Vec<_> = graph.identities().collect();
    members.sort();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for member in members {
        eat(member.namespace.as_bytes());
        eat(&[0]);
        eat(member.id.as_bytes());
        eat(&[0xff]);
    }
    hash
}
