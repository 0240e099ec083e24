//! Keeping computed attributes current: the change-feed consumer, the recompute of one
//! profile, the backfill of new attributes, and reading values at `now`.
//!
//! - **Consumer** ([`Consumer`], `computed-attributes` checkpoint): a pass reads up to
//!   [`PASS`] entries after its checkpoint; for each event entry it takes the digest
//!   ingestion made of the event ([`RecentEvents`]: what the event adds to each live
//!   attribute, its filter tested there) or else reads the event (one point lookup: the
//!   entry names identity, time, dataset and `_id`; older entries without `_id` are matched
//!   by receipt, unique per record) and tests each distinct filter of the live attributes on
//!   it once; either way it folds the result into the profile's buckets. The states it
//!   changed and the new checkpoint are committed in one derived batch (no wait for the
//!   disk: a crash loses both and the pass is done again), under compare-and-set on both, so
//!   a concurrent pass (the backfill catching up) loses cleanly. Per event and attribute
//!   that is at most a filter evaluation and an O(log b) bucket update, never a scan of the
//!   profile's history. The consumer keeps the compiled definitions between passes (re-read
//!   every pass, recompiled only when changed) and the profile states it last read or wrote
//!   (`StateCache`).
//! - **Recompute**: when a profile has no state yet, misses a live attribute, or its
//!   identities changed (merge, split, eviction, erasure: the member list differs), its
//!   state is rebuilt from its events inside the widest window. Exactly once with a
//!   consumer running beside it: read the feed head `h1`, scan the events, read the head
//!   `h2`, fold the feed's events in `(h1, h2]` that the scan did not see, and set every
//!   watermark to `h2`; the consumer folds only entries above a watermark.
//! - **Graph changes without an event** (`graphChanged` entries of an unlink, a one-identity
//!   erasure, a split made by ingestion, or a record whose primary identity was left out of
//!   linking; `erased` entries): every graph the entry leads to — the current graph of its
//!   origin and of each member it names, so the survivor and each part split off — goes
//!   through the same check and recompute. States of graphs that no longer exist (erased,
//!   emptied, merged away: the `absorbed` ids of records and of those `graphChanged`
//!   entries) are deleted in the pass's batch, under the same compare-and-set.
//! - **Backfill**: an attribute created (or patched) as NEW becomes PROCESSING, the consumer
//!   is caught up (so every pass from then on folds it), every profile of the sandbox is
//!   recomputed, and the attribute becomes PROCESSED.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Map, Value};
use tessera_identity::{Graph, IdentityKey};
use tessera_ingest::change_feed::{self, ChangeKind, EntryView};
use tessera_ingest::recent::{Digester, RecentEvents};
use tessera_model::Tenant;
use tessera_profile::event::StoredEvent;
use tessera_store::{Direction, Key, KeyReader, ScanRange, Store, Table, WriteBatch};

use super::definition::{self, Compiled, Live, LiveCache, Status};
use super::store::{self as state_store, AttrState, GraphState};
use super::window::Acc;
use crate::error::{Error, Result};

/// The consumer's name on the change feed.
pub const CONSUMER: &str = "computed-attributes";
/// Feed entries handled per pass.
pub const PASS: usize = 500;
/// Most events of one identity a recompute reads (newest are kept by the window anyway).
const MAX_EVENTS_PER_IDENTITY: usize = 100_000;
/// Profiles per backfill page.
const BACKFILL_PAGE: usize = 200;
/// Attempts at one profile's compare-and-set before the backfill gives up for now.
const ATTEMPTS: usize = 8;

/// What a pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassOutcome {
    /// Feed entries read.
    pub entries: usize,
    /// Events folded (event × live attribute pairs tested).
    pub folded: usize,
    /// Profiles recomputed from their events.
    pub recomputed: usize,
    /// Profiles whose state was started or took in new members from the entry alone: the
    /// record that added them carried their first appearance (see `PassWork::advance`).
    pub extended: usize,
    /// Profiles whose state was combined from the states of the graphs a record merged into
    /// it, without a recomputation (see `PassWork::combine`).
    pub combined: usize,
}

fn corrupt_event(e: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        what: "event",
        reason: e.to_string(),
    }
}

/// Reads the event an entry records: one point lookup by its key (identity, time, dataset,
/// `_id`), or for entries without `_id` (written before the feed carried it) the events of
/// its identity at its time in its dataset (normally one), the one stored by the entry's
/// receipt.
fn event_of(store: &dyn Store, tenant: &Tenant, entry: &EntryView<'_>) -> Result<Option<Value>> {
    let Some(ts) = entry.event_ms else {
        return Ok(None);
    };
    let identity = IdentityKey::new(entry.namespace.clone(), entry.id.clone());
    if let Some(event_id) = &entry.event_id {
        let key = tessera_profile::event::key(tenant, &identity, ts, &entry.dataset_id, event_id);
        let Some(bytes) = store.get(Table::Events, &key)? else {
            return Ok(None);
        };
        let stored: StoredEvent = serde_json::from_slice(&bytes).map_err(corrupt_event)?;
        // A replayed `_id` writes neither the event nor an entry, so this is the entry's
        // event; the receipt check keeps that an invariant rather than an assumption.
        return Ok((stored.xaction_id == entry.xaction_id).then_some(Value::Object(stored.event)));
    }
    let prefix = Key::extend(&tessera_profile::event::time_key(tenant, &identity, ts))
        .str(&entry.dataset_id)
        .finish();
    let rows = store.scan(
        Table::Events,
        &ScanRange::prefix(prefix),
        Direction::Forward,
        64,
    )?;
    for row in rows {
        let stored: StoredEvent = serde_json::from_slice(&row.value).map_err(corrupt_event)?;
        if stored.xaction_id == entry.xaction_id {
            return Ok(Some(Value::Object(stored.event)));
        }
    }
    Ok(None)
}

/// Folds one event's contributions ([`Live::contributions`]) into every live attribute
/// whose watermark is below `seq` (`None`: a recompute's scan, which folds unconditionally).
/// An attribute the event adds nothing to keeps its window as it is: expired buckets go
/// with the next event that adds something, and values are read at `now` regardless.
fn fold_event(
    live: &Live,
    attrs: &mut BTreeMap<String, AttrState>,
    seq: Option<u64>,
    ts: i64,
    contributions: &[Option<Acc>],
    now: i64,
) -> usize {
    let fold = |attr: &Compiled, state: &mut AttrState, acc: Option<&Acc>| -> usize {
        if let Some(seq) = seq {
            if seq <= state.seq {
                return 0;
            }
            state.seq = seq;
        }
        if let Some(acc) = acc {
            state
                .window
                .add_acc(&attr.definition.duration, ts, acc, now);
        }
        1
    };
    // Live ones without a state (a new attribute or profile) get one afterwards.
    let mut folded = 0;
    let mut missing = Vec::new();
    for ((attr, state), acc) in by_live_attribute(live, attrs.iter_mut()).zip(contributions) {
        match state {
            Some(state) => folded += fold(attr, state, acc.as_ref()),
            None => missing.push((attr, acc.as_ref())),
        }
    }
    for (attr, acc) in missing {
        let state = attrs.entry(attr.definition.id.clone()).or_default();
        folded += fold(attr, state, acc);
    }
    folded
}

/// A recompute in progress: the state built from the profile's stored events, and what the
/// scan saw (receipts), to fold the feed's later entries the scan missed exactly once.
struct Rebuilt {
    state: GraphState,
    members: HashSet<IdentityKey>,
    seen: HashSet<String>,
}

/// Builds a profile's state from its stored events inside the widest live window, every
/// watermark set to `h1` (a feed head read before the scan).
fn scan_graph(
    store: &dyn Store,
    tenant: &Tenant,
    graph: &Graph,
    live: &Live,
    h1: u64,
    now: i64,
) -> Result<Rebuilt> {
    let mut attrs: BTreeMap<String, AttrState> = live
        .attrs
        .iter()
        .map(|a| (a.definition.id.clone(), AttrState::default()))
        .collect();
    let mut seen: HashSet<String> = HashSet::new();
    let members: HashSet<IdentityKey> = graph.identities().cloned().collect();
    if let Some(earliest) = live
        .attrs
        .iter()
        .map(|a| a.definition.duration.first_bucket(now))
        .min()
    {
        for member in &members {
            let range = ScanRange::prefix(tessera_profile::event::identity_prefix(tenant, member))
                .narrow_lower(std::ops::Bound::Included(
                    tessera_profile::event::time_key(tenant, member, earliest).into_bytes(),
                ));
            let rows = store.scan(
                Table::Events,
                &range,
                Direction::Forward,
                MAX_EVENTS_PER_IDENTITY,
            )?;
            for row in rows {
                let key = tessera_profile::event::decode_key(&row.key)?;
                let stored: StoredEvent =
                    serde_json::from_slice(&row.value).map_err(corrupt_event)?;
                seen.insert(stored.xaction_id.clone());
                let ts = key.timestamp_ms;
                let contributions = live.contributions(&Value::Object(stored.event), ts);
                fold_event(live, &mut attrs, None, ts, &contributions, now);
            }
        }
    }
    for state in attrs.values_mut() {
        state.seq = h1;
    }
    Ok(Rebuilt {
        state: GraphState {
            members: state_store::members_of(graph),
            attrs,
        },
        members,
        seen,
    })
}

/// Finishes recomputes whose scans ran after feed head `h1`: reads the head `h2`, folds the
/// feed's events in `(h1, h2]` that a scan did not see, and sets every watermark to `h2`.
/// `rebuilt` maps a tenant's profile (org, sandbox, graph) to its recompute.
fn finish_rebuilds(
    store: &dyn Store,
    live: &HashMap<(String, String), Arc<Live>>,
    rebuilt: &mut BTreeMap<ProfileKey, Rebuilt>,
    h1: u64,
    now: i64,
) -> Result<()> {
    if rebuilt.is_empty() {
        return Ok(());
    }
    let h2 = change_feed::head(store)?;
    let mut after = h1;
    while after < h2 {
        let entries = change_feed::page(store, after, PASS)?;
        let Some(last) = entries.last_seq()? else {
            break;
        };
        after = last;
        for decoded in entries.views() {
            let (seq, entry) = decoded?;
            if seq > h2 {
                break;
            }
            if entry.kind != ChangeKind::Event {
                continue;
            }
            let identity = IdentityKey::new(entry.namespace.as_ref(), entry.id.as_ref());
            let target = rebuilt.iter_mut().find(|((_, org, sandbox), r)| {
                *org == entry.org && *sandbox == entry.sandbox && r.members.contains(&identity)
            });
            let Some(((_, org, sandbox), target)) = target else {
                continue;
            };
            if target.seen.contains(entry.xaction_id.as_ref()) {
                continue;
            }
            let Some(attrs) = live.get(&(org.clone(), sandbox.clone())) else {
                continue;
            };
            let Some(tenant) = tenant_of(&entry) else {
                continue;
            };
            if let (Some(ts), Some(doc)) = (entry.event_ms, event_of(store, &tenant, &entry)?) {
                let contributions = attrs.contributions(&doc, ts);
                fold_event(
                    attrs,
                    &mut target.state.attrs,
                    Some(seq),
                    ts,
                    &contributions,
                    now,
                );
            }
        }
    }
    for target in rebuilt.values_mut() {
        for state in target.state.attrs.values_mut() {
            state.seq = h2;
        }
    }
    Ok(())
}

/// Rebuilds one profile's state from its events (see the module documentation).
pub fn recompute(
    store: &dyn Store,
    tenant: &Tenant,
    graph: &Graph,
    live: &Arc<Live>,
    now: i64,
) -> Result<GraphState> {
    let h1 = change_feed::head(store)?;
    let rebuilt = scan_graph(store, tenant, graph, live, h1, now)?;
    let key = profile_key(tenant, graph.id);
    let mut one = BTreeMap::from([(key.clone(), rebuilt)]);
    let live_map = HashMap::from([((key.1.clone(), key.2.clone()), Arc::clone(live))]);
    finish_rebuilds(store, &live_map, &mut one, h1, now)?;
    Ok(one.remove(&key).map(|r| r.state).unwrap_or_default())
}

/// A profile's state during a pass.
struct Slot {
    tenant: Tenant,
    state: Option<GraphState>,
    /// The stored record the state was read as (`None`: absent), the pass's precondition.
    original: Option<Vec<u8>>,
    /// The store version `original` is known current at (see `WriteBatch::expect_read_at`).
    read_at: Option<u64>,
    dirty: bool,
}

/// A state the consumer read or wrote, kept decoded between passes: with it the steady
/// state (one event per profile per pass) reads and decodes no state record and its commit
/// re-reads none. Only a cache: a pass still commits under compare-and-set on `encoded`
/// (version-checked, so normally without a read), and a state someone else changed since
/// fails that check and is read again on the retry.
struct CachedState {
    state: GraphState,
    encoded: Vec<u8>,
    read_at: Option<u64>,
}

/// Bound on what [`StateCache`] holds, counted as encoded bytes (a decoded state takes a few
/// times its encoding; 16 MB of records is some 25,000 profiles at the bench's ten
/// attributes).
const STATE_CACHE_ENCODED_BYTES: usize = 16 << 20;

/// The consumer's profile states between passes.
#[derive(Default)]
struct StateCache {
    states: HashMap<ProfileKey, CachedState>,
    encoded_bytes: usize,
}

impl std::fmt::Debug for StateCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateCache")
            .field("states", &self.states.len())
            .field("encoded_bytes", &self.encoded_bytes)
            .finish()
    }
}

impl StateCache {
    /// Takes a state out for a pass (a pass that fails therefore leaves nothing stale).
    fn take(&mut self, key: &ProfileKey) -> Option<CachedState> {
        let cached = self.states.remove(key)?;
        self.encoded_bytes -= cached.encoded.len();
        Some(cached)
    }

    fn put(&mut self, key: ProfileKey, cached: CachedState) {
        if self.encoded_bytes + cached.encoded.len() > STATE_CACHE_ENCODED_BYTES {
            // Arbitrary victims: the feed's order of profiles has no locality an LRU
            // would exploit better, and a miss costs only a read.
            let mut victims = self.states.len() / 2 + 1;
            self.states.retain(|_, _| {
                if victims == 0 {
                    return true;
                }
                victims -= 1;
                false
            });
            self.encoded_bytes = self.states.values().map(|c| c.encoded.len()).sum();
        }
        self.encoded_bytes += cached.encoded.len();
        if let Some(old) = self.states.insert(key, cached) {
            self.encoded_bytes -= old.encoded.len();
        }
    }
}

fn tenant_of(entry: &EntryView<'_>) -> Option<Tenant> {
    Tenant::parse(&entry.org, &entry.sandbox).ok()
}

/// Whether an event entry can be folded into `state` without reading the graph: the state
/// has every live attribute and already knows every identity the event carried.
fn known(state: Option<&GraphState>, entry: &EntryView<'_>, live: &Live) -> bool {
    let Some(state) = state else {
        return false;
    };
    let identities: Box<dyn Iterator<Item = (&str, &str)>> = if entry.identities.is_empty() {
        Box::new(std::iter::once((
            entry.namespace.as_ref(),
            entry.id.as_ref(),
        )))
    } else {
        Box::new(
            entry
                .identities
                .iter()
                .map(|(ns, id)| (ns.as_ref(), id.as_ref())),
        )
    };
    entry.kind == ChangeKind::Event
        && state.covers(identities)
        && live_states(live, state).all(|s| s.is_some())
}

/// The identities the record of `entry` carried, sorted.
fn carried(entry: &EntryView<'_>) -> Vec<IdentityKey> {
    let mut carried: Vec<IdentityKey> = entry
        .identities
        .iter()
        .map(|(namespace, id)| IdentityKey::new(namespace.clone(), id.clone()))
        .chain(std::iter::once(IdentityKey::new(
            entry.namespace.clone(),
            entry.id.clone(),
        )))
        .collect();
    carried.sort_unstable();
    carried.dedup();
    carried
}

/// Whether `state` holds every live attribute, each folded up to just before entry `seq`
/// and no further. A state recomputed since the entry was written has a later feed head
/// as its watermarks and may already hold what the entry changed.
fn folded_to_just_before(state: &GraphState, live: &Live, seq: u64) -> bool {
    live_states(live, state).all(|s| s.is_some_and(|s| s.seq < seq))
}

/// Each live attribute with its stored state (`S`: a shared or a mutable reference), in
/// `live.attrs` order. Live attributes and a state's map are both in id order, so one walk
/// compares each id once, where a tree search per attribute compared several 36-byte ids
/// (and an event asks three times). States of attributes no longer live are stepped over.
fn by_live_attribute<'a, 'b, S>(
    live: &'a Live,
    states: impl Iterator<Item = (&'b String, S)>,
) -> impl Iterator<Item = (&'a Compiled, Option<S>)> {
    let mut states = states.peekable();
    live.attrs.iter().map(move |attr| {
        let id = attr.definition.id.as_str();
        while states.next_if(|(stored, _)| stored.as_str() < id).is_some() {}
        let state = states
            .next_if(|(stored, _)| stored.as_str() == id)
            .map(|(_, s)| s);
        (attr, state)
    })
}

/// The stored state of each live attribute, in `live.attrs` order.
fn live_states<'a>(
    live: &'a Live,
    state: &'a GraphState,
) -> impl Iterator<Item = Option<&'a AttrState>> + 'a {
    by_live_attribute(live, state.attrs.iter()).map(|(_, s)| s)
}

/// A profile of a tenant: `(graph, org, sandbox)`. The graph id first: keys then compare
/// by one integer, not by two tenant strings that every key of a pass shares.
type ProfileKey = (u64, String, String);

fn profile_key(tenant: &Tenant, graph: u64) -> ProfileKey {
    (graph, tenant.org.to_string(), tenant.sandbox.to_string())
}

/// Graphs an entry says are gone for good: the ones a record merged away, and the graph an
/// unlink or erasure came from (checked: it may well survive).
fn gone_candidates<'e>(entry: &'e EntryView<'_>) -> impl Iterator<Item = u64> + 'e {
    let origin = match entry.kind {
        ChangeKind::Erased | ChangeKind::GraphChanged => entry.graph,
        ChangeKind::Record | ChangeKind::Event | ChangeKind::Membership => None,
    };
    entry.absorbed.iter().copied().chain(origin)
}

/// What one pass has read and changed so far; committed at its end in one batch.
struct PassWork<'s> {
    store: &'s dyn Store,
    cache: &'s mut StateCache,
    recent: Option<&'s RecentEvents>,
    now: i64,
    /// Feed head read before the pass's first recompute scan.
    h1: Option<u64>,
    /// Graphs read by id (following redirects; `None`: gone).
    graphs: HashMap<ProfileKey, Option<Graph>>,
    slots: BTreeMap<ProfileKey, Slot>,
    rebuilt: BTreeMap<ProfileKey, Rebuilt>,
    outcome: PassOutcome,
}

impl<'s> PassWork<'s> {
    fn new(
        store: &'s dyn Store,
        cache: &'s mut StateCache,
        recent: Option<&'s RecentEvents>,
        now: i64,
    ) -> Self {
        Self {
            store,
            cache,
            recent,
            now,
            h1: None,
            graphs: HashMap::new(),
            slots: BTreeMap::new(),
            rebuilt: BTreeMap::new(),
            outcome: PassOutcome::default(),
        }
    }

    /// The live graph `id` is or was absorbed into, read once per pass.
    fn graph(&mut self, tenant: &Tenant, id: u64) -> Result<Option<Graph>> {
        let key = profile_key(tenant, id);
        if let Some(graph) = self.graphs.get(&key) {
            return Ok(graph.clone());
        }
        let graph = tessera_identity::graph::members_by_id(self.store, tenant, id)?;
        self.graphs.insert(key, graph.clone());
        Ok(graph)
    }

    fn slot(&mut self, tenant: &Tenant, graph: u64) -> Result<&mut Slot> {
        self.slot_of(tenant, &profile_key(tenant, graph))
    }

    /// [`PassWork::slot`] by a key the caller already built: the key is copied only for a
    /// profile new to the pass.
    fn slot_of(&mut self, tenant: &Tenant, key: &ProfileKey) -> Result<&mut Slot> {
        if !self.slots.contains_key(key) {
            self.load_slot(tenant, key.clone())?;
        }
        self.slots.get_mut(key).ok_or_else(|| Error::Corrupt {
            what: "computed attribute pass",
            reason: "a slot loaded a moment ago is missing".to_owned(),
        })
    }

    /// Reads a profile's state into the pass: from the consumer's cache, else the store.
    fn load_slot(&mut self, tenant: &Tenant, key: ProfileKey) -> Result<()> {
        let (state, original, read_at) = match self.cache.take(&key) {
            Some(cached) => (Some(cached.state), Some(cached.encoded), cached.read_at),
            None => {
                let read_at = self.store.read_version();
                match state_store::load(self.store, tenant, key.0)? {
                    Some((state, bytes)) => (Some(state), Some(bytes), read_at),
                    None => (None, None, read_at),
                }
            }
        };
        self.slots.insert(
            key,
            Slot {
                tenant: tenant.clone(),
                state,
                original,
                read_at,
                dirty: false,
            },
        );
        Ok(())
    }

    /// Drops the state of a graph that no longer exists under this id.
    fn forget(&mut self, tenant: &Tenant, graph: u64) -> Result<()> {
        let slot = self.slot(tenant, graph)?;
        slot.dirty |= slot.state.take().is_some();
        Ok(())
    }

    /// Drops the state of `graph` if it was erased or absorbed: nothing reads it any more,
    /// and an erased person's identities must not stay behind in its member list.
    fn forget_if_gone(&mut self, tenant: &Tenant, graph: u64) -> Result<()> {
        let alive = self.graph(tenant, graph)?.is_some_and(|g| g.id == graph);
        if !alive {
            self.forget(tenant, graph)?;
        }
        Ok(())
    }

    /// Recomputes the state of live `graph` from its events when it has none, misses a live
    /// attribute or lists other members than the graph has (at most once per pass).
    fn refresh(&mut self, tenant: &Tenant, graph: &Graph, attrs: &Arc<Live>) -> Result<()> {
        let key = profile_key(tenant, graph.id);
        if self.rebuilt.contains_key(&key) {
            return Ok(());
        }
        let members = state_store::members_of(graph);
        let slot = self.slot(tenant, graph.id)?;
        let stale = match &slot.state {
            None => true,
            Some(state) => {
                state.members != members
                    || attrs
                        .attrs
                        .iter()
                        .any(|a| !state.attrs.contains_key(&a.definition.id))
            }
        };
        if !stale {
            return Ok(());
        }
        let head = match self.h1 {
            Some(h) => h,
            None => *self.h1.insert(change_feed::head(self.store)?),
        };
        let rebuilt = scan_graph(self.store, tenant, graph, attrs, head, self.now)?;
        let slot = self.slot(tenant, graph.id)?;
        slot.state = Some(rebuilt.state.clone());
        slot.dirty = true;
        self.rebuilt.insert(key, rebuilt);
        self.outcome.recomputed += 1;
        Ok(())
    }

    /// Brings the state of the graph the record of `entry` (number `seq`) wrote to up to
    /// what that record made of it, from the entry alone, when the entry says exactly what
    /// changed (`ChangeEntry::growth`; ingestion sets none of it when the sandbox holds
    /// events outside the identity graph, or when it left a blocked identity out):
    /// - the record created the graph from identities never seen: an empty state of them;
    /// - it added identities never seen: they join the state's members;
    /// - it merged graphs cleanly: see [`PassWork::combine`].
    ///
    /// No identity without a past has a stored event, so nothing needs reading. The state
    /// must have been folded up to just before this entry and no further: it then lists
    /// the graph's members as they were before the record, whatever the graph has become
    /// since (later entries bring it further, in feed order). Anything else is left to the
    /// graph as it is now ([`PassWork::refresh`]): returns whether the state was brought up.
    fn advance(
        &mut self,
        tenant: &Tenant,
        key: &ProfileKey,
        seq: u64,
        entry: &EntryView<'_>,
        live: &Live,
    ) -> Result<bool> {
        let growth = entry.growth;
        // Every record and event entry comes here first: the flags, which most entries
        // lack, are checked before any lookup.
        if !(growth.clean_merge || growth.grew_by_new_identities)
            || entry.graph != Some(key.0)
            || self.rebuilt.contains_key(key)
        {
            return Ok(false);
        }
        if growth.clean_merge {
            let combined = self.combine(tenant, key, seq, entry, live)?;
            self.outcome.combined += usize::from(combined);
            return Ok(combined);
        }
        let slot = self.slot_of(tenant, key)?;
        let advanced = match &mut slot.state {
            None if growth.created => {
                slot.state = Some(GraphState {
                    members: carried(entry),
                    attrs: live
                        .attrs
                        .iter()
                        .map(|a| (a.definition.id.clone(), AttrState::default()))
                        .collect(),
                });
                true
            }
            Some(state) if !growth.created && folded_to_just_before(state, live, seq) => {
                state.members.extend(carried(entry));
                state.members.sort_unstable();
                state.members.dedup();
                true
            }
            _ => false,
        };
        slot.dirty |= advanced;
        self.outcome.extended += usize::from(advanced);
        Ok(advanced)
    }

    /// The state of a clean merge's survivor `key`: its own and every absorbed graph's
    /// states added up, with the identities the record brought. Their member sets are
    /// disjoint, and so are their events. Every part must hold every live attribute, folded
    /// up to just before entry `seq` and no further, and no member may be in two parts; a
    /// part without a state calls for a recomputation: returns whether the state was
    /// combined. The absorbed graphs' states are taken (their records go with the pass).
    fn combine(
        &mut self,
        tenant: &Tenant,
        survivor: &ProfileKey,
        seq: u64,
        entry: &EntryView<'_>,
        live: &Live,
    ) -> Result<bool> {
        if entry.absorbed.is_empty() {
            return Ok(false);
        }
        let mut parts = vec![survivor.clone()];
        parts.extend(entry.absorbed.iter().map(|id| profile_key(tenant, *id)));
        let mut members: Vec<IdentityKey> = Vec::new();
        for key in &parts {
            if self.rebuilt.contains_key(key) {
                return Ok(false);
            }
            match &self.slot_of(tenant, key)?.state {
                Some(state) if folded_to_just_before(state, live, seq) => {
                    members.extend_from_slice(&state.members);
                }
                _ => return Ok(false),
            }
        }
        members.sort_unstable();
        let listed = members.len();
        members.dedup();
        if members.len() != listed {
            // A member in two parts would count its events twice.
            return Ok(false);
        }
        members.extend(carried(entry));
        members.sort_unstable();
        members.dedup();
        let mut absorbed_states = Vec::new();
        for key in parts.iter().skip(1) {
            if let Some(slot) = self.slots.get_mut(key) {
                if let Some(state) = slot.state.take() {
                    slot.dirty = true;
                    absorbed_states.push(state);
                }
            }
        }
        let Some(slot) = self.slots.get_mut(survivor) else {
            return Ok(false);
        };
        let Some(state) = slot.state.as_mut() else {
            return Ok(false);
        };
        for attr in &live.attrs {
            let id = &attr.definition.id;
            let Some(into) = state.attrs.get_mut(id) else {
                continue;
            };
            for part in &absorbed_states {
                if let Some(from) = part.attrs.get(id) {
                    into.window.merge(&from.window);
                    into.seq = into.seq.max(from.seq);
                }
            }
        }
        state.members = members;
        slot.dirty = true;
        Ok(true)
    }

    /// An unlink, an erasure or an eviction changed members without a record: every graph
    /// the entry leads to (what became of its origin, and the graphs of the members it
    /// names — the survivor and every part split off) is recomputed if its state is stale.
    fn follow_graph_change(
        &mut self,
        tenant: &Tenant,
        entry: &EntryView<'_>,
        attrs: &Arc<Live>,
    ) -> Result<()> {
        let mut targets: Vec<Graph> = Vec::new();
        if let Some(origin) = entry.graph {
            targets.extend(self.graph(tenant, origin)?);
        }
        for (namespace, id) in &entry.identities {
            let identity = IdentityKey::new(namespace.clone(), id.clone());
            // Members of one part share its graph: one read per part, not per member.
            if targets.iter().any(|g| g.contains(&identity)) {
                continue;
            }
            let Some(graph_id) = tessera_identity::graph_id(self.store, tenant, &identity)? else {
                continue;
            };
            if let Some(graph) = self.graph(tenant, graph_id)? {
                if targets.iter().all(|t| t.id != graph.id) {
                    targets.push(graph);
                }
            }
        }
        for graph in &targets {
            self.refresh(tenant, graph, attrs)?;
        }
        Ok(())
    }

    /// A record or an event: the profile is brought up to date (from the entry when it says
    /// what changed, else recomputed when its graph changed), then an event is folded in
    /// above each attribute's watermark.
    fn apply_write(
        &mut self,
        tenant: &Tenant,
        seq: u64,
        entry: &EntryView<'_>,
        attrs: &Arc<Live>,
    ) -> Result<()> {
        let store = self.store;
        let graph_id = match entry.graph {
            Some(id) => Some(id),
            None => tessera_identity::graph_id(
                store,
                tenant,
                &IdentityKey::new(entry.namespace.clone(), entry.id.clone()),
            )?,
        };
        let Some(graph_id) = graph_id else {
            return Ok(());
        };
        let mut key = profile_key(tenant, graph_id);
        let fast = self.advance(tenant, &key, seq, entry, attrs)?
            || known(self.slot_of(tenant, &key)?.state.as_ref(), entry, attrs);
        if !fast {
            let Some(graph) = self.graph(tenant, graph_id)? else {
                // Erased since: its state goes.
                return self.forget(tenant, graph_id);
            };
            if graph.id != graph_id {
                // Absorbed since (`members_by_id` followed it to its survivor): an orphan.
                self.forget(tenant, graph_id)?;
            }
            key.0 = graph.id;
            self.refresh(tenant, &graph, attrs)?;
            // An event of an identity that has left the graph since (an unlink or a split
            // after the event was written) is not this profile's any more. The change that
            // moved it wrote `graphChanged` entries further on, which rebuild the graph the
            // identity is in now from its events, this one included.
            let identity = IdentityKey::new(entry.namespace.clone(), entry.id.clone());
            if entry.kind == ChangeKind::Event && !graph.contains(&identity) {
                return Ok(());
            }
        }
        if entry.kind != ChangeKind::Event {
            return Ok(());
        }
        let Some(ts) = entry.event_ms else {
            return Ok(());
        };
        // A profile rebuilt in this pass folds into its rebuild (finished at the end).
        let state = match self.rebuilt.get_mut(&key) {
            Some(r) => Some(&mut r.state),
            None => self.slots.get_mut(&key).and_then(|s| s.state.as_mut()),
        };
        let Some(state) = state else {
            return Ok(());
        };
        if live_states(attrs, state).all(|s| s.is_some_and(|s| seq <= s.seq)) {
            return Ok(());
        }
        // What ingestion digested of the event, else the event itself.
        let digested = match (self.recent, &entry.event_id) {
            (Some(recent), Some(event_id)) => recent
                .take(seq, event_id, attrs.serial())
                .and_then(|digest| attrs.read_digest(digest, ts)),
            _ => None,
        };
        let contributions = match digested {
            Some(contributions) => Some(contributions),
            None => event_of(store, tenant, entry)?.map(|doc| attrs.contributions(&doc, ts)),
        };
        if let Some(contributions) = contributions {
            self.outcome.folded += fold_event(
                attrs,
                &mut state.attrs,
                Some(seq),
                ts,
                &contributions,
                self.now,
            );
            if let Some(slot) = self.slots.get_mut(&key) {
                slot.dirty = true;
            }
        }
        Ok(())
    }
}

/// The change-feed consumer, with what it keeps between passes: the compiled live
/// attributes of each sandbox, re-checked against the stored definitions every pass (so a
/// created or disabled attribute is seen by the next pass) but parsed and compiled only when
/// they changed. One per thread that runs passes (the streaming-segmentation worker);
/// [`pass`] and [`catch_up`] use a fresh one.
///
/// It also keeps the profile states it last read or wrote, decoded (bounded; see
/// `StateCache`): the steady state folds each event into a state it already holds.
///
/// Given ingestion's [`RecentEvents`] ([`Consumer::with_recent_events`]), it folds the
/// events ingestion just applied from memory instead of reading them back.
#[derive(Debug, Default)]
pub struct Consumer {
    definitions: LiveCache,
    states: StateCache,
    recent: Option<Arc<RecentEvents>>,
    shared: Option<Arc<change_feed::SharedPage>>,
}

/// One pass over the change feed after the consumer's checkpoint, by a fresh [`Consumer`].
pub fn pass(store: &dyn Store, now: i64) -> Result<PassOutcome> {
    Consumer::default().pass(store, now)
}

/// Runs passes until the consumer has caught up with the feed, by a fresh [`Consumer`].
pub fn catch_up(store: &dyn Store, now: &dyn Fn() -> i64) -> Result<()> {
    Consumer::default().catch_up(store, now)
}

impl Consumer {
    /// A consumer that takes events ingestion applied from `recent` when they are there.
    pub fn with_recent_events(recent: Arc<RecentEvents>) -> Self {
        Self {
            recent: Some(recent),
            ..Self::default()
        }
    }

    /// Reads feed pages through `shared`, which the thread's other consumer reads through
    /// too (see [`change_feed::shared_page`]).
    pub fn sharing_pages(mut self, shared: Arc<change_feed::SharedPage>) -> Self {
        self.shared = Some(shared);
        self
    }

    /// Runs passes until the consumer has caught up with the feed; a pass that lost a race
    /// with another thread's pass is simply repeated.
    pub fn catch_up(&mut self, store: &dyn Store, now: &dyn Fn() -> i64) -> Result<()> {
        loop {
            match self.pass(store, now()) {
                // A pass that read less than a full page reached the feed's head as it was
                // when it read: caught up, without one more (empty) pass to confirm it.
                Ok(outcome) if outcome.entries < PASS => return Ok(()),
                Ok(_) | Err(Error::Store(tessera_store::Error::Conflict { .. })) => {}
                Err(other) => return Err(other),
            }
        }
    }

    /// Tells ingestion what to keep: digests only while some sandbox has an attribute to
    /// fold, and only of the sandboxes this consumer has compiled attributes for.
    fn hand_over_digesters(&mut self) {
        if let Some(recent) = &self.recent {
            recent.set_wanted(self.definitions.any_live());
            recent.set_digesters(self.definitions.digesters());
        }
    }

    /// One pass over the change feed after the consumer's checkpoint.
    pub fn pass(&mut self, store: &dyn Store, now: i64) -> Result<PassOutcome> {
        let after = change_feed::checkpoint(store, CONSUMER)?;
        let entries = match &self.shared {
            Some(shared) => change_feed::shared_page(store, after, PASS, shared)?,
            None => change_feed::page(store, after, PASS)?,
        };
        let Some(last) = entries.last_seq()? else {
            // Nothing new, but definitions may have changed (a backfill that made an
            // attribute live kicks the worker): ingestion then digests the next events with
            // them instead of leaving them to be read back.
            if self.recent.is_some() {
                self.definitions.refresh(store)?;
                self.hand_over_digesters();
            }
            return Ok(PassOutcome::default());
        };
        let mut live: HashMap<(String, String), Arc<Live>> = HashMap::new();
        let mut work = PassWork::new(store, &mut self.states, self.recent.as_deref(), now);
        work.outcome.entries = entries.len();
        // The sandbox of the previous entry: a pass is mostly one sandbox's entries, so its
        // tenant is parsed and its attributes looked up once, not per entry.
        let mut current: Option<(Tenant, Arc<Live>)> = None;
        for decoded in entries.views() {
            let (seq, entry) = decoded?;
            if entry.kind == ChangeKind::Membership {
                continue;
            }
            let same = current.as_ref().is_some_and(|(tenant, _)| {
                tenant.org.as_str() == entry.org && tenant.sandbox.as_str() == entry.sandbox
            });
            if !same {
                let Some(tenant) = tenant_of(&entry) else {
                    continue;
                };
                let tkey = (entry.org.to_string(), entry.sandbox.to_string());
                let attrs = match live.get(&tkey) {
                    Some(attrs) => Arc::clone(attrs),
                    None => {
                        let attrs = self.definitions.get(store, &tenant)?;
                        live.insert(tkey, Arc::clone(&attrs));
                        attrs
                    }
                };
                current = Some((tenant, attrs));
            }
            let Some((tenant, attrs)) = &current else {
                continue;
            };
            if !attrs.is_empty() {
                match entry.kind {
                    ChangeKind::GraphChanged | ChangeKind::Erased => {
                        work.follow_graph_change(tenant, &entry, attrs)?;
                    }
                    ChangeKind::Record | ChangeKind::Event => {
                        work.apply_write(tenant, seq, &entry, attrs)?;
                    }
                    ChangeKind::Membership => {}
                }
            }
            // Also without live attributes: states written while some were live must not
            // outlive their graph. After the write, which may have combined the states of
            // the graphs a record merged away into the survivor's.
            for gone in gone_candidates(&entry) {
                work.forget_if_gone(tenant, gone)?;
            }
        }
        let PassWork {
            h1,
            mut slots,
            mut rebuilt,
            outcome,
            ..
        } = work;
        self.hand_over_digesters();
        if let Some(h1) = h1 {
            finish_rebuilds(store, &live, &mut rebuilt, h1, now)?;
        }
        for (key, r) in rebuilt {
            if let Some(slot) = slots.get_mut(&key) {
                slot.state = Some(r.state);
                slot.dirty = true;
            }
        }
        // Derived (no wait for the disk): states and checkpoint commit together, so a crash
        // that loses the pass loses both and the pass is done again.
        let mut batch = WriteBatch::new().derived();
        // What the cache holds once the batch is in: the states as read, and as written
        // (current at the commit's version, known once it is in).
        let mut kept: Vec<(ProfileKey, CachedState)> = Vec::new();
        let mut written: Vec<(ProfileKey, CachedState)> = Vec::new();
        for (profile, slot) in slots {
            if !slot.dirty {
                if let (Some(state), Some(encoded)) = (slot.state, slot.original) {
                    let read_at = slot.read_at;
                    kept.push((
                        profile,
                        CachedState {
                            state,
                            encoded,
                            read_at,
                        },
                    ));
                }
                continue;
            }
            let key = state_store::key(&slot.tenant, profile.0);
            batch.expect_read_at(Table::ComputedAttributes, &key, slot.original, slot.read_at);
            match slot.state {
                Some(state) => {
                    let encoded = state_store::encode(&state)?;
                    batch.put(Table::ComputedAttributes, &key, encoded.clone());
                    let read_at = None;
                    written.push((
                        profile,
                        CachedState {
                            state,
                            encoded,
                            read_at,
                        },
                    ));
                }
                None => {
                    batch.delete(Table::ComputedAttributes, &key);
                }
            }
        }
        change_feed::expect_checkpoint(&mut batch, CONSUMER, after);
        change_feed::save_checkpoint(&mut batch, CONSUMER, last);
        let committed = store.commit(batch)?;
        // Events of entries this pass did not take (no attribute reads them) are let go, and
        // ingestion waiting for the consumer to catch up sees it move.
        if let Some(recent) = &self.recent {
            recent.passed(last);
        }
        tracing::debug!(
            entries = outcome.entries,
            folded = outcome.folded,
            recomputed = outcome.recomputed,
            extended = outcome.extended,
            combined = outcome.combined,
            "computed-attribute pass"
        );
        for (_, cached) in &mut written {
            cached.read_at = committed.version;
        }
        for (profile, cached) in kept.into_iter().chain(written) {
            self.states.put(profile, cached);
        }
        Ok(outcome)
    }
}

/// Recomputes one profile's state and stores it under compare-and-set (retried).
fn recompute_and_store(
    store: &dyn Store,
    tenant: &Tenant,
    graph: &Graph,
    live: &Arc<Live>,
    now: i64,
) -> Result<()> {
    for _ in 0..ATTEMPTS {
        let original = store.get(
            Table::ComputedAttributes,
            &state_store::key(tenant, graph.id),
        )?;
        let state = recompute(store, tenant, graph, live, now)?;
        let mut batch = WriteBatch::new();
        let key = state_store::key(tenant, graph.id);
        batch.expect(Table::ComputedAttributes, &key, original).put(
            Table::ComputedAttributes,
            &key,
            state_store::encode(&state)?,
        );
        match store.commit(batch) {
            Ok(_) => return Ok(()),
            Err(tessera_store::Error::Conflict { .. }) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(Error::Conflict)
}

/// Attributes waiting for their backfill: `(tenant, id)`.
pub fn pending(store: &dyn Store) -> Result<Vec<(Tenant, String)>> {
    let prefix = definition::pending_prefix();
    let prefix_len = prefix.as_bytes().len();
    let rows = store.scan(
        Table::ComputedAttributes,
        &ScanRange::prefix(prefix),
        Direction::Forward,
        1_000,
    )?;
    let mut out = Vec::new();
    for row in rows {
        let rest = row.key.get(prefix_len..).ok_or_else(|| Error::Corrupt {
            what: "computed attribute pending key",
            reason: "key shorter than its prefix".into(),
        })?;
        let mut reader = KeyReader::new(rest);
        let (org, sandbox, id) = (reader.string()?, reader.string()?, reader.string()?);
        if let Ok(tenant) = Tenant::parse(&org, &sandbox) {
            out.push((tenant, id));
        }
    }
    Ok(out)
}

/// Backfills every attribute waiting for it; returns how many finished.
pub fn backfill(store: &dyn Store, now: &dyn Fn() -> i64) -> Result<usize> {
    let mut done = 0;
    for (tenant, id) in pending(store)? {
        let Some(def) = definition::get(store, &tenant, &id)? else {
            continue;
        };
        match def.status {
            Status::New => {
                if definition::set_status(
                    store,
                    &tenant,
                    &id,
                    Status::New,
                    Status::Processing,
                    now(),
                )?
                .is_none()
                {
                    continue;
                }
            }
            // A backfill interrupted by a restart starts over (recomputes are idempotent).
            Status::Processing => {}
            _ => continue,
        }
        // From here every pass folds the attribute; catch up so that no entry applied
        // before the switch is left to a pass that did not know it.
        catch_up(store, now)?;
        let live = Arc::new(Live::new(definition::live(store, &tenant)?));
        if live.is_empty() {
            continue;
        }
        let mut after = None;
        loop {
            let page = tessera_identity::graphs(store, &tenant, after, BACKFILL_PAGE)?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            for graph in &page {
                recompute_and_store(store, &tenant, graph, &live, now())?;
            }
        }
        if definition::set_status(
            store,
            &tenant,
            &id,
            Status::Processing,
            Status::Processed,
            now(),
        )?
        .is_some()
        {
            done += 1;
        }
        tracing::info!(attribute = %id, org = %tenant.org.as_str(), sandbox = %tenant.sandbox.as_str(), "computed attribute backfilled");
    }
    Ok(done)
}

/// One computed value of a profile: the tenant field, the attribute name, the value.
pub type ComputedValue = (String, String, Value);

/// The live attributes' values of profile `graph` at `now` (SUM and COUNT are 0 when
/// nothing is in the window; MIN, MAX and MOST_RECENT are then absent).
pub fn values(
    store: &dyn Store,
    tenant: &Tenant,
    graph: u64,
    now: i64,
) -> Result<Vec<ComputedValue>> {
    values_of(store, tenant, &live_definitions(store, tenant)?, graph, now)
}

/// The live attribute definitions of a sandbox, for [`values_of`]: evaluations over many
/// profiles read them once, not once per profile.
pub fn live_definitions(
    store: &dyn Store,
    tenant: &Tenant,
) -> Result<Vec<definition::ComputedAttribute>> {
    Ok(definition::list(store, tenant)?
        .into_iter()
        .filter(|d| d.status.is_live())
        .collect())
}

/// [`values`] with the sandbox's live definitions read beforehand.
pub fn values_of(
    store: &dyn Store,
    tenant: &Tenant,
    defs: &[definition::ComputedAttribute],
    graph: u64,
    now: i64,
) -> Result<Vec<ComputedValue>> {
    if defs.is_empty() {
        return Ok(Vec::new());
    }
    let state = state_store::load(store, tenant, graph)?.map(|(s, _)| s);
    let mut out = Vec::new();
    for def in defs {
        let value = match state.as_ref().and_then(|s| s.attrs.get(&def.id)) {
            Some(attr) => attr.window.value(def.merge_function, &def.duration, now),
            None => super::window::empty_value(def.merge_function),
        };
        if let Some(value) = value {
            out.push((def.tenant_field.clone(), def.name.clone(), value));
        }
    }
    Ok(out)
}

/// Puts `values` into a profile document at `{tenant field}.ComputedAttributes.{name}`.
pub fn apply(values: &[ComputedValue], profile: &mut Value) {
    for (field, name, value) in values {
        let Value::Object(root) = profile else { return };
        let tenant = root
            .entry(field.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(tenant) = tenant else {
            continue;
        };
        let group = tenant
            .entry("ComputedAttributes")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(group) = group {
            group.insert(name.clone(), value.clone());
        }
    }
}

/// Adds profile `graph`'s computed attribute values to its merged document, so PQL reads
/// `_{TENANT_ID}.ComputedAttributes.{name}` like any profile field.
pub fn overlay(
    store: &dyn Store,
    tenant: &Tenant,
    graph: u64,
    now: i64,
    profile: &mut Value,
) -> Result<()> {
    let values = values(store, tenant, graph, now)?;
    apply(&values, profile);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(bytes: usize) -> CachedState {
        CachedState {
            state: GraphState::default(),
            encoded: vec![0; bytes],
            read_at: Some(1),
        }
    }

    mod advance {
        use super::*;
        use crate::computed::definition;
        use crate::computed::window::{Acc, Duration, Function, Window};
        use tessera_ingest::change_feed::ChangeEntry;
        use tessera_store::{EmbeddedStore, StoreOptions};

        const NOW: i64 = 1_750_000_000_000;

        fn tenant() -> Tenant {
            Tenant::parse("S@AdobeOrg", "prod").expect("tenant")
        }

        fn member(n: u8) -> IdentityKey {
            IdentityKey::new("Email", format!("{n}@x.com"))
        }

        /// A state of `members` whose one attribute counted `count` events, folded up to
        /// entry `seq`.
        fn state(live: &Live, members: &[u8], count: u64, seq: u64) -> GraphState {
            let mut window = Window::default();
            let bucket = definition_duration().bucket_of(NOW - 3_600_000);
            window.buckets.push((bucket, Acc::Count(count)));
            GraphState {
                members: members.iter().map(|m| member(*m)).collect(),
                attrs: live
                    .attrs
                    .iter()
                    .map(|a| {
                        (
                            a.definition.id.clone(),
                            AttrState {
                                seq,
                                window: window.clone(),
                            },
                        )
                    })
                    .collect(),
            }
        }

        /// The record of entry 10, which carried members 1 and 3: graph 1 absorbed graph 2
        /// when `growth` says it merged.
        fn entry(growth: change_feed::GraphGrowth) -> ChangeEntry {
            let carried = [member(1), member(3)];
            ChangeEntry {
                org: "S@AdobeOrg".into(),
                sandbox: "prod".into(),
                dataset_id: "ev".into(),
                kind: ChangeKind::Record,
                namespace: carried[0].namespace.clone(),
                id: carried[0].id.clone(),
                identities: carried
                    .iter()
                    .map(|m| (m.namespace.clone(), m.id.clone()))
                    .collect(),
                xaction_id: "x".into(),
                applied_ms: NOW,
                event_ms: None,
                event_id: None,
                graph: Some(1),
                segment: None,
                absorbed: if growth.clean_merge {
                    vec![2]
                } else {
                    Vec::new()
                },
                growth,
            }
        }

        fn merge_entry(clean: bool) -> ChangeEntry {
            let mut merge = entry(change_feed::GraphGrowth {
                clean_merge: true,
                ..Default::default()
            });
            merge.growth.clean_merge = clean;
            merge
        }

        fn growth_entry() -> ChangeEntry {
            entry(change_feed::GraphGrowth {
                grew_by_new_identities: true,
                ..Default::default()
            })
        }

        /// Runs `advance` on graph 1 for entry 10 with the given states of graphs 1 and 2;
        /// returns whether it advanced, graph 1's state after, and whether graph 2's state
        /// was taken.
        fn run(
            survivor: Option<GraphState>,
            absorbed: Option<GraphState>,
            entry: &ChangeEntry,
        ) -> (bool, Option<GraphState>, bool) {
            let dir = tempfile::tempdir().expect("dir");
            let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).expect("store");
            let mut cache = StateCache::default();
            let mut work = PassWork::new(&store, &mut cache, None, NOW);
            for (graph, state) in [(1, survivor), (2, absorbed)] {
                work.slots.insert(
                    profile_key(&tenant(), graph),
                    Slot {
                        tenant: tenant(),
                        state,
                        original: None,
                        read_at: None,
                        dirty: false,
                    },
                );
            }
            let advanced = work
                .advance(
                    &tenant(),
                    &profile_key(&tenant(), 1),
                    10,
                    &entry.view(),
                    live(),
                )
                .expect("advance");
            let absorbed_taken = work
                .slots
                .get(&profile_key(&tenant(), 2))
                .is_some_and(|s| s.state.is_none() && s.dirty);
            let survivor = work
                .slots
                .remove(&profile_key(&tenant(), 1))
                .and_then(|s| s.state);
            (advanced, survivor, absorbed_taken)
        }

        fn live() -> &'static Live {
            static LIVE: std::sync::OnceLock<Live> = std::sync::OnceLock::new();
            LIVE.get_or_init(|| {
                let dir = tempfile::tempdir().expect("dir");
                let store =
                    EmbeddedStore::open(dir.path(), StoreOptions::default()).expect("store");
                for name in ["a", "b"] {
                    let body = serde_json::json!({"name": name,
                        "expression": {"type": "PQL", "format": "pql/text", "value": "xEvent.count()"},
                        "duration": {"count": 2, "unit": "DAYS"}, "status": "NEW"});
                    definition::create(&store, &tenant(), &body, "_s", NOW).expect("create");
                }
                // Compiled whatever their status (a backfill would make them live).
                let attrs = definition::list(&store, &tenant())
                    .expect("list")
                    .into_iter()
                    .map(definition::Compiled::new)
                    .collect::<Result<Vec<_>>>()
                    .expect("compile");
                assert_eq!(attrs.len(), 2);
                Live::new(attrs)
            })
        }

        fn counts(state: &GraphState) -> Vec<Value> {
            live_states(live(), state)
                .map(|s| {
                    s.and_then(|s| s.window.value(Function::Count, &definition_duration(), NOW))
                        .unwrap_or(Value::Null)
                })
                .collect()
        }

        fn definition_duration() -> Duration {
            live()
                .attrs
                .first()
                .map(|a| a.definition.duration)
                .expect("an attribute")
        }

        #[test]
        fn a_clean_merge_adds_the_absorbed_state_to_the_survivors() {
            let live = live();
            let (combined, survivor, taken) = run(
                Some(state(live, &[1], 4, 7)),
                Some(state(live, &[2], 5, 9)),
                &merge_entry(true),
            );
            assert!(combined && taken);
            let survivor = survivor.expect("state");
            assert_eq!(
                survivor.members,
                vec![member(1), member(2), member(3)],
                "both graphs' members and the one the record brought"
            );
            assert_eq!(counts(&survivor), vec![Value::from(9), Value::from(9)]);
            assert!(
                survivor.attrs.values().all(|a| a.seq == 9),
                "the later watermark"
            );
        }

        #[test]
        fn new_identities_join_a_state_folded_up_to_their_record() {
            let live = live();
            let (advanced, after, _) = run(Some(state(live, &[1], 4, 9)), None, &growth_entry());
            assert!(advanced);
            let after = after.expect("state");
            assert_eq!(after.members, vec![member(1), member(3)]);
            assert_eq!(counts(&after), vec![Value::from(4), Value::from(4)]);
            let (advanced, _, _) = run(Some(state(live, &[1], 4, 10)), None, &growth_entry());
            assert!(
                !advanced,
                "a state folded up to the record itself was recomputed since"
            );
        }

        #[test]
        fn anything_the_entry_does_not_account_for_calls_for_a_recomputation() {
            let live = live();
            let (s, a) = (state(live, &[1], 4, 7), state(live, &[2], 5, 9));
            let refused = |survivor, absorbed, entry: &ChangeEntry, why: &str| {
                let (combined, after, taken) = run(survivor, absorbed, entry);
                assert!(!combined && !taken, "combined although {why}");
                assert_eq!(
                    after.map(|s| (s.members.len(), counts(&s))),
                    Some((1, vec![4.into(), 4.into()])),
                    "{why}"
                );
            };
            let clean = merge_entry(true);
            refused(
                Some(s.clone()),
                Some(a.clone()),
                &merge_entry(false),
                "the merge was not clean",
            );
            refused(
                Some(state(live, &[1], 4, 10)),
                Some(a.clone()),
                &clean,
                "the survivor was folded up to this entry",
            );
            refused(
                Some(s.clone()),
                Some(state(live, &[2], 5, 11)),
                &clean,
                "the absorbed state was folded past this entry",
            );
            refused(
                Some(s.clone()),
                None,
                &clean,
                "the absorbed graph has no state",
            );
            let mut partial = a.clone();
            partial.attrs.pop_first();
            refused(
                Some(s.clone()),
                Some(partial),
                &clean,
                "an attribute is missing",
            );
            refused(
                Some(s.clone()),
                Some(state(live, &[1, 2], 5, 9)),
                &clean,
                "a member is in both",
            );
            let mut elsewhere = clean.clone();
            elsewhere.graph = Some(2);
            refused(
                Some(s),
                Some(a),
                &elsewhere,
                "the record wrote to another graph",
            );
        }
    }

    #[test]
    fn state_cache_stays_within_its_bound_and_counts_what_it_holds() {
        let mut cache = StateCache::default();
        let record = 64 << 10;
        let profiles = 3 * STATE_CACHE_ENCODED_BYTES / record;
        for graph in 0..profiles as u64 {
            cache.put((graph, "o".into(), "s".into()), cached(record));
            assert!(cache.encoded_bytes <= STATE_CACHE_ENCODED_BYTES);
            let held: usize = cache.states.values().map(|c| c.encoded.len()).sum();
            assert_eq!(cache.encoded_bytes, held);
        }
        let last = (profiles as u64 - 1, "o".to_owned(), "s".to_owned());
        assert!(cache.take(&last).is_some(), "the newest state is kept");
        assert!(
            cache.take(&last).is_none(),
            "a state is taken out, not copied"
        );
        // Replacing a state counts only the new one.
        cache.put(last.clone(), cached(10));
        cache.put(last, cached(20));
        let held: usize = cache.states.values().map(|c| c.encoded.len()).sum();
        assert_eq!(cache.encoded_bytes, held);
    }
}
