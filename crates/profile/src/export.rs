//! Profile export: one merged, projected profile as one JSON line — the domain half of AEP's
//! export jobs (`/data/core/ups/export/jobs`). The job, its file and its HTTP shapes live in
//! the server crate; which profiles exist is [`crate::walk`]; the merge is
//! [`crate::lookup::compute`], the one merge path (so an export and a lookup under the same
//! policy agree, DESIGN.md invariant 3).
//!
//! A line is `{"identityMap": {...}, <projected fields>..., "timeSeriesEvents": [...]}`:
//! - `identityMap` is always there: the merged fragments' map plus every identity of the
//!   profile the fragments did not mention, so a reader can join the line to its identities;
//! - fields are projected with [`crate::projection::project`] (`None`: the whole entity);
//! - `timeSeriesEvents` only when an event list is asked for: the profile's events oldest
//!   first, each projected but always with its `_id` and `timestamp` (what makes it an event).
//!
//! `fromIngestTimestamp` compares with when the profile last changed, taken as the latest
//! receipt time of the writes behind its merged fragments (receipts are
//! `<receivedMs>:<node>:<counter>`), or the fragments' last-modified time when no receipt
//! carries a time. A profile without fragments (only possible with `empty_profiles`) changed
//! when its latest event was received.

use serde_json::{Map, Value};
use tessera_identity::IdentityKey;
use tessera_model::Tenant;
use tessera_store::{Direction, Store};

use crate::error::{Error, Result};
use crate::event::receipt_ms;
use crate::event_query::{self, EventQuery, TimeWindow};
use crate::lookup;
use crate::policy::MergePolicy;
use crate::projection::project;
use crate::view::Entry;
use crate::walk::Subject;

/// Events read per store round trip when collecting a profile's events.
const EVENT_PAGE: usize = 1_000;

/// Which events go into `timeSeriesEvents`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventList {
    /// Dotted paths kept of each event (`None`: whole events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<String>,
    /// Only events received at or after this time (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_ingest_ms: Option<i64>,
}

/// What an export writes (a persisted format inside jobs: fields only added, with defaults).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    /// The merge policy, as it was when the export was requested (an edit of the policy
    /// while the job runs does not change half of the output).
    pub policy: MergePolicy,
    /// Dotted paths kept of each profile (`None`: whole profiles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<String>,
    /// Only profiles changed at or after this time (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_ingest_ms: Option<i64>,
    /// Also profiles without record fragments (event-only graphs).
    #[serde(default)]
    pub empty_profiles: bool,
    /// Include events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<EventList>,
    /// Graphs larger than this are skipped, as lookups refuse them.
    pub max_identities: usize,
}

/// What happened to the profiles handed to [`write()`] (added up over a job).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    /// Lines written.
    pub exported: u64,
    /// Left out by `fromIngestTimestamp`.
    #[serde(default)]
    pub filtered: u64,
    /// Left out for having more identities than `max_identities`.
    #[serde(default)]
    pub too_large: u64,
}

/// Appends the lines of `subject` to `out` (one line per profile: the subject itself when
/// the policy stitches, each of its identities when it does not) and counts them in `tally`.
pub fn write(
    store: &dyn Store,
    tenant: &Tenant,
    subject: &Subject,
    spec: &Spec,
    out: &mut Vec<u8>,
    tally: &mut Tally,
) -> Result<()> {
    if spec.policy.stitches() {
        return write_profile(store, tenant, subject.members.clone(), spec, out, tally);
    }
    for member in &subject.members {
        write_profile(store, tenant, vec![member.clone()], spec, out, tally)?;
    }
    Ok(())
}

fn corrupt(e: serde_json::Error) -> Error {
    Error::Corrupt {
        what: "merged profile",
        reason: e.to_string(),
    }
}

fn write_profile(
    store: &dyn Store,
    tenant: &Tenant,
    members: Vec<IdentityKey>,
    spec: &Spec,
    out: &mut Vec<u8>,
    tally: &mut Tally,
) -> Result<()> {
    let entry = lookup::compute(
        store,
        tenant,
        members.clone(),
        &spec.policy,
        spec.max_identities,
    )?;
    let line = match entry {
        Entry::Found {
            entity,
            tags,
            last_modified,
            ..
        } => {
            let changed = tags
                .iter()
                .filter_map(|tag| receipt_ms(tag))
                .max()
                .unwrap_or(last_modified);
            if spec.from_ingest_ms.is_some_and(|from| changed < from) {
                tally.filtered += 1;
                return Ok(());
            }
            let full: Map<String, Value> = serde_json::from_str(entity.get()).map_err(corrupt)?;
            let identity_map = identity_map(full.get("identityMap"), &members);
            let mut line = match spec.fields.as_deref().filter(|f| !f.trim().is_empty()) {
                Some(fields) => project(&full, fields),
                None => full,
            };
            line.insert("identityMap".to_owned(), identity_map);
            if let Some(list) = &spec.events {
                let events = events_of(store, tenant, &members)?;
                line.insert("timeSeriesEvents".to_owned(), time_series(&events, list));
            }
            line
        }
        Entry::NotFound => {
            if !spec.empty_profiles {
                return Ok(());
            }
            let events = events_of(store, tenant, &members)?;
            // A graph whose data is all gone is no profile (see `walk`).
            let Some(changed) = events
                .iter()
                .map(|e| e.event.received_ms().unwrap_or(e.position.timestamp_ms))
                .max()
            else {
                return Ok(());
            };
            if spec.from_ingest_ms.is_some_and(|from| changed < from) {
                tally.filtered += 1;
                return Ok(());
            }
            let mut line = Map::new();
            line.insert("identityMap".to_owned(), identity_map(None, &members));
            if let Some(list) = &spec.events {
                line.insert("timeSeriesEvents".to_owned(), time_series(&events, list));
            }
            line
        }
        // Counted, and reported by the job: a lookup would refuse it too.
        Entry::TooManyIdentities { .. } => {
            tally.too_large += 1;
            return Ok(());
        }
    };
    serde_json::to_writer(&mut *out, &Value::Object(line)).map_err(corrupt)?;
    out.push(b'\n');
    tally.exported += 1;
    Ok(())
}

/// `merged` (the fragments' identityMap) plus an entry `{"id"}` for each member it lacks.
fn identity_map(merged: Option<&Value>, members: &[IdentityKey]) -> Value {
    let mut map = match merged {
        Some(Value::Object(map)) => map.clone(),
        _ => Map::new(),
    };
    for member in members {
        let known = map.iter().any(|(namespace, entries)| {
            namespace.eq_ignore_ascii_case(&member.namespace)
                && entries.as_array().into_iter().flatten().any(|entry| {
                    entry.get("id").and_then(Value::as_str) == Some(member.id.as_str())
                })
        });
        if known {
            continue;
        }
        let entry = serde_json::json!({ "id": member.id });
        match map
            .entry(member.namespace.clone())
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            Value::Array(entries) => entries.push(entry),
            other => *other = Value::Array(vec![entry]),
        }
    }
    Value::Object(map)
}

/// Every event of `members`, oldest first, in the event lookup's order.
fn events_of(
    store: &dyn Store,
    tenant: &Tenant,
    members: &[IdentityKey],
) -> Result<Vec<event_query::FoundEvent>> {
    let mut all = Vec::new();
    let mut start = None;
    loop {
        let page = event_query::page(
            store,
            &EventQuery {
                tenant,
                members,
                window: TimeWindow::default(),
                direction: Direction::Forward,
                start: start.as_ref(),
                filters: &[],
                limit: EVENT_PAGE,
                // Retention is applied by the sweeper: an export may still carry an event
                // that expired since the last sweep (at most one sweep interval old).
                cutoffs: &event_query::Cutoffs::default(),
            },
        )?;
        all.extend(page.events);
        match page.next {
            Some(next) => start = Some(next),
            None => return Ok(all),
        }
    }
}

fn time_series(events: &[event_query::FoundEvent], list: &EventList) -> Value {
    let kept = events
        .iter()
        .filter(|found| {
            list.from_ingest_ms.is_none_or(|from| {
                found
                    .event
                    .received_ms()
                    .unwrap_or(found.position.timestamp_ms)
                    >= from
            })
        })
        .map(|found| {
            let event = &found.event.event;
            let mut out = match list.fields.as_deref().filter(|f| !f.trim().is_empty()) {
                Some(fields) => project(event, fields),
                None => event.clone(),
            };
            for key in ["_id", "timestamp"] {
                if let Some(value) = event.get(key) {
                    out.entry(key.to_owned()).or_insert_with(|| value.clone());
                }
            }
            Value::Object(out)
        })
        .collect();
    Value::Array(kept)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn identity_map_adds_members_the_fragments_did_not_name() {
        let merged = json!({"Email": [{"id": "a@x.com", "primary": true}]});
        let members = [
            IdentityKey::new("email", "a@x.com"),
            IdentityKey::new("CRMID", "c1"),
        ];
        let map = identity_map(Some(&merged), &members);
        assert_eq!(
            map,
            json!({"Email": [{"id": "a@x.com", "primary": true}], "CRMID": [{"id": "c1"}]})
        );
    }
}
