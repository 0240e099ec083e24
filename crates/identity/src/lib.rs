//! Identities and the identity graph: which identities belong to one person.
//!
//! What lives here: the [`IdentityKey`] (namespace code + normalised value) and its opaque
//! XID, and the graph — connected components of the links that records made between their
//! identities — kept incrementally: a record that joins two graphs merges them, with the
//! older graph's id surviving and a redirect left for the absorbed one; a graph over its
//! size limit loses its oldest identities first. Graph changes are computed in a
//! [`GraphTxn`] and emitted into the caller's atomic write batch, so a record and the links
//! it makes are applied together (DESIGN.md §1).
//!
//! What does not live here: fragments and events (`tessera-profile`), HTTP.
//!
//! Invariant 2: the graph equals the connected components of admitted links; lookups by any
//! member resolve to the same graph (property-tested in `tests/components.rs`).

pub mod blocklist;
mod error;
pub mod graph;
mod key;
mod links;
pub mod namespace;
mod pointer;
pub mod rules;

pub use error::{Error, Result};
pub use graph::{
    cluster_history, graph_id, graph_id_checked, graphs, history, resolve, resolve_with_links,
    scan_identities, ClusterMove, Graph, GraphConfig, GraphTxn, HistoryEntry, IdentityPage,
    LinkBatch, LinkOutcome, Member, Source,
};
pub use key::{IdentityKey, Xid};
pub use namespace::{IdType, Namespace, NamespaceCache, Namespaces};
pub use rules::LinkingRules;
