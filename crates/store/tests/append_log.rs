#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod common;

use tessera_store::{Direction, Key, KeyReader, ScanRange, Scope, Store, Table, WriteBatch};

fn seqs(store: &impl Store, prefix: &Key) -> Vec<u64> {
    store
        .scan(
            Table::ChangeFeed,
            &ScanRange::prefix(prefix.clone()),
            Direction::Forward,
            10_000,
        )
        .unwrap()
        .iter()
        .map(|e| {
            KeyReader::new(&e.key[prefix.as_bytes().len()..])
                .u64()
                .unwrap()
        })
        .collect()
}

/// Appends are numbered 1, 2, 3… in commit order, within and across batches, per log, and
/// numbering continues after a reopen.
#[test]
fn appends_are_numbered_in_commit_order_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let feed = Key::builder(&Scope::System).str("feed").finish();
    let other = Key::builder(&Scope::System).str("other").finish();
    {
        let store = common::open(dir.path());
        let mut batch = WriteBatch::new();
        batch.append(Table::ChangeFeed, &feed, b"a".to_vec());
        batch.append(Table::ChangeFeed, &feed, b"b".to_vec());
        batch.append(Table::ChangeFeed, &other, b"x".to_vec());
        assert_eq!(store.commit(batch).unwrap().appended, vec![1, 2, 1]);
        let mut batch = WriteBatch::new();
        batch.append(Table::ChangeFeed, &feed, b"c".to_vec());
        assert_eq!(store.commit(batch).unwrap().appended, vec![3]);
        // A failed precondition consumes no number.
        let mut failing = WriteBatch::new();
        failing
            .expect(
                Table::Jobs,
                &Key::builder(&Scope::System).str("k").finish(),
                Some(b"?".to_vec()),
            )
            .append(Table::ChangeFeed, &feed, b"lost".to_vec());
        assert!(store.commit(failing).is_err());
    }
    let store = common::open(dir.path());
    let mut batch = WriteBatch::new();
    batch.append(Table::ChangeFeed, &feed, b"d".to_vec());
    assert_eq!(store.commit(batch).unwrap().appended, vec![4]);
    assert_eq!(seqs(&store, &feed), vec![1, 2, 3, 4]);
    assert_eq!(seqs(&store, &other), vec![1]);
}

/// Under concurrent writers every number is used exactly once.
#[test]
fn concurrent_appends_get_distinct_gapless_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open(dir.path());
    let feed = Key::builder(&Scope::System).str("feed").finish();
    let mut all: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    (0..25)
                        .flat_map(|_| {
                            let mut batch = WriteBatch::new();
                            batch.append(Table::ChangeFeed, &feed, b"e".to_vec());
                            store.commit(batch).unwrap().appended
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    all.sort_unstable();
    assert_eq!(all, (1..=100).collect::<Vec<_>>());
    assert_eq!(seqs(&store, &feed), (1..=100).collect::<Vec<_>>());
}
