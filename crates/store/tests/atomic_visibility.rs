//! A commit becomes visible to concurrent readers whole: a reader that sees one of its writes
//! sees all of them, in point reads and scans, cached tables or not.
//!
//! The identity graph relies on it: a record's commit writes an identity's pointer to a new
//! graph and that graph; a lookup that read the new pointer and then missed the graph
//! answered 500 ("identity points at missing graph") under concurrent ingestion.
//!
//! The store runs with 128 KiB memtables, so the rounds flush dozens of them: fjall
//! publishes a flush's sequence number as visible even while a batch is being applied,
//! which is when reading at fjall's visible number saw partial batches.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tessera_store::{
    Direction, EmbeddedStore, Key, ScanRange, Store, StoreOptions, Table, WriteBatch,
};

const ROUNDS: u64 = 8_000;

/// One writer commits rounds of "pointer, then a filler, then the value it points at"; readers
/// follow the newest pointer to its value. The value must always be there.
fn followers_never_miss(table: Table) {
    let dir = tempfile::tempdir().expect("dir");
    let store = EmbeddedStore::open(
        dir.path(),
        StoreOptions {
            max_memtable_bytes: Some(128 * 1024),
            ..StoreOptions::default()
        },
    )
    .expect("open");
    let scope = common::tenant("ACME@AdobeOrg", "prod");
    let pointer = Key::builder(&scope).str("pointer").finish();
    let target = |i: u64| Key::builder(&scope).str("target").u64(i).finish();
    let filler = |i: u64| Key::builder(&scope).str("filler").u64(i).finish();
    let done = AtomicBool::new(false);
    let followed = AtomicU64::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 1..=ROUNDS {
                let mut batch = WriteBatch::new();
                // The reference first: a reader that sees a prefix of the batch sees it alone.
                batch.put(table, &pointer, i.to_be_bytes().to_vec());
                for f in 0..8 {
                    batch.put(table, &filler(i * 8 + f), vec![0; 64]);
                }
                batch.put(table, &target(i), b"present".to_vec());
                store.commit(batch).expect("commit");
            }
            done.store(true, Ordering::Relaxed);
        });
        for _ in 0..2 {
            s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    let Some(bytes) = store.get(table, &pointer).expect("read pointer") else {
                        continue;
                    };
                    let i = u64::from_be_bytes(bytes.as_slice().try_into().expect("8 bytes"));
                    let value = store.get(table, &target(i)).expect("read target");
                    assert_eq!(
                        value.as_deref(),
                        Some(&b"present"[..]),
                        "pointer {i} visible before the value committed with it ({table:?})"
                    );
                    let scanned = store
                        .scan(table, &ScanRange::prefix(target(i)), Direction::Forward, 1)
                        .expect("scan");
                    assert_eq!(scanned.len(), 1, "scan missed target {i} ({table:?})");
                    followed.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    assert!(followed.load(Ordering::Relaxed) > 0, "readers never ran");
}

#[test]
fn a_commit_is_seen_whole_in_a_row_cached_table() {
    followers_never_miss(Table::Graphs);
}

#[test]
fn a_commit_is_seen_whole_in_an_uncached_table() {
    followers_never_miss(Table::Events);
}
