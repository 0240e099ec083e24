//! Atomic write batches with optional preconditions.
//!
//! Preconditions are how higher layers do read-modify-write safely without assuming one
//! process owns the data: read, compute, then commit a batch that `expect`s the values it
//! read. If another writer (thread or node) changed one of them, the commit fails with
//! [`crate::Error::Conflict`] and the caller retries from the read.

use crate::key::Key;
use crate::table::Table;

/// One write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Insert or overwrite.
    Put {
        /// Target table.
        table: Table,
        /// Encoded key.
        key: Key,
        /// New value.
        value: Vec<u8>,
    },
    /// Append to an ordered log: the store picks the next sequence number under `prefix`
    /// (strictly increasing in commit order) and writes `prefix ++ u64(seq)`.
    Append {
        /// Target table.
        table: Table,
        /// Log prefix; the key is this plus a u64 element.
        prefix: Key,
        /// Entry.
        value: Vec<u8>,
    },
    /// Remove (a no-op when absent).
    Delete {
        /// Target table.
        table: Table,
        /// Encoded key.
        key: Key,
    },
}

/// A precondition: the key must currently hold `expected` (`None`: must be absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Table of the key.
    pub table: Table,
    /// Encoded key.
    pub key: Key,
    /// The value the writer read.
    pub expected: Option<Vec<u8>>,
    /// [`crate::Store::read_version`] noted before the read, when the backend has one: lets
    /// the commit skip re-reading a key no commit has written since.
    pub read_at: Option<u64>,
}

/// Operations applied all together or not at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    pub(crate) ops: Vec<Op>,
    pub(crate) checks: Vec<Check>,
    pub(crate) derived: bool,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks the batch as derived data (a cache fill) that a crash may lose: its commit is
    /// atomic and ordered like any other but returns without waiting for the disk. Whatever
    /// recovery keeps is still a prefix of the commit order, so a lost fill never outlives a
    /// later write it should have been replaced by.
    pub fn derived(mut self) -> Self {
        self.derived = true;
        self
    }

    /// Whether [`WriteBatch::derived`] was set.
    pub fn is_derived(&self) -> bool {
        self.derived
    }

    /// Makes room for `ops` more writes and `checks` more preconditions. Batches of a few
    /// thousand entries otherwise grow by doubling, and each large reallocation lands on
    /// fresh pages the kernel must zero.
    pub fn reserve(&mut self, ops: usize, checks: usize) -> &mut Self {
        self.ops.reserve(ops);
        self.checks.reserve(checks);
        self
    }

    /// Inserts or overwrites `key`.
    pub fn put(&mut self, table: Table, key: &Key, value: Vec<u8>) -> &mut Self {
        self.ops.push(Op::Put {
            table,
            key: key.clone(),
            value,
        });
        self
    }

    /// Appends `value` to the ordered log under `prefix`; the sequence number it gets is
    /// returned in the commit's [`Committed::appended`], in the order of the append calls.
    /// Sequence numbers start at 1 and only grow, in commit order, so a reader that has seen
    /// sequence `n` has seen every entry numbered below it.
    pub fn append(&mut self, table: Table, prefix: &Key, value: Vec<u8>) -> &mut Self {
        self.ops.push(Op::Append {
            table,
            prefix: prefix.clone(),
            value,
        });
        self
    }

    /// Removes `key`.
    pub fn delete(&mut self, table: Table, key: &Key) -> &mut Self {
        self.ops.push(Op::Delete {
            table,
            key: key.clone(),
        });
        self
    }

    /// Commits only if `key` still holds `expected` (`None`: is still absent).
    pub fn expect(&mut self, table: Table, key: &Key, expected: Option<Vec<u8>>) -> &mut Self {
        self.expect_read_at(table, key, expected, None)
    }

    /// Like [`WriteBatch::expect`], for a value read after [`crate::Store::read_version`]
    /// returned `read_at`.
    pub fn expect_read_at(
        &mut self,
        table: Table,
        key: &Key,
        expected: Option<Vec<u8>>,
        read_at: Option<u64>,
    ) -> &mut Self {
        self.checks.push(Check {
            table,
            key: key.clone(),
            expected,
            read_at,
        });
        self
    }

    /// Number of write operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch writes nothing.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The write operations in order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// The preconditions.
    pub fn checks(&self) -> &[Check] {
        &self.checks
    }
}

/// What a successful commit reports back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    /// Sequence numbers assigned to the batch's appends, in order.
    pub appended: Vec<u64>,
    /// The commit's version (stores that number their commits, see
    /// [`crate::Store::read_version`]): a value this batch wrote is, for
    /// [`WriteBatch::expect_read_at`], a value read at this version — nothing else has
    /// written it since, unless its stamp says so.
    pub version: Option<u64>,
}
