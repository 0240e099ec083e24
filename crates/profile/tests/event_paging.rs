#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! Paging through a stitched profile's events: with any members, window, filter, retention
//! cutoffs per dataset, page size and order, following the cursors yields exactly the
//! matching, unexpired events of every member, in `(timestamp, dataset, _id, identity)`
//! order, each once, and every page but the last full.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};
use tessera_identity::IdentityKey;
use tessera_model::Tenant;
use tessera_profile::event::{self, NewEvent};
use tessera_profile::event_filter::PropertyFilter;
use tessera_profile::event_query::{self, Cutoffs, EventQuery, Position, TimeWindow};
use tessera_store::{Direction, EmbeddedStore, Store, StoreOptions, WriteBatch};

/// Identities chosen so that prefixes and orderings collide: "1" is a prefix of "10".
fn pool() -> Vec<IdentityKey> {
    vec![
        IdentityKey::new("ECID", "1"),
        IdentityKey::new("ECID", "10"),
        IdentityKey::new("Email", "a@b.c"),
        IdentityKey::new("CRMID", "z"),
        // Never a member: its events must not appear.
        IdentityKey::new("ECID", "2"),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    /// (identity index, timestamp, dataset index, _id index, n)
    events: Vec<(usize, i64, usize, usize, i64)>,
    members: Vec<usize>,
    window: (Option<i64>, Option<i64>),
    filter: bool,
    page: usize,
    reverse: bool,
    /// Retention cutoff of `ds-a` and `ds-b` (oldest retained timestamp), if any.
    cutoffs: [Option<i64>; 2],
}

fn case() -> impl Strategy<Value = Case> {
    (
        proptest::collection::vec((0usize..5, -3i64..4, 0usize..2, 0usize..4, 0i64..3), 0..40),
        proptest::collection::vec(0usize..4, 1..5),
        (
            proptest::option::of(-3i64..4),
            proptest::option::of(-3i64..5),
        ),
        any::<bool>(),
        1usize..7,
        any::<bool>(),
        (
            proptest::option::of(-3i64..5),
            proptest::option::of(-3i64..5),
        ),
    )
        .prop_map(
            |(events, members, window, filter, page, reverse, (cut_a, cut_b))| Case {
                events,
                members,
                window,
                filter,
                page,
                reverse,
                cutoffs: [cut_a, cut_b],
            },
        )
}

fn run(store: &dyn Store, tenant: &Tenant, case: &Case) -> Result<(), TestCaseError> {
    let pool = pool();
    let datasets = ["ds-a", "ds-b"];
    let mut batch = WriteBatch::new();
    let mut stored: Vec<(Position, i64)> = Vec::new();
    for (who, ts, ds, id, n) in &case.events {
        let position = Position {
            timestamp_ms: *ts,
            dataset: datasets[*ds].to_owned(),
            event_id: format!("e{id}"),
            identity: pool[*who].clone(),
        };
        if stored.iter().any(|(p, _)| *p == position) {
            continue; // the same key twice is one event
        }
        let new = NewEvent {
            dataset: &position.dataset,
            identity: &position.identity,
            timestamp_ms: *ts,
            event_id: &position.event_id,
            xaction_id: "1:1:1",
        };
        let Value::Object(body) = json!({"_id": position.event_id, "n": n}) else {
            unreachable!()
        };
        event::append(&mut batch, tenant, &new, &body).unwrap();
        stored.push((position, *n));
    }
    store.commit(batch).unwrap();

    let members: Vec<IdentityKey> = case.members.iter().map(|i| pool[*i].clone()).collect();
    let (start_ms, end_ms) = case.window;
    let cutoffs: Cutoffs = datasets
        .iter()
        .zip(case.cutoffs)
        .filter_map(|(ds, cutoff)| Some(((*ds).to_owned(), cutoff?)))
        .collect();
    let mut expected: Vec<Position> = stored
        .iter()
        .filter(|(p, n)| {
            members.contains(&p.identity)
                && start_ms.is_none_or(|s| p.timestamp_ms >= s)
                && end_ms.is_none_or(|e| p.timestamp_ms < e)
                && (!case.filter || *n < 2)
                && cutoffs
                    .get(&p.dataset)
                    .is_none_or(|cutoff| p.timestamp_ms >= *cutoff)
        })
        .map(|(p, _)| p.clone())
        .collect();
    expected.sort();
    let direction = if case.reverse {
        expected.reverse();
        Direction::Reverse
    } else {
        Direction::Forward
    };

    let filters = if case.filter {
        vec![PropertyFilter::parse("n<2").unwrap()]
    } else {
        Vec::new()
    };
    let mut seen = Vec::new();
    let mut cursor: Option<Position> = None;
    for _ in 0..=expected.len() + 1 {
        let query = EventQuery {
            tenant,
            members: &members,
            window: TimeWindow { start_ms, end_ms },
            direction,
            start: cursor.as_ref(),
            filters: &filters,
            limit: case.page,
            cutoffs: &cutoffs,
        };
        let page = event_query::page(store, &query).unwrap();
        let count = page.events.len();
        seen.extend(page.events.into_iter().map(|e| e.position));
        match page.next {
            Some(next) => {
                prop_assert_eq!(count, case.page, "only the last page may be short");
                // Through the opaque form, as a client would send it back.
                cursor = Some(Position::from_cursor(&next.to_cursor()).unwrap());
            }
            None => {
                prop_assert_eq!(seen, expected);
                return Ok(());
            }
        }
    }
    Err(TestCaseError::fail("paging did not end"))
}

#[test]
fn paging_yields_every_event_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
    let mut runner = TestRunner::new(Config::with_cases(256));
    let n = std::sync::atomic::AtomicU64::new(0);
    runner
        .run(&case(), |case| {
            // A sandbox per case: one store, disjoint data.
            let case_no = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let tenant = Tenant::parse("ACME@AdobeOrg", &format!("case-{case_no}")).unwrap();
            run(&store, &tenant, &case)
        })
        .unwrap();
}

/// Ties on `(timestamp, dataset, _id)` across identities, with a page boundary between them.
#[test]
fn a_page_boundary_inside_a_tie_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
    let tenant = Tenant::parse("ACME@AdobeOrg", "prod").unwrap();
    let case = Case {
        events: vec![
            (0, 1, 0, 0, 0),
            (1, 1, 0, 0, 0),
            (2, 1, 0, 0, 0),
            (3, 1, 0, 0, 0),
        ],
        members: vec![0, 1, 2, 3],
        window: (None, None),
        filter: false,
        page: 1,
        reverse: false,
        cutoffs: [None, None],
    };
    run(&store, &tenant, &case).unwrap();
    let reverse = Case {
        reverse: true,
        page: 3,
        ..case
    };
    run(
        &store,
        &Tenant::parse("ACME@AdobeOrg", "other").unwrap(),
        &reverse,
    )
    .unwrap();
}

/// A cutoff hiding the events on both sides of a page boundary: the cursor names the next
/// unexpired event, and nothing expired appears on either page.
#[test]
fn a_cutoff_between_pages_skips_only_expired_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
    let tenant = Tenant::parse("ACME@AdobeOrg", "prod").unwrap();
    let case = Case {
        events: vec![
            (0, -3, 0, 0, 0),
            (0, -2, 1, 1, 0),
            (1, -1, 0, 2, 0),
            (1, 0, 1, 3, 0),
            (2, 1, 0, 0, 0),
            (2, 2, 1, 1, 0),
            (0, 3, 0, 2, 0),
        ],
        members: vec![0, 1, 2],
        window: (None, None),
        filter: false,
        page: 2,
        reverse: false,
        cutoffs: [Some(2), Some(-2)],
    };
    run(&store, &tenant, &case).unwrap();
    let reverse = Case {
        reverse: true,
        ..case
    };
    run(
        &store,
        &Tenant::parse("ACME@AdobeOrg", "other").unwrap(),
        &reverse,
    )
    .unwrap();
}
