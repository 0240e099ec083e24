//! Deleting the profile data of a whole dataset, the events of one ingestion batch, or a
//! dataset's events older than a time (retention), in bounded chunks.
//!
//! A purge can touch millions of keys, far more than one atomic batch should hold, so it
//! proceeds in chunks: [`plan_chunk`] reads at most `limit` entries from where the
//! [`Progress`] says the purge stands and returns a [`WriteBatch`] deleting them, together
//! with the progress after it. The caller adds its own bookkeeping (the job document holding
//! the new progress) to that batch and commits it, so deletions and progress land together
//! and a crash resumes exactly where the last commit left off.
//!
//! What is deleted: for a dataset, its events (found through their idempotency index), their
//! idempotency and batch-index entries, and its fragments (found by scanning the tenant's
//! fragments, whose keys start with the identity); for a batch, the events the batch index
//! lists, with their idempotency entries; for expired events, those of the dataset whose
//! `timestamp` is before the cutoff, each with its idempotency and batch-index entries.
//! Identity graphs are left alone: links belong to the
//! identity service, which AEP deletes separately.
//!
//! Every chunk invalidates the materialized views of the graphs of the identities it
//! touches, and expects those identities' graph pointers unchanged (invariant 7, and
//! `view`'s exactness: a lookup never serves data a committed purge removed).

use std::collections::BTreeSet;

use tessera_identity::IdentityKey;
use tessera_model::Tenant;
use tessera_store::{Direction, KeyReader, ScanRange, Store, Table, WriteBatch};

use crate::error::{Error, Result};
use crate::{event, fragment, view};

/// What a purge deletes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// All profile data of a dataset (record or experience-event).
    Dataset {
        /// Dataset id.
        dataset: String,
    },
    /// The events of one ingestion batch of an experience-event dataset.
    Batch {
        /// Dataset the batch loaded.
        dataset: String,
        /// Batch id.
        batch: String,
    },
    /// The events of a dataset whose `timestamp` is before `before_ms` (retention TTL).
    ///
    /// Two passes, both over indexes whose values are event keys (which hold the
    /// timestamp), so nothing is decoded but keys: first the batch index, deleting each
    /// expired event with its idempotency *and* batch-index entry in one chunk (an event key
    /// does not name its batch, so this is the only place the three meet); then the
    /// idempotency index, for events that came without a batch (streaming). An event loaded
    /// by a batch between the two passes loses its batch-index entry only on the next sweep.
    /// Work is O(dataset's events) per sweep: there is no time-ordered dataset index.
    Expired {
        /// Dataset id.
        dataset: String,
        /// Events strictly older than this (ms) are deleted.
        before_ms: i64,
    },
}

/// Which kind of entry a purge is deleting now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Phase {
    /// Events (and their idempotency entries).
    #[default]
    Events,
    /// Remaining batch-index entries of the dataset.
    BatchIndex,
    /// Fragments of the dataset.
    Fragments,
    /// Nothing left.
    Done,
}

/// Where a purge stands; stored by the caller with each chunk (a persisted format: fields
/// are only ever added, with defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Current phase.
    pub phase: Phase,
    /// The last key the current phase scanned; the next chunk resumes after it. Phases that
    /// delete what they read could restart from the front, but an LSM scan from the front
    /// would walk every tombstone the purge left so far (quadratic on a large dataset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Vec<u8>>,
    /// Events and fragments deleted so far.
    #[serde(default)]
    pub records: u64,
}

impl Progress {
    /// Where a new purge of `target` starts: expired-event purges begin with the batch
    /// index (see [`Target::Expired`]), the others with the events.
    pub fn start(target: &Target) -> Self {
        let phase = match target {
            Target::Expired { .. } => Phase::BatchIndex,
            Target::Dataset { .. } | Target::Batch { .. } => Phase::Events,
        };
        Self {
            phase,
            ..Self::default()
        }
    }

    /// Whether nothing is left to delete.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }
}

/// One chunk of deletions, not yet committed.
#[derive(Debug)]
pub struct Chunk {
    /// Deletions, view invalidations and graph-pointer preconditions.
    pub batch: WriteBatch,
    /// The progress once the batch is committed.
    pub progress: Progress,
}

/// Plans the next chunk of `target`'s purge from `progress`: reads at most `limit` entries.
/// Commit the returned batch (plus the caller's bookkeeping); on
/// [`tessera_store::Error::Conflict`] plan again from the same progress.
pub fn plan_chunk(
    store: &dyn Store,
    tenant: &Tenant,
    target: &Target,
    progress: &Progress,
    limit: usize,
) -> Result<Chunk> {
    let limit = limit.max(1);
    let mut planner = Planner {
        store,
        tenant,
        batch: WriteBatch::new(),
        touched: BTreeSet::new(),
        progress: progress.clone(),
    };
    match (target, progress.phase) {
        (_, Phase::Done) => {}
        (Target::Dataset { dataset }, Phase::Events) => {
            let prefix = event::dataset_index_prefix(tenant, dataset);
            for row in planner.page(Table::Events, prefix, limit, Phase::BatchIndex)? {
                planner.delete_event(&row.value, None)?;
            }
        }
        (Target::Dataset { dataset }, Phase::BatchIndex) => {
            let prefix = event::batch_index_prefix(tenant, dataset, None);
            for row in planner.page(Table::Events, prefix, limit, Phase::Fragments)? {
                let (batch_id, event_id) = decode_batch_index_key(&row.key)?;
                planner.batch.delete(
                    Table::Events,
                    &event::batch_index_key(tenant, dataset, &batch_id, &event_id),
                );
            }
        }
        (Target::Dataset { dataset }, Phase::Fragments) => {
            let prefix = fragment::tenant_prefix(tenant);
            for row in planner.page(Table::Fragments, prefix, limit, Phase::Done)? {
                let (identity, fragment_dataset) = fragment::decode_key(&row.key)?;
                if &fragment_dataset != dataset {
                    continue;
                }
                planner
                    .batch
                    .delete(Table::Fragments, &fragment::key(tenant, dataset, &identity));
                planner.touched.insert(identity);
                planner.progress.records += 1;
            }
        }
        (Target::Batch { dataset, batch }, Phase::Events) => {
            let prefix = event::batch_index_prefix(tenant, dataset, Some(batch));
            for row in planner.page(Table::Events, prefix, limit, Phase::Done)? {
                planner.delete_event(&row.value, Some(batch))?;
            }
        }
        // A batch purge has no other phase; a progress claiming one is finished.
        (Target::Batch { .. }, Phase::BatchIndex | Phase::Fragments) => {
            planner.progress.phase = Phase::Done;
        }
        // Expired events: batch-loaded ones through the batch index first (so their batch
        // entries go with them), then the rest through the `_id` index.
        (Target::Expired { dataset, before_ms }, Phase::BatchIndex) => {
            let prefix = event::batch_index_prefix(tenant, dataset, None);
            for row in planner.page(Table::Events, prefix, limit, Phase::Events)? {
                if event::decode_key(&row.value)?.timestamp_ms >= *before_ms {
                    continue;
                }
                let (batch_id, _) = decode_batch_index_key(&row.key)?;
                planner.delete_event(&row.value, Some(&batch_id))?;
            }
        }
        (Target::Expired { dataset, before_ms }, Phase::Events) => {
            let prefix = event::dataset_index_prefix(tenant, dataset);
            for row in planner.page(Table::Events, prefix, limit, Phase::Done)? {
                if event::decode_key(&row.value)?.timestamp_ms < *before_ms {
                    planner.delete_event(&row.value, None)?;
                }
            }
        }
        (Target::Expired { .. }, Phase::Fragments) => {
            planner.progress.phase = Phase::Done;
        }
    }
    planner.finish()
}

struct Planner<'a> {
    store: &'a dyn Store,
    tenant: &'a Tenant,
    batch: WriteBatch,
    touched: BTreeSet<IdentityKey>,
    progress: Progress,
}

impl Planner<'_> {
    /// The next page of the index under `prefix`, resuming after the last key handled; a
    /// short page means the index is exhausted and the purge moves on to phase `then`.
    fn page(
        &mut self,
        table: Table,
        prefix: tessera_store::Key,
        limit: usize,
        then: Phase,
    ) -> Result<Vec<tessera_store::Entry>> {
        let rows = self.store.scan(
            table,
            &resumable(prefix, &self.progress),
            Direction::Forward,
            limit,
        )?;
        self.progress.after = rows.last().map(|row| row.key.clone());
        if rows.len() < limit {
            self.progress.phase = then;
            self.progress.after = None;
        }
        Ok(rows)
    }

    /// Deletes the event stored under `event_key` and its idempotency entry, and its batch
    /// index entry when the batch is known.
    fn delete_event(&mut self, event_key: &[u8], batch: Option<&str>) -> Result<()> {
        let parts = event::decode_key(event_key)?;
        self.batch
            .delete(
                Table::Events,
                &event::key(
                    self.tenant,
                    &parts.identity,
                    parts.timestamp_ms,
                    &parts.dataset,
                    &parts.event_id,
                ),
            )
            .delete(
                Table::Events,
                &event::id_index_key(self.tenant, &parts.dataset, &parts.event_id),
            );
        if let Some(batch) = batch {
            self.batch.delete(
                Table::Events,
                &event::batch_index_key(self.tenant, &parts.dataset, batch, &parts.event_id),
            );
        }
        self.touched.insert(parts.identity);
        self.progress.records += 1;
        Ok(())
    }

    fn finish(mut self) -> Result<Chunk> {
        let mut graphs = BTreeSet::new();
        for identity in &self.touched {
            if let Some(graph) = tessera_identity::graph_id_checked(
                self.store,
                &mut self.batch,
                self.tenant,
                identity,
            )? {
                graphs.insert(graph);
            }
        }
        for graph in graphs {
            view::invalidate(&mut self.batch, self.tenant, graph);
        }
        Ok(Chunk {
            batch: self.batch,
            progress: self.progress,
        })
    }
}

/// The scan of `prefix`, resumed after the progress's last key.
fn resumable(prefix: tessera_store::Key, progress: &Progress) -> ScanRange {
    let mut range = ScanRange::prefix(prefix);
    range.resume_after.clone_from(&progress.after);
    range
}

/// `(batch id, _id)` of a batch-index key.
fn decode_batch_index_key(bytes: &[u8]) -> Result<(String, String)> {
    let (_, mut reader) = KeyReader::with_scope(bytes)?;
    let tag = reader.string()?;
    if tag != "b" {
        return Err(Error::Corrupt {
            what: "batch index key",
            reason: format!("expected a batch index key, found tag {tag:?}"),
        });
    }
    let _dataset = reader.string()?;
    Ok((reader.string()?, reader.string()?))
}

/// Runs a whole purge in one call (tests and tools; servers run it chunk by chunk as a job).
pub fn run(store: &dyn Store, tenant: &Tenant, target: &Target, limit: usize) -> Result<u64> {
    let mut progress = Progress::start(target);
    while !progress.is_done() {
        let chunk = plan_chunk(store, tenant, target, &progress, limit)?;
        if !chunk.batch.is_empty() {
            store.commit(chunk.batch)?;
        }
        progress = chunk.progress;
    }
    Ok(progress.records)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::{json, Map, Value};
    use tessera_store::{EmbeddedStore, StoreOptions};

    use super::*;
    use crate::event::NewEvent;
    use crate::fragment::WriteMode;

    fn tenant() -> Tenant {
        Tenant::parse("ACME@AdobeOrg", "prod").unwrap()
    }

    fn record() -> Map<String, Value> {
        json!({"a": 1}).as_object().unwrap().clone()
    }

    fn add_event(store: &EmbeddedStore, dataset: &str, batch: Option<&str>, id: &str, who: &str) {
        add_event_at(store, dataset, batch, id, who, 1_000);
    }

    fn add_event_at(
        store: &EmbeddedStore,
        dataset: &str,
        batch: Option<&str>,
        id: &str,
        who: &str,
        timestamp_ms: i64,
    ) {
        let identity = IdentityKey::new("ECID", who);
        let new = NewEvent {
            dataset,
            identity: &identity,
            timestamp_ms,
            event_id: id,
            xaction_id: "x",
        };
        let mut wb = WriteBatch::new();
        event::append(&mut wb, &tenant(), &new, &record()).unwrap();
        if let Some(batch) = batch {
            event::index_batch(&mut wb, &tenant(), &new, batch);
        }
        store.commit(wb).unwrap();
    }

    fn add_fragment(store: &EmbeddedStore, dataset: &str, who: &str) {
        let mut wb = WriteBatch::new();
        fragment::write(
            store,
            &mut wb,
            &tenant(),
            dataset,
            &IdentityKey::new("Email", who),
            record(),
            WriteMode::Replace,
            1,
            "x",
        )
        .unwrap();
        store.commit(wb).unwrap();
    }

    #[test]
    fn dataset_purge_deletes_only_that_dataset_in_small_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        for n in 0..7 {
            add_event(
                &store,
                "web",
                Some("b1"),
                &format!("e{n}"),
                &format!("p{n}"),
            );
            add_event(&store, "app", None, &format!("e{n}"), &format!("p{n}"));
            add_fragment(&store, "crm", &format!("p{n}"));
            add_fragment(&store, "loyalty", &format!("p{n}"));
        }
        let web = Target::Dataset {
            dataset: "web".into(),
        };
        assert_eq!(run(&store, &tenant(), &web, 3).unwrap(), 7);
        let crm = Target::Dataset {
            dataset: "crm".into(),
        };
        assert_eq!(run(&store, &tenant(), &crm, 2).unwrap(), 7);
        for n in 0..7 {
            assert!(!event::exists(&store, &tenant(), "web", &format!("e{n}")).unwrap());
            assert!(event::exists(&store, &tenant(), "app", &format!("e{n}")).unwrap());
            let who = IdentityKey::new("Email", format!("p{n}"));
            let left = fragment::for_identity(&store, &tenant(), &who).unwrap();
            assert_eq!(left.len(), 1);
            assert_eq!(left.first().map(|(d, _)| d.as_str()), Some("loyalty"));
        }
        let index = store
            .scan(
                Table::Events,
                &ScanRange::prefix(event::batch_index_prefix(&tenant(), "web", None)),
                Direction::Forward,
                100,
            )
            .unwrap();
        assert!(index.is_empty(), "batch index entries outlive the dataset");
    }

    #[test]
    fn batch_purge_deletes_only_that_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        add_event(&store, "web", Some("b1"), "e1", "p1");
        add_event(&store, "web", Some("b1"), "e2", "p2");
        add_event(&store, "web", Some("b2"), "e3", "p1");
        let target = Target::Batch {
            dataset: "web".into(),
            batch: "b1".into(),
        };
        assert_eq!(run(&store, &tenant(), &target, 1).unwrap(), 2);
        assert!(!event::exists(&store, &tenant(), "web", "e1").unwrap());
        assert!(!event::exists(&store, &tenant(), "web", "e2").unwrap());
        assert!(event::exists(&store, &tenant(), "web", "e3").unwrap());
        let left = event::for_identity(
            &store,
            &tenant(),
            &IdentityKey::new("ECID", "p1"),
            Direction::Forward,
            10,
        )
        .unwrap();
        assert_eq!(left.len(), 1);
    }

    #[test]
    fn expired_purge_deletes_older_events_with_all_their_index_entries() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        // Streamed and batch-loaded events on both sides of the cutoff, in two datasets.
        for n in 0..9_i64 {
            let batch = (n % 2 == 0).then_some("b1");
            let id = format!("e{n}");
            let who = format!("p{}", n % 3);
            add_event_at(&store, "web", batch, &id, &who, n * 100);
            add_event_at(&store, "app", batch, &id, &who, n * 100);
        }
        let target = Target::Expired {
            dataset: "web".into(),
            before_ms: 450,
        };
        // e0..e4 are older than 450.
        assert_eq!(run(&store, &tenant(), &target, 2).unwrap(), 5);
        for n in 0..9 {
            let id = format!("e{n}");
            assert_eq!(
                event::exists(&store, &tenant(), "web", &id).unwrap(),
                n >= 5,
                "{id}"
            );
            assert!(event::exists(&store, &tenant(), "app", &id).unwrap());
        }
        let index = store
            .scan(
                Table::Events,
                &ScanRange::prefix(event::batch_index_prefix(&tenant(), "web", None)),
                Direction::Forward,
                100,
            )
            .unwrap();
        let left: Vec<i64> = index
            .iter()
            .map(|row| event::decode_key(&row.value).unwrap().timestamp_ms)
            .collect();
        assert_eq!(
            left,
            [600, 800],
            "batch-index entries of expired events remain"
        );
        let mut events = 0;
        for who in ["p0", "p1", "p2"] {
            events += event::for_identity(
                &store,
                &tenant(),
                &IdentityKey::new("ECID", who),
                Direction::Forward,
                100,
            )
            .unwrap()
            .len();
        }
        assert_eq!(events, 4 + 9, "web keeps e5..e8, app keeps all");
        // A second sweep finds nothing more.
        assert_eq!(run(&store, &tenant(), &target, 2).unwrap(), 0);
    }
}
