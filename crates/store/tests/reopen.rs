#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests index JSON replies and fail loudly
mod common;

use tessera_store::{Durability, EmbeddedStore, Key, Store, StoreOptions, Table, WriteBatch};

/// Data committed in either durability mode is there after the store is dropped and opened
/// again on the same directory.
#[test]
fn reopen_after_drop_keeps_data() -> Result<(), Box<dyn std::error::Error>> {
    for durability in [Durability::Sync, Durability::Relaxed] {
        let dir = tempfile::tempdir()?;
        let scope = common::tenant("ACME@AdobeOrg", "prod");
        let keys: Vec<Key> = (0..50u64)
            .map(|i| Key::builder(&scope).u64(i).finish())
            .collect();
        {
            let options = StoreOptions {
                durability,
                ..StoreOptions::default()
            };
            let store = EmbeddedStore::open(dir.path(), options)?;
            for (i, key) in keys.iter().enumerate() {
                let mut batch = WriteBatch::new();
                batch.put(Table::Fragments, key, vec![i as u8]);
                store.commit(batch)?;
            }
            store.flush()?;
        }
        let store = common::open(dir.path());
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(
                store.get(Table::Fragments, key)?,
                Some(vec![i as u8]),
                "{durability:?} key {i}"
            );
        }
    }
    Ok(())
}
