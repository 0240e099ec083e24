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
mod row_cache;
mod table;
mod written_keys;

use std::ops::Bound;

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

/// A lower and an upper bound on encoded keys.
pub type KeyInterval = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// Bounds of a scan: every key starting with `prefix`, optionally narrowed by key bounds
/// (an event time window is a lower and an upper key under one identity's prefix) and to
/// start after a key (exclusive) for paging.
///
/// Every bound is a plain comparison on encoded key bytes, so a SQL backend maps a range to
/// `key >= $prefix AND key < $prefix_end AND key >|>= $lower AND key <|<= $upper`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRange {
    /// Every returned key starts with this prefix (which itself starts with a scope).
    pub prefix: Key,
    /// For forward scans: resume strictly after this key; for reverse scans: strictly before.
    pub resume_after: Option<Vec<u8>>,
    /// Keys below this bound are not returned, whatever the direction.
    pub lower: Bound<Vec<u8>>,
    /// Keys above this bound are not returned, whatever the direction.
    pub upper: Bound<Vec<u8>>,
}

impl ScanRange {
    /// All keys under `prefix`.
    pub fn prefix(prefix: Key) -> Self {
        Self {
            prefix,
            resume_after: None,
            lower: Bound::Unbounded,
            upper: Bound::Unbounded,
        }
    }

    /// Continues a previous scan past `key` (the last key it returned).
    pub fn resume_after(mut self, key: Vec<u8>) -> Self {
        self.resume_after = Some(key);
        self
    }

    /// Excludes keys below `bound`, keeping the tighter of it and any lower bound already set.
    pub fn narrow_lower(mut self, bound: Bound<Vec<u8>>) -> Self {
        self.lower = tighter_lower(self.lower, bound);
        self
    }

    /// Excludes keys above `bound`, keeping the tighter of it and any upper bound already set.
    pub fn narrow_upper(mut self, bound: Bound<Vec<u8>>) -> Self {
        self.upper = tighter_upper(self.upper, bound);
        self
    }

    /// The key interval a scan in `direction` walks: the prefix, the bounds and the resume
    /// point folded into one lower and one upper bound, or `None` when nothing can match.
    /// Backends use this so that they all agree on what a range means.
    pub fn interval(&self, direction: Direction) -> Option<KeyInterval> {
        let prefix = self.prefix.as_bytes();
        let mut lower = tighter_lower(Bound::Included(prefix.to_vec()), self.lower.clone());
        let mut upper = tighter_upper(prefix_end(prefix), self.upper.clone());
        if let Some(resume) = &self.resume_after {
            match direction {
                Direction::Forward => lower = tighter_lower(lower, Bound::Excluded(resume.clone())),
                Direction::Reverse => upper = tighter_upper(upper, Bound::Excluded(resume.clone())),
            }
        }
        let empty = match (&lower, &upper) {
            (Bound::Included(low), Bound::Included(high)) => low > high,
            (Bound::Included(low) | Bound::Excluded(low), Bound::Excluded(high))
            | (Bound::Excluded(low), Bound::Included(high)) => low >= high,
            _ => false,
        };
        (!empty).then_some((lower, upper))
    }
}

/// The smallest byte string greater than every key starting with `prefix`.
fn prefix_end(prefix: &[u8]) -> Bound<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Bound::Excluded(end);
        }
    }
    Bound::Unbounded
}

fn tighter_lower(a: Bound<Vec<u8>>, b: Bound<Vec<u8>>) -> Bound<Vec<u8>> {
    match (a, b) {
        (Bound::Unbounded, other) | (other, Bound::Unbounded) => other,
        (Bound::Included(x), Bound::Included(y)) => Bound::Included(x.max(y)),
        (Bound::Excluded(x), Bound::Excluded(y)) => Bound::Excluded(x.max(y)),
        // At equal keys the exclusive bound is the tighter one.
        (Bound::Included(inc), Bound::Excluded(exc))
        | (Bound::Excluded(exc), Bound::Included(inc)) => {
            if inc > exc {
                Bound::Included(inc)
            } else {
                Bound::Excluded(exc)
            }
        }
    }
}

fn tighter_upper(a: Bound<Vec<u8>>, b: Bound<Vec<u8>>) -> Bound<Vec<u8>> {
    match (a, b) {
        (Bound::Unbounded, other) | (other, Bound::Unbounded) => other,
        (Bound::Included(x), Bound::Included(y)) => Bound::Included(x.min(y)),
        (Bound::Excluded(x), Bound::Excluded(y)) => Bound::Excluded(x.min(y)),
        (Bound::Included(inc), Bound::Excluded(exc))
        | (Bound::Excluded(exc), Bound::Included(inc)) => {
            if inc < exc {
                Bound::Included(inc)
            } else {
                Bound::Excluded(exc)
            }
        }
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

    /// A version to note before reads whose values a later batch will `expect`
    /// ([`WriteBatch::expect_read_at`]): a backend that can tell whether a key was written
    /// since then skips re-reading it at commit. `None` (the default): every precondition is
    /// re-read.
    fn read_version(&self) -> Option<u64> {
        None
    }
}
