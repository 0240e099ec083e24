//! Write versions and a validated row cache for the embedded backend.
//!
//! Every commit gets a number, and before it touches the engine it stamps each key it writes
//! with that number in a fixed table of slots (keys hash to slots; a collision only makes a
//! stamp look newer than it is). A reader that noted the published number `v` before reading
//! a key knows the value it read is still current as long as the key's slot holds a stamp
//! ≤ `v`. Two things follow, both sound only because one process owns the data directory
//! (fjall locks it):
//! - a precondition on a value read at `v` needs no second read at commit while the slot is
//!   still ≤ `v` (linking records used to read every graph key twice);
//! - a cache of values keyed by `(table, key)` and tagged with the `v` they were read at is
//!   exact: an entry is served while its slot is ≤ its tag, so no write is ever hidden.
//!   Commits write their values through to the rows the cache holds, so keys a workload
//!   reads and rewrites are served from memory instead of the LSM's memtables, where a
//!   lookup walks a skip list of long keys.
//!
//! A raised stamp alone would retire rows whose keys were never written: every write to a
//! key sharing the slot does it, so the longer a row lives the likelier it is retired (after
//! 400,000 linked records, the slowest 1% of identity lookups were rows retired that way,
//! read from the LSM at 17 µs against 4 µs from the cache). So a row is *settled* once every
//! later write of its key is known to write through to it: a commit's own write-through, or
//! a read whose row was in before any commit it did not see looked for it (a fence on both
//! sides; see `RowCache::fill_read`). A settled row is served whatever the stamp, if the
//! commits that raised it had published before the row was taken from the cache; an
//! unsettled one only while its slot is ≤ its tag.
//!
//! Ordering per commit `n` (all under the commit lock): stamp keys with `n` and look for
//! their rows, apply the batch, refresh the snapshot reads go through, write values through,
//! publish `n`. A reader racing the commit either meets a raised, unpublished stamp (and
//! reads the engine) or a published `n` (and sees the whole batch).

use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use quick_cache::sync::{Cache, DefaultLifecycle};
use quick_cache::{Equivalent, Weighter};

use crate::table::Table;

/// Commit numbers and per-slot stamps.
pub(crate) struct WriteVersions {
    published: AtomicU64,
    /// Stamps in chunks of [`CHUNK_SLOTS`], each allocated by the first write to it: a large
    /// table (megabytes per store) costs nothing until written, so stores that write little
    /// (tests open hundreds) do not zero it all at open.
    chunks: Box<[OnceLock<Box<[AtomicU64]>>]>,
    /// Slots per chunk: [`CHUNK_SLOTS`], or all of a smaller table.
    chunk_slots: usize,
    mask: u64,
}

const CHUNK_SLOTS: usize = 1 << 16;

impl WriteVersions {
    /// `slots` is rounded up to a power of two.
    pub(crate) fn new(slots: usize) -> Self {
        let slots = slots.max(1).next_power_of_two();
        let chunk_slots = slots.min(CHUNK_SLOTS);
        Self {
            published: AtomicU64::new(0),
            chunks: (0..slots / chunk_slots).map(|_| OnceLock::new()).collect(),
            chunk_slots,
            mask: u64::try_from(slots - 1).unwrap_or(u64::MAX),
        }
    }

    /// The number of the last commit whose writes are all visible.
    pub(crate) fn published(&self) -> u64 {
        self.published.load(Ordering::Acquire)
    }

    /// The chunk and the place in it of the slot for `hash`.
    fn locate(&self, hash: u64) -> (&OnceLock<Box<[AtomicU64]>>, usize) {
        let index = usize::try_from(hash & self.mask).unwrap_or(0);
        // `mask` is `len - 1` of a power-of-two table of whole chunks, so both are in range.
        #[allow(clippy::indexing_slicing)]
        (
            &self.chunks[index / self.chunk_slots],
            index % self.chunk_slots,
        )
    }

    /// The stamp of the slot for `hash`: 0 in a chunk nothing was written to yet. A reader
    /// that finds the chunk missing while a commit creates it is in the same place as one
    /// that loads the stamp just before the commit stores it.
    fn stamp_of(&self, hash: u64) -> u64 {
        let (chunk, place) = self.locate(hash);
        chunk
            .get()
            .and_then(|stamps| stamps.get(place))
            .map_or(0, |stamp| stamp.load(Ordering::Acquire))
    }

    /// Whether no commit after `version` can have written `key`.
    pub(crate) fn unchanged_since(&self, table: Table, key: &[u8], version: u64) -> bool {
        self.stamp_of(row_hash(table, key)) <= version
    }

    /// The number the next commit gets. Callers hold the commit lock.
    pub(crate) fn next(&self) -> u64 {
        self.published.load(Ordering::Acquire) + 1
    }

    /// Marks `key` as written by commit `version` (before the engine applies it).
    pub(crate) fn stamp(&self, table: Table, key: &[u8], version: u64) {
        let (chunk, place) = self.locate(row_hash(table, key));
        let stamps =
            chunk.get_or_init(|| (0..self.chunk_slots).map(|_| AtomicU64::new(0)).collect());
        if let Some(stamp) = stamps.get(place) {
            stamp.store(version, Ordering::Release);
        }
    }

    /// Makes commit `version` the published one (after the engine applied it).
    pub(crate) fn publish(&self, version: u64) {
        self.published.store(version, Ordering::Release);
    }
}

/// One hash per key serves both its stamp slot and its cache row.
pub(crate) fn row_hash(table: Table, key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(key, table.index() as u64)
}

#[derive(Clone, PartialEq, Eq)]
struct RowKey {
    hash: u64,
    table: Table,
    key: Box<[u8]>,
}

impl Hash for RowKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// A borrowed [`RowKey`], so lookups need no allocation.
struct RowRef<'a> {
    hash: u64,
    table: Table,
    key: &'a [u8],
}

impl<'a> RowRef<'a> {
    fn new(table: Table, key: &'a [u8]) -> Self {
        Self {
            hash: row_hash(table, key),
            table,
            key,
        }
    }
}

impl Hash for RowRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl Equivalent<RowKey> for RowRef<'_> {
    fn equivalent(&self, other: &RowKey) -> bool {
        self.hash == other.hash && self.table == other.table && *self.key == *other.key
    }
}

/// Passes the precomputed xxh3 of a row through (rows hash themselves with `write_u64`).
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not reached (rows write one u64); mixes anything else in rather than dropping it.
        self.0 = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.0);
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

type RowHasher = BuildHasherDefault<PassThrough>;

/// A cached value (`None`: the key was absent), the published version it was read at, and
/// whether it is settled.
#[derive(Clone)]
struct Row {
    value: Option<Arc<[u8]>>,
    read_at: u64,
    settled: Settled,
}

/// A row is settled once every later write of its key is known to reach it (commits write
/// through to the rows the cache holds). Then a raised stamp in its slot means another key
/// sharing the slot was written, not this one, so the row stays current; an unsettled row
/// is served only while its slot is no newer than its read.
#[derive(Clone)]
enum Settled {
    /// Written through by a commit, under the commit lock: every later commit finds it.
    Yes,
    /// Filled by a read; the reader settles it once it has checked that no commit raced
    /// the fill (see [`RowCache::fill_read`]).
    Pending(Arc<AtomicBool>),
}

impl Settled {
    fn is_settled(&self) -> bool {
        match self {
            Settled::Yes => true,
            Settled::Pending(flag) => flag.load(Ordering::Acquire),
        }
    }
}

#[derive(Clone)]
struct RowWeight;

/// Per-entry bookkeeping of the cache and the hash table, roughly.
const ENTRY_OVERHEAD: u64 = 64;

impl Weighter<RowKey, Row> for RowWeight {
    fn weight(&self, key: &RowKey, row: &Row) -> u64 {
        let value = row.value.as_ref().map_or(0, |v| v.len());
        u64::try_from(key.key.len() + value).unwrap_or(u64::MAX) + ENTRY_OVERHEAD
    }
}

/// Values of the tables worth caching (see [`Table::row_cached`]), validated by
/// [`WriteVersions`].
pub(crate) struct RowCache {
    rows: Cache<RowKey, Row, RowWeight, RowHasher>,
}

/// Rough mean entry weight, to size the cache's hash table.
const TYPICAL_ENTRY: u64 = 256;

impl RowCache {
    pub(crate) fn new(bytes: u64) -> Option<Self> {
        (bytes > 0).then(|| Self {
            rows: Cache::with(
                usize::try_from(bytes / TYPICAL_ENTRY)
                    .unwrap_or(usize::MAX)
                    .max(16),
                bytes,
                RowWeight,
                RowHasher::default(),
                DefaultLifecycle::default(),
            ),
        })
    }

    /// The cached value of `key` if it is still current: `Some(None)` means "known absent".
    ///
    /// Current means: no commit wrote the key's slot since the row was read, or the row is
    /// settled and every commit that wrote the slot had published before the row was taken
    /// from the cache. A commit still in flight may be writing this very key (its
    /// write-through comes after the engine has the batch), so until it publishes, the
    /// engine is read instead.
    pub(crate) fn get(
        &self,
        versions: &WriteVersions,
        table: Table,
        key: &[u8],
    ) -> Option<Option<Arc<[u8]>>> {
        self.get_observed(versions, table, key, || ())
    }

    /// [`RowCache::get`], calling `taken` right after the row is taken from the cache (tests
    /// run a commit there).
    fn get_observed(
        &self,
        versions: &WriteVersions,
        table: Table,
        key: &[u8],
        taken: impl FnOnce(),
    ) -> Option<Option<Arc<[u8]>>> {
        let wanted = RowRef::new(table, key);
        // Published before the row is taken: a commit it covers wrote through before
        // publishing, so the row taken is that write-through or newer. Taken first, a row
        // could predate the write-through of a commit that published just after, and a
        // reader that had already read the commit's other keys from the engine would see
        // half of it.
        let published = versions.published();
        let row = self.rows.get(&wanted)?;
        taken();
        let stamp = versions.stamp_of(wanted.hash);
        let current = stamp <= row.read_at || (stamp <= published && row.settled.is_settled());
        current.then_some(row.value)
    }

    /// Whether a commit that just stamped `key` must write its value through: whether the
    /// cache has a row for it (current or not). Keys nobody point-reads (logs, histories)
    /// thus never take cache space.
    pub(crate) fn holds_stamped(&self, table: Table, key: &[u8]) -> bool {
        // Pairs with the fence in `fill_read`: either that reader sees this commit's stamp,
        // or this commit sees the reader's row and writes through to it.
        fence(Ordering::SeqCst);
        self.rows.contains_key(&RowRef::new(table, key))
    }

    /// Remembers what a read at `read_at` (the version published before it) returned, and
    /// settles the row if no commit wrote the key's slot since.
    pub(crate) fn fill_read(
        &self,
        versions: &WriteVersions,
        table: Table,
        key: &[u8],
        value: Option<Arc<[u8]>>,
        read_at: u64,
    ) {
        let hash = row_hash(table, key);
        let flag = Arc::new(AtomicBool::new(false));
        self.insert(
            hash,
            table,
            key,
            Row {
                value,
                read_at,
                settled: Settled::Pending(Arc::clone(&flag)),
            },
        );
        // A commit whose stamp this load misses checks for the row only after the row is
        // in (see `holds_stamped`), so it writes through: the row cannot go stale unseen.
        // One whose stamp it finds may have written the key after the read: the row stays
        // unsettled, served only while no stamp is newer than the read.
        fence(Ordering::SeqCst);
        if versions.stamp_of(hash) <= read_at {
            flag.store(true, Ordering::Release);
        }
    }

    /// Writes a commit's value through to the row of a key [`RowCache::holds_stamped`]
    /// found. Callers hold the commit lock, so every later commit finds this row.
    pub(crate) fn write_through(
        &self,
        table: Table,
        key: &[u8],
        value: Option<Arc<[u8]>>,
        version: u64,
    ) {
        let row = Row {
            value,
            read_at: version,
            settled: Settled::Yes,
        };
        self.insert(row_hash(table, key), table, key, row);
    }

    fn insert(&self, hash: u64, table: Table, key: &[u8], row: Row) {
        self.rows.insert(
            RowKey {
                hash,
                table,
                key: key.into(),
            },
            row,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> Option<Arc<[u8]>> {
        Some(Arc::from(text.as_bytes()))
    }

    /// Stamps of `slots` slots and a cache beside them.
    fn cache_with_slots(slots: usize) -> (WriteVersions, RowCache) {
        (
            WriteVersions::new(slots),
            RowCache::new(1 << 20).expect("cache"),
        )
    }

    /// A commit of `key` as `EmbeddedStore::commit` makes it: stamp, look for a row, apply
    /// (`apply` stands in for the engine), write through to the row, publish.
    fn commit_applying(
        versions: &WriteVersions,
        cache: &RowCache,
        key: &[u8],
        text: &str,
        apply: impl FnOnce(),
    ) -> u64 {
        let version = versions.next();
        versions.stamp(Table::Graphs, key, version);
        let held = cache.holds_stamped(Table::Graphs, key);
        apply();
        if held {
            cache.write_through(Table::Graphs, key, value(text), version);
        }
        versions.publish(version);
        version
    }

    /// [`commit_applying`] with no engine.
    fn commit(versions: &WriteVersions, cache: &RowCache, key: &[u8], text: &str) -> u64 {
        commit_applying(versions, cache, key, text, || ())
    }

    #[test]
    fn a_stamp_newer_than_the_read_invalidates_the_row() {
        let (versions, cache) = cache_with_slots(1024);
        cache.fill_read(&versions, Table::Identities, b"k", value("v1"), 0);
        assert_eq!(
            cache.get(&versions, Table::Identities, b"k"),
            Some(value("v1"))
        );
        let next = versions.next();
        versions.stamp(Table::Identities, b"k", next);
        assert_eq!(cache.get(&versions, Table::Identities, b"k"), None);
        versions.publish(next);
        cache.fill_read(
            &versions,
            Table::Identities,
            b"k",
            None,
            versions.published(),
        );
        assert_eq!(cache.get(&versions, Table::Identities, b"k"), Some(None));
    }

    #[test]
    fn a_collision_hides_a_settled_row_only_while_its_commit_is_in_flight() {
        // One slot: every write raises the stamp of every row.
        let (versions, cache) = cache_with_slots(1);
        cache.fill_read(&versions, Table::Graphs, b"a", value("x"), 0);
        let other = versions.next();
        versions.stamp(Table::Graphs, b"b", other);
        // Commit `other` might be writing `a`: its write-through has not happened yet.
        assert_eq!(cache.get(&versions, Table::Graphs, b"a"), None);
        versions.publish(other);
        // It has finished without writing `a` through, so it did not write `a`.
        assert_eq!(cache.get(&versions, Table::Graphs, b"a"), Some(value("x")));
        // A commit of `a` itself replaces the row, which stays settled.
        commit(&versions, &cache, b"a", "y");
        commit(&versions, &cache, b"b", "z");
        assert_eq!(cache.get(&versions, Table::Graphs, b"a"), Some(value("y")));
    }

    #[test]
    fn a_settled_row_taken_before_a_commit_publishes_is_not_served() {
        // Stamps of their own: the old value of `a` must not be served by the settled rule
        // alone once the commit that wrote it has published.
        let (versions, cache) = cache_with_slots(1024);
        cache.fill_read(&versions, Table::Graphs, b"a", None, versions.published());
        // The row (settled, absent) is taken; then a commit writes `a` through and
        // publishes; only then are the stamp and the published version looked at.
        let seen = cache.get_observed(&versions, Table::Graphs, b"a", || {
            commit(&versions, &cache, b"a", "new");
        });
        assert_eq!(seen, None, "the row predates the commit: read the engine");
        assert_eq!(
            cache.get(&versions, Table::Graphs, b"a"),
            Some(value("new"))
        );
    }

    #[test]
    fn a_read_raced_by_a_commit_stays_unsettled() {
        let (versions, cache) = cache_with_slots(1);
        // Read at 0; before the row is in, a commit writes the key without finding a row
        // to write through to: the value read may be the old one.
        let read_at = versions.published();
        commit(&versions, &cache, b"a", "new");
        cache.fill_read(&versions, Table::Graphs, b"a", value("old"), read_at);
        assert_eq!(cache.get(&versions, Table::Graphs, b"a"), None);
        // Read again after the commit: settled, and collisions no longer hide it.
        cache.fill_read(
            &versions,
            Table::Graphs,
            b"a",
            value("new"),
            versions.published(),
        );
        commit(&versions, &cache, b"b", "other");
        assert_eq!(
            cache.get(&versions, Table::Graphs, b"a"),
            Some(value("new"))
        );
    }

    /// Commits and reads follow the store's protocol over a map standing in for the engine,
    /// with every key in one stamp slot: readers never see a key go back, and the writer
    /// always reads what it committed.
    #[test]
    fn reads_stay_current_while_every_write_collides() {
        let (versions, cache) = cache_with_slots(1);
        let engine = std::sync::Mutex::new(std::collections::HashMap::<Vec<u8>, u64>::new());
        let keys: [&[u8]; 3] = [b"a", b"b", b"c"];
        let read = |key: &[u8]| -> u64 {
            if let Some(row) = cache.get(&versions, Table::Graphs, key) {
                return row.map_or(0, |v| {
                    std::str::from_utf8(&v)
                        .expect("utf8")
                        .parse()
                        .expect("number")
                });
            }
            let read_at = versions.published();
            let found = engine.lock().expect("engine").get(key).copied();
            let text = found.map(|n| n.to_string());
            cache.fill_read(
                &versions,
                Table::Graphs,
                key,
                text.as_deref().and_then(value),
                read_at,
            );
            found.unwrap_or(0)
        };
        /// Stops the readers however the writer ends, a failed assertion included.
        struct Stop<'a>(&'a AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Release);
            }
        }
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            let _stop = Stop(&done);
            for _ in 0..2 {
                s.spawn(|| {
                    let mut last = [0_u64; 3];
                    while !done.load(Ordering::Acquire) {
                        for (key, last) in keys.iter().zip(last.iter_mut()) {
                            let now = read(key);
                            assert!(now >= *last, "went back from {last} to {now}");
                            *last = now;
                        }
                    }
                });
            }
            for round in 1..=3_000_u64 {
                for key in keys {
                    commit_applying(&versions, &cache, key, &round.to_string(), || {
                        engine.lock().expect("engine").insert(key.to_vec(), round);
                    });
                    assert_eq!(read(key), round);
                }
            }
        });
    }

    #[test]
    fn stamps_in_chunks_not_yet_written_read_as_never_written() {
        // Four chunks; every key lands in one of them, allocated by its first stamp.
        let versions = WriteVersions::new(4 * CHUNK_SLOTS);
        let keys: Vec<Vec<u8>> = (0..64_u32).map(|i| i.to_be_bytes().to_vec()).collect();
        assert!(keys
            .iter()
            .all(|key| versions.unchanged_since(Table::Graphs, key, 0)));
        let first = keys.first().expect("keys");
        versions.stamp(Table::Graphs, first, 7);
        assert!(!versions.unchanged_since(Table::Graphs, first, 6));
        assert!(versions.unchanged_since(Table::Graphs, first, 7));
        let allocated = versions.chunks.iter().filter(|c| c.get().is_some()).count();
        assert_eq!(allocated, 1, "only the written chunk is allocated");
        // Keys of other chunks still read 0; keys sharing the chunk but not the slot too.
        for key in keys.iter().skip(1) {
            let same_slot = row_hash(Table::Graphs, key) & versions.mask
                == row_hash(Table::Graphs, first) & versions.mask;
            assert_eq!(
                versions.unchanged_since(Table::Graphs, key, 0),
                !same_slot,
                "key {key:?}"
            );
        }
    }
}
