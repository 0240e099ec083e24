//! An identity's pointer: the graph it belongs to, and the graphs it moved through.
//!
//! The cluster history lives in the pointer's value rather than in rows of its own: an
//! identity only moves when its pointer is rewritten anyway, so a move costs no extra write
//! (a separate row per move was a third of a linking record's writes and most of its commit
//! time).
//!
//! Value layout: the graph id (u64 big-endian; 0 when the identity left its graph but keeps
//! its cluster history), then up to [`MAX_MOVES`] moves of 16 bytes each (time i64, graph
//! u64, big-endian), oldest first. Older moves spill into rows under `~clusters`
//! ([`spilled_move_key`]), where every move lived before, so those rows are still read.

use tessera_model::Tenant;
use tessera_store::Key;

use crate::error::{Error, Result};
use crate::graph::ClusterMove;
use crate::key::IdentityKey;

/// Moves kept in the pointer itself; an identity that moved more often keeps the older ones
/// in spilled rows.
pub(crate) const MAX_MOVES: usize = 32;

const GRAPH_BYTES: usize = 8;
const MOVE_BYTES: usize = 16;

/// A decoded pointer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Pointer {
    /// The live membership (`None`: the identity belongs to no graph now).
    pub graph: Option<u64>,
    /// Moves kept in the value, oldest first.
    pub moves: Vec<ClusterMove>,
}

fn corrupt(reason: String) -> Error {
    Error::Corrupt {
        what: "identity",
        reason,
    }
}

/// The graph of a stored pointer, without decoding its moves (the lookup path).
pub(crate) fn graph_of(bytes: &[u8]) -> Result<Option<u64>> {
    let head = bytes
        .get(..GRAPH_BYTES)
        .and_then(|head| <[u8; GRAPH_BYTES]>::try_from(head).ok())
        .ok_or_else(|| corrupt(format!("{} bytes, fewer than a graph id", bytes.len())))?;
    Ok(Some(u64::from_be_bytes(head)).filter(|id| *id != 0))
}

/// Decodes a whole pointer.
pub(crate) fn decode(bytes: &[u8]) -> Result<Pointer> {
    let graph = graph_of(bytes)?;
    let rest = bytes.get(GRAPH_BYTES..).unwrap_or_default();
    if rest.len() % MOVE_BYTES != 0 {
        return Err(corrupt(format!(
            "{} bytes of moves, not a multiple of {MOVE_BYTES}",
            rest.len()
        )));
    }
    let moves = rest
        .chunks_exact(MOVE_BYTES)
        .map(|chunk| {
            let (at, cluster) = chunk.split_at(MOVE_BYTES / 2);
            ClusterMove {
                at: i64::from_be_bytes(at.try_into().unwrap_or_default()),
                cluster: u64::from_be_bytes(cluster.try_into().unwrap_or_default()),
            }
        })
        .collect();
    Ok(Pointer { graph, moves })
}

/// Encodes a pointer (callers keep `moves` within [`MAX_MOVES`]).
pub(crate) fn encode(pointer: &Pointer) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(GRAPH_BYTES + MOVE_BYTES * pointer.moves.len());
    bytes.extend_from_slice(&pointer.graph.unwrap_or(0).to_be_bytes());
    for step in &pointer.moves {
        bytes.extend_from_slice(&step.at.to_be_bytes());
        bytes.extend_from_slice(&step.cluster.to_be_bytes());
    }
    bytes
}

/// Prefix of an identity's spilled (and formerly all) cluster-history rows.
pub(crate) fn spilled_moves_prefix(tenant: &Tenant, identity: &IdentityKey) -> Key {
    // `~` cannot start a namespace code, so this never meets an identity pointer.
    Key::tenant(tenant)
        .str("~clusters")
        .str(&identity.namespace)
        .str(&identity.id)
        .finish()
}

/// The row a move spills into, keyed by time and graph.
pub(crate) fn spilled_move_key(tenant: &Tenant, identity: &IdentityKey, step: &ClusterMove) -> Key {
    Key::extend(&spilled_moves_prefix(tenant, identity))
        .i64(step.at)
        .u64(step.cluster)
        .finish()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pointers_round_trip_and_old_values_still_read() {
        let pointer = Pointer {
            graph: Some(42),
            moves: vec![
                ClusterMove { cluster: 7, at: -5 },
                ClusterMove {
                    cluster: 42,
                    at: 1_700_000_000_000,
                },
            ],
        };
        assert_eq!(decode(&encode(&pointer)).unwrap(), pointer);
        assert_eq!(graph_of(&encode(&pointer)).unwrap(), Some(42));
        let left = Pointer {
            graph: None,
            moves: pointer.moves.clone(),
        };
        assert_eq!(decode(&encode(&left)).unwrap(), left);
        // Values written before moves lived in the pointer: the bare graph id.
        assert_eq!(
            decode(&9u64.to_be_bytes()).unwrap(),
            Pointer {
                graph: Some(9),
                moves: Vec::new()
            }
        );
        assert!(decode(&[0; 5]).is_err());
        assert!(decode(&[1; 12]).is_err());
    }
}
