#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests index JSON replies and fail loudly
mod common;

use tessera_store::{Error, Key, Store, Table, WriteBatch};

/// A batch whose precondition fails writes none of its operations, in any table.
#[test]
fn failed_precondition_writes_nothing() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = common::open(dir.path());
    let scope = common::tenant("ACME@AdobeOrg", "prod");
    let graph = Key::builder(&scope).str("graph").u64(1).finish();
    let identity = Key::builder(&scope)
        .str("Email")
        .str("a@example.com")
        .finish();
    let feed = Key::builder(&scope).u64(1).finish();

    let mut setup = WriteBatch::new();
    setup.put(Table::Graphs, &graph, b"members:1".to_vec());
    store.commit(setup)?;

    // A writer that read a stale graph value must not apply any part of its batch.
    let mut stale = WriteBatch::new();
    stale
        .expect(Table::Graphs, &graph, Some(b"members:0".to_vec()))
        .put(Table::Graphs, &graph, b"members:2".to_vec())
        .put(Table::Identities, &identity, b"graph:1".to_vec())
        .put(Table::ChangeFeed, &feed, b"link".to_vec());
    assert!(matches!(
        store.commit(stale),
        Err(Error::Conflict {
            table: Table::Graphs
        })
    ));
    assert_eq!(
        store.get(Table::Graphs, &graph)?,
        Some(b"members:1".to_vec())
    );
    assert_eq!(store.get(Table::Identities, &identity)?, None);
    assert_eq!(store.get(Table::ChangeFeed, &feed)?, None);

    // "Must be absent" fails on an existing key.
    let mut create = WriteBatch::new();
    create
        .expect(Table::Graphs, &graph, None)
        .put(Table::Identities, &identity, b"x".to_vec());
    assert!(store.commit(create).is_err());
    assert_eq!(store.get(Table::Identities, &identity)?, None);

    // With the right expectation every operation lands together.
    let mut fresh = WriteBatch::new();
    fresh
        .expect(Table::Graphs, &graph, Some(b"members:1".to_vec()))
        .put(Table::Graphs, &graph, b"members:2".to_vec())
        .put(Table::Identities, &identity, b"graph:1".to_vec())
        .put(Table::ChangeFeed, &feed, b"link".to_vec());
    store.commit(fresh)?;
    assert_eq!(
        store.get(Table::Graphs, &graph)?,
        Some(b"members:2".to_vec())
    );
    assert_eq!(
        store.get(Table::Identities, &identity)?,
        Some(b"graph:1".to_vec())
    );
    assert_eq!(store.get(Table::ChangeFeed, &feed)?, Some(b"link".to_vec()));
    Ok(())
}

/// Concurrent read-modify-write through preconditions never loses an increment.
#[test]
fn compare_and_set_counter_under_contention() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = common::open(dir.path());
    let scope = common::tenant("ACME@AdobeOrg", "prod");
    let counter = Key::builder(&scope).str("counter").finish();
    let threads = 4;
    let per_thread = 25;
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..per_thread {
                    loop {
                        let current = store.get(Table::Jobs, &counter).expect("read");
                        let value = current
                            .as_deref()
                            .map(|b| String::from_utf8_lossy(b).parse::<u64>().expect("number"))
                            .unwrap_or(0);
                        let mut batch = WriteBatch::new();
                        batch.expect(Table::Jobs, &counter, current).put(
                            Table::Jobs,
                            &counter,
                            (value + 1).to_string().into_bytes(),
                        );
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
    assert_eq!(
        store.get(Table::Jobs, &counter)?,
        Some((threads * per_thread).to_string().into_bytes())
    );
    Ok(())
}
