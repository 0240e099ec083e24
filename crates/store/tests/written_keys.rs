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

#[test]
fn a_filter_that_outgrows_its_size_is_replaced_while_commits_go_on() {
    let dir = tempfile::tempdir().expect("dir");
    // A 64 KiB row cache sizes the first filter for about a thousand keys.
    let store = EmbeddedStore::open(
        dir.path(),
        StoreOptions {
            row_cache_bytes: 64 * 1024,
            durability: tessera_store::Durability::Relaxed,
            ..StoreOptions::default()
        },
    )
    .expect("open");
    wait_for_scan(&store);
    let committed = std::sync::atomic::AtomicU32::new(0);
    let done = std::sync::atomic::AtomicBool::new(false);
    // Stops the reader however the writer ends (a failed commit must not hang the test).
    struct Done<'a>(&'a std::sync::atomic::AtomicBool);
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::Release);
        }
    }
    std::thread::scope(|scope| {
        // Keys committed while a new generation is being filled must be found once reads
        // ask it: every key committed so far is read back, again and again.
        let reader = scope.spawn(|| {
            let mut reads = 0_u64;
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                let upto = committed.load(std::sync::atomic::Ordering::Acquire);
                for n in (0..upto).rev().step_by(97).take(200) {
                    assert_eq!(
                        store.get(Table::Identities, &key(n)).expect("read"),
                        Some(n.to_be_bytes().to_vec()),
                        "key {n}, committed before the read, read absent"
                    );
                    reads += 1;
                }
            }
            reads
        });
        let done = Done(&done);
        // Until the filter has grown twice. The first growth comes at the thread's first
        // check, a second after the open, and sizes the next filter for twice the keys
        // stored by then; the cap leaves room for a writer ten times faster than a debug
        // build's.
        let mut next = 0_u32;
        while store.written_keys_generation() < 2 && next < 20_000_000 {
            let mut batch = WriteBatch::new();
            for n in next..next + 1_000 {
                batch.put(Table::Identities, &key(n), n.to_be_bytes().to_vec());
            }
            store.commit(batch).expect("commit");
            next += 1_000;
            committed.store(next, std::sync::atomic::Ordering::Release);
        }
        drop(done);
        assert!(reader.join().expect("reader") > 0);
        assert!(
            store.written_keys_generation() >= 2,
            "the filter did not grow twice in {next} keys"
        );
    });
    let upto = committed.load(std::sync::atomic::Ordering::Acquire);
    for n in 0..upto {
        assert!(
            !store.known_unwritten(Table::Identities, &key(n)),
            "key {n}"
        );
    }
    // The grown filter answers keys never written again: the first one, holding every key
    // written, would call almost none of them absent.
    let absent = (upto..upto + 10_000)
        .filter(|n| store.known_unwritten(Table::Identities, &key(*n)))
        .count();
    assert!(
        absent > 9_000,
        "{absent} of 10,000 keys never written known absent"
    );
}
