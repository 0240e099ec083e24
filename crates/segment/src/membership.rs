//! Segment memberships per profile (identity graph) and segment.
//!
//! Keys in `Table::Memberships` (tenant scope):
//! - `"m", graph, segment` → [`Membership`]: a profile's memberships in one prefix scan (the
//!   lookup shows them as `segmentMembership.ups`);
//! - `"s", segment, graph` → empty: a segment's members in one prefix scan (counts, exports,
//!   activation).
//!
//! Both are written together, always in the same batch.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tessera_model::Tenant;
use tessera_store::{Direction, Key, KeyReader, ScanRange, Store, Table, WriteBatch};

use crate::error::{Error, Result};

/// Where a profile stands with a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Status {
    /// Started to qualify at its last evaluation.
    Realized,
    /// Qualified before and still does.
    Existing,
    /// Qualified before, no longer does.
    Exited,
}

impl Status {
    /// AEP's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Realized => "realized",
            Status::Existing => "existing",
            Status::Exited => "exited",
        }
    }

    /// Whether the profile is in the segment.
    pub fn is_member(self) -> bool {
        matches!(self, Status::Realized | Status::Existing)
    }
}

/// One membership as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    /// Status.
    pub status: Status,
    /// When the profile last started to qualify (ms), kept through `existing` and `exited`.
    pub last_qualification_time: i64,
    /// When the status last changed (ms).
    pub status_time: i64,
}

/// The membership after an evaluation that found the profile qualifying (or not) at `now`;
/// `None` when there is nothing to keep (never qualified). Pure, so batch and streaming
/// evaluation agree by construction.
pub fn next(previous: Option<Membership>, qualifies: bool, now: i64) -> Option<Membership> {
    match (previous, qualifies) {
        (None, false) => None,
        (None, true) => Some(Membership {
            status: Status::Realized,
            last_qualification_time: now,
            status_time: now,
        }),
        (Some(m), true) if m.status.is_member() => Some(Membership {
            status: Status::Existing,
            status_time: if m.status == Status::Existing {
                m.status_time
            } else {
                now
            },
            ..m
        }),
        (Some(_), true) => Some(Membership {
            status: Status::Realized,
            last_qualification_time: now,
            status_time: now,
        }),
        (Some(m), false) if m.status.is_member() => Some(Membership {
            status: Status::Exited,
            status_time: now,
            ..m
        }),
        (Some(m), false) => Some(m),
    }
}

fn scope(tenant: &Tenant) -> tessera_store::KeyBuilder {
    Key::tenant(tenant)
}

fn graph_prefix(tenant: &Tenant, graph: u64) -> Key {
    scope(tenant).str("m").u64(graph).finish()
}

fn key(tenant: &Tenant, graph: u64, segment: &str) -> Key {
    Key::extend(&graph_prefix(tenant, graph))
        .str(segment)
        .finish()
}

fn segment_prefix(tenant: &Tenant, segment: &str) -> Key {
    scope(tenant).str("s").str(segment).finish()
}

fn member_key(tenant: &Tenant, segment: &str, graph: u64) -> Key {
    Key::extend(&segment_prefix(tenant, segment))
        .u64(graph)
        .finish()
}

fn corrupt(reason: impl Into<String>) -> Error {
    Error::Corrupt {
        what: "segment membership",
        reason: reason.into(),
    }
}

/// Every membership of a profile, by segment id.
pub fn of_graph(
    store: &dyn Store,
    tenant: &Tenant,
    graph: u64,
) -> Result<BTreeMap<String, Membership>> {
    let prefix = graph_prefix(tenant, graph);
    let prefix_len = prefix.as_bytes().len();
    let rows = store.scan(
        Table::Memberships,
        &ScanRange::prefix(prefix),
        Direction::Forward,
        100_000,
    )?;
    rows.iter()
        .map(|row| {
            let segment = row
                .key
                .get(prefix_len..)
                .map(KeyReader::new)
                .ok_or_else(|| corrupt("key shorter than its prefix"))?
                .string()?;
            let membership: Membership =
                serde_json::from_slice(&row.value).map_err(|e| corrupt(e.to_string()))?;
            Ok((segment, membership))
        })
        .collect()
}

/// Adds to `batch` the new state of `graph`'s membership in `segment` (`None` removes it).
pub fn put(
    batch: &mut WriteBatch,
    tenant: &Tenant,
    graph: u64,
    segment: &str,
    membership: Option<&Membership>,
) -> Result<()> {
    match membership {
        Some(m) => {
            let bytes = serde_json::to_vec(m).map_err(|e| corrupt(e.to_string()))?;
            batch
                .put(Table::Memberships, &key(tenant, graph, segment), bytes)
                .put(
                    Table::Memberships,
                    &member_key(tenant, segment, graph),
                    Vec::new(),
                );
        }
        None => {
            batch
                .delete(Table::Memberships, &key(tenant, graph, segment))
                .delete(Table::Memberships, &member_key(tenant, segment, graph));
        }
    }
    Ok(())
}

/// Adds to `batch` the move of `graph`'s membership of `segment` from `before` (as read) to
/// `after`, writing the segment's member index only when the membership appears or goes: a
/// status change alone (realized to existing, every batch run) is one write, not two.
pub fn put_change(
    batch: &mut WriteBatch,
    tenant: &Tenant,
    graph: u64,
    segment: &str,
    before: Option<&Membership>,
    after: Option<&Membership>,
) -> Result<()> {
    match (before, after) {
        (Some(_), Some(m)) => {
            let bytes = serde_json::to_vec(m).map_err(|e| corrupt(e.to_string()))?;
            batch.put(Table::Memberships, &key(tenant, graph, segment), bytes);
            Ok(())
        }
        _ => put(batch, tenant, graph, segment, after),
    }
}

/// Adds to `batch` the removal of every membership of `graph` (it was erased, or absorbed
/// into another graph whose evaluation decides anew).
pub fn remove_graph(
    store: &dyn Store,
    batch: &mut WriteBatch,
    tenant: &Tenant,
    graph: u64,
) -> Result<()> {
    for segment in of_graph(store, tenant, graph)?.keys() {
        put(batch, tenant, graph, segment, None)?;
    }
    Ok(())
}

/// Graphs holding a membership row (any status) in `segment`, in id order, after `after`.
pub fn graphs_of_segment(
    store: &dyn Store,
    tenant: &Tenant,
    segment: &str,
    after: Option<u64>,
    limit: usize,
) -> Result<Vec<u64>> {
    let prefix = segment_prefix(tenant, segment);
    let prefix_len = prefix.as_bytes().len();
    let mut range = ScanRange::prefix(prefix);
    if let Some(after) = after {
        range = range.resume_after(member_key(tenant, segment, after).into_bytes());
    }
    store
        .scan(Table::Memberships, &range, Direction::Forward, limit)?
        .iter()
        .map(|row| {
            row.key
                .get(prefix_len..)
                .map(KeyReader::new)
                .ok_or_else(|| corrupt("key shorter than its prefix"))?
                .u64()
                .map_err(Error::from)
        })
        .collect()
}

/// The `segmentMembership` object of a profile: `{"ups": {segment: {status,
/// lastQualificationTime}}}` (AEP's wire form), or `None` when it has no membership.
pub fn to_xdm(memberships: &BTreeMap<String, Membership>) -> Option<serde_json::Value> {
    if memberships.is_empty() {
        return None;
    }
    let ups: serde_json::Map<String, serde_json::Value> = memberships
        .iter()
        .map(|(segment, m)| {
            (
                segment.clone(),
                serde_json::json!({
                    "status": m.status.as_str(),
                    "lastQualificationTime": rfc3339(m.last_qualification_time),
                }),
            )
        })
        .collect();
    Some(serde_json::json!({ "ups": ups }))
}

fn rfc3339(ms: i64) -> String {
    // Seconds, as AEP writes them (`2022-01-11T21:24:39Z`).
    let seconds = ms.div_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let rem = seconds.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use proptest::prelude::*;
    use tessera_store::{EmbeddedStore, StoreOptions};

    use super::*;

    #[test]
    fn transitions_follow_aep_statuses() {
        let realized = next(None, true, 10).unwrap();
        assert_eq!(realized.status, Status::Realized);
        assert_eq!(next(None, false, 10), None);
        let existing = next(Some(realized), true, 20).unwrap();
        assert_eq!(existing.status, Status::Existing);
        assert_eq!(existing.last_qualification_time, 10);
        let exited = next(Some(existing), false, 30).unwrap();
        assert_eq!(exited.status, Status::Exited);
        assert_eq!(exited.last_qualification_time, 10);
        assert_eq!(
            next(Some(exited), false, 40),
            Some(exited),
            "exited stays as it was"
        );
        let back = next(Some(exited), true, 50).unwrap();
        assert_eq!(
            (back.status, back.last_qualification_time),
            (Status::Realized, 50)
        );
    }

    proptest! {
        /// Membership after any sequence of evaluations says exactly whether the last one
        /// qualified, and a profile that never qualified has no row.
        #[test]
        fn status_reflects_the_last_evaluation(outcomes in proptest::collection::vec(any::<bool>(), 0..20)) {
            let mut state = None;
            for (t, qualifies) in outcomes.iter().enumerate() {
                state = next(state, *qualifies, t as i64);
            }
            match (outcomes.iter().any(|q| *q), outcomes.last()) {
                (false, _) => prop_assert_eq!(state, None),
                (true, Some(last)) => prop_assert_eq!(state.map(|m| m.status.is_member()), Some(*last)),
                (true, None) => unreachable!(),
            }
        }
    }

    /// An empty store in a temporary directory (kept alive by the first value) and a tenant.
    fn fresh() -> (tempfile::TempDir, EmbeddedStore, Tenant) {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        (dir, store, Tenant::parse("A@AdobeOrg", "prod").unwrap())
    }

    #[test]
    fn both_indexes_move_together() {
        let (_dir, store, tenant) = fresh();
        let m = next(None, true, 1_641_936_279_000).unwrap();
        let mut batch = WriteBatch::new();
        put(&mut batch, &tenant, 7, "seg-a", Some(&m)).unwrap();
        put(&mut batch, &tenant, 9, "seg-a", Some(&m)).unwrap();
        put(&mut batch, &tenant, 7, "seg-b", Some(&m)).unwrap();
        store.commit(batch).unwrap();
        assert_eq!(of_graph(&store, &tenant, 7).unwrap().len(), 2);
        assert_eq!(
            graphs_of_segment(&store, &tenant, "seg-a", None, 10).unwrap(),
            [7, 9]
        );
        assert_eq!(
            graphs_of_segment(&store, &tenant, "seg-a", Some(7), 10).unwrap(),
            [9]
        );
        let xdm = to_xdm(&of_graph(&store, &tenant, 7).unwrap()).unwrap();
        assert_eq!(xdm["ups"]["seg-a"]["status"], "realized");
        assert_eq!(
            xdm["ups"]["seg-a"]["lastQualificationTime"],
            "2022-01-11T21:24:39Z"
        );
        let mut batch = WriteBatch::new();
        put(&mut batch, &tenant, 7, "seg-a", None).unwrap();
        store.commit(batch).unwrap();
        assert_eq!(
            graphs_of_segment(&store, &tenant, "seg-a", None, 10).unwrap(),
            [9]
        );
        assert_eq!(
            of_graph(&store, &tenant, 7)
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["seg-b"]
        );
    }

    /// A status change writes only the membership row; the member index still lists the
    /// graph afterwards, and appearing or going moves both.
    #[test]
    fn status_changes_keep_the_member_index() {
        let (_dir, store, tenant) = fresh();
        let realized = next(None, true, 1).unwrap();
        let mut batch = WriteBatch::new();
        put_change(&mut batch, &tenant, 7, "s", None, Some(&realized)).unwrap();
        store.commit(batch).unwrap();
        assert_eq!(
            graphs_of_segment(&store, &tenant, "s", None, 10).unwrap(),
            [7]
        );

        let existing = next(Some(realized), true, 2).unwrap();
        let mut batch = WriteBatch::new();
        put_change(
            &mut batch,
            &tenant,
            7,
            "s",
            Some(&realized),
            Some(&existing),
        )
        .unwrap();
        assert_eq!(batch.len(), 1, "a status change is one write");
        store.commit(batch).unwrap();
        assert_eq!(
            graphs_of_segment(&store, &tenant, "s", None, 10).unwrap(),
            [7]
        );
        assert_eq!(of_graph(&store, &tenant, 7).unwrap()["s"], existing);

        let mut batch = WriteBatch::new();
        put_change(&mut batch, &tenant, 7, "s", Some(&existing), None).unwrap();
        store.commit(batch).unwrap();
        assert!(graphs_of_segment(&store, &tenant, "s", None, 10)
            .unwrap()
            .is_empty());
        assert!(of_graph(&store, &tenant, 7).unwrap().is_empty());
    }
}
