//! The embedded store's row cache and version-checked preconditions: whatever they skip,
//! reads stay current and read-modify-write never loses an update.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};

use tessera_store::{EmbeddedStore, Error, Key, Store, StoreOptions, Table, WriteBatch};

fn open(dir: &std::path::Path, row_cache_bytes: u64) -> EmbeddedStore {
    EmbeddedStore::open(
        dir,
        StoreOptions {
            row_cache_bytes,
            ..StoreOptions::default()
        },
    )
    .expect("open")
}

fn number(bytes: Option<&[u8]>) -> u64 {
    bytes
        .map(|b| String::from_utf8_lossy(b).parse::<u64>().expect("number"))
        .unwrap_or(0)
}

/// Threads increment counters in a cached table, noting the read version before each read
/// so the commit may skip re-reading: no increment is lost, with or without the cache.
#[test]
fn versioned_preconditions_never_lose_an_increment() {
    for cache in [0, 1 << 20] {
        let dir = tempfile::tempdir().expect("dir");
        let store = open(dir.path(), cache);
        let scope = common::tenant("ACME@AdobeOrg", "prod");
        let counters: Vec<Key> = (0..3)
            .map(|i| Key::builder(&scope).str("counter").u64(i).finish())
            .collect();
        let threads = 4;
        let per_thread = 150;
        std::thread::scope(|s| {
            for t in 0..threads {
                let store = &store;
                let counters = &counters;
                s.spawn(move || {
                    for i in 0..per_thread {
                        // Every thread touches two of the three counters per commit.
                        let a = &counters[(t + i) % 3];
                        let b = &counters[(t + i + 1) % 3];
                        loop {
                            let read_at = store.read_version();
                            let mut batch = WriteBatch::new();
                            for key in [a, b] {
                                let current = store.get(Table::Graphs, key).expect("read");
                                let next = number(current.as_deref()) + 1;
                                batch.expect_read_at(Table::Graphs, key, current, read_at);
                                batch.put(Table::Graphs, key, next.to_string().into_bytes());
                            }
                            match store.commit(batch) {
                                Ok(_) => break,
                                Err(Error::Conflict { .. }) => continue,
                                Err(other) => panic!("unexpected {other}"),
                            }
                        }
                    }
                });
            }
        });
        let total: u64 = counters
            .iter()
            .map(|key| number(store.get(Table::Graphs, key).expect("read").as_deref()))
            .sum();
        assert_eq!(total, (threads * per_thread * 2) as u64, "cache {cache}");
    }
}

/// A value read before another writer changed it fails its precondition even though the
/// commit would otherwise skip the re-read.
#[test]
fn a_precondition_on_an_overwritten_value_conflicts() {
    let dir = tempfile::tempdir().expect("dir");
    let store = open(dir.path(), 1 << 20);
    let scope = common::tenant("ACME@AdobeOrg", "prod");
    let key = Key::builder(&scope).str("k").finish();
    let mut first = WriteBatch::new();
    first.put(Table::Identities, &key, b"1".to_vec());
    store.commit(first).expect("first");

    let read_at = store.read_version();
    let seen = store.get(Table::Identities, &key).expect("read");
    assert_eq!(seen.as_deref(), Some(&b"1"[..]));

    let mut other = WriteBatch::new();
    other.put(Table::Identities, &key, b"2".to_vec());
    store.commit(other).expect("other writer");

    let mut stale = WriteBatch::new();
    stale
        .expect_read_at(Table::Identities, &key, seen, read_at)
        .put(Table::Identities, &key, b"3".to_vec());
    assert!(matches!(store.commit(stale), Err(Error::Conflict { .. })));
    assert_eq!(
        store.get(Table::Identities, &key).expect("read").as_deref(),
        Some(&b"2"[..])
    );

    // Deleted keys read as absent through the cache too.
    let mut delete = WriteBatch::new();
    delete.delete(Table::Identities, &key);
    store.commit(delete).expect("delete");
    assert_eq!(store.get(Table::Identities, &key).expect("read"), None);
}

/// While a writer bumps a cached value, readers never see it go backwards and the writer
/// always reads what it just committed.
#[test]
fn cached_reads_are_monotonic_and_read_your_writes() {
    let dir = tempfile::tempdir().expect("dir");
    let store = open(dir.path(), 1 << 20);
    let scope = common::tenant("ACME@AdobeOrg", "prod");
    let key = Key::builder(&scope).str("v").finish();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let mut last = 0;
                while !done.load(Ordering::Acquire) {
                    let now = number(store.get(Table::Graphs, &key).expect("read").as_deref());
                    assert!(now >= last, "went back from {last} to {now}");
                    last = now;
                }
            });
        }
        for value in 1..=2_000u64 {
            let mut batch = WriteBatch::new();
            batch.put(Table::Graphs, &key, value.to_string().into_bytes());
            store.commit(batch).expect("write");
            assert_eq!(
                number(store.get(Table::Graphs, &key).expect("read").as_deref()),
                value
            );
        }
        done.store(true, Ordering::Release);
    });
}
