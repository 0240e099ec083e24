//! Stored incremental state of computed attributes, one record per profile.
//!
//! Key: `tenant, "cav", graph` in `Table::ComputedAttributes` → `[format byte 1] ++ bincode`
//! (varint integers)
//! of [`GraphState`]: every live attribute's buckets for that identity graph. One record per
//! graph rather than per (graph, attribute) so that an event costs one read and one write
//! whatever the number of attributes (the ingestion-overhead budget is per event).
//!
//! Each attribute's state carries a watermark `seq`: the change-feed position up to which
//! its events are folded in. The consumer folds an entry only above it, and a recompute
//! sets it to the feed head it read after its scan; that is what makes a backfill running
//! beside the consumer count every event exactly once (see `upkeep`).
//!
//! `members` lists the graph's identities when the state was built. An event entry whose
//! identities are all members needs no graph read (the common case, and what keeps the
//! upkeep cheap); any other entry reads the graph, and when its members differ (a merge,
//! split, eviction or erasure) the state is recomputed from the graph's events instead of
//! guessing how to combine.

use std::collections::BTreeMap;

use bincode::Options as _;
use serde::{Deserialize, Serialize};
use tessera_identity::{Graph, IdentityKey};
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
    /// The graph's member identities when the state was built, sorted.
    pub members: Vec<IdentityKey>,
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

/// bincode with variable-length integers: bucket starts and counts shrink to a few bytes,
/// and the state is read and written on every event.
fn options() -> impl bincode::Options {
    bincode::DefaultOptions::new()
}

/// Encodes a state.
pub fn encode(state: &GraphState) -> Result<Vec<u8>> {
    let mut bytes = vec![FORMAT_V1];
    options()
        .serialize_into(&mut bytes, state)
        .map_err(|e| Error::Corrupt {
            what: "computed attribute state",
            reason: e.to_string(),
        })?;
    Ok(bytes)
}

/// Decodes a state.
pub fn decode(bytes: &[u8]) -> Result<GraphState> {
    match bytes.split_first() {
        Some((&FORMAT_V1, body)) => options().deserialize(body).map_err(|e| Error::Corrupt {
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

/// A graph's member identities, sorted (the form [`GraphState::members`] keeps).
pub fn members_of(graph: &Graph) -> Vec<IdentityKey> {
    let mut members: Vec<IdentityKey> = graph.identities().cloned().collect();
    members.sort();
    members
}

impl GraphState {
    /// Whether every identity in `identities` is a member.
    pub fn covers<'a>(&self, mut identities: impl Iterator<Item = (&'a str, &'a str)>) -> bool {
        identities.all(|(namespace, id)| {
            self.members
                .binary_search_by(|m| (m.namespace.as_str(), m.id.as_str()).cmp(&(namespace, id)))
                .is_ok()
        })
    }
}
