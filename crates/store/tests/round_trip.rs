#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests index JSON replies and fail loudly
mod common;

use tessera_store::{Key, Store, Table, WriteBatch};

#[test]
fn put_get_overwrite_delete() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = common::open(dir.path());
    let scope = common::tenant("ACME@AdobeOrg", "prod");
    let key = Key::builder(&scope).str("ds-1").finish();

    assert_eq!(store.get(Table::Datasets, &key)?, None);

    let mut batch = WriteBatch::new();
    batch.put(Table::Datasets, &key, b"v1".to_vec());
    store.commit(batch)?;
    assert_eq!(store.get(Table::Datasets, &key)?, Some(b"v1".to_vec()));
    // Same key in another table is a different record.
    assert_eq!(store.get(Table::Schemas, &key)?, None);

    let mut batch = WriteBatch::new();
    batch.put(Table::Datasets, &key, b"v2".to_vec());
    store.commit(batch)?;
    assert_eq!(store.get(Table::Datasets, &key)?, Some(b"v2".to_vec()));

    let mut batch = WriteBatch::new();
    batch.delete(Table::Datasets, &key);
    store.commit(batch)?;
    assert_eq!(store.get(Table::Datasets, &key)?, None);
    Ok(())
}
