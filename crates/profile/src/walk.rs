//! A resumable walk over every profile of a sandbox, a page at a time: what a whole-sandbox
//! job (profile export) iterates, with a cursor small enough to persist after each page.
//!
//! A profile is a live identity graph, or an identity that holds fragments but belongs to no
//! graph (a dataset that does not feed the identity graph) — the same definition the
//! statistics in [`crate::stats`] count by. The walk has two phases: graphs in id order
//! (`tessera_identity::graphs`, which skips redirects and history logs), then the tenant's
//! fragment keys, where each identity without a graph pointer becomes a profile of its own.
//! Identities that hold only events and no graph are not visited: every event dataset that
//! feeds profiles also feeds the identity graph here, and finding the others would need a
//! scan of every event.
//!
//! Why not the statistics pass: `stats::compute` is one hash join over all identities held in
//! memory, exact but neither bounded nor resumable; a job that may be interrupted needs a
//! cursor it can store, and memory bounded by one page. The walk costs one scan of the graph
//! heads plus one scan of the fragment keys with a point read per distinct identity.
//!
//! Consistency: each page reads the store as it is then; a graph merged or split while the
//! walk runs may be seen in both shapes or in neither of its old ids (as any scan of a live
//! store), which is what AEP documents for exports too (a snapshot is not promised).

use tessera_identity::IdentityKey;
use tessera_model::Tenant;
use tessera_store::{Direction, ScanRange, Store, Table};

use crate::error::Result;
use crate::fragment;

/// Fragment keys read per store scan in the second phase.
const SCAN: usize = 1_024;

/// Where a walk stands; persist it to resume (a persisted format: JSON, variants only added).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "phase", rename_all = "camelCase")]
pub enum Cursor {
    /// Nothing read yet.
    #[default]
    Start,
    /// Graphs up to and including `after` are done.
    Graphs {
        /// Last graph id handed out.
        after: u64,
    },
    /// Graphs are done; fragment identities up to and including `after` are done.
    Loose {
        /// Last identity visited (`None`: the phase starts).
        after: Option<IdentityKey>,
    },
    /// Every profile has been handed out.
    Done,
}

impl Cursor {
    /// Whether the walk is over.
    pub fn is_done(&self) -> bool {
        matches!(self, Cursor::Done)
    }
}

/// One profile the walk found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// Its graph (`None` for an identity outside any graph).
    pub graph: Option<u64>,
    /// Its identities: the graph's members, or the one identity.
    pub members: Vec<IdentityKey>,
}

/// One page of the walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Profiles of this page (possibly none even before the end: a page of the second phase
    /// may visit only identities that turn out to belong to graphs).
    pub subjects: Vec<Subject>,
    /// Where the next page starts.
    pub next: Cursor,
}

/// The page after `cursor`: at most `limit` graphs, or at most `limit` distinct fragment
/// identities visited.
pub fn page(store: &dyn Store, tenant: &Tenant, cursor: &Cursor, limit: usize) -> Result<Page> {
    let limit = limit.max(1);
    match cursor {
        Cursor::Start => graph_page(store, tenant, None, limit),
        Cursor::Graphs { after } => graph_page(store, tenant, Some(*after), limit),
        Cursor::Loose { after } => loose_page(store, tenant, after.as_ref(), limit),
        Cursor::Done => Ok(Page {
            subjects: Vec::new(),
            next: Cursor::Done,
        }),
    }
}

fn graph_page(
    store: &dyn Store,
    tenant: &Tenant,
    after: Option<u64>,
    limit: usize,
) -> Result<Page> {
    let graphs = tessera_identity::graphs(store, tenant, after, limit)?;
    let next = match graphs.last() {
        Some(last) if graphs.len() >= limit => Cursor::Graphs { after: last.id },
        _ => Cursor::Loose { after: None },
    };
    let subjects = graphs
        .into_iter()
        .map(|graph| Subject {
            graph: Some(graph.id),
            members: graph.members.into_iter().map(|m| m.identity).collect(),
        })
        .collect();
    Ok(Page { subjects, next })
}

fn loose_page(
    store: &dyn Store,
    tenant: &Tenant,
    after: Option<&IdentityKey>,
    limit: usize,
) -> Result<Page> {
    let mut range = ScanRange::prefix(fragment::tenant_prefix(tenant));
    if let Some(after) = after {
        // The empty dataset id sorts before every real one (keys are order-preserving), so
        // this resumes at `after`'s first fragment; its rows are skipped below.
        range = range.resume_after(fragment::key(tenant, "", after).into_bytes());
    }
    let mut last = after.cloned();
    let mut visited = 0;
    let mut subjects = Vec::new();
    loop {
        let rows = store.scan(Table::Fragments, &range, Direction::Forward, SCAN)?;
        for row in &rows {
            let (identity, _dataset) = fragment::decode_key(&row.key)?;
            // Fragments of one identity are adjacent (identity before dataset in the key).
            if last.as_ref() == Some(&identity) {
                continue;
            }
            if visited >= limit {
                return Ok(Page {
                    subjects,
                    next: Cursor::Loose { after: last },
                });
            }
            visited += 1;
            if tessera_identity::graph_id(store, tenant, &identity)?.is_none() {
                subjects.push(Subject {
                    graph: None,
                    members: vec![identity.clone()],
                });
            }
            last = Some(identity);
        }
        match rows.last() {
            Some(row) if rows.len() >= SCAN => range.resume_after = Some(row.key.clone()),
            _ => {
                return Ok(Page {
                    subjects,
                    next: Cursor::Done,
                })
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;
    use tessera_identity::{GraphConfig, GraphTxn};
    use tessera_store::{EmbeddedStore, StoreOptions, WriteBatch};

    use super::*;
    use crate::fragment::WriteMode;

    #[test]
    fn visits_every_graph_and_loose_identity_once_across_small_pages() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        let tenant = Tenant::parse("A@AdobeOrg", "prod").unwrap();
        let mut txn = GraphTxn::new(&store, tenant.clone(), GraphConfig::default(), |_| 0);
        for n in 0..5 {
            let pair = [
                IdentityKey::new("Email", format!("g{n}")),
                IdentityKey::new("CRMID", format!("g{n}")),
            ];
            txn.link(&pair, 1, "crm", "x").unwrap();
        }
        let mut batch = WriteBatch::new();
        txn.finish(&mut batch).unwrap();
        let record = json!({"a": 1}).as_object().unwrap().clone();
        // Loose identities with several fragments each (so pages split inside them), and
        // a graph member's fragment (not loose).
        for n in 0..7 {
            for dataset in ["crm", "loyalty", "web"] {
                fragment::write(
                    &store,
                    &mut batch,
                    &tenant,
                    dataset,
                    &IdentityKey::new("Phone", format!("l{n}")),
                    record.clone(),
                    WriteMode::Replace,
                    1,
                    "x",
                )
                .unwrap();
            }
        }
        fragment::write(
            &store,
            &mut batch,
            &tenant,
            "crm",
            &IdentityKey::new("Email", "g0"),
            record,
            WriteMode::Replace,
            1,
            "x",
        )
        .unwrap();
        store.commit(batch).unwrap();

        let mut cursor = Cursor::Start;
        let mut graphs = Vec::new();
        let mut loose = Vec::new();
        while !cursor.is_done() {
            let page = page(&store, &tenant, &cursor, 2).unwrap();
            for subject in page.subjects {
                match subject.graph {
                    Some(id) => graphs.push(id),
                    None => loose.extend(subject.members),
                }
            }
            // The cursor survives a JSON round trip (it is persisted by jobs).
            let text = serde_json::to_string(&page.next).unwrap();
            cursor = serde_json::from_str(&text).unwrap();
        }
        assert_eq!(graphs.len(), 5);
        let mut sorted = graphs.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), 5);
        let mut expected: Vec<IdentityKey> = (0..7)
            .map(|n| IdentityKey::new("Phone", format!("l{n}")))
            .collect();
        expected.sort();
        assert_eq!(loose, expected);
    }
}
