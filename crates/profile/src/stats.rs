//! Profile-store statistics: how many profiles there are, which datasets and namespaces
//! they draw on and how those overlap — what AEP's preview sample status reports show.
//!
//! A profile is an identity graph, or an identity with data but no graph (datasets that do
//! not feed the identity graph), that holds at least one fragment or event: a graph whose
//! data was all deleted merges to nothing, so it is not counted (this also keeps the overlap
//! reports summing to the profile count, as AEP documents).
//!
//! How it scales: [`compute`] is exact and scans the tenant's identities, fragments and event
//! index once (O(identities + fragments + events) reads, O(identities + profiles) memory,
//! event bodies never read). That is fine up to a few million identities on one node, and
//! it runs off the request threads. AEP itself reports on a *sample* refreshed by a job when
//! the profile count moved by more than 5%; a larger deployment would do the same: run this
//! computation periodically as a background job (per tenant, sharded by key range on a
//! distributed store) and serve the stored report, which is why reports carry a timestamp.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use tessera_identity::IdentityKey;
use tessera_model::Tenant;
use tessera_store::{Direction, Key, ScanRange, Store, Table};

use crate::error::Result;
use crate::{event, fragment};

/// Entries read per scan call.
const PAGE: usize = 4_096;
const DAY_MS: i64 = 86_400_000;
/// The look-back windows of the unknown-profiles report, in days.
pub const UNKNOWN_WINDOWS_DAYS: [u32; 5] = [7, 30, 60, 90, 120];

/// Counts for one dataset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatasetCount {
    /// Profiles holding at least one fragment or event of the dataset.
    pub profiles: u64,
    /// Fragments of the dataset.
    pub fragments: u64,
    /// Events of the dataset.
    pub events: u64,
}

/// Counts for one namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceCount {
    /// Identities of the namespace (in graphs, or holding data).
    pub identities: u64,
    /// Profiles with at least one identity of the namespace.
    pub profiles: u64,
    /// Fragments filed under an identity of the namespace.
    pub fragments: u64,
}

/// Unknown profiles of one look-back window: single-identity ("unstitched") profiles with no
/// event newer than the window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnknownWindow {
    /// Window length in days.
    pub days: u32,
    /// How many such profiles.
    pub profiles: u64,
    /// Events they hold.
    pub events: u64,
    /// The same split by the namespace of their identity: `(profiles, events)`.
    pub by_namespace: BTreeMap<String, (u64, u64)>,
}

/// The whole report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Profiles (see the module doc).
    pub profiles: u64,
    /// Fragments.
    pub fragments: u64,
    /// Events.
    pub events: u64,
    /// Per dataset id.
    pub datasets: BTreeMap<String, DatasetCount>,
    /// Per namespace code.
    pub namespaces: BTreeMap<String, NamespaceCount>,
    /// Profiles per combination of datasets (sorted ids joined with `,`).
    pub dataset_overlap: BTreeMap<String, u64>,
    /// Profiles per combination of namespaces (sorted codes joined with `,`).
    pub namespace_overlap: BTreeMap<String, u64>,
    /// Unknown profiles per window of [`UNKNOWN_WINDOWS_DAYS`].
    pub unknown: Vec<UnknownWindow>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum ProfileId {
    Graph(u64),
    Loose(IdentityKey),
}

#[derive(Debug, Default)]
struct Acc {
    namespaces: BTreeSet<String>,
    identities: u64,
    datasets: BTreeSet<String>,
    fragments: u64,
    events: u64,
    last_event_ms: Option<i64>,
}

/// Computes the report of `tenant` by scanning the store; `now_ms` anchors the unknown
/// profiles' windows.
pub fn compute(store: &dyn Store, tenant: &Tenant, now_ms: i64) -> Result<Report> {
    let mut report = Report::default();
    let mut graph_of: HashMap<IdentityKey, u64> = HashMap::new();
    let mut profiles: HashMap<ProfileId, Acc> = HashMap::new();

    let mut cursor = None;
    loop {
        let page = tessera_identity::scan_identities(store, tenant, cursor, PAGE)?;
        for (identity, graph) in page.identities {
            report
                .namespaces
                .entry(identity.namespace.clone())
                .or_default()
                .identities += 1;
            let acc = profiles.entry(ProfileId::Graph(graph)).or_default();
            acc.namespaces.insert(identity.namespace.clone());
            acc.identities += 1;
            graph_of.insert(identity, graph);
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }

    // Identities outside any graph become profiles of their own the first time data of
    // theirs is seen.
    let mut profile_of = |identity: IdentityKey, report: &mut Report| -> ProfileId {
        if let Some(graph) = graph_of.get(&identity) {
            return ProfileId::Graph(*graph);
        }
        let id = ProfileId::Loose(identity.clone());
        profiles.entry(id.clone()).or_insert_with(|| {
            report
                .namespaces
                .entry(identity.namespace.clone())
                .or_default()
                .identities += 1;
            Acc {
                namespaces: BTreeSet::from([identity.namespace]),
                identities: 1,
                ..Acc::default()
            }
        });
        id
    };
    let mut touches: Vec<(ProfileId, String, Option<i64>)> = Vec::new();

    for_each_key(
        store,
        Table::Fragments,
        fragment::tenant_prefix(tenant),
        |key, _| {
            let (identity, dataset) = fragment::decode_key(key)?;
            report.fragments += 1;
            let counts = report.datasets.entry(dataset.clone()).or_default();
            counts.fragments += 1;
            report
                .namespaces
                .entry(identity.namespace.clone())
                .or_default()
                .fragments += 1;
            let id = profile_of(identity, &mut report);
            touches.push((id, dataset, None));
            Ok(())
        },
    )?;

    let events_prefix = Key::tenant(tenant).str("x").finish();
    for_each_key(store, Table::Events, events_prefix, |_, value| {
        let parts = event::decode_key(value)?;
        report.events += 1;
        report
            .datasets
            .entry(parts.dataset.clone())
            .or_default()
            .events += 1;
        let id = profile_of(parts.identity, &mut report);
        touches.push((id, parts.dataset, Some(parts.timestamp_ms)));
        Ok(())
    })?;

    for (id, dataset, event_ms) in touches {
        let Some(acc) = profiles.get_mut(&id) else {
            continue;
        };
        acc.datasets.insert(dataset);
        match event_ms {
            Some(ms) => {
                acc.events += 1;
                acc.last_event_ms = Some(acc.last_event_ms.map_or(ms, |last| last.max(ms)));
            }
            None => acc.fragments += 1,
        }
    }

    report.unknown = UNKNOWN_WINDOWS_DAYS
        .iter()
        .map(|&days| UnknownWindow {
            days,
            ..UnknownWindow::default()
        })
        .collect();
    for acc in profiles.values() {
        if acc.datasets.is_empty() {
            continue;
        }
        report.profiles += 1;
        for dataset in &acc.datasets {
            report.datasets.entry(dataset.clone()).or_default().profiles += 1;
        }
        for namespace in &acc.namespaces {
            report
                .namespaces
                .entry(namespace.clone())
                .or_default()
                .profiles += 1;
        }
        *report
            .dataset_overlap
            .entry(join(&acc.datasets))
            .or_default() += 1;
        *report
            .namespace_overlap
            .entry(join(&acc.namespaces))
            .or_default() += 1;
        if acc.identities != 1 {
            continue;
        }
        let namespace = acc.namespaces.iter().next().cloned().unwrap_or_default();
        for window in &mut report.unknown {
            let since = now_ms.saturating_sub(i64::from(window.days) * DAY_MS);
            if acc.last_event_ms.is_some_and(|last| last >= since) {
                continue;
            }
            window.profiles += 1;
            window.events += acc.events;
            let split = window.by_namespace.entry(namespace.clone()).or_default();
            split.0 += 1;
            split.1 += acc.events;
        }
    }
    Ok(report)
}

fn join(items: &BTreeSet<String>) -> String {
    items
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

/// Calls `visit` with every key and value under `prefix`, a page at a time.
fn for_each_key(
    store: &dyn Store,
    table: Table,
    prefix: Key,
    mut visit: impl FnMut(&[u8], &[u8]) -> Result<()>,
) -> Result<()> {
    let mut range = ScanRange::prefix(prefix);
    loop {
        let rows = store.scan(table, &range, Direction::Forward, PAGE)?;
        for row in &rows {
            visit(&row.key, &row.value)?;
        }
        match rows.last() {
            Some(last) if rows.len() >= PAGE => range.resume_after = Some(last.key.clone()),
            _ => return Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;
    use tessera_store::{EmbeddedStore, StoreOptions, WriteBatch};

    use super::*;
    use crate::event::NewEvent;
    use crate::fragment::WriteMode;

    fn tenant() -> Tenant {
        Tenant::parse("ACME@AdobeOrg", "prod").unwrap()
    }

    #[test]
    fn loose_identities_count_as_profiles_with_overlaps() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        let record = json!({"a": 1}).as_object().unwrap().clone();
        let mut wb = WriteBatch::new();
        for (dataset, who) in [("crm", "a"), ("loyalty", "a"), ("crm", "b")] {
            fragment::write(
                &store,
                &mut wb,
                &tenant(),
                dataset,
                &IdentityKey::new("Email", who),
                record.clone(),
                WriteMode::Replace,
                1,
                "x",
            )
            .unwrap();
        }
        let ecid = IdentityKey::new("ECID", "c");
        let new = NewEvent {
            dataset: "web",
            identity: &ecid,
            timestamp_ms: 0,
            event_id: "e1",
            xaction_id: "x",
        };
        event::append(&mut wb, &tenant(), &new, &record).unwrap();
        store.commit(wb).unwrap();

        let report = compute(&store, &tenant(), 200 * DAY_MS).unwrap();
        assert_eq!(report.profiles, 3);
        assert_eq!(report.fragments, 3);
        assert_eq!(report.events, 1);
        assert_eq!(report.datasets["crm"].profiles, 2);
        assert_eq!(report.namespaces["Email"].identities, 2);
        assert_eq!(report.namespaces["Email"].fragments, 3);
        assert_eq!(report.dataset_overlap["crm,loyalty"], 1);
        assert_eq!(report.dataset_overlap["crm"], 1);
        assert_eq!(report.dataset_overlap["web"], 1);
        assert_eq!(report.namespace_overlap["Email"], 2);
        let week = report.unknown.first().unwrap();
        assert_eq!((week.profiles, week.events), (3, 1));
        assert_eq!(week.by_namespace["ECID"], (1, 1));
    }
}
