#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! Scans narrowed by lower and upper key bounds (an event time window) return exactly the
//! keys a plain filter over the same data would, in both directions, with paging, and never
//! leave the prefix.
mod common;

use std::ops::Bound;

use proptest::prelude::*;
use tessera_store::{Direction, Key, KeyReader, ScanRange, Store, Table, WriteBatch};

fn bound(kind: u8, ts: i64, key: impl Fn(i64) -> Vec<u8>) -> Bound<Vec<u8>> {
    match kind % 3 {
        0 => Bound::Unbounded,
        1 => Bound::Included(key(ts)),
        _ => Bound::Excluded(key(ts)),
    }
}

fn inside(key: &[u8], lower: &Bound<Vec<u8>>, upper: &Bound<Vec<u8>>) -> bool {
    let above = match lower {
        Bound::Unbounded => true,
        Bound::Included(low) => key >= low.as_slice(),
        Bound::Excluded(low) => key > low.as_slice(),
    };
    let below = match upper {
        Bound::Unbounded => true,
        Bound::Included(high) => key <= high.as_slice(),
        Bound::Excluded(high) => key < high.as_slice(),
    };
    above && below
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn bounded_paged_scan_matches_a_filter(
        times in proptest::collection::btree_set(-50i64..50, 0..30),
        low in -60i64..60,
        high in -60i64..60,
        kinds in (0u8..3, 0u8..3),
        page in 1usize..7,
        reverse in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = common::open(dir.path());
        let scope = common::tenant("ACME@AdobeOrg", "prod");
        let prefix = Key::builder(&scope).str("ECID").str("1").finish();
        let event = |ts: i64| Key::extend(&prefix).i64(ts).str("ds").finish().into_bytes();
        // Bounds are bare timestamps under the prefix, as an event time window is.
        let window = |ts: i64| Key::extend(&prefix).i64(ts).finish().into_bytes();
        let mut batch = WriteBatch::new();
        for ts in &times {
            batch.put(Table::Events, &Key::extend(&prefix).i64(*ts).str("ds").finish(), vec![]);
            // Neighbours on both sides of the prefix must never leak in.
            batch.put(Table::Events, &Key::builder(&scope).str("ECID").str("0").i64(*ts).finish(), vec![]);
            batch.put(Table::Events, &Key::builder(&scope).str("ECID").str("10").i64(*ts).finish(), vec![]);
        }
        store.commit(batch).unwrap();

        let lower = bound(kinds.0, low, window);
        let upper = bound(kinds.1, high, window);
        let mut expected: Vec<i64> = times
            .iter()
            .copied()
            .filter(|ts| inside(&event(*ts), &lower, &upper))
            .collect();
        let direction = if reverse {
            expected.reverse();
            Direction::Reverse
        } else {
            Direction::Forward
        };

        let base = ScanRange::prefix(prefix.clone())
            .narrow_lower(lower.clone())
            .narrow_upper(upper.clone());
        let mut range = base.clone();
        let mut seen = Vec::new();
        loop {
            let rows = store.scan(Table::Events, &range, direction, page).unwrap();
            for row in &rows {
                let (_, mut reader) = KeyReader::with_scope(&row.key).unwrap();
                prop_assert_eq!(reader.string().unwrap(), "ECID");
                prop_assert_eq!(reader.string().unwrap(), "1");
                seen.push(reader.i64().unwrap());
            }
            match rows.last() {
                Some(last) if rows.len() == page => {
                    range = base.clone().resume_after(last.key.clone());
                }
                _ => break,
            }
        }
        prop_assert_eq!(seen, expected);
    }
}

#[test]
fn narrowing_keeps_the_tighter_bound() {
    let scope = common::tenant("ACME@AdobeOrg", "prod");
    let prefix = Key::builder(&scope).str("p").finish();
    let key = |n: u64| Key::extend(&prefix).u64(n).finish().into_bytes();
    let range = ScanRange::prefix(prefix.clone())
        .narrow_lower(Bound::Included(key(5)))
        .narrow_lower(Bound::Included(key(3)))
        .narrow_lower(Bound::Excluded(key(5)))
        .narrow_upper(Bound::Excluded(key(9)))
        .narrow_upper(Bound::Included(key(9)))
        .narrow_upper(Bound::Unbounded);
    assert_eq!(range.lower, Bound::Excluded(key(5)));
    assert_eq!(range.upper, Bound::Excluded(key(9)));
    // An inverted window is empty rather than an error.
    let inverted = ScanRange::prefix(prefix.clone())
        .narrow_lower(Bound::Included(key(9)))
        .narrow_upper(Bound::Excluded(key(2)));
    assert_eq!(inverted.interval(Direction::Forward), None);
}
