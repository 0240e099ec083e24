//! The retention sweeper: deletes experience events that outlived their dataset's profile
//! TTL (`extensions.adobe_unifiedProfile.rowExpiration.ttlValue`).
//!
//! Reads hide expired events on their own (the events route passes each dataset's cutoff to
//! `tessera_profile::event_query`), so the sweeper only reclaims space; it can lag without
//! anyone seeing an expired event. It runs on its own thread: at start (so a restart resumes
//! work a crash interrupted), whenever a dataset's TTL is set or changed (AEP deletes events
//! already past a new TTL "immediately"), and every `[retention] sweep_interval_secs`.
//!
//! One pass walks the retention index (`tessera_ingest::dataset::all_event_ttls`) and, for
//! each dataset, runs [`tessera_profile::purge`] with `Target::Expired` and the cutoff
//! computed once at the start of that dataset's purge: chunks of at most [`CHUNK`] keys, each
//! one atomic batch with its deletions, view invalidations and graph-pointer preconditions.
//! Progress is not persisted: a pass interrupted by a restart is simply run again, and
//! deleting what is already deleted is a no-op.

use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

use tessera_ingest::dataset::{self, RetentionEntry};
use tessera_profile::purge::{self, Progress, Target};
use tessera_store::Store;

pub use crate::system_jobs::CHUNK;

/// Default time between two periodic sweeps.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(600);
/// Retention-index entries read per scan.
const INDEX_PAGE: usize = 256;
/// Consecutive commit conflicts (ingestion touching the same identities) after which a
/// dataset is left for the next pass instead of spinning.
const MAX_CONFLICTS: usize = 50;

/// Why a sweep pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] tessera_store::Error),
    /// The catalog's retention index could not be read.
    #[error(transparent)]
    Catalog(#[from] tessera_ingest::Error),
}

/// The handle request handlers hold: it wakes the sweeper.
#[derive(Clone)]
pub struct Retention {
    store: Arc<dyn Store>,
    kick: SyncSender<()>,
    chunk: usize,
}

impl std::fmt::Debug for Retention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retention")
            .field("chunk", &self.chunk)
            .finish_non_exhaustive()
    }
}

impl Retention {
    /// The handle and the receiver its sweeper waits on (see [`spawn`]).
    pub fn new(store: Arc<dyn Store>) -> (Self, Receiver<()>) {
        let (kick, wake) = sync_channel(1);
        (
            Self {
                store,
                kick,
                chunk: CHUNK,
            },
            wake,
        )
    }

    /// Asks for a sweep now (a TTL was set or shortened).
    pub fn kick(&self) {
        // A full channel already holds a wake-up; nothing is lost by dropping this one.
        let _ = self.kick.try_send(());
    }

    /// The sweeping side, without the wake-up handle (the sweeper thread must not keep its
    /// own channel open).
    pub fn sweeper(&self) -> Sweeper {
        Sweeper {
            store: Arc::clone(&self.store),
            chunk: self.chunk,
        }
    }
}

/// Deletes expired events.
#[derive(Clone)]
pub struct Sweeper {
    store: Arc<dyn Store>,
    chunk: usize,
}

impl Sweeper {
    /// A sweeper over `store` deleting at most `chunk` keys per commit (tests and tools).
    pub fn new(store: Arc<dyn Store>, chunk: usize) -> Self {
        Self {
            store,
            chunk: chunk.max(1),
        }
    }

    /// One pass over every dataset with a profile TTL; returns the events deleted. Stops
    /// between chunks once `keep_going` says so.
    pub fn sweep(&self, keep_going: &dyn Fn() -> bool) -> Result<u64, SweepError> {
        let store = self.store.as_ref();
        let mut deleted = 0;
        let mut after = None;
        loop {
            let (entries, last) = dataset::all_event_ttls(store, after, INDEX_PAGE)?;
            let full = entries.len() == INDEX_PAGE;
            for entry in entries {
                if !keep_going() {
                    return Ok(deleted);
                }
                let _span = tracing::info_span!(
                    "retention_sweep",
                    org = %entry.tenant.org,
                    sandbox = %entry.tenant.sandbox,
                    dataset = %entry.dataset,
                )
                .entered();
                deleted += self.sweep_dataset(&entry, keep_going)?;
            }
            if !full {
                return Ok(deleted);
            }
            after = last;
        }
    }

    /// Deletes one dataset's expired events; corrupt data is logged and skipped (the rest of
    /// the pass still runs), store failures end the pass.
    fn sweep_dataset(
        &self,
        entry: &RetentionEntry,
        keep_going: &dyn Fn() -> bool,
    ) -> Result<u64, SweepError> {
        let store = self.store.as_ref();
        if !dataset::exists(store, &entry.tenant, &entry.dataset)? {
            // Its sandbox was deleted: the index entry is all that is left.
            dataset::forget_retention(store, &entry.tenant, &entry.dataset)?;
            return Ok(0);
        }
        let before_ms = entry.ttl.cutoff_ms(crate::system_jobs::now_ms());
        let target = Target::Expired {
            dataset: entry.dataset.clone(),
            before_ms,
        };
        let mut progress = Progress::start(&target);
        let mut conflicts = 0;
        while !progress.is_done() && keep_going() {
            let chunk =
                match purge::plan_chunk(store, &entry.tenant, &target, &progress, self.chunk) {
                    Ok(chunk) => chunk,
                    Err(tessera_profile::Error::Store(error)) => return Err(error.into()),
                    Err(error) => {
                        // Data this build cannot read: retrying every pass would fail the
                        // same way, so a human must look.
                        tracing::error!(%error, "retention sweep cannot read the dataset's events");
                        return Ok(progress.records);
                    }
                };
            if !chunk.batch.is_empty() {
                match store.commit(chunk.batch) {
                    Ok(_) => conflicts = 0,
                    Err(tessera_store::Error::Conflict { .. }) => {
                        conflicts += 1;
                        if conflicts >= MAX_CONFLICTS {
                            tracing::warn!(
                                conflicts,
                                "retention sweep keeps conflicting; will retry"
                            );
                            return Ok(progress.records);
                        }
                        // Plan the same chunk again from the unchanged progress.
                        continue;
                    }
                    Err(other) => return Err(other.into()),
                }
            }
            progress = chunk.progress;
        }
        if progress.records > 0 {
            tracing::info!(
                deleted = progress.records,
                ttl = %entry.ttl,
                before_ms,
                "expired events deleted"
            );
        }
        Ok(progress.records)
    }
}

/// Starts the sweeper thread: a pass at start, when kicked, and every `interval`; it ends
/// when every [`Retention`] handle is dropped, stopping between chunks.
pub fn spawn(
    retention: Retention,
    wake: Receiver<()>,
    interval: Duration,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let sweeper = retention.sweeper();
    drop(retention);
    std::thread::Builder::new()
        .name("tessera-retention".into())
        .spawn(move || {
            let open = std::cell::Cell::new(true);
            // A kick seen during a pass may concern a dataset the pass already visited.
            let kicked = std::cell::Cell::new(false);
            let keep_going = || {
                match wake.try_recv() {
                    Ok(()) => kicked.set(true),
                    Err(TryRecvError::Disconnected) => open.set(false),
                    Err(TryRecvError::Empty) => {}
                }
                open.get()
            };
            loop {
                // Logged once here; the next pass retries.
                if let Err(error) = sweeper.sweep(&keep_going) {
                    tracing::error!(%error, "retention sweep failed; will retry");
                }
                if !open.get() {
                    return;
                }
                if kicked.replace(false) {
                    continue;
                }
                match wake.recv_timeout(interval) {
                    Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
        })
}
