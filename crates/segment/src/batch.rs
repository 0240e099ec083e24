//! Batch evaluation: many segments over every profile of a sandbox in one pass.
//!
//! Profiles are identity graphs, walked in id order a page at a time. Each profile is merged
//! once per merge policy the segments use (from the materialized view when it is current),
//! its events are read once when some segment reads `xEvent`, and every segment is evaluated
//! on that. Segments are evaluated dependencies first, so `inSegment` sees this run's result
//! for segments in the job and the stored one for the others. Membership changes of a page
//! are written in one batch, with one change-feed entry per profile whose membership moved.
//!
//! A profile under a policy without stitching (`identityGraph: none`) qualifies when one of
//! its identities' own profile qualifies; memberships are kept per graph either way.
//!
//! [`matches_profile`] is the read-only evaluation of one compiled expression on one profile
//! (previews and estimates): the same merge and event reading, nothing written.
//!
//! Memberships of graphs that no longer exist (absorbed by a merge, erased) are removed at the
//! end of a run over every segment they hold: their identities now belong to a graph that the
//! run evaluated.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::Value;
use tessera_identity::{Graph, IdentityKey};
use tessera_model::Tenant;
use tessera_pql::{EvalContext, EventSet, Program};
use tessera_profile::policy::{MergePolicy, PolicySet, PROFILE_CLASS};
use tessera_profile::view::Entry;
use tessera_store::{Direction, Store, WriteBatch};

use crate::computed::definition::ComputedAttribute;
use crate::definition::SegmentDefinition;
use crate::error::{Error, Result};
use crate::membership::{self, Membership, Status};

/// Profiles per page (and per membership write).
const PAGE: usize = 500;
/// Most events of one identity read for evaluation (newest kept).
const MAX_EVENTS_PER_IDENTITY: usize = 10_000;

/// A definition ready to evaluate.
pub struct Compiled {
    /// The definition.
    pub definition: SegmentDefinition,
    /// Its merge policy.
    pub policy: MergePolicy,
    program: Program,
    reads_events: bool,
    /// How far back its events matter (ms); `None`: the whole history.
    lookback: Option<i64>,
}

impl Compiled {
    /// Whether the expression reads experience events.
    pub fn reads_events(&self) -> bool {
        self.reads_events
    }
}

/// The change-feed entry of one membership change; `receipt` names the writer (a batch job,
/// the streaming consumer) so consumers can tell them apart.
pub fn feed_entry(
    tenant: &Tenant,
    change: &Change,
    receipt: &str,
    now_ms: i64,
) -> tessera_ingest::change_feed::ChangeEntry {
    use tessera_ingest::change_feed::{ChangeEntry, ChangeKind, SegmentChange};
    ChangeEntry {
        org: tenant.org.to_string(),
        sandbox: tenant.sandbox.to_string(),
        dataset_id: String::new(),
        kind: ChangeKind::Membership,
        namespace: change.identity.namespace.clone(),
        id: change.identity.id.clone(),
        identities: change
            .identities
            .iter()
            .map(|i| (i.namespace.clone(), i.id.clone()))
            .collect(),
        xaction_id: format!("{receipt}:{}", change.segment),
        applied_ms: now_ms,
        event_ms: None,
        event_id: None,
        graph: Some(change.graph),
        segment: Some(SegmentChange {
            segment_id: change.segment.clone(),
            status: change.status.as_str().to_owned(),
            last_qualification_time: change.last_qualification_time,
        }),
        absorbed: Vec::new(),
        growth: Default::default(),
    }
}

/// Compiles `definitions` against the sandbox's merge policies, ordered so that every
/// segment comes after the segments it reads with `inSegment`.
pub fn compile(definitions: Vec<SegmentDefinition>, policies: &PolicySet) -> Result<Vec<Compiled>> {
    let ids: HashSet<String> = definitions.iter().map(|d| d.id.clone()).collect();
    let mut pending: Vec<SegmentDefinition> = definitions;
    let mut ordered: Vec<Compiled> = Vec::with_capacity(pending.len());
    let mut done: HashSet<String> = HashSet::new();
    while !pending.is_empty() {
        let (ready, blocked): (Vec<_>, Vec<_>) = pending.into_iter().partition(|d| {
            d.dependencies
                .iter()
                .all(|dep| done.contains(dep) || !ids.contains(dep))
        });
        if ready.is_empty() {
            let cycle: Vec<String> = blocked.iter().map(|d| d.id.clone()).collect();
            return Err(Error::Invalid {
                field: "expression.value".into(),
                message: format!("segments depend on each other in a cycle: {cycle:?}"),
            });
        }
        for definition in ready {
            let policy = match &definition.merge_policy_id {
                Some(id) => policies.get(id).cloned().ok_or_else(|| Error::Invalid {
                    field: "mergePolicyId".into(),
                    message: format!(
                        "merge policy {id} of segment {} does not exist",
                        definition.id
                    ),
                })?,
                None => policies.default_for(PROFILE_CLASS),
            };
            done.insert(definition.id.clone());
            ordered.push(compile_one(definition, policy)?);
        }
        pending = blocked;
    }
    Ok(ordered)
}

/// Compiles one definition under `policy`, whatever the definition's own merge policy says:
/// previews evaluate an expression under a policy of their choosing (`graphType`).
pub fn compile_one(definition: SegmentDefinition, policy: MergePolicy) -> Result<Compiled> {
    let expr = definition.parsed()?;
    let program = tessera_pql::compile(&expr).map_err(|e| Error::Invalid {
        field: "expression.value".into(),
        message: e.to_string(),
    })?;
    let text = tessera_pql::to_text(&expr);
    Ok(Compiled {
        reads_events: text.contains("xEvent"),
        lookback: crate::lookback::lookback(&expr),
        definition,
        policy,
        program,
    })
}

/// Figures of one run, in AEP's segment-job metric names.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    /// Profiles evaluated.
    pub total_profiles: u64,
    /// Per segment: profiles in it after the run (realized + existing).
    pub segmented_profile_counter: BTreeMap<String, u64>,
    /// Per segment: members by identity namespace (a profile counts once per namespace it has).
    pub segmented_profile_by_namespace_counter: BTreeMap<String, BTreeMap<String, u64>>,
    /// Per segment: profiles by status after the run.
    pub segmented_profile_by_status_counter: BTreeMap<String, BTreeMap<String, u64>>,
    /// Per merge policy: profiles merged with it.
    pub total_profiles_by_merge_policy: BTreeMap<String, u64>,
}

/// A membership that moved in a run, for the change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Profile.
    pub graph: u64,
    /// An identity of the profile (its oldest member), to address it.
    pub identity: IdentityKey,
    /// Every identity of the profile.
    pub identities: Vec<IdentityKey>,
    /// Segment.
    pub segment: String,
    /// New status.
    pub status: Status,
    /// When the profile last started to qualify (ms).
    pub last_qualification_time: i64,
}

/// What a run needs besides the segments.
pub struct Run<'a> {
    /// Store.
    pub store: &'a dyn Store,
    /// Sandbox.
    pub tenant: &'a Tenant,
    /// Evaluation instant (ms).
    pub now_ms: i64,
    /// Graph size beyond which stitched profiles are not merged (they are skipped).
    pub max_identities: usize,
    /// Checked between pages; `true` stops the run (cancellation).
    pub should_stop: &'a (dyn Fn() -> bool + Sync),
    /// Adds the change-feed entries of a page's membership changes to its batch.
    pub record: &'a (dyn Fn(&mut WriteBatch, &[Change]) -> Result<()> + Sync),
    /// Read merged profiles through the materialized views (and fill them): right for
    /// evaluations of single profiles (streaming, edge), whose views lookups share; a batch
    /// run over every profile merges directly rather than write a view per profile.
    pub use_views: bool,
}

/// Outcome of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every profile was evaluated.
    Completed(Metrics),
    /// `should_stop` said stop; memberships of the pages done are written.
    Stopped(Metrics),
}

fn merged_entity(
    run: &Run<'_>,
    members: &[IdentityKey],
    policy: &MergePolicy,
) -> Result<Option<Value>> {
    let entry = match members.first() {
        Some(first) if run.use_views && (policy.stitches() || members.len() == 1) => {
            match tessera_profile::lookup::lookup(
                run.store,
                run.tenant,
                first,
                policy,
                run.max_identities,
            )? {
                tessera_profile::lookup::Lookup::Found(profile) => Entry::Found {
                    members: profile.members,
                    sources: profile.sources,
                    tags: profile.tags,
                    last_modified: profile.last_modified,
                    entity: profile.entity,
                },
                tessera_profile::lookup::Lookup::NotFound => Entry::NotFound,
                tessera_profile::lookup::Lookup::TooManyIdentities(count) => {
                    Entry::TooManyIdentities { count }
                }
            }
        }
        _ => {
            if policy.stitches() && members.len() > run.max_identities {
                return Ok(None);
            }
            return Ok(tessera_profile::lookup::compute_entity(
                run.store, run.tenant, members, policy,
            )?
            .map(Value::Object));
        }
    };
    match entry {
        Entry::Found { entity, .. } => {
            Ok(Some(serde_json::from_str(entity.get()).map_err(|e| {
                Error::Corrupt {
                    what: "merged profile",
                    reason: e.to_string(),
                }
            })?))
        }
        Entry::NotFound | Entry::TooManyIdentities { .. } => Ok(None),
    }
}

/// Events of `members`, newer than `now - lookback` when the segments' windows allow.
fn events_of(run: &Run<'_>, members: &[IdentityKey], lookback: Option<i64>) -> Result<Vec<Value>> {
    let mut docs = Vec::new();
    for member in members {
        let stored = match lookback {
            Some(window) => tessera_profile::event::since(
                run.store,
                run.tenant,
                member,
                run.now_ms.saturating_sub(window),
                MAX_EVENTS_PER_IDENTITY,
            )?,
            None => tessera_profile::event::for_identity(
                run.store,
                run.tenant,
                member,
                Direction::Reverse,
                MAX_EVENTS_PER_IDENTITY,
            )?,
        };
        docs.extend(stored.into_iter().map(|e| Value::Object(e.event)));
    }
    Ok(docs)
}

/// The merged profiles `policy` evaluates for `members`: one merge of the graph when it
/// stitches, one per identity when not (none when no fragment exists).
fn candidate_profiles(
    run: &Run<'_>,
    members: &[IdentityKey],
    policy: &MergePolicy,
) -> Result<Vec<Value>> {
    let mut merged = Vec::new();
    if policy.stitches() {
        merged.extend(merged_entity(run, members, policy)?);
    } else {
        for member in members {
            merged.extend(merged_entity(run, std::slice::from_ref(member), policy)?);
        }
    }
    Ok(merged)
}

/// Whether `segment` matches one of `candidates` (or `empty` when there is none: event-only
/// profiles are still profiles).
fn any_matches(
    segment: &Compiled,
    candidates: &[Value],
    empty: &Value,
    events: &EventSet,
    ctx: &EvalContext<'_>,
) -> bool {
    if candidates.is_empty() {
        segment.program.matches(empty, events, ctx)
    } else {
        candidates
            .iter()
            .any(|profile| segment.program.matches(profile, events, ctx))
    }
}

/// Whether `segment` matches the profile made of `members` of graph `graph_id`, now. Reads
/// only: nothing is written, no membership moves. `inSegment` sees the stored memberships of
/// the graph. Previews and estimates use it; passing one identity of a graph as `members`
/// evaluates that identity alone (AEP's `graphType: none`).
pub fn matches_profile(
    run: &Run<'_>,
    graph_id: u64,
    members: &[IdentityKey],
    segment: &Compiled,
) -> Result<bool> {
    let stored = membership::of_graph(run.store, run.tenant, graph_id)?;
    let candidates = candidate_profiles(run, members, &segment.policy)?;
    let events = if segment.reads_events {
        EventSet::new(events_of(run, members, segment.lookback)?)
    } else {
        EventSet::default()
    };
    let is_member = |other: &str| stored.get(other).is_some_and(|m| m.status.is_member());
    let ctx = EvalContext {
        now_ms: run.now_ms,
        segments: &is_member,
    };
    let empty = Value::Object(serde_json::Map::new());
    Ok(any_matches(segment, &candidates, &empty, &events, &ctx))
}

/// A profile's membership changes (`None`: remove) and the times of the events it read.
type Evaluated = (Vec<(String, Option<Membership>)>, Vec<i64>);

/// Evaluates `segments` for one profile; returns the new memberships of the segments whose
/// membership changed (`None`: remove), and the event times read (for timers).
fn evaluate_profile(
    run: &Run<'_>,
    graph: &Graph,
    segments: &[Compiled],
    computed: &[ComputedAttribute],
    stored: &BTreeMap<String, Membership>,
    metrics: &mut Metrics,
) -> Result<Evaluated> {
    let members: Vec<IdentityKey> = graph.identities().cloned().collect();
    // Profiles per policy: one merge for the graph when it stitches, one per identity when not.
    let mut profiles: HashMap<String, Vec<Value>> = HashMap::new();
    for segment in segments {
        let tag = segment.policy.revision_tag();
        if profiles.contains_key(&tag) {
            continue;
        }
        let merged = candidate_profiles(run, &members, &segment.policy)?;
        *metrics
            .total_profiles_by_merge_policy
            .entry(segment.policy.id.clone())
            .or_default() += 1;
        profiles.insert(tag, merged);
    }
    let readers: Vec<&Compiled> = segments.iter().filter(|s| s.reads_events).collect();
    let events = if !readers.is_empty() {
        // The widest window any of them needs; one unbounded reader reads everything.
        let lookback = readers
            .iter()
            .map(|s| s.lookback)
            .try_fold(0i64, |widest, l| l.map(|l| widest.max(l)));
        EventSet::new(events_of(run, &members, lookback)?)
    } else {
        EventSet::default()
    };
    let mut empty = Value::Object(serde_json::Map::new());
    // Computed attributes read like profile fields (`_{TENANT_ID}.ComputedAttributes.x`).
    let computed =
        crate::computed::upkeep::values_of(run.store, run.tenant, computed, graph.id, run.now_ms)?;
    if !computed.is_empty() {
        for profile in profiles
            .values_mut()
            .flatten()
            .chain(std::iter::once(&mut empty))
        {
            crate::computed::upkeep::apply(&computed, profile);
        }
    }
    let mut current: BTreeMap<String, Membership> = stored.clone();
    let mut changes = Vec::new();
    for segment in segments {
        let id = &segment.definition.id;
        let candidates = profiles
            .get(&segment.policy.revision_tag())
            .map(Vec::as_slice)
            .unwrap_or_default();
        let qualifies = {
            let is_member = |other: &str| current.get(other).is_some_and(|m| m.status.is_member());
            let ctx = EvalContext {
                now_ms: run.now_ms,
                segments: &is_member,
            };
            any_matches(segment, candidates, &empty, &events, &ctx)
        };
        let before = stored.get(id).copied();
        let after = membership::next(before, qualifies, run.now_ms);
        if let Some(m) = after {
            let counter = metrics
                .segmented_profile_by_status_counter
                .entry(id.clone())
                .or_default();
            *counter.entry(m.status.as_str().to_owned()).or_default() += 1;
            if m.status.is_member() {
                *metrics
                    .segmented_profile_counter
                    .entry(id.clone())
                    .or_default() += 1;
                let namespaces: BTreeSet<&str> =
                    members.iter().map(|i| i.namespace.as_str()).collect();
                let by_ns = metrics
                    .segmented_profile_by_namespace_counter
                    .entry(id.clone())
                    .or_default();
                for ns in namespaces {
                    *by_ns.entry(ns.to_owned()).or_default() += 1;
                }
            }
            current.insert(id.clone(), m);
        } else {
            current.remove(id);
        }
        if after != before {
            changes.push((id.clone(), after));
        }
    }
    let times = events.events().iter().filter_map(|e| e.timestamp).collect();
    Ok((changes, times))
}

/// Evaluates `segments` for one profile and adds the membership changes to `batch` and
/// their feed-worthy moves (entered, left) to `changes`. `computed`: the sandbox's live
/// computed-attribute definitions ([`crate::computed::upkeep::live_definitions`]).
pub(crate) fn evaluate_into(
    run: &Run<'_>,
    graph: &Graph,
    segments: &[Compiled],
    computed: &[ComputedAttribute],
    batch: &mut WriteBatch,
    changes: &mut Vec<Change>,
    metrics: &mut Metrics,
) -> Result<Vec<i64>> {
    let stored = membership::of_graph(run.store, run.tenant, graph.id)?;
    let (moved, times) = evaluate_profile(run, graph, segments, computed, &stored, metrics)?;
    let identities: Vec<IdentityKey> = graph.identities().cloned().collect();
    let oldest = graph
        .members
        .iter()
        .min_by_key(|m| (m.first_seen, m.identity.clone()))
        .map(|m| m.identity.clone());
    for (segment, membership) in moved {
        membership::put_change(
            batch,
            run.tenant,
            graph.id,
            &segment,
            stored.get(&segment),
            membership.as_ref(),
        )?;
        if let (Some(m), Some(identity)) = (membership, &oldest) {
            // `existing` is no news: consumers hear when a profile enters or leaves.
            if m.status != Status::Existing {
                changes.push(Change {
                    graph: graph.id,
                    identity: identity.clone(),
                    identities: identities.clone(),
                    segment,
                    status: m.status,
                    last_qualification_time: m.last_qualification_time,
                });
            }
        }
    }
    Ok(times)
}

/// The memberships `graph` would have if `segments` were evaluated now (stored memberships
/// of other segments included), without writing anything: edge (synchronous) evaluation on
/// lookup.
pub fn current_memberships(
    run: &Run<'_>,
    graph: &Graph,
    segments: &[Compiled],
) -> Result<BTreeMap<String, Membership>> {
    let mut memberships = membership::of_graph(run.store, run.tenant, graph.id)?;
    let computed = crate::computed::upkeep::live_definitions(run.store, run.tenant)?;
    let (moved, _) = evaluate_profile(
        run,
        graph,
        segments,
        &computed,
        &memberships,
        &mut Metrics::default(),
    )?;
    for (segment, state) in moved {
        match state {
            Some(m) => memberships.insert(segment, m),
            None => memberships.remove(&segment),
        };
    }
    Ok(memberships)
}

impl Metrics {
    /// Adds another worker's figures.
    fn absorb(&mut self, other: Metrics) {
        self.total_profiles += other.total_profiles;
        for (k, v) in other.segmented_profile_counter {
            *self.segmented_profile_counter.entry(k).or_default() += v;
        }
        for (k, by) in other.segmented_profile_by_namespace_counter {
            let into = self
                .segmented_profile_by_namespace_counter
                .entry(k)
                .or_default();
            for (ns, v) in by {
                *into.entry(ns).or_default() += v;
            }
        }
        for (k, by) in other.segmented_profile_by_status_counter {
            let into = self
                .segmented_profile_by_status_counter
                .entry(k)
                .or_default();
            for (status, v) in by {
                *into.entry(status).or_default() += v;
            }
        }
        for (k, v) in other.total_profiles_by_merge_policy {
            *self.total_profiles_by_merge_policy.entry(k).or_default() += v;
        }
    }
}

/// Where the walk over the sandbox's graphs stands, shared by the workers.
struct Walk {
    after: Option<u64>,
    done: bool,
}

/// One worker: takes the next page of graphs, evaluates it, commits it; until the walk ends,
/// `should_stop` says stop, or an error occurs.
fn work(
    run: &Run<'_>,
    segments: &[Compiled],
    walk: &std::sync::Mutex<Walk>,
) -> Result<(Metrics, HashSet<u64>, bool)> {
    let mut metrics = Metrics::default();
    let mut seen = HashSet::new();
    // Read once: an attribute created during the run is folded in by the next one, as a
    // segment created during it is.
    let computed = crate::computed::upkeep::live_definitions(run.store, run.tenant)?;
    loop {
        if (run.should_stop)() {
            return Ok((metrics, seen, true));
        }
        // Reading the page under the lock keeps pages disjoint and in order; evaluation,
        // the expensive part, runs outside it.
        let page = {
            let mut state = walk
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if state.done {
                return Ok((metrics, seen, false));
            }
            let page = tessera_identity::graphs(run.store, run.tenant, state.after, PAGE)?;
            match page.last() {
                Some(last) => state.after = Some(last.id),
                None => state.done = true,
            }
            page
        };
        if page.is_empty() {
            return Ok((metrics, seen, false));
        }
        let mut batch = WriteBatch::new();
        let mut changes = Vec::new();
        for graph in &page {
            seen.insert(graph.id);
            if graph.members.len() > run.max_identities {
                continue;
            }
            metrics.total_profiles += 1;
            evaluate_into(
                run,
                graph,
                segments,
                &computed,
                &mut batch,
                &mut changes,
                &mut metrics,
            )?;
        }
        (run.record)(&mut batch, &changes)?;
        run.store.commit(batch)?;
    }
}

/// Evaluates `segments` over every profile of the sandbox, on every core.
pub fn run(run: &Run<'_>, segments: &[Compiled]) -> Result<Outcome> {
    let mut metrics = Metrics::default();
    for segment in segments {
        metrics
            .segmented_profile_counter
            .insert(segment.definition.id.clone(), 0);
    }
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let walk = std::sync::Mutex::new(Walk {
        after: None,
        done: false,
    });
    let results: Vec<Result<(Metrics, HashSet<u64>, bool)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| scope.spawn(|| work(run, segments, &walk)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::Corrupt {
                        what: "segment evaluation",
                        reason: "a worker panicked".into(),
                    })
                })
            })
            .collect()
    });
    let mut seen: HashSet<u64> = HashSet::new();
    let mut stopped = false;
    for result in results {
        let (part, part_seen, part_stopped) = result?;
        metrics.absorb(part);
        seen.extend(part_seen);
        stopped |= part_stopped;
    }
    if stopped {
        return Ok(Outcome::Stopped(metrics));
    }
    // Memberships of graphs that no longer exist.
    for segment in segments {
        let mut cursor = None;
        loop {
            let graphs = membership::graphs_of_segment(
                run.store,
                run.tenant,
                &segment.definition.id,
                cursor,
                PAGE,
            )?;
            let Some(last) = graphs.last().copied() else {
                break;
            };
            cursor = Some(last);
            let mut batch = WriteBatch::new();
            for graph in graphs.into_iter().filter(|g| !seen.contains(g)) {
                membership::put(&mut batch, run.tenant, graph, &segment.definition.id, None)?;
            }
            if !batch.is_empty() {
                run.store.commit(batch)?;
            }
        }
    }
    Ok(Outcome::Completed(metrics))
}
