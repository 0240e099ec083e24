//! The embedded backend: one fjall database in the data directory, one keyspace per
//! [`Table`].
//!
//! Writes take a process-local commit lock so that preconditions are checked and the batch
//! applied as one step; that is sound here because fjall itself locks the directory, so no
//! second process can write it. Durability is then awaited outside the lock through
//! [`GroupCommit`], so concurrent writers share fsyncs.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use fjall::config::PinningPolicy;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Readable};

use crate::batch::{Committed, Op, WriteBatch};
use crate::error::{Error, Result};
use crate::group_commit::GroupCommit;
use crate::key::{Key, Scope};
use crate::row_cache::{row_hash, RowCache, WriteVersions};
use crate::table::Table;
use crate::written_keys::WrittenKeys;
use crate::{Direction, Entry, ScanRange, Store};

/// Version of the on-disk layout this build writes. Bump on incompatible key or value
/// layout changes, with a fixture of the old version loaded by a test.
pub const FORMAT_VERSION: u32 = 1;

/// A value a commit writes through to the row cache (`None`: deleted).
type WrittenRow = (Table, Vec<u8>, Option<Arc<[u8]>>);

/// Fewest slots of the write-stamp table (8 bytes each): enough that unrelated keys rarely
/// share one among the keys written between a read and its commit.
const MIN_WRITE_STAMP_SLOTS: usize = 1 << 20;

/// Bytes of row cache per write-stamp slot (and per key the filter of written keys is sized
/// for at least).
const WRITE_STAMP_BYTES: u64 = 64;

/// Slots of the write-stamp table for a row cache of `row_cache_bytes`: about four per row
/// it can hold (rows weigh ~256 bytes), at least [`MIN_WRITE_STAMP_SLOTS`]. An unsettled
/// cached row is served only while its slot's stamp is older than the row, so a write to
/// any key sharing the slot retires it (settled rows survive that; see `row_cache`), and a
/// precondition on a key whose slot moved re-reads the key. Before settled rows, with fewer
/// slots than cached rows, most rows were retired that way before their next read: linking
/// 1M records, 545,000 of 2.0M reads of existing identities hit a 128 MB cache with 2^20
/// slots, 1.94M a 1 GB one with 2^24 slots.
fn write_stamp_slots(row_cache_bytes: u64) -> usize {
    usize::try_from(row_cache_bytes / WRITE_STAMP_BYTES)
        .unwrap_or(usize::MAX)
        .max(MIN_WRITE_STAMP_SLOTS)
}

/// When a commit counts as acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// After the journal is fsynced (shared between concurrent writers). Survives power loss.
    #[default]
    Sync,
    /// After the journal is handed to the OS; fsynced in the background every
    /// `relaxed_sync_interval`. Survives a process crash, not a power loss.
    Relaxed,
}

/// Options for opening an [`EmbeddedStore`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Acknowledgement rule for commits.
    pub durability: Durability,
    /// Background fsync period in `Relaxed` mode.
    pub relaxed_sync_interval: Duration,
    /// Block cache size in bytes.
    pub cache_bytes: u64,
    /// Row cache size in bytes (values of [`Table::row_cached`] tables; 0 turns it off).
    ///
    /// 512 MiB by default: linking a million records touches 1.2M identities and 250,000
    /// graphs, and with a quarter of that cache (128 MiB) most of their reads went to the
    /// LSM (resolving and linking 26-28 us per record, against 17-18 us at 512 MiB).
    /// Every row in it costs 32 bytes of write stamps besides (see `write_stamp_slots`).
    pub row_cache_bytes: u64,
    /// Threads that flush memtables and compact (fjall's worker pool).
    ///
    /// Four, whatever the core count: fjall sizes the pool by cores (at most four), and with
    /// two its first worker, which leaves compactions to the others, hands a compaction
    /// request back to the queue and takes it again at once for as long as the second
    /// worker is busy: a spinning core for the length of every compaction. On two cores a
    /// batch segment job over a million profiles ran 62.4 s / 70.7 s with two workers and
    /// 54.1 s / 64.5 s with four (BENCHMARKS.md). One worker would not spin, but fjall's
    /// single worker can block sending to its own full queue under heavy writes. Idle
    /// workers cost nothing.
    pub background_threads: usize,
    /// Caps the memtable size of keyspaces created by this open (`None`: 16 MiB for
    /// point-read tables, fjall's 64 MiB for the others). Small memtables make flushes
    /// frequent, which tests of reads racing flushes want.
    pub max_memtable_bytes: Option<u64>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Sync,
            relaxed_sync_interval: Duration::from_millis(100),
            cache_bytes: 256 * 1024 * 1024,
            row_cache_bytes: 512 * 1024 * 1024,
            background_threads: 4,
            max_memtable_bytes: None,
        }
    }
}

struct Inner {
    database: Database,
    keyspaces: Vec<Keyspace>,
    /// Serialises commits; holds the last sequence number handed out per append log, so
    /// appends are numbered in commit order.
    commit_lock: Mutex<Sequences>,
    group_commit: GroupCommit,
    durability: Durability,
    path: PathBuf,
    versions: WriteVersions,
    rows: Option<RowCache>,
    /// Keys ever written to the row-cached tables (with the row cache only): a read of a
    /// key not in it skips the engine.
    written: Option<WrittenKeys>,
    /// What reads see: a fjall snapshot taken after the last commit was applied (see
    /// [`Inner::read`]), replaced by every commit under the commit lock.
    view: RwLock<fjall::Snapshot>,
}

impl Inner {
    /// A point read that sees whole commits only.
    ///
    /// fjall's `Keyspace::get` reads at the newest sequence number, so it can see part of a
    /// batch that is still being applied: an identity's new pointer without the graph it
    /// points at (lookups answered 500 under concurrent ingestion). fjall's own visible
    /// sequence number is not enough either: a memtable flush registers its tables under a
    /// sequence number of its own and publishes it as visible, even while a batch with a
    /// lower number is still being applied (`tests/atomic_visibility.rs` failed whenever a
    /// memtable was flushed mid-test). So reads go through [`Inner::view`], a snapshot taken
    /// under the commit lock right after a commit's batch is in, when no batch is in flight;
    /// being registered with fjall, it also keeps the versions it reads from being collected.
    fn read(&self, table: Table, key: &[u8]) -> Result<Option<fjall::UserValue>> {
        let view = self.view.read().unwrap_or_else(PoisonError::into_inner);
        Ok(view.get(self.keyspace(table), key)?)
    }

    /// A snapshot of what reads see, for a scan.
    fn snapshot(&self) -> fjall::Snapshot {
        self.view
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Makes everything applied so far visible to reads. Callers hold the commit lock, so
    /// no batch is in flight.
    fn refresh_view(&self) {
        let fresh = self.database.snapshot();
        *self.view.write().unwrap_or_else(PoisonError::into_inner) = fresh;
    }

    fn keyspace(&self, table: Table) -> &Keyspace {
        // Every table has a keyspace: `open` creates them from `Table::ALL` in index order.
        #[allow(clippy::indexing_slicing)]
        &self.keyspaces[table.index()]
    }

    fn sync(&self) -> Result<()> {
        self.database
            .persist(PersistMode::SyncAll)
            .map_err(Error::from)
    }
}

/// Options of a newly created keyspace (fjall keeps them with the keyspace: a store created
/// earlier keeps its own).
///
/// Index blocks are pinned in memory on every level, as RocksDB keeps index blocks in its
/// heap by default. fjall pins only L0 and L1 and reads deeper levels' whole-table index
/// blocks through the block cache, so once the data outgrows the cache every lookup or scan
/// read and checksummed a table's entire index (a batch segment job over a million profiles
/// spent 45% of its time there). A pinned index costs about 1/100 of the data it indexes;
/// the deepest levels use partitioned indexes whose top level alone is pinned.
///
/// Point-read tables (the row-cached ones) get memtables of [`POINT_READ_MEMTABLE_BYTES`]
/// rather than fjall's 64 MiB: every read that misses the row cache and every write walks
/// the memtable's skip list, one cache miss per step, and a smaller list is shallower and
/// stays in the CPU's cache (linking 1M records: commit 12.0 -> 10.2 us per record).
fn keyspace_options(table: Table, max_memtable_bytes: Option<u64>) -> KeyspaceCreateOptions {
    let options =
        KeyspaceCreateOptions::default().index_block_pinning_policy(PinningPolicy::all(true));
    let memtable = match (table.row_cached(), max_memtable_bytes) {
        (true, cap) => Some(cap.map_or(POINT_READ_MEMTABLE_BYTES, |cap| {
            cap.min(POINT_READ_MEMTABLE_BYTES)
        })),
        (false, cap) => cap,
    };
    match memtable {
        Some(bytes) => options.max_memtable_size(bytes),
        None => options,
    }
}

/// Memtable size of point-read tables.
const POINT_READ_MEMTABLE_BYTES: u64 = 16 * 1024 * 1024;

/// The default storage backend: fjall (pure-Rust LSM tree) in a local directory.
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
    // Held for their Drop: the relaxed-mode sync thread and the scan of stored keys into
    // `Inner::written`, stopped and joined with the last handle.
    _background_sync: Arc<StoreThread>,
    _key_scan: Arc<StoreThread>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.inner.path)
            .field("durability", &self.inner.durability)
            .finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store in `path`, recovering from the journal after a
    /// crash.
    pub fn open(path: &Path, options: StoreOptions) -> Result<Self> {
        std::fs::create_dir_all(path)
            .map_err(|e| Error::Engine(format!("create {path:?}: {e}")))?;
        let database = Database::builder(path)
            .cache_size(options.cache_bytes)
            .worker_threads(options.background_threads.max(1))
            .open()?;
        let keyspaces = Table::ALL
            .iter()
            .map(|table| {
                database.keyspace(table.name(), || {
                    keyspace_options(*table, options.max_memtable_bytes)
                })
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let database_snapshot = database.snapshot();
        let rows = RowCache::new(options.row_cache_bytes);
        let written = rows.as_ref().map(|_| {
            WrittenKeys::for_keys(
                row_cached_keys(&keyspaces),
                options.row_cache_bytes / WRITE_STAMP_BYTES,
            )
        });
        let inner = Arc::new(Inner {
            database,
            keyspaces,
            commit_lock: Mutex::new(Sequences::default()),
            group_commit: GroupCommit::default(),
            durability: options.durability,
            path: path.to_owned(),
            versions: WriteVersions::new(write_stamp_slots(options.row_cache_bytes)),
            rows,
            written,
            view: RwLock::new(database_snapshot),
        });
        let store = Self {
            _background_sync: Arc::new(StoreThread::background_sync(&inner, &options)),
            _key_scan: Arc::new(StoreThread::key_scan(&inner)),
            inner,
        };
        store.check_format_version()?;
        tracing::info!(path = %path.display(), durability = ?options.durability, "store opened");
        Ok(store)
    }

    /// Whether the keys stored before the open are all in the filter that lets reads of
    /// keys never written skip the engine (it is scanned in the background; tests wait).
    #[doc(hidden)]
    pub fn stored_keys_scanned(&self) -> bool {
        self.inner
            .written
            .as_ref()
            .is_some_and(WrittenKeys::is_complete)
    }

    /// How many times the filter of written keys has grown (tests wait for it).
    #[doc(hidden)]
    pub fn written_keys_generation(&self) -> usize {
        self.inner
            .written
            .as_ref()
            .map_or(0, WrittenKeys::current_generation)
    }

    /// Whether a read of `key` would be answered "absent" by the filter of written keys,
    /// without the engine (tests check that a grown filter still does).
    #[doc(hidden)]
    pub fn known_unwritten(&self, table: Table, key: &Key) -> bool {
        self.inner
            .written
            .as_ref()
            .is_some_and(|written| written.surely_unwritten(row_hash(table, key.as_bytes())))
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn check_format_version(&self) -> Result<()> {
        let key = Key::builder(&Scope::System).str("format_version").finish();
        match self.get(Table::Meta, &key)? {
            Some(bytes) => {
                let found = <[u8; 4]>::try_from(bytes.as_slice())
                    .map(u32::from_be_bytes)
                    .map_err(|_| Error::Engine("format version record is malformed".into()))?;
                if found > FORMAT_VERSION {
                    return Err(Error::UnsupportedFormat {
                        found,
                        supported: FORMAT_VERSION,
                    });
                }
                Ok(())
            }
            None => {
                let mut batch = WriteBatch::new();
                batch.expect(Table::Meta, &key, None);
                batch.put(Table::Meta, &key, FORMAT_VERSION.to_be_bytes().to_vec());
                self.commit(batch).map(drop)
            }
        }
    }

    /// Runs under the commit lock, so no stamp moves while it looks.
    fn check_preconditions(&self, batch: &WriteBatch) -> Result<()> {
        for check in batch.checks() {
            if let Some(read_at) = check.read_at {
                if self
                    .inner
                    .versions
                    .unchanged_since(check.table, check.key.as_bytes(), read_at)
                {
                    continue;
                }
            }
            let current = self.inner.keyspace(check.table).get(check.key.as_bytes())?;
            if current.as_deref() != check.expected.as_deref() {
                return Err(Error::Conflict { table: check.table });
            }
        }
        Ok(())
    }
}

impl Store for EmbeddedStore {
    fn get(&self, table: Table, key: &Key) -> Result<Option<Vec<u8>>> {
        let rows = match &self.inner.rows {
            Some(rows) if table.row_cached() => rows,
            _ => {
                return Ok(self
                    .inner
                    .read(table, key.as_bytes())?
                    .map(|value| value.to_vec()))
            }
        };
        let versions = &self.inner.versions;
        if let Some(value) = rows.get(versions, table, key.as_bytes()) {
            return Ok(value.map(|v| v.to_vec()));
        }
        // Noted before the read: a commit racing it leaves a stamp above this, so the row
        // is never served stale. And before the filter of written keys is asked: every
        // commit up to this one added its keys before publishing.
        let read_at = versions.published();
        let unwritten = self
            .inner
            .written
            .as_ref()
            .is_some_and(|written| written.surely_unwritten(row_hash(table, key.as_bytes())));
        let value = match unwritten {
            true => None,
            false => self.inner.read(table, key.as_bytes())?,
        };
        let shared = value.as_deref().map(Arc::<[u8]>::from);
        let owned = shared.as_deref().map(<[u8]>::to_vec);
        rows.fill_read(versions, table, key.as_bytes(), shared, read_at);
        Ok(owned)
    }

    fn scan(
        &self,
        table: Table,
        range: &ScanRange,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<Entry>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let Some((lower, upper)) = range.interval(direction) else {
            return Ok(Vec::new());
        };
        let keyspace = self.inner.keyspace(table);
        let prefix = range.prefix.as_bytes();
        // Through a snapshot, so the scan sees whole commits (see `Inner::read`).
        let iter = self.inner.snapshot().range::<&[u8], _>(
            keyspace,
            (
                lower.as_ref().map(Vec::as_slice),
                upper.as_ref().map(Vec::as_slice),
            ),
        );
        let mut entries = Vec::new();
        let mut push = |guard: fjall::Guard| -> Result<bool> {
            let (key, value) = guard.into_inner()?;
            if !key.starts_with(prefix) {
                return Ok(false);
            }
            entries.push(Entry {
                key: key.to_vec(),
                value: value.to_vec(),
            });
            Ok(entries.len() < limit)
        };
        match direction {
            Direction::Forward => {
                for guard in iter {
                    if !push(guard)? {
                        break;
                    }
                }
            }
            Direction::Reverse => {
                for guard in iter.rev() {
                    if !push(guard)? {
                        break;
                    }
                }
            }
        }
        Ok(entries)
    }

    fn commit(&self, batch: WriteBatch) -> Result<Committed> {
        if self.inner.group_commit.is_failed() {
            return Err(Error::Poisoned);
        }
        if batch.is_empty() && batch.checks().is_empty() {
            return Ok(Committed::default());
        }
        let mut committed = Committed::default();
        let derived = batch.derived;
        let seq = {
            let mut sequences = self
                .inner
                .commit_lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            self.check_preconditions(&batch)?;
            let versions = &self.inner.versions;
            let version = versions.next();
            committed.version = Some(version);
            // Values of row-cached tables, written through once the engine has the batch.
            // Sized up front: grown by doubling, a large batch's vectors kept reaching for
            // fresh pages (a page fault and a zeroed huge page each).
            let mut written: Vec<WrittenRow> = Vec::with_capacity(batch.ops.len());
            let rows = self.inner.rows.as_ref();
            // Also adds the key to the written keys, before the engine has it.
            let cached = |table: Table, key: &Key| {
                if !table.row_cached() {
                    return false;
                }
                if let Some(written) = &self.inner.written {
                    written.insert(row_hash(table, key.as_bytes()));
                }
                rows.is_some_and(|rows| rows.holds_stamped(table, key.as_bytes()))
            };
            // What `Database::batch` makes (each commit hands its journal bytes to the OS;
            // `sync` makes them durable), with room for every op.
            let mut engine_batch =
                fjall::OwnedWriteBatch::with_capacity(self.inner.database.clone(), batch.ops.len())
                    .durability(Some(PersistMode::Buffer));
            // Numbers are reserved on a copy and published only after the engine accepted the
            // batch, so a failed commit leaves no gap-free promise broken.
            let mut reserved = Vec::new();
            for op in batch.ops {
                match op {
                    Op::Append {
                        table,
                        prefix,
                        value,
                    } => {
                        let last = match reserved
                            .iter()
                            .rev()
                            .find(|(t, p, _): &&(Table, Key, u64)| *t == table && *p == prefix)
                        {
                            Some((_, _, seq)) => *seq,
                            None => sequences.last(self, table, &prefix)?,
                        };
                        let seq = last + 1;
                        let key = Key::extend(&prefix).u64(seq).finish();
                        versions.stamp(table, key.as_bytes(), version);
                        if cached(table, &key) {
                            written.push((
                                table,
                                key.as_bytes().to_vec(),
                                Some(value.as_slice().into()),
                            ));
                        }
                        engine_batch.insert(self.inner.keyspace(table), key.into_bytes(), value);
                        committed.appended.push(seq);
                        reserved.push((table, prefix, seq));
                    }
                    Op::Put { table, key, value } => {
                        versions.stamp(table, key.as_bytes(), version);
                        if cached(table, &key) {
                            written.push((
                                table,
                                key.as_bytes().to_vec(),
                                Some(value.as_slice().into()),
                            ));
                        }
                        engine_batch.insert(self.inner.keyspace(table), key.into_bytes(), value)
                    }
                    Op::Delete { table, key } => {
                        versions.stamp(table, key.as_bytes(), version);
                        if cached(table, &key) {
                            written.push((table, key.as_bytes().to_vec(), None));
                        }
                        engine_batch.remove(self.inner.keyspace(table), key.into_bytes())
                    }
                }
            }
            let applied = engine_batch.commit();
            // Before the write-through and the publication: a reader that finds this commit
            // in the row cache or published must find all of it in the engine as well.
            self.inner.refresh_view();
            if applied.is_ok() {
                if let Some(rows) = rows {
                    for (table, key, value) in written {
                        rows.write_through(table, &key, value, version);
                    }
                }
            }
            // Published even when the engine refused the batch: its stamps only make the
            // keys look newer than they are.
            versions.publish(version);
            applied?;
            for (table, prefix, seq) in reserved {
                sequences.set(table, prefix, seq);
            }
            self.inner.group_commit.record_write()
        };
        match self.inner.durability {
            Durability::Sync if !derived => self
                .inner
                .group_commit
                .wait_durable(seq, || self.inner.sync())?,
            Durability::Sync | Durability::Relaxed => {}
        }
        Ok(committed)
    }

    fn flush(&self) -> Result<()> {
        let seq = self.inner.group_commit.record_write();
        self.inner
            .group_commit
            .wait_durable(seq, || self.inner.sync())
    }

    fn check_ready(&self) -> Result<()> {
        if self.inner.group_commit.is_failed() {
            return Err(Error::Poisoned);
        }
        Ok(())
    }

    fn read_version(&self) -> Option<u64> {
        Some(self.inner.versions.published())
    }
}

/// Last sequence number per append log, loaded lazily from the log's last key.
#[derive(Debug, Default)]
struct Sequences {
    last: std::collections::HashMap<(Table, Key), u64>,
}

impl Sequences {
    fn last(&mut self, store: &EmbeddedStore, table: Table, prefix: &Key) -> Result<u64> {
        if let Some(seq) = self.last.get(&(table, prefix.clone())) {
            return Ok(*seq);
        }
        let tail = store.scan(
            table,
            &ScanRange::prefix(prefix.clone()),
            Direction::Reverse,
            1,
        )?;
        let seq = match tail.first() {
            Some(entry) => {
                let rest = entry
                    .key
                    .get(prefix.as_bytes().len()..)
                    .ok_or(Error::MalformedKey {
                        offset: 0,
                        reason: "log key shorter than its prefix",
                    })?;
                crate::key::KeyReader::new(rest).u64()?
            }
            None => 0,
        };
        self.last.insert((table, prefix.clone()), seq);
        Ok(seq)
    }

    fn set(&mut self, table: Table, prefix: Key, seq: u64) {
        self.last.insert((table, prefix), seq);
    }
}

impl Inner {
    /// Adds every key stored in the row-cached tables to generation `generation` of
    /// `written`, then makes reads ask it. Keys written meanwhile are added by their commits,
    /// so any snapshot taken after the generation was made serves. On an engine error the
    /// generation stays incomplete: never asked.
    fn scan_written_keys(&self, generation: usize, stop: &AtomicBool) {
        let Some(written) = &self.written else {
            return;
        };
        let started = std::time::Instant::now();
        let snapshot = self.database.snapshot();
        let mut keys = 0_u64;
        for table in Table::ALL.iter().filter(|table| table.row_cached()) {
            for guard in snapshot.iter(self.keyspace(*table)) {
                if keys.is_multiple_of(4096) && stop.load(Ordering::Relaxed) {
                    return;
                }
                match guard.key() {
                    Ok(key) => written.add_stored(generation, row_hash(*table, &key)),
                    Err(error) => {
                        tracing::warn!(%error, generation, "scan of stored keys failed; reads go on asking the filter of written keys they asked before (the engine, before the first scan)");
                        return;
                    }
                }
                keys += 1;
            }
        }
        written.complete(generation);
        tracing::info!(
            keys,
            generation,
            capacity = written.capacity(),
            elapsed_ms = started.elapsed().as_millis(),
            "stored keys scanned: reads of keys never written skip the engine"
        );
    }

    /// Replaces a filter of written keys that holds more keys than it was sized for with a
    /// larger one, filled by a scan.
    fn grow_written_keys(&self, stop: &AtomicBool) {
        let Some(written) = &self.written else {
            return;
        };
        let generation = {
            // Under the commit lock: every commit before is applied (so in the scan's
            // snapshot), every commit after adds its keys to the new generation too.
            let _commits = self
                .commit_lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            written.grow(row_cached_keys(&self.keyspaces))
        };
        // `None` is not reached: `wants_growth` asks for a generation only while one is left.
        if let Some(generation) = generation {
            self.scan_written_keys(generation, stop);
        }
    }
}

/// Keys the row-cached tables hold, roughly (`keyspaces` in [`Table::ALL`]'s order).
fn row_cached_keys(keyspaces: &[Keyspace]) -> u64 {
    Table::ALL
        .iter()
        .filter(|table| table.row_cached())
        .filter_map(|table| keyspaces.get(table.index()))
        .map(|keyspace| u64::try_from(keyspace.approximate_len()).unwrap_or(u64::MAX))
        .fold(0_u64, u64::saturating_add)
}

/// A background thread of the store; told to stop, woken and joined when the last handle
/// drops.
struct StoreThread {
    stop: Arc<AtomicBool>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl StoreThread {
    /// Runs `run` on a thread named `name` with the stop flag (it checks the flag and may
    /// park: dropping the handle unparks it). A thread that cannot start is logged.
    fn spawn(name: &str, run: impl FnOnce(&AtomicBool) + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = match std::thread::Builder::new()
            .name(name.into())
            .spawn(move || run(&flag))
        {
            Ok(handle) => Some(handle),
            Err(error) => {
                tracing::error!(%error, thread = name, "could not start a store thread");
                None
            }
        };
        Self {
            stop,
            handle: Mutex::new(handle),
        }
    }

    fn none() -> Self {
        Self {
            stop: Arc::new(AtomicBool::new(false)),
            handle: Mutex::new(None),
        }
    }

    /// The `Relaxed` mode's periodic fsync thread.
    fn background_sync(inner: &Arc<Inner>, options: &StoreOptions) -> Self {
        if options.durability != Durability::Relaxed {
            return Self::none();
        }
        let inner = Arc::downgrade(inner);
        let interval = options.relaxed_sync_interval;
        Self::spawn("tessera-store-sync", move |stop| {
            while !stop.load(Ordering::Relaxed) {
                std::thread::park_timeout(interval);
                let Some(inner) = inner.upgrade() else { return };
                let seq = inner.group_commit.record_write();
                if inner
                    .group_commit
                    .wait_durable(seq, || inner.sync())
                    .is_err()
                {
                    return;
                }
            }
        })
    }

    /// The scan that adds the keys stored before the open to [`Inner::written`], in the
    /// background so that a large store opens at once; then, every
    /// [`WRITTEN_KEYS_CHECK`], the growth of a filter that holds more keys than it was
    /// sized for.
    fn key_scan(inner: &Arc<Inner>) -> Self {
        if inner.written.is_none() {
            return Self::none();
        }
        let inner = Arc::downgrade(inner);
        Self::spawn("tessera-store-keys", move |stop| {
            match inner.upgrade() {
                Some(inner) => inner.scan_written_keys(0, stop),
                None => return,
            }
            while !stop.load(Ordering::Relaxed) {
                std::thread::park_timeout(WRITTEN_KEYS_CHECK);
                let Some(inner) = inner.upgrade() else { return };
                if inner
                    .written
                    .as_ref()
                    .is_some_and(WrittenKeys::wants_growth)
                {
                    inner.grow_written_keys(stop);
                }
            }
        })
    }
}

/// How often the key-scan thread checks whether the filter of written keys must grow.
const WRITTEN_KEYS_CHECK: Duration = Duration::from_secs(1);

impl Drop for StoreThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let handle = self
            .handle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            handle.thread().unpark();
            // Never panic in Drop: a panicked thread has already logged its failure (a
            // panicked key scan leaves the filter incomplete, unused).
            let _ = handle.join();
        }
    }
}
