#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests index JSON replies and fail loudly
mod common;

use tessera_store::{Direction, Key, ScanRange, Scope, Store, Table, WriteBatch};

/// The same logical key under two tenants is two records, and a tenant-wide scan of one
/// never returns the other's rows — including sandboxes whose names share a prefix.
#[test]
fn tenants_never_see_each_other() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = common::open(dir.path());
    let a = common::tenant("ACME@AdobeOrg", "prod");
    let b = common::tenant("ACME@AdobeOrg", "prod-eu");
    let c = common::tenant("OTHER@AdobeOrg", "prod");

    let mut batch = WriteBatch::new();
    batch.put(
        Table::Datasets,
        &Key::builder(&a).str("ds").finish(),
        b"a".to_vec(),
    );
    batch.put(
        Table::Datasets,
        &Key::builder(&b).str("ds").finish(),
        b"b".to_vec(),
    );
    store.commit(batch)?;

    assert_eq!(
        store.get(Table::Datasets, &Key::builder(&c).str("ds").finish())?,
        None
    );
    for (scope, expected) in [(&a, b"a"), (&b, b"b")] {
        let rows = store.scan(
            Table::Datasets,
            &ScanRange::prefix(Key::scope_prefix(scope)),
            Direction::Forward,
            100,
        )?;
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows.first().map(|r| r.value.as_slice()),
            Some(expected.as_slice())
        );
    }
    let none = store.scan(
        Table::Datasets,
        &ScanRange::prefix(Key::scope_prefix(&c)),
        Direction::Forward,
        100,
    )?;
    assert!(none.is_empty());
    let system = store.scan(
        Table::Datasets,
        &ScanRange::prefix(Key::scope_prefix(&Scope::System)),
        Direction::Forward,
        100,
    )?;
    assert!(system.is_empty());
    Ok(())
}
