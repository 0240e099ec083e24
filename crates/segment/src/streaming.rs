//! Streaming evaluation: continuous segments re-evaluated for each profile a write touched,
//! and again when time alone would change the answer.
//!
//! - **Change-feed consumer** (`segment-streaming`): a pass reads the entries after its
//!   checkpoint, re-evaluates every continuous (or synchronous) segment of each touched
//!   profile, and commits the membership changes, their change-feed entries, the profile's next
//!   timer and the new checkpoint in one batch: a crash repeats a pass, never half of one.
//!   Membership entries written by batch jobs re-evaluate the profile too (segments of segments
//!   follow their children); the consumer's own membership entries do not.
//! - **Timers**: after evaluating a profile, the earliest instant at which a time window could
//!   flip one of its answers (an event ageing out of "in the last 3 hours", a new UTC day for
//!   `today`) is stored as a timer; a due timer re-evaluates the profile then, not at the next
//!   batch. No window is too long (the incumbent limits streaming to 24 hours).
//!
//! Timers: `system, "segtimer", due ms, org, sandbox, graph` → nothing, so the due ones are one
//! prefix scan from the start; `tenant, "segtimer-of", graph` → due (8 bytes) in
//! `Table::Memberships`, to replace a profile's timer.

use std::collections::{BTreeMap, BTreeSet};

use tessera_identity::{Graph, IdentityKey};
use tessera_ingest::change_feed::{self, ChangeKind};
use tessera_model::Tenant;
use tessera_pql::ast::{Expr, OccursSpec, TimeRef, Unit};
use tessera_store::{Direction, Key, KeyReader, ScanRange, Scope, Store, Table, WriteBatch};

use crate::batch::{self, Change, Compiled, Metrics, Run};
use crate::error::{Error, Result};

/// The consumer's name on the change feed.
pub const CONSUMER: &str = "segment-streaming";
/// Receipt prefix of the membership entries this consumer writes (it skips its own).
pub const RECEIPT: &str = "segment-stream";
/// Feed entries handled per pass: a pass that reads fewer reached the feed's head. The
/// attribute consumer's page size: the two share pages only when they ask for the same.
pub const PASS: usize = crate::computed::upkeep::PASS;
const DAY_MS: i64 = 86_400_000;

/// How a segment's answer depends on the clock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sensitivity {
    /// Offsets from an event's timestamp at which its window edge passes (ms).
    pub offsets: BTreeSet<i64>,
    /// Depends on calendar periods (`today`, `this month`, month/year windows): re-evaluate
    /// at least at each new UTC day.
    pub calendar: bool,
}

impl Sensitivity {
    /// Whether the clock matters at all.
    pub fn is_timed(&self) -> bool {
        self.calendar || !self.offsets.is_empty()
    }
}

fn unit_ms(unit: Unit) -> Option<i64> {
    Some(match unit {
        Unit::Millisecond => 1,
        Unit::Second => 1_000,
        Unit::Minute => 60_000,
        Unit::Hour => 3_600_000,
        Unit::Day => DAY_MS,
        Unit::Week => 7 * DAY_MS,
        Unit::Month | Unit::Year | Unit::Decade | Unit::Century | Unit::Millennium => return None,
    })
}

fn note_spec(spec: &OccursSpec, out: &mut Sensitivity) {
    let mut note_time = |time: &TimeRef| match time {
        TimeRef::Now => {}
        _ => out.calendar = true,
    };
    match spec {
        OccursSpec::Compare {
            amount, unit, time, ..
        } => {
            note_time(time);
            match unit_ms(*unit).and_then(|ms| i64::try_from(*amount).ok()?.checked_mul(ms)) {
                Some(offset) => {
                    out.offsets.insert(offset);
                    out.offsets.insert(-offset);
                    // `occurs < N units` and `<=` flip a millisecond apart.
                    out.offsets.insert(offset + 1);
                }
                None => out.calendar = true,
            }
        }
        OccursSpec::Direction { time, .. } | OccursSpec::On(time) => {
            note_time(time);
            out.offsets.insert(0);
            out.offsets.insert(1);
        }
        OccursSpec::Between(a, b) => {
            note_time(a);
            note_time(b);
        }
    }
}

/// How `expr`'s answer depends on the clock.
pub fn sensitivity(expr: &Expr) -> Sensitivity {
    let mut out = Sensitivity::default();
    expr.walk(&mut |node| match node {
        Expr::Occurs { spec, .. } => note_spec(spec, &mut out),
        Expr::Chain(chain) => {
            for step in &chain.steps {
                if let Some(spec) = &step.when {
                    note_spec(spec, &mut out);
                }
            }
        }
        // `now`, `today` and friends used as values.
        Expr::Call { func, .. } if matches!(func.as_str(), "now" | "today") => {
            out.calendar = true;
        }
        _ => {}
    });
    out
}

/// The earliest instant after `now` at which an answer could change, given the profile's
/// event times.
pub fn next_due(now: i64, events: &[i64], sensitivity: &Sensitivity) -> Option<i64> {
    let mut due: Option<i64> = None;
    let mut consider = |t: i64| {
        if t > now {
            due = Some(due.map_or(t, |d| d.min(t)));
        }
    };
    for event in events {
        for offset in &sensitivity.offsets {
            if let Some(t) = event.checked_add(*offset) {
                consider(t);
            }
        }
    }
    if sensitivity.calendar {
        consider((now.div_euclid(DAY_MS) + 1) * DAY_MS);
    }
    due
}

fn timer_prefix() -> Key {
    Key::builder(&Scope::System).str("segtimer").finish()
}

fn timer_key(due: i64, tenant: &Tenant, graph: u64) -> Key {
    Key::extend(&timer_prefix())
        .i64(due)
        .str(tenant.org.as_str())
        .str(tenant.sandbox.as_str())
        .u64(graph)
        .finish()
}

fn timer_of_key(tenant: &Tenant, graph: u64) -> Key {
    Key::tenant(tenant).str("segtimer-of").u64(graph).finish()
}

/// Adds to `batch` the replacement of `graph`'s timer by `due` (`None`: no timer).
fn set_timer(
    store: &dyn Store,
    batch: &mut WriteBatch,
    tenant: &Tenant,
    graph: u64,
    due: Option<i64>,
) -> Result<()> {
    let pointer = timer_of_key(tenant, graph);
    if let Some(old) = store.get(Table::Memberships, &pointer)? {
        if let Ok(bytes) = <[u8; 8]>::try_from(old.as_slice()) {
            batch.delete(
                Table::Memberships,
                &timer_key(i64::from_be_bytes(bytes), tenant, graph),
            );
        }
    }
    match due {
        Some(due) => {
            batch
                .put(
                    Table::Memberships,
                    &timer_key(due, tenant, graph),
                    Vec::new(),
                )
                .put(Table::Memberships, &pointer, due.to_be_bytes().to_vec());
        }
        None => {
            batch.delete(Table::Memberships, &pointer);
        }
    }
    Ok(())
}

/// The continuous (or synchronous) segments of a sandbox, compiled in dependency order.
pub fn continuous_segments(store: &dyn Store, tenant: &Tenant) -> Result<Vec<Compiled>> {
    let definitions: Vec<_> = crate::definition::list(store, tenant)?
        .into_iter()
        .filter(|d| d.evaluation_info.continuous.enabled || d.evaluation_info.synchronous.enabled)
        .collect();
    if definitions.is_empty() {
        return Ok(Vec::new());
    }
    let policies = tessera_profile::policy::load(store, tenant)?;
    batch::compile(definitions, &policies)
}

/// What one pass or timer firing did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassOutcome {
    /// Feed entries read.
    pub entries: usize,
    /// Profiles evaluated.
    pub evaluated: usize,
}

/// Re-evaluates `graphs` of `tenant` into `batch`: memberships, feed entries, timers.
fn evaluate_graphs(
    store: &dyn Store,
    tenant: &Tenant,
    segments: &[Compiled],
    graphs: &[Graph],
    now_ms: i64,
    max_identities: usize,
    batch: &mut WriteBatch,
) -> Result<usize> {
    let never = || false;
    let no_record = |_: &mut WriteBatch, _: &[Change]| Ok(());
    let run = Run {
        store,
        tenant,
        now_ms,
        max_identities,
        should_stop: &never,
        record: &no_record,
        use_views: true,
    };
    let timed: Vec<(Sensitivity, bool)> = segments
        .iter()
        .map(|s| {
            let sensitivity = s
                .definition
                .parsed()
                .map(|e| sensitivity(&e))
                .unwrap_or_default();
            let reads_events = s.reads_events();
            (sensitivity, reads_events)
        })
        .collect();
    let mut evaluated = 0;
    let mut metrics = Metrics::default();
    let computed = crate::computed::upkeep::live_definitions(store, tenant)?;
    for graph in graphs {
        if graph.members.len() > max_identities {
            continue;
        }
        let mut changes = Vec::new();
        let times = batch::evaluate_into(
            &run,
            graph,
            segments,
            &computed,
            batch,
            &mut changes,
            &mut metrics,
        )?;
        for change in &changes {
            change_feed::append(batch, &batch::feed_entry(tenant, change, RECEIPT, now_ms))?;
        }
        let mut due: Option<i64> = None;
        for (sensitivity, _) in timed.iter().filter(|(s, _)| s.is_timed()) {
            if let Some(t) = next_due(now_ms, &times, sensitivity) {
                due = Some(due.map_or(t, |d| d.min(t)));
            }
        }
        set_timer(store, batch, tenant, graph.id, due)?;
        evaluated += 1;
    }
    Ok(evaluated)
}

/// One pass over the change feed after the consumer's checkpoint.
pub fn pass(store: &dyn Store, now_ms: i64, max_identities: usize) -> Result<PassOutcome> {
    pass_sharing(
        store,
        now_ms,
        max_identities,
        &change_feed::SharedPage::default(),
    )
}

/// [`pass`], reading its page through `shared`, which the thread's other consumer reads
/// through too (see [`change_feed::shared_page`]).
pub fn pass_sharing(
    store: &dyn Store,
    now_ms: i64,
    max_identities: usize,
    shared: &change_feed::SharedPage,
) -> Result<PassOutcome> {
    let after = change_feed::checkpoint(store, CONSUMER)?;
    let entries = change_feed::shared_page(store, after, PASS, shared)?;
    let Some(last) = entries.last_seq()? else {
        return Ok(PassOutcome::default());
    };
    // Per tenant: identities touched, and graphs they were in when written.
    let mut touched: BTreeMap<(String, String), (BTreeSet<IdentityKey>, BTreeSet<u64>)> =
        BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for decoded in entries.views() {
        let (_, entry) = decoded?;
        if entry.kind == ChangeKind::Membership && entry.xaction_id.starts_with(RECEIPT) {
            continue;
        }
        // A page is mostly one sandbox's entries: its key is built once per change of
        // sandbox, not per entry.
        let key = match current.take() {
            Some(key) if key.0 == entry.org && key.1 == entry.sandbox => key,
            _ => (entry.org.to_string(), entry.sandbox.to_string()),
        };
        let key = current.insert(key);
        if !touched.contains_key(key) {
            touched.insert(key.clone(), Default::default());
        }
        // Not `entry()`, which takes an owned key for every entry; the `else` cannot happen.
        let Some(slot) = touched.get_mut(key) else {
            continue;
        };
        if entry.kind != ChangeKind::Erased {
            slot.0.insert(IdentityKey::new(
                entry.namespace.as_ref(),
                entry.id.as_ref(),
            ));
        }
        slot.1.extend(entry.graph);
        // Graphs this record's links merged away: their memberships go with them.
        slot.1.extend(entry.absorbed.iter().copied());
    }
    // Derived from the feed and committed with the checkpoint: a crash that loses the pass
    // loses its checkpoint with it, and the pass is done again. Waiting for the disk here
    // held the worker (and the computed-attribute upkeep that shares its thread) on an
    // fsync per pass while ingestion kept the disk busy.
    let mut batch = WriteBatch::new().derived();
    let mut evaluated = 0;
    for ((org, sandbox), (identities, old_graphs)) in touched {
        let Ok(tenant) = Tenant::parse(&org, &sandbox) else {
            continue;
        };
        let segments = continuous_segments(store, &tenant)?;
        if segments.is_empty() {
            continue;
        }
        let mut graphs: BTreeMap<u64, Graph> = BTreeMap::new();
        for identity in &identities {
            if let Some(graph) = tessera_identity::resolve(store, &tenant, identity)? {
                graphs.insert(graph.id, graph);
            }
        }
        // Graphs absorbed or erased since: their memberships go (the survivor is evaluated).
        for old in old_graphs.iter().filter(|g| !graphs.contains_key(g)) {
            let alive = tessera_identity::graph::members_by_id(store, &tenant, *old)?
                .is_some_and(|g| g.id == *old);
            if !alive {
                crate::membership::remove_graph(store, &mut batch, &tenant, *old)?;
                set_timer(store, &mut batch, &tenant, *old, None)?;
            }
        }
        let graphs: Vec<Graph> = graphs.into_values().collect();
        evaluated += evaluate_graphs(
            store,
            &tenant,
            &segments,
            &graphs,
            now_ms,
            max_identities,
            &mut batch,
        )?;
    }
    change_feed::save_checkpoint(&mut batch, CONSUMER, last);
    store.commit(batch)?;
    Ok(PassOutcome {
        entries: entries.len(),
        evaluated,
    })
}

/// Re-evaluates the profiles whose timers are due at `now_ms`.
pub fn fire_timers(store: &dyn Store, now_ms: i64, max_identities: usize) -> Result<PassOutcome> {
    let prefix = timer_prefix();
    let prefix_len = prefix.as_bytes().len();
    let end = Key::extend(&prefix).i64(now_ms.saturating_add(1)).finish();
    let rows = store.scan(
        Table::Memberships,
        &ScanRange::prefix(prefix),
        Direction::Forward,
        PASS,
    )?;
    let mut due: BTreeMap<(String, String), BTreeSet<u64>> = BTreeMap::new();
    for row in rows {
        if row.key.as_slice() >= end.as_bytes() {
            break;
        }
        let mut reader =
            KeyReader::new(row.key.get(prefix_len..).ok_or_else(|| Error::Corrupt {
                what: "segment timer",
                reason: "key shorter than its prefix".into(),
            })?);
        reader.i64()?;
        let (org, sandbox, graph) = (reader.string()?, reader.string()?, reader.u64()?);
        due.entry((org, sandbox)).or_default().insert(graph);
    }
    let mut outcome = PassOutcome::default();
    for ((org, sandbox), graph_ids) in due {
        let Ok(tenant) = Tenant::parse(&org, &sandbox) else {
            continue;
        };
        let segments = continuous_segments(store, &tenant)?;
        // Derived like a pass: a lost commit leaves the timers due, and they fire again.
        let mut batch = WriteBatch::new().derived();
        let mut graphs = Vec::new();
        for id in graph_ids {
            outcome.entries += 1;
            match tessera_identity::graph::members_by_id(store, &tenant, id)? {
                Some(graph) if graph.id == id && !segments.is_empty() => graphs.push(graph),
                // Gone, absorbed (the survivor has its own timer), or nothing to evaluate.
                _ => set_timer(store, &mut batch, &tenant, id, None)?,
            }
        }
        outcome.evaluated += evaluate_graphs(
            store,
            &tenant,
            &segments,
            &graphs,
            now_ms,
            max_identities,
            &mut batch,
        )?;
        store.commit(batch)?;
    }
    Ok(outcome)
}

/// The next due timer (ms), for the worker's sleep.
pub fn next_timer(store: &dyn Store) -> Result<Option<i64>> {
    let prefix = timer_prefix();
    let prefix_len = prefix.as_bytes().len();
    let rows = store.scan(
        Table::Memberships,
        &ScanRange::prefix(prefix),
        Direction::Forward,
        1,
    )?;
    match rows.first() {
        Some(row) => {
            let rest = row.key.get(prefix_len..).ok_or_else(|| Error::Corrupt {
                what: "segment timer",
                reason: "key shorter than its prefix".into(),
            })?;
            Ok(Some(KeyReader::new(rest).i64()?))
        }
        None => Ok(None),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn windows_become_offsets_and_calendar_words_become_days() {
        let expr = tessera_pql::parse("xEvent[timestamp occurs <= 3 hours before now].count() > 0")
            .unwrap();
        let s = sensitivity(&expr);
        assert!(s.offsets.contains(&(3 * 3_600_000)));
        assert!(!s.calendar);
        // An event at t leaves the window 3 hours later.
        assert_eq!(next_due(1_000, &[0], &s), Some(3 * 3_600_000));
        assert_eq!(next_due(1_000, &[], &s), None);
        let today = tessera_pql::parse(
            r#"CHAIN(xEvent, timestamp, [C0: WHAT(eventType.equals("commerce.checkouts", false)) WHEN(today)])"#,
        )
        .unwrap();
        let s = sensitivity(&today);
        assert!(s.calendar);
        assert_eq!(next_due(DAY_MS + 5, &[], &s), Some(2 * DAY_MS));
        let plain = tessera_pql::parse(r#"homeAddress.city = "Basel""#).unwrap();
        assert!(!sensitivity(&plain).is_timed());
    }
}
