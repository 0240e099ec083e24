//! Reads of keys never written skip the engine, answered by the filter of written keys:
//! every key written before or after an open is still found.

mod common;

use tessera_store::{EmbeddedStore, Key, Store, StoreOptions, Table, WriteBatch};

/// Waits for the background scan (a minute at most: it takes milliseconds here).
fn wait_for_scan(store: &EmbeddedStore) {
    for _ in 0..12_000 {
        if store.stored_keys_scanned() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    panic!("the scan of stored keys did not finish");
}

fn key(n: u32) -> Key {
    Key::builder(&common::tenant("ACME@AdobeOrg", "prod"))
        .str("Email")
        .u64(u64::from(n))
        .finish()
}

#[test]
fn keys_stored_before_an_open_are_found_once_the_scan_is_done() {
    let dir = tempfile::tempdir().expect("dir");
    {
        let store = common::open(dir.path());
        for chunk in (0..6_000_u32).collect::<Vec<_>>().chunks(500) {
            let mut batch = WriteBatch::new();
            for n in chunk {
                batch.put(Table::Identities, &key(*n), n.to_be_bytes().to_vec());
            }
            store.commit(batch).expect("commit");
        }
        store.flush().expect("flush");
    }
    let store = common::open(dir.path());
    wait_for_scan(&store);
    for n in 0..6_000_u32 {
        assert_eq!(
            store.get(Table::Identities, &key(n)).expect("read"),
            Some(n.to_be_bytes().to_vec()),
            "key {n}"
        );
    }
    for n in 6_000..7_000_u32 {
        assert_eq!(store.get(Table::Identities, &key(n)).expect("read"), None);
    }
    // Written after the open: found at once, and absent again once deleted.
    let mut batch = WriteBatch::new();
    batch.put(Table::Identities, &key(6_500), b"new".to_vec());
    batch.delete(Table::Identities, &key(1));
    store.commit(batch).expect("commit");
    assert_eq!(
        store.get(Table::Identities, &key(6_500)).expect("read"),
        Some(b"new".to_vec())
    );
    assert_eq!(store.get(Table::Identities, &key(1)).expect("read"), None);
}

#[test]
fn a_store_closed_during_its_scan_reopens() {
    let dir = tempfile::tempdir().expect("dir");
    {
        let store = common::open(dir.path());
        let mut batch = WriteBatch::new();
        for n in 0..20_000_u32 {
            batch.put(Table::Graphs, &key(n), vec![0; 64]);
        }
        store.commit(batch).expect("commit");
    }
    // Dropped at once, scan or no scan; the next open scans again.
    drop(common::open(dir.path()));
    let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).expect("open");
    wait_for_scan(&store);
    assert_eq!(
        store.get(Table::Graphs, &key(19_999)).expect("read"),
        Some(vec![0; 64])
    );
}
