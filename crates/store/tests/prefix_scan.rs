#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests index JSON replies and fail loudly
mod common;

use tessera_store::{Direction, Key, KeyReader, ScanRange, Store, Table, WriteBatch};

/// Events keyed `(ns, id, ts)` come back in time order, both directions, only for the
/// requested identity, and paging resumes exactly where the last page ended.
#[test]
fn events_scan_in_time_order_with_paging() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = common::open(dir.path());
    let scope = common::tenant("ACME@AdobeOrg", "prod");
    let event_key = |id: &str, ts: i64| Key::builder(&scope).str("ECID").str(id).i64(ts).finish();

    // Written out of order, with a neighbour identity whose id extends ours ("1" vs "10").
    let times = [500_i64, -20, 3_000, 0, 1_700_000_000_000, 42];
    let mut batch = WriteBatch::new();
    for ts in times {
        batch.put(
            Table::Events,
            &event_key("1", ts),
            ts.to_string().into_bytes(),
        );
        batch.put(Table::Events, &event_key("10", ts), b"other".to_vec());
    }
    batch.put(
        Table::Events,
        &Key::builder(&scope).str("Email").str("1").i64(7).finish(),
        b"x".to_vec(),
    );
    store.commit(batch)?;

    let prefix = Key::builder(&scope).str("ECID").str("1").finish();
    let decode_ts = |key: &[u8]| -> i64 {
        let (_, mut reader) = KeyReader::with_scope(key).expect("scoped key");
        reader.string().expect("ns");
        reader.string().expect("id");
        reader.i64().expect("ts")
    };

    let forward = store.scan(
        Table::Events,
        &ScanRange::prefix(prefix.clone()),
        Direction::Forward,
        100,
    )?;
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    assert_eq!(
        forward
            .iter()
            .map(|e| decode_ts(&e.key))
            .collect::<Vec<_>>(),
        sorted
    );

    let reverse = store.scan(
        Table::Events,
        &ScanRange::prefix(prefix.clone()),
        Direction::Reverse,
        100,
    )?;
    sorted.reverse();
    assert_eq!(
        reverse
            .iter()
            .map(|e| decode_ts(&e.key))
            .collect::<Vec<_>>(),
        sorted
    );

    // Paging forward two at a time visits every event once, in order.
    let mut seen = Vec::new();
    let mut range = ScanRange::prefix(prefix.clone());
    loop {
        let page = store.scan(Table::Events, &range, Direction::Forward, 2)?;
        let Some(last) = page.last() else { break };
        range = ScanRange::prefix(prefix.clone()).resume_after(last.key.clone());
        seen.extend(page.iter().map(|e| decode_ts(&e.key)));
    }
    sorted.reverse();
    assert_eq!(seen, sorted);

    // Paging backwards as well.
    let mut seen = Vec::new();
    let mut range = ScanRange::prefix(prefix.clone());
    loop {
        let page = store.scan(Table::Events, &range, Direction::Reverse, 4)?;
        let Some(last) = page.last() else { break };
        range = ScanRange::prefix(prefix.clone()).resume_after(last.key.clone());
        seen.extend(page.iter().map(|e| decode_ts(&e.key)));
    }
    sorted.reverse();
    assert_eq!(seen, sorted);

    assert!(store
        .scan(
            Table::Events,
            &ScanRange::prefix(prefix),
            Direction::Forward,
            0
        )?
        .is_empty());
    Ok(())
}
