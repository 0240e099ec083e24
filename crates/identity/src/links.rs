//! Where a graph's links are stored, and how the pieces fold into one set.
//!
//! A graph's links are a base document (`graph id, "links"`, beside the head) plus a log of
//! rows (`"linklog", graph id, time, nonce`), one per transaction that made or confirmed
//! links in the graph without reading them. Merging two graphs moves nothing either: the
//! survivor's head names the absorbed graphs whose base and log rows now belong to it.
//!
//! Why: in a merge-heavy stream, reading, decoding, folding and rewriting the whole links
//! document on every linking record was a third of the linking cost, and most records never
//! need the links: only eviction, the linking rules, unlinking and erasure look at them
//! whole. Those read every piece, fold it, and write one base document again; so does a
//! linking record that meets a graph whose pieces passed [`COMPACT_AFTER_ROWS`], which keeps
//! a whole read short.
//!
//! The log rows sort under a string key, before the tenant's graph heads, so walks over the
//! heads (`graphs`) never read through them.

use tessera_model::Tenant;
use tessera_store::{Direction, Key, ScanRange, Store, Table};

use crate::error::Result;
use crate::graph::{decode, graph_key, Link, LinkBatch, Source, MAX_BATCHES};
use crate::key::IdentityKey;

/// Pieces (log rows and absorbed graphs' rows) a graph may gather before the next linking
/// record reads them whole and writes one base document instead.
pub(crate) const COMPACT_AFTER_ROWS: u32 = 16;

/// Datasets remembered per link.
const MAX_LINK_DATASETS: usize = 10;

/// What of a live graph's links lives outside its own base document; kept in its head.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct LinkLog {
    /// Absorbed graphs whose base documents and log rows belong to this graph now.
    pub inherited: Vec<u64>,
    /// Rows beyond the base document: this graph's log rows, and every row counted by the
    /// graphs it inherited from plus their base documents.
    pub rows: u32,
}

impl LinkLog {
    /// Whether every link is in the base document.
    pub fn is_empty(&self) -> bool {
        self.inherited.is_empty() && self.rows == 0
    }

    /// Takes over the pieces of `absorbed` (graph id `id`), whose links were not read.
    pub fn inherit(&mut self, id: u64, absorbed: LinkLog) {
        self.inherited.push(id);
        self.inherited.extend(absorbed.inherited);
        self.rows = self.rows.saturating_add(absorbed.rows).saturating_add(1);
    }

    /// Whether a linking record should read the links whole and rewrite them as one base
    /// document.
    pub fn wants_compaction(&self) -> bool {
        self.rows >= COMPACT_AFTER_ROWS
    }
}

/// The base document's key: beside the head, so a graph and its links share a block.
pub(crate) fn base_key(tenant: &Tenant, id: u64) -> Key {
    Key::extend(&graph_key(tenant, id)).str("links").finish()
}

pub(crate) fn log_prefix(tenant: &Tenant, id: u64) -> Key {
    Key::tenant(tenant).str("linklog").u64(id).finish()
}

/// A log row's key: by time, then by the writing transaction's nonce.
pub(crate) fn log_key(tenant: &Tenant, id: u64, at: i64, nonce: u64) -> Key {
    Key::extend(&log_prefix(tenant, id))
        .i64(at)
        .u64(nonce)
        .finish()
}

/// Every link of live graph `id` whose head holds `log`, folded, with the keys of the rows
/// read (the rows a rewrite replaces).
pub(crate) fn read_whole(
    store: &dyn Store,
    tenant: &Tenant,
    id: u64,
    log: &LinkLog,
) -> Result<(Vec<Link>, Vec<Key>)> {
    let mut links = Vec::new();
    let mut keys = Vec::new();
    for (nth, source) in std::iter::once(id)
        .chain(log.inherited.iter().copied())
        .enumerate()
    {
        let base = base_key(tenant, source);
        if let Some(bytes) = store.get(Table::Graphs, &base)? {
            fold(&mut links, decode::<Vec<Link>>(&bytes)?);
            keys.push(base);
        }
        // A graph without pieces has no log rows of its own: skip the scan.
        if nth == 0 && log.is_empty() {
            continue;
        }
        let rows = store.scan(
            Table::Graphs,
            &ScanRange::prefix(log_prefix(tenant, source)),
            Direction::Forward,
            usize::MAX,
        )?;
        for row in rows {
            fold(&mut links, decode::<Vec<Link>>(&row.value)?);
            keys.push(Key::from_stored(row.key));
        }
    }
    Ok((links, keys))
}

/// Folds `more` into `links`.
pub(crate) fn fold(links: &mut Vec<Link>, more: Vec<Link>) {
    for link in more {
        absorb(links, link);
    }
}

/// Adds one assertion of a link: a pair already known keeps the earliest making (its
/// record, dataset and direction) and the latest confirmation, and gains the dataset.
pub(crate) fn absorb(links: &mut Vec<Link>, link: Link) {
    let Some(known) = links.iter_mut().find(|l| l.joins(&link.a, &link.b)) else {
        links.push(link);
        return;
    };
    known.last_seen = known.last_seen.max(link.last_seen);
    if link.first_seen < known.first_seen {
        known.first_seen = link.first_seen;
        known.a = link.a;
        known.b = link.b;
        known.xaction_id = link.xaction_id;
        known.dataset = link.dataset;
    }
    for dataset in link.datasets {
        if known.datasets.len() >= MAX_LINK_DATASETS {
            break;
        }
        if !known.datasets.contains(&dataset) {
            known.datasets.push(dataset);
        }
    }
    // Batches keep coming for as long as the link is confirmed: the most recent are kept,
    // each with the last time it asserted the link, so that pieces fold to the same list in
    // any order (a whole read folds a graph's own rows before those it inherited).
    for batch in link.batches {
        match known.batches.iter_mut().find(|b| b.id == batch.id) {
            Some(seen) => seen.at = seen.at.max(batch.at),
            None => known.batches.push(batch),
        }
    }
    known
        .batches
        .sort_unstable_by(|x, y| (x.at, &x.id).cmp(&(y.at, &y.id)));
    if let Some(excess) = known.batches.len().checked_sub(MAX_BATCHES) {
        known.batches.drain(..excess);
    }
}

/// One record's assertion that `a` and `b` belong together.
pub(crate) fn made(a: &IdentityKey, b: &IdentityKey, at: i64, source: &Source<'_>) -> Link {
    Link {
        a: a.clone(),
        b: b.clone(),
        first_seen: at,
        last_seen: at,
        xaction_id: source.xaction_id.to_owned(),
        dataset: source.dataset.to_owned(),
        datasets: vec![source.dataset.to_owned()],
        batches: source
            .batch
            .map(|id| LinkBatch {
                id: id.to_owned(),
                at,
            })
            .into_iter()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> IdentityKey {
        IdentityKey::new("Email", id)
    }

    fn by<'s>(dataset: &'s str, xaction_id: &'s str) -> Source<'s> {
        Source {
            dataset,
            batch: None,
            xaction_id,
        }
    }

    #[test]
    fn folding_keeps_the_first_making_and_the_last_confirmation_in_any_order() {
        let (a, b, c) = (key("a@x.com"), key("b@x.com"), key("c@x.com"));
        let early = made(&a, &b, 10, &by("crm", "x10"));
        let late = made(&b, &a, 30, &by("web", "x30"));
        let other = made(&b, &c, 20, &by("web", "x20"));
        let mut forward = Vec::new();
        fold(
            &mut forward,
            vec![early.clone(), other.clone(), late.clone()],
        );
        let mut backward = Vec::new();
        fold(&mut backward, vec![late, other, early]);
        for links in [&forward, &backward] {
            assert_eq!(links.len(), 2);
            let ab = links.iter().find(|l| l.joins(&a, &b)).expect("a-b");
            assert_eq!((ab.first_seen, ab.last_seen), (10, 30));
            assert_eq!((&ab.a, &ab.b), (&a, &b), "direction of the first making");
            assert_eq!(ab.xaction_id, "x10");
            assert_eq!(ab.dataset, "crm");
            let mut datasets = ab.datasets.clone();
            datasets.sort();
            assert_eq!(datasets, ["crm", "web"]);
        }
    }

    #[test]
    fn a_link_remembers_at_most_ten_datasets() {
        let (a, b) = (key("a@x.com"), key("b@x.com"));
        let mut links = Vec::new();
        for n in 0..15 {
            absorb(&mut links, made(&a, &b, n, &by(&format!("d{n}"), "x")));
        }
        assert_eq!(links.len(), 1);
        assert_eq!(links.first().map(|l| l.datasets.len()), Some(10));
        assert_eq!(links.first().map(|l| l.last_seen), Some(14));
    }

    #[test]
    fn a_link_remembers_its_ten_most_recent_batches() {
        let (a, b) = (key("a@x.com"), key("b@x.com"));
        let mut links = Vec::new();
        for n in 0..15 {
            let batch = format!("b{n}");
            let source = Source {
                batch: Some(&batch),
                ..by("web", "x")
            };
            absorb(&mut links, made(&a, &b, n, &source));
        }
        // A batch asserting the link again moves to the end.
        let again = Source {
            batch: Some("b7"),
            ..by("web", "x")
        };
        absorb(&mut links, made(&a, &b, 15, &again));
        let batches: Vec<String> = links
            .first()
            .map(|l| l.batches.iter().map(|b| b.id.clone()).collect())
            .unwrap_or_default();
        let expected: Vec<String> = [5, 6, 8, 9, 10, 11, 12, 13, 14, 7]
            .iter()
            .map(|n| format!("b{n}"))
            .collect();
        assert_eq!(batches, expected);
        assert_eq!(links.first().map(|l| l.datasets.len()), Some(1));
    }

    #[test]
    fn batches_fold_by_time_in_any_order() {
        let (a, b) = (key("a@x.com"), key("b@x.com"));
        let piece = |at: i64, batch: Option<&str>| {
            let source = Source {
                batch,
                ..by("web", "x")
            };
            made(&a, &b, at, &source)
        };
        // Made in b5, confirmed in b6, then confirmed by a record of no batch: the pieces
        // of every order fold to the same batches (the third piece once made the link
        // look newer than b6's piece, which then went first).
        let pieces = [
            piece(15, Some("b5")),
            piece(18, Some("b6")),
            piece(20, None),
        ];
        for order in [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ] {
            let mut links = Vec::new();
            fold(
                &mut links,
                order
                    .iter()
                    .filter_map(|n| pieces.get(*n).cloned())
                    .collect(),
            );
            let ids: Option<Vec<String>> = links
                .first()
                .map(|l| l.batches.iter().map(|b| b.id.clone()).collect());
            assert_eq!(
                ids,
                Some(vec!["b5".to_owned(), "b6".to_owned()]),
                "{order:?}"
            );
        }
    }

    #[test]
    fn inheriting_counts_the_absorbed_graphs_rows_and_base() {
        let mut survivor = LinkLog::default();
        assert!(survivor.is_empty());
        survivor.inherit(
            5,
            LinkLog {
                inherited: vec![3],
                rows: 2,
            },
        );
        assert_eq!(survivor.inherited, [5, 3]);
        assert_eq!(survivor.rows, 3);
        assert!(!survivor.wants_compaction());
        survivor.rows = COMPACT_AFTER_ROWS;
        assert!(survivor.wants_compaction());
    }
}
