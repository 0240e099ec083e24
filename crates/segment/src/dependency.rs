//! Segment of segments: the `inSegment` dependency graph of a sandbox's definitions.
//!
//! A definition's `dependencies` are the ids its expression reads with `inSegment("...")`
//! ([`tessera_pql::Expr::segment_dependencies`]). The graph is kept acyclic: a save that would
//! close a cycle is refused ([`find_cycle`]), so evaluation can always order parents after
//! their children.
//!
//! Reverse edges are stored beside the definitions (`Table::Segments`, key
//! `tenant, "sdr", child, parent`, value the parent id) so that "who depends on this one" is
//! one short prefix scan instead of decoding every definition of the sandbox: it is asked on
//! every read (`dependents` is shown), on delete, and to find what a change must re-evaluate.
//! The edges are written in the same atomic batch as the definition by
//! [`crate::definition::create`], [`crate::definition::update`] and
//! [`crate::definition::delete`]; [`crate::definition::put`] alone does not touch them.

use std::collections::HashSet;

use tessera_model::Tenant;
use tessera_store::{Direction, Key, ScanRange, Store, Table, WriteBatch};

use crate::error::{Error, Result};

/// Most dependents read for one definition: AEP allows 4,000 definitions per sandbox.
const MAX_DEPENDENTS: usize = 10_000;

fn edges_prefix(tenant: &Tenant, child: &str) -> Key {
    Key::tenant(tenant).str("sdr").str(child).finish()
}

fn edge_key(tenant: &Tenant, child: &str, parent: &str) -> Key {
    Key::extend(&edges_prefix(tenant, child))
        .str(parent)
        .finish()
}

/// Adds "`parent` reads `child`" to `batch`.
pub(crate) fn add_edge(batch: &mut WriteBatch, tenant: &Tenant, child: &str, parent: &str) {
    batch.put(
        Table::Segments,
        &edge_key(tenant, child, parent),
        parent.as_bytes().to_vec(),
    );
}

/// Removes "`parent` reads `child`" in `batch`.
pub(crate) fn remove_edge(batch: &mut WriteBatch, tenant: &Tenant, child: &str, parent: &str) {
    batch.delete(Table::Segments, &edge_key(tenant, child, parent));
}

/// The definitions that read `id` directly with `inSegment`, in id order.
pub fn dependents(store: &dyn Store, tenant: &Tenant, id: &str) -> Result<Vec<String>> {
    store
        .scan(
            Table::Segments,
            &ScanRange::prefix(edges_prefix(tenant, id)),
            Direction::Forward,
            MAX_DEPENDENTS,
        )?
        .iter()
        .map(|row| {
            String::from_utf8(row.value.clone()).map_err(|_| Error::Corrupt {
                what: "segment dependency edge",
                reason: "parent id is not UTF-8".into(),
            })
        })
        .collect()
}

/// Every definition that reads `id` directly or through other definitions, nearest first:
/// what must be re-evaluated when `id` changes.
pub fn affected(store: &dyn Store, tenant: &Tenant, id: &str) -> Result<Vec<String>> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut order: Vec<String> = Vec::new();
    let mut frontier = vec![id.to_owned()];
    while !frontier.is_empty() {
        let mut next = Vec::new();
        for child in &frontier {
            for parent in dependents(store, tenant, child)? {
                if parent != id && seen.insert(parent.clone()) {
                    order.push(parent.clone());
                    next.push(parent);
                }
            }
        }
        frontier = next;
    }
    Ok(order)
}

/// Looks for a path from `start` back to itself, following `dependencies_of` (the graph as
/// it would be after the save: for `start`, its new dependencies). Returns the cycle as
/// `[start, ..., start]`, or `None`.
///
/// The walk is iterative (no recursion on stored data) and visits each definition once, so
/// it ends on any graph, even one that is already cyclic elsewhere.
pub fn find_cycle(
    start: &str,
    dependencies_of: &mut dyn FnMut(&str) -> Result<Vec<String>>,
) -> Result<Option<Vec<String>>> {
    // Each stack frame: a definition on the current path and its children not yet visited
    // (reversed, so that `pop` takes them in expression order).
    let mut first = dependencies_of(start)?;
    first.reverse();
    let mut stack: Vec<(String, Vec<String>)> = vec![(start.to_owned(), first)];
    let mut visited: HashSet<String> = HashSet::new();
    while let Some((_, pending)) = stack.last_mut() {
        let Some(child) = pending.pop() else {
            stack.pop();
            continue;
        };
        if child == start {
            let mut path: Vec<String> = stack.iter().map(|(id, _)| id.clone()).collect();
            path.push(child);
            return Ok(Some(path));
        }
        if visited.insert(child.clone()) {
            let mut children = dependencies_of(&child)?;
            children.reverse();
            stack.push((child, children));
        }
    }
    Ok(None)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> HashMap<String, Vec<String>> {
        edges
            .iter()
            .map(|(id, deps)| {
                (
                    (*id).to_owned(),
                    deps.iter().map(|d| (*d).to_owned()).collect(),
                )
            })
            .collect()
    }

    fn cycle_from(start: &str, g: &HashMap<String, Vec<String>>) -> Option<Vec<String>> {
        find_cycle(start, &mut |id| Ok(g.get(id).cloned().unwrap_or_default())).unwrap()
    }

    #[test]
    fn acyclic_graph_has_no_cycle() {
        let g = graph(&[("a", &["b", "c"]), ("b", &["c"]), ("c", &[])]);
        assert_eq!(cycle_from("a", &g), None);
    }

    #[test]
    fn self_reference_is_a_cycle() {
        let g = graph(&[("a", &["a"])]);
        assert_eq!(cycle_from("a", &g), Some(vec!["a".into(), "a".into()]));
    }

    #[test]
    fn cycle_is_reported_as_a_path() {
        let g = graph(&[("a", &["x", "b"]), ("b", &["c"]), ("c", &["a"]), ("x", &[])]);
        assert_eq!(
            cycle_from("a", &g),
            Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
        );
    }

    #[test]
    fn unknown_children_end_the_walk() {
        let g = graph(&[("a", &["missing"])]);
        assert_eq!(cycle_from("a", &g), None);
    }

    #[test]
    fn a_cycle_elsewhere_does_not_hang_the_walk() {
        // Stored data could hold a cycle written before this check existed.
        let g = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["b"])]);
        assert_eq!(cycle_from("a", &g), None);
    }

    #[test]
    fn diamond_is_not_a_cycle() {
        let g = graph(&[("a", &["b", "c"]), ("b", &["d"]), ("c", &["d"]), ("d", &[])]);
        assert_eq!(cycle_from("a", &g), None);
    }

    #[test]
    fn dependencies_are_the_in_segment_ids_in_order() {
        let expr = tessera_pql::parse(
            r#"inSegment("b") and (inSegment("a") or not inSegment("b")) and person.age > 3"#,
        )
        .unwrap();
        assert_eq!(expr.segment_dependencies(), ["b", "a"]);
        let none = tessera_pql::parse(r#"person.name = "inSegment(\"x\")""#).unwrap();
        assert!(none.segment_dependencies().is_empty());
    }
}
