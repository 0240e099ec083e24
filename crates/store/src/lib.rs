//! Tessera's storage layer: the [`Store`] interface every higher crate writes through, the
//! order-preserving [`key`] encoding, and the embedded backend on fjall.
//!
//! What lives here: tables, scoped keys, atomic conditional write batches, durability.
//! What does not: any knowledge of profiles, identities or HTTP — values are opaque bytes.
//!
//! Invariants upheld (DESIGN.md §6):
//! - 1, acknowledged ⇒ durable: [`Store::commit`] returns `Ok` only once the batch is as
//!   durable as the configured [`Durability`] promises (`Sync`: fsynced, with group commit).
//! - 5, tenant isolation: a [`Key`] can only be built from a [`Scope`], and the scope is the
//!   key's first component, so no read or scan can reach another tenant's range.
//!
//! The interface never assumes one process owns the data: cross-key consistency goes
//! through [`WriteBatch::expect`] preconditions (compare-and-set), which a PostgreSQL
//! backend maps to a transaction and the embedded backend to a commit lock.
//!
//! ```
//! use tessera_model::Tenant;
//! use tessera_store::{EmbeddedStore, Key, Scope, Store, StoreOptions, Table, WriteBatch};
//!
//! let dir = tempfile::tempdir()?;
//! let store = EmbeddedStore::open(dir.path(), StoreOptions::default())?;
//! let scope = Scope::Tenant(Tenant::parse("ACME@AdobeOrg", "prod")?);
//! let key = Key::builder(&scope).str("dataset-1").finish();
//! let mut batch = WriteBatch::new();
//! batch.put(Table::Datasets, &key, b"{}".to_vec());
//! store.commit(batch)?;
//! assert_eq!(store.get(Table::Datasets, &key)?, Some(b"{}".to_vec()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod batch;
mod embedded;
mod error;
mod group_commit;
pub mod key;
mod table;

pub use batch::{Check, Committed, Op, WriteBatch};
pub use embedded::{Durability, EmbeddedStore, StoreOptions};
pub use error::{Error, Result};
pub use key::{Key, KeyBuilder, KeyReader, Scope};
pub use table::Table;

/// One stored entry returned by a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The full encoded key (scope prefix included); decode it with [`KeyReader`].
    pub key: Vec<u8>,
    /// The stored value.
    pub value: Vec<u8>,
}

/// Which way a scan walks a key range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Direction {
    /// Ascending key order.
    #[default]
    Forward,
    /// Descending key order (newest events first, when keys end in a timestamp).
    Reverse,
}

/// Bounds of a scan: every key starting with `prefix`, optionally narrowed to start after a
/// key (exclusive) for paging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRange {
    /// Every returned key starts with this prefix (which itself starts with a scope).
    pub prefix: Key,
    /// For forward scans: resume strictly after this key; for reverse scans: strictly before.
    pub resume_after: Option<Vec<u8>>,
}

impl ScanRange {
    /// All keys under `prefix`.
    pub fn prefix(prefix: Key) -> Self {
        Self {
            prefix,
            resume_after: None,
        }
    }

    /// Continues a previous scan past `key` (the last key it returned).
    pub fn resume_after(mut self, key: Vec<u8>) -> Self {
        self.resume_after = Some(key);
        self
    }
}

/// The storage interface. Implementations are thread-safe and synchronous: async callers
/// run them on a blocking thread (`spawn_blocking`), because commits may wait on fsync.
pub trait Store: Send + Sync + 'static {
    /// Reads one value.
    fn get(&self, table: Table, key: &Key) -> Result<Option<Vec<u8>>>;

    /// Reads up to `limit` entries of `range` in key order (or reverse order).
    fn scan(
        &self,
        table: Table,
        range: &ScanRange,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<Entry>>;

    /// Applies every operation of the batch atomically, after checking its preconditions;
    /// returns once the batch is durable per the store's [`Durability`], with the sequence
    /// numbers its appends received.
    fn commit(&self, batch: WriteBatch) -> Result<Committed>;

    /// Makes everything committed so far durable (used at shutdown and by `relaxed` mode).
    fn flush(&self) -> Result<()>;

    /// `Ok` while the store accepts reads and writes; an error once it has refused further
    /// writes (a failed fsync poisons the store until restart).
    fn check_ready(&self) -> Result<()>;
}
