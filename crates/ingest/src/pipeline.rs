//! The write path shared by streaming and batch ingestion: prepare (validate, extract
//! identities, decide the write) without touching the store's data, then apply a group of
//! prepared records in as few atomic batches as correctness allows.
//!
//! Each applied record lands in one batch together with its idempotency entry (events) and
//! its change-feed entry, so nothing is half-written (DESIGN.md invariant 1). A group is
//! committed as one batch — one fsync for the whole request — unless two of its records touch
//! the same fragment or event id, or a concurrent writer interferes; then it falls back to
//! smaller rounds and per-record commits.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Map, Value};
use tessera_identity::{GraphConfig, GraphTxn, LinkOutcome, Namespaces};
use tessera_model::Tenant;
use tessera_profile::event::{self, NewEvent};
use tessera_profile::fragment::{self, WriteMode};
use tessera_profile::IdentityKey;
use tessera_schema::{CompiledSchema, XdmClass};
use tessera_store::{Key, Store, Table, WriteBatch};

use crate::change_feed::{self, ChangeEntry, ChangeKind, GraphGrowth};
use crate::dataset::Dataset;
use crate::error::{Error, FieldProblem, Rejection, RejectionCode, Result};
use crate::record;

/// Per-record limits, with AEP's defaults.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest profile record (serialised JSON), bytes.
    pub max_record_bytes: usize,
    /// Largest experience event, bytes.
    pub max_event_bytes: usize,
    /// Most identities one record may carry.
    pub max_identities: usize,
    /// Most field problems reported for one record.
    pub max_problems: usize,
    /// Most identities in one identity graph (AEP: 50); the oldest go first beyond it.
    pub max_graph_identities: usize,
    /// Digests of applied events held in memory for the computed-attribute consumer (0:
    /// none; it then reads every event back, and ingestion never waits for it). See
    /// [`crate::recent`].
    pub recent_events: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_record_bytes: 100 * 1024,
            max_event_bytes: 10 * 1024,
            max_identities: 20,
            max_problems: 100,
            max_graph_identities: 50,
            recent_events: crate::recent::DEFAULT_CAPACITY,
        }
    }
}

/// How a record asks to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// The dataset's default: replace (or upsert for upsert datasets); append for events.
    Default,
    /// Partial update of a profile record (`operations.data: "merge"`).
    Merge,
}

#[derive(Debug, Clone)]
enum Write {
    Record {
        mode: WriteMode,
        modified_ms: i64,
        record: Map<String, Value>,
    },
    Event {
        event_id: String,
        timestamp_ms: i64,
        event: Map<String, Value>,
    },
}

/// A validated record ready to be written.
#[derive(Debug, Clone)]
pub struct Prepared {
    tenant: Tenant,
    dataset_id: String,
    primary: IdentityKey,
    identities: Vec<IdentityKey>,
    /// The dataset feeds the identity graph (`tags.unifiedIdentity`).
    link: bool,
    /// The namespaces and linking rules the record was prepared under; linking uses the same
    /// snapshot, so its primary identity and its links follow one set of rules.
    namespaces: Arc<Namespaces>,
    xaction_id: String,
    /// The ingestion batch it came in, if any: its events are indexed under it so that
    /// the batch can be deleted later (profile system jobs).
    batch_id: Option<String>,
    write: Write,
}

/// An event a [`Prepared`] record wrote, as its change-feed entry names it.
#[derive(Debug)]
pub struct AppliedEvent {
    /// Its sandbox.
    pub tenant: Tenant,
    /// Its `_id` (trimmed).
    pub event_id: String,
    /// Its time (the entry's `eventMs`).
    pub timestamp_ms: i64,
    /// The document.
    pub event: Map<String, Value>,
}

impl Prepared {
    /// Marks the record as part of ingestion batch `batch_id`.
    pub fn in_batch(mut self, batch_id: &str) -> Self {
        self.batch_id = Some(batch_id.to_owned());
        self
    }

    /// The receipt this record will be acknowledged with.
    pub fn xaction_id(&self) -> &str {
        &self.xaction_id
    }

    /// Its dataset.
    pub fn dataset_id(&self) -> &str {
        &self.dataset_id
    }

    /// The event this record writes, if it is one (consumed: the caller hands it on).
    pub fn into_event(self) -> Option<AppliedEvent> {
        match self.write {
            Write::Event {
                event_id,
                timestamp_ms,
                event,
            } => Some(AppliedEvent {
                tenant: self.tenant,
                event_id,
                timestamp_ms,
                event,
            }),
            Write::Record { .. } => None,
        }
    }

    fn conflict_key(&self) -> Vec<u8> {
        match &self.write {
            Write::Record { .. } => {
                fragment::key(&self.tenant, &self.dataset_id, &self.primary).into_bytes()
            }
            Write::Event { event_id, .. } => {
                event::id_index_key(&self.tenant, &self.dataset_id, event_id).into_bytes()
            }
        }
    }
}

/// Validates `entity` for `dataset` and decides how it will be written. Touches no data.
#[allow(clippy::too_many_arguments)]
pub fn prepare(
    tenant: &Tenant,
    dataset: &Dataset,
    schema: &CompiledSchema,
    namespaces: &Arc<Namespaces>,
    entity: Value,
    operation: Operation,
    received_ms: i64,
    xaction_id: String,
    limits: &Limits,
) -> std::result::Result<Prepared, Rejection> {
    let Value::Object(record) = entity else {
        return Err(Rejection::new(
            RejectionCode::MalformedMessage,
            "the XDM entity must be a JSON object",
        ));
    };
    let size = serde_json::to_vec(&record)
        .map(|b| b.len())
        .unwrap_or(usize::MAX);
    let (limit, what) = match schema.class() {
        XdmClass::ExperienceEvent => (limits.max_event_bytes, "experience event"),
        _ => (limits.max_record_bytes, "profile record"),
    };
    if size > limit {
        return Err(Rejection::new(
            RejectionCode::TooLarge,
            format!("{what} is {size} bytes; the limit is {limit} bytes"),
        ));
    }
    // A merge is a partial record: required fields may legitimately be absent.
    if operation == Operation::Default || !matches!(schema.class(), XdmClass::Profile) {
        if let Err(violations) = schema.validate(&Value::Object(record.clone())) {
            let total = violations.len();
            let problems: Vec<FieldProblem> = violations
                .into_iter()
                .take(limits.max_problems)
                .map(|v| FieldProblem {
                    path: v.path,
                    code: v.code.as_str().to_owned(),
                    message: v.message,
                })
                .collect();
            return Err(Rejection {
                code: RejectionCode::ValidationFailed,
                message: format!("{total} schema violation(s) found"),
                problems,
            });
        }
    }
    let found = record::identities(
        &record,
        schema.identity_descriptors(),
        namespaces,
        limits.max_identities,
    )?;
    let rules = namespaces.rules();
    let primary = if matches!(schema.class(), XdmClass::ExperienceEvent)
        && !rules.namespace_priority.is_empty()
    {
        record::primary_by_priority(&found, rules)?.clone()
    } else {
        record::primary(&found)?.clone()
    };
    let identities = found.into_iter().map(|f| f.key).collect();
    let write = match (schema.class(), operation) {
        (XdmClass::Profile, operation) => Write::Record {
            mode: if dataset.upsert() || operation == Operation::Merge {
                WriteMode::Upsert
            } else {
                WriteMode::Replace
            },
            modified_ms: record::source_last_updated(&record).unwrap_or(received_ms),
            record,
        },
        (XdmClass::ExperienceEvent, Operation::Default) => {
            let (event_id, timestamp_ms) = record::event_id_and_time(&record)?;
            Write::Event {
                event_id,
                timestamp_ms,
                event: record,
            }
        }
        (XdmClass::ExperienceEvent, Operation::Merge) => {
            return Err(Rejection::new(
                RejectionCode::SchemaMismatch,
                "partial updates (operations.data = merge) apply to profile records, not experience events",
            ));
        }
        (XdmClass::Other(class), _) => {
            return Err(Rejection::new(
                RejectionCode::SchemaMismatch,
                format!("datasets of class {class} cannot be ingested into the profile store"),
            ));
        }
    };
    Ok(Prepared {
        tenant: tenant.clone(),
        dataset_id: dataset.id.clone(),
        primary,
        identities,
        link: dataset.identity_enabled(),
        namespaces: Arc::clone(namespaces),
        xaction_id,
        batch_id: None,
        write,
    })
}

/// Identity-graph changes of one atomic batch, one transaction per tenant.
struct Linker<'a> {
    store: &'a dyn Store,
    config: GraphConfig,
    txns: BTreeMap<Tenant, TenantLinks<'a>>,
    /// Sandboxes whose unlinked-events flag (see [`unlinked_events_key`]) this batch knows:
    /// set (by the batch, or read so), or read absent under a precondition. Read once per
    /// batch, not per record.
    unlinked_events: HashMap<Tenant, bool>,
}

/// One tenant's graph transaction within a batch.
struct TenantLinks<'a> {
    txn: GraphTxn<'a>,
    blocked: HashSet<IdentityKey>,
    /// Graphs a record split (an eviction, or a link its linking rules removed): `(graph,
    /// parts split off, the record's primary identity, its receipt)`.
    splits: Vec<(u64, Vec<u64>, IdentityKey, String)>,
}

impl TenantLinks<'_> {
    /// Whether `identity` of `item` takes part in linking: blocked and non-people
    /// identities do not.
    fn links(&self, item: &Prepared, identity: &IdentityKey) -> bool {
        !self.blocked.contains(identity) && item.namespaces.links_people(&identity.namespace)
    }
}

impl<'a> Linker<'a> {
    fn new(store: &'a dyn Store, limits: &Limits) -> Self {
        Self {
            store,
            config: GraphConfig {
                max_identities: limits.max_graph_identities,
            },
            txns: BTreeMap::new(),
            unlinked_events: HashMap::new(),
        }
    }

    /// Notes that the batch stores an event of a dataset not enabled for identity; sets
    /// the sandbox's flag once per batch.
    fn note_unlinked_event(&mut self, batch: &mut WriteBatch, tenant: &Tenant) {
        if self.unlinked_events.insert(tenant.clone(), true) != Some(true) {
            batch.put(Table::Meta, &unlinked_events_key(tenant), vec![1]);
        }
    }

    /// What the record's linking did to its graph, for the change feed. A graph that grew
    /// only by new identities, or by merged graphs and new identities, is reported so only
    /// while the sandbox holds no unlinked events, with a precondition on that: an unlinked
    /// event committed meanwhile makes this commit retry.
    fn growth(
        &mut self,
        batch: &mut WriteBatch,
        tenant: &Tenant,
        outcome: Option<&LinkOutcome>,
    ) -> Result<GraphGrowth> {
        let Some(outcome) = outcome else {
            return Ok(GraphGrowth::default());
        };
        let (mut grew_by_new_identities, mut clean_merge) =
            (outcome.grew_by_new_identities, outcome.clean_merge);
        if grew_by_new_identities || clean_merge {
            let unlinked = match self.unlinked_events.get(tenant) {
                Some(known) => *known,
                None => {
                    let key = unlinked_events_key(tenant);
                    let read_at = self.store.read_version();
                    let flag = self.store.get(Table::Meta, &key)?;
                    let set = flag.is_some();
                    batch.expect_read_at(Table::Meta, &key, flag, read_at);
                    self.unlinked_events.insert(tenant.clone(), set);
                    set
                }
            };
            grew_by_new_identities &= !unlinked;
            clean_merge &= !unlinked;
        }
        Ok(GraphGrowth {
            created: outcome.created,
            grew_by_new_identities,
            clean_merge,
        })
    }

    /// Whether the record's primary identity took part in linking (blocked and non-people
    /// ones do not): only then is its fragment part of the record's graph.
    fn linked_primary(&self, item: &Prepared) -> bool {
        self.txns
            .get(&item.tenant)
            .is_some_and(|links| links.links(item, &item.primary))
    }

    /// The members of `graph` if the batch's links so far changed who they are (`None`:
    /// unchanged).
    fn reshaped_members(
        &mut self,
        tenant: &Tenant,
        graph: u64,
    ) -> Result<Option<Vec<IdentityKey>>> {
        match self.txns.get_mut(tenant) {
            Some(links) if links.txn.reshaped().contains(&graph) => {
                Ok(Some(links.txn.members_of(graph)?))
            }
            _ => Ok(None),
        }
    }

    /// Links the record's identities (primary first); returns what that did to the graph.
    fn link(&mut self, item: &Prepared, at: i64) -> Result<Option<LinkOutcome>> {
        if !item.link {
            return Ok(None);
        }
        let store = self.store;
        if !self.txns.contains_key(&item.tenant) {
            let namespaces = Arc::clone(&item.namespaces);
            let blocked = tessera_identity::blocklist::load(store, &item.tenant)?;
            let rules = namespaces.rules().clone();
            let txn = GraphTxn::new(
                store,
                item.tenant.clone(),
                self.config.clone(),
                move |code| namespaces.eviction_rank(code),
            )
            .with_rules(rules);
            self.txns.insert(
                item.tenant.clone(),
                TenantLinks {
                    txn,
                    blocked,
                    splits: Vec::new(),
                },
            );
        }
        let Some(links) = self.txns.get_mut(&item.tenant) else {
            return Ok(None);
        };
        // Blocked and non-people identities never link; the record's other identities
        // still do.
        let mut identities = Vec::with_capacity(item.identities.len());
        identities.push(item.primary.clone());
        identities.extend(
            item.identities
                .iter()
                .filter(|i| **i != item.primary)
                .cloned(),
        );
        let carried = identities.len();
        identities.retain(|i| links.links(item, i));
        let source = tessera_identity::Source {
            dataset: &item.dataset_id,
            batch: item.batch_id.as_deref(),
            xaction_id: &item.xaction_id,
        };
        let mut outcome = links.txn.link_from(&identities, at, &source)?;
        if identities.len() < carried {
            // The feed entry lists every identity the record carried; consumers read its
            // growth flags as "the graph gained those", which one left out contradicts.
            if let Some(outcome) = &mut outcome {
                outcome.grew_by_new_identities = false;
                outcome.clean_merge = false;
            }
        }
        if let Some(outcome) = &outcome {
            if !outcome.evicted.is_empty() {
                tracing::info!(
                    graph = outcome.graph,
                    evicted = ?outcome.evicted,
                    "identity graph at capacity; oldest identities removed"
                );
            }
            if !outcome.split_off.is_empty() {
                links.splits.push((
                    outcome.graph,
                    outcome.split_off.clone(),
                    item.primary.clone(),
                    item.xaction_id.clone(),
                ));
            }
        }
        Ok(outcome)
    }

    fn finish(self, batch: &mut WriteBatch, applied_ms: i64) -> Result<()> {
        for (tenant, mut links) in self.txns {
            // Merged profiles list the graph's identities: a membership change stales them.
            for graph in links.txn.reshaped() {
                tessera_profile::view::invalidate(batch, &tenant, *graph);
            }
            // Parts an eviction or a linking rule split off are graphs no record names: feed
            // consumers hear of them here, after every record's entries.
            for (graph, split_off, primary, receipt) in &links.splits {
                let mut parts = Vec::with_capacity(split_off.len() + 1);
                for part in std::iter::once(graph).chain(split_off) {
                    parts.push(links.txn.members_of(*part)?);
                }
                change_feed::append_graph_changes(
                    batch, &tenant, *graph, &parts, primary, receipt, applied_ms,
                )?;
            }
            links.txn.finish(batch)?;
        }
        Ok(())
    }
}

/// What happened to one prepared record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Written; durable when `apply` returned.
    Written {
        /// Receipt.
        xaction_id: String,
        /// Change-feed position.
        feed_seq: u64,
    },
    /// An event with the same `_id` was already in the dataset; nothing written.
    Duplicate {
        /// Receipt of this (ignored) submission.
        xaction_id: String,
    },
}

/// Adds one record to `batch`; returns how many feed entries it appended (its own first).
fn add_to_batch(
    store: &dyn Store,
    batch: &mut WriteBatch,
    linker: &mut Linker<'_>,
    item: &Prepared,
    applied_ms: i64,
) -> Result<usize> {
    let outcome = linker.link(item, applied_ms)?;
    let primary_linked = linker.linked_primary(item);
    // The record's data is filed under its primary identity, so its feed entry is about
    // the profile that holds it. For a primary left out of linking that is not the graph
    // the record's other identities joined (which gets an entry of its own, right after):
    // the entry names no graph, and consumers look the primary up, as for a dataset
    // outside the identity graph.
    let (graph, absorbed, growth) = match &outcome {
        Some(outcome) if primary_linked => (
            Some(outcome.graph),
            outcome.absorbed.clone(),
            linker.growth(batch, &item.tenant, Some(outcome))?,
        ),
        _ => (None, Vec::new(), GraphGrowth::default()),
    };
    let (kind, event_ms, event_id) = match &item.write {
        Write::Record {
            mode,
            modified_ms,
            record,
        } => {
            // A fragment filed under a primary left out of linking belongs to that
            // identity's own profile, not to the graph its other identities joined.
            match graph.filter(|_| primary_linked) {
                Some(graph) => tessera_profile::view::invalidate(batch, &item.tenant, graph),
                None => tessera_profile::view::invalidate_identity(
                    store,
                    batch,
                    &item.tenant,
                    &item.primary,
                )?,
            }
            fragment::write(
                store,
                batch,
                &item.tenant,
                &item.dataset_id,
                &item.primary,
                record.clone(),
                *mode,
                *modified_ms,
                &item.xaction_id,
            )?;
            (ChangeKind::Record, None, None)
        }
        Write::Event {
            event_id,
            timestamp_ms,
            event: body,
        } => {
            let new = NewEvent {
                dataset: &item.dataset_id,
                identity: &item.primary,
                timestamp_ms: *timestamp_ms,
                event_id,
                xaction_id: &item.xaction_id,
            };
            event::append(batch, &item.tenant, &new, body)?;
            if !item.link {
                linker.note_unlinked_event(batch, &item.tenant);
            }
            if let Some(batch_id) = &item.batch_id {
                event::index_batch(batch, &item.tenant, &new, batch_id);
            }
            (
                ChangeKind::Event,
                Some(*timestamp_ms),
                Some(event_id.clone()),
            )
        }
    };
    change_feed::append(
        batch,
        &ChangeEntry {
            org: item.tenant.org.to_string(),
            sandbox: item.tenant.sandbox.to_string(),
            dataset_id: item.dataset_id.clone(),
            kind,
            namespace: item.primary.namespace.clone(),
            id: item.primary.id.clone(),
            identities: item
                .identities
                .iter()
                .map(|i| (i.namespace.clone(), i.id.clone()))
                .collect(),
            xaction_id: item.xaction_id.clone(),
            applied_ms,
            event_ms,
            event_id,
            graph,
            segment: None,
            absorbed,
            growth,
        },
    )?;
    // The graph the other identities joined, when a primary left out of linking means
    // the record's entry does not name it: consumers hear of it here, in feed order, before
    // any later record of the batch builds on it (a later record that extends it cleanly
    // must not find its state without what this one merged in).
    if let (Some(outcome), false) = (&outcome, primary_linked) {
        if let Some(members) = linker.reshaped_members(&item.tenant, outcome.graph)? {
            change_feed::append_linked_without_primary(
                batch,
                &item.tenant,
                outcome.graph,
                &members,
                &outcome.absorbed,
                &item.primary,
                &item.xaction_id,
                applied_ms,
            )?;
            return Ok(2);
        }
    }
    Ok(1)
}

/// Set once a sandbox stores an event of a dataset not enabled for identity: its identity
/// may have no graph yet, and join one later with that past. From then on no entry of the
/// sandbox claims its graph grew only by identities without a past.
fn unlinked_events_key(tenant: &Tenant) -> Key {
    Key::tenant(tenant).str("unlinked-events").finish()
}

fn is_duplicate_event(store: &dyn Store, item: &Prepared) -> Result<bool> {
    match &item.write {
        Write::Event { event_id, .. } => Ok(event::exists(
            store,
            &item.tenant,
            &item.dataset_id,
            event_id,
        )?),
        Write::Record { .. } => Ok(false),
    }
}

/// How often a group's commit is rebuilt and retried after a precondition conflict.
const ROUND_ATTEMPTS: usize = 4;

/// Commits one record alone, retrying read-modify-write conflicts.
fn apply_one(
    store: &dyn Store,
    item: &Prepared,
    applied_ms: i64,
    limits: &Limits,
) -> Result<Applied> {
    const ATTEMPTS: usize = 16;
    for _ in 0..ATTEMPTS {
        if is_duplicate_event(store, item)? {
            return Ok(Applied::Duplicate {
                xaction_id: item.xaction_id.clone(),
            });
        }
        let mut batch = WriteBatch::new();
        let mut linker = Linker::new(store, limits);
        add_to_batch(store, &mut batch, &mut linker, item, applied_ms)?;
        linker.finish(&mut batch, applied_ms)?;
        match store.commit(batch) {
            Ok(committed) => {
                return Ok(Applied::Written {
                    xaction_id: item.xaction_id.clone(),
                    feed_seq: committed.appended.first().copied().unwrap_or_default(),
                })
            }
            Err(tessera_store::Error::Conflict {
                table: Table::Events,
            }) => {
                return Ok(Applied::Duplicate {
                    xaction_id: item.xaction_id.clone(),
                });
            }
            Err(tessera_store::Error::Conflict { .. }) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(Error::InvalidState(format!(
        "record {} kept conflicting with concurrent writes to the same fragment",
        item.xaction_id
    )))
}

/// Writes prepared records; returns once every written one is durable. Outcomes are in
/// input order.
pub fn apply(
    store: &Arc<dyn Store>,
    items: &[Prepared],
    applied_ms: i64,
    limits: &Limits,
) -> Result<Vec<Applied>> {
    let store = store.as_ref();
    let mut outcomes: Vec<Option<Applied>> = vec![None; items.len()];
    let mut pending: Vec<usize> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        if is_duplicate_event(store, item)? {
            if let Some(slot) = outcomes.get_mut(index) {
                *slot = Some(Applied::Duplicate {
                    xaction_id: item.xaction_id.clone(),
                });
            }
        } else {
            pending.push(index);
        }
    }
    while !pending.is_empty() {
        // A round holds at most one write per fragment / event id, so reads made while
        // building it (upserts) are not invalidated by writes of the same round.
        let mut seen = HashSet::new();
        let (round, rest): (Vec<usize>, Vec<usize>) = pending.iter().partition(|&&index| {
            items
                .get(index)
                .is_some_and(|item| seen.insert(item.conflict_key()))
        });
        pending = rest;
        // Concurrent requests touching the same graphs or fragments make a round's commit
        // fail its preconditions; re-reading and retrying the whole round keeps one fsync
        // for the group. Only a conflict on event ids (a concurrent replay) or repeated
        // conflicts fall back to settling records one by one.
        let mut committed_round = None;
        let mut positions = Vec::with_capacity(round.len());
        for _ in 0..ROUND_ATTEMPTS {
            let mut batch = WriteBatch::new();
            let mut linker = Linker::new(store, limits);
            // Where each record's own entry falls among the batch's appended entries.
            positions.clear();
            let mut appended = 0;
            for &index in &round {
                positions.push(appended);
                if let Some(item) = items.get(index) {
                    appended += add_to_batch(store, &mut batch, &mut linker, item, applied_ms)?;
                }
            }
            linker.finish(&mut batch, applied_ms)?;
            match store.commit(batch) {
                Ok(committed) => {
                    committed_round = Some(committed);
                    break;
                }
                Err(tessera_store::Error::Conflict {
                    table: Table::Events,
                }) => break,
                Err(tessera_store::Error::Conflict { .. }) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        match committed_round {
            Some(committed) => {
                for (&index, &position) in round.iter().zip(&positions) {
                    if let (Some(slot), Some(item), Some(&seq)) = (
                        outcomes.get_mut(index),
                        items.get(index),
                        committed.appended.get(position),
                    ) {
                        *slot = Some(Applied::Written {
                            xaction_id: item.xaction_id.clone(),
                            feed_seq: seq,
                        });
                    }
                }
            }
            None => {
                for &index in &round {
                    if let (Some(slot), Some(item)) = (outcomes.get_mut(index), items.get(index)) {
                        *slot = Some(apply_one(store, item, applied_ms, limits)?);
                    }
                }
            }
        }
    }
    outcomes
        .into_iter()
        .map(|o| {
            o.ok_or_else(|| Error::InvalidState("a record was left without an outcome".into()))
        })
        .collect()
}
