//! Profile system jobs (AEP `/system/jobs`): asynchronous deletion of a dataset's profile
//! data or of one batch's events, and the background worker that runs them.
//!
//! Stored in `Table::Jobs` (a persisted format: fields are only ever added, with defaults):
//! - `tenant, "sysjob", id` → the [`SystemJob`] document;
//! - `tenant, "sysjob-target", "dataset"|"batch", target id` → job id, while a job on that
//!   target is unfinished: creating a second one expects it absent, so two concurrent
//!   requests cannot both start one (AEP answers 422);
//! - `system, "sysjob-queue", org, sandbox, id` → nothing, while the job is unfinished, so the
//!   worker finds work without scanning every tenant.
//!
//! The deletion itself is [`tessera_profile::purge`]: each chunk's deletions and the job's new
//! progress commit in one batch that also expects the job document unchanged, so a restart
//! resumes exactly after the last committed chunk, and a cancel (the document deleted) stops
//! the worker at its next commit. HTTP shapes live in `routes::system_jobs`.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use tessera_model::Tenant;
use tessera_profile::purge::{self, Progress, Target};
use tessera_store::{Direction, Key, KeyReader, ScanRange, Scope, Store, Table, WriteBatch};

/// Keys read and deleted per atomic chunk: big enough to amortise the commit, small enough
/// that one chunk's batch stays a few hundred kilobytes.
pub const CHUNK: usize = 500;
/// Consecutive commit conflicts (concurrent ingestion touching the same identities) after
/// which a pass leaves the job for the next one instead of spinning.
const MAX_CONFLICTS: usize = 50;

/// Why a system-job operation failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] tessera_store::Error),
    /// Reading or deleting profile data failed.
    #[error(transparent)]
    Profile(#[from] tessera_profile::Error),
    /// No job with this id in the sandbox.
    #[error("system job {id} does not exist")]
    NotFound {
        /// Job id.
        id: String,
    },
    /// An unfinished job already targets the same dataset or batch.
    #[error("an unfinished delete job {job} already exists for {target}")]
    AlreadyExists {
        /// `dataset X` or `batch X`.
        target: String,
        /// The unfinished job.
        job: String,
    },
    /// The target is not one a system job deletes (retention purges run in the sweeper).
    #[error("{target} cannot be deleted by a system job")]
    Unsupported {
        /// What was asked.
        target: String,
    },
    /// A stored job document does not decode.
    #[error("stored system job is unreadable: {0}")]
    Corrupt(String),
}

/// Result alias for system jobs.
pub type Result<T> = std::result::Result<T, JobError>;

/// AEP's system-job statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    /// Accepted, not started.
    New,
    /// Deleting.
    Processing,
    /// Done.
    Completed,
    /// Stopped by an error.
    Error,
}

impl JobStatus {
    /// Whether the job will not change any more.
    pub fn is_finished(self) -> bool {
        matches!(self, JobStatus::Completed | JobStatus::Error)
    }
}

/// A stored system job.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemJob {
    /// Job id (UUID).
    pub id: String,
    /// Organisation.
    pub org: String,
    /// Sandbox.
    pub sandbox: String,
    /// The dataset whose data is deleted (for batch jobs: the batch's dataset).
    pub dataset_id: String,
    /// The batch whose events are deleted (batch jobs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
    /// Status.
    pub status: JobStatus,
    /// Created (ms).
    pub created_ms: i64,
    /// Last change (ms).
    pub updated_ms: i64,
    /// When processing started (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<i64>,
    /// Where the deletion stands.
    #[serde(default)]
    pub progress: Progress,
    /// Why it failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl SystemJob {
    /// What the job deletes.
    pub fn target(&self) -> Target {
        match &self.batch_id {
            Some(batch) => Target::Batch {
                dataset: self.dataset_id.clone(),
                batch: batch.clone(),
            },
            None => Target::Dataset {
                dataset: self.dataset_id.clone(),
            },
        }
    }

    fn tenant(&self) -> Result<Tenant> {
        Tenant::parse(&self.org, &self.sandbox).map_err(|e| JobError::Corrupt(e.to_string()))
    }
}

fn job_prefix(tenant: &Tenant) -> Key {
    Key::tenant(tenant).str("sysjob").finish()
}

fn job_key(tenant: &Tenant, id: &str) -> Key {
    Key::extend(&job_prefix(tenant)).str(id).finish()
}

fn guard_key(tenant: &Tenant, target: &Target) -> Key {
    let builder = Key::tenant(tenant).str("sysjob-target");
    match target {
        Target::Dataset { dataset } => builder.str("dataset").str(dataset).finish(),
        Target::Batch { batch, .. } => builder.str("batch").str(batch).finish(),
        // Never created (see `SystemJobs::create`); a distinct key all the same.
        Target::Expired { dataset, .. } => builder.str("expired").str(dataset).finish(),
    }
}

fn queue_prefix() -> Key {
    Key::builder(&Scope::System).str("sysjob-queue").finish()
}

fn queue_key(tenant: &Tenant, id: &str) -> Key {
    Key::extend(&queue_prefix())
        .str(tenant.org.as_str())
        .str(tenant.sandbox.as_str())
        .str(id)
        .finish()
}

fn decode(bytes: &[u8]) -> Result<SystemJob> {
    serde_json::from_slice(bytes).map_err(|e| JobError::Corrupt(e.to_string()))
}

fn encode(job: &SystemJob) -> Result<Vec<u8>> {
    serde_json::to_vec(job).map_err(|e| JobError::Corrupt(e.to_string()))
}

fn describe(target: &Target) -> String {
    match target {
        Target::Dataset { dataset } => format!("dataset {dataset}"),
        Target::Batch { batch, .. } => format!("batch {batch}"),
        Target::Expired { dataset, before_ms } => {
            format!("events of dataset {dataset} before {before_ms}")
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default(),
    )
    .unwrap_or(i64::MAX)
}

/// The system-job service: create, read, cancel, and the worker's processing.
#[derive(Clone)]
pub struct SystemJobs {
    store: Arc<dyn Store>,
    kick: SyncSender<()>,
    chunk: usize,
}

impl std::fmt::Debug for SystemJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemJobs")
            .field("chunk", &self.chunk)
            .finish_non_exhaustive()
    }
}

impl SystemJobs {
    /// The service and the receiver its worker waits on (see [`spawn`]).
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

    /// The same service deleting at most `chunk` keys per commit (tests of resumption).
    pub fn with_chunk(mut self, chunk: usize) -> Self {
        self.chunk = chunk.max(1);
        self
    }

    /// Accepts a delete job on `target`; the worker is woken to run it.
    pub fn create(&self, tenant: &Tenant, target: Target) -> Result<SystemJob> {
        let store = self.store.as_ref();
        let guard = guard_key(tenant, &target);
        if let Some(job) = store.get(Table::Jobs, &guard)? {
            return Err(JobError::AlreadyExists {
                target: describe(&target),
                job: String::from_utf8_lossy(&job).into_owned(),
            });
        }
        let now = now_ms();
        let (dataset_id, batch_id) = match &target {
            Target::Dataset { dataset } => (dataset.clone(), None),
            Target::Batch { dataset, batch } => (dataset.clone(), Some(batch.clone())),
            // A job document could not record it (`SystemJob::target` would read it back as
            // a whole-dataset delete), so refuse rather than widen a deletion.
            Target::Expired { .. } => {
                return Err(JobError::Unsupported {
                    target: describe(&target),
                })
            }
        };
        let job = SystemJob {
            id: uuid::Uuid::new_v4().to_string(),
            org: tenant.org.to_string(),
            sandbox: tenant.sandbox.to_string(),
            dataset_id,
            batch_id,
            status: JobStatus::New,
            created_ms: now,
            updated_ms: now,
            started_ms: None,
            progress: Progress::default(),
            error: None,
        };
        let mut batch = WriteBatch::new();
        batch
            .expect(Table::Jobs, &guard, None)
            .put(Table::Jobs, &guard, job.id.clone().into_bytes())
            .put(Table::Jobs, &job_key(tenant, &job.id), encode(&job)?)
            .put(Table::Jobs, &queue_key(tenant, &job.id), Vec::new());
        match store.commit(batch) {
            Ok(_) => {}
            // The other request won the race for the same target.
            Err(tessera_store::Error::Conflict { .. }) => {
                return Err(JobError::AlreadyExists {
                    target: describe(&target),
                    job: "(concurrent request)".into(),
                })
            }
            Err(other) => return Err(other.into()),
        }
        tracing::info!(job = %job.id, target = %describe(&target), "system job accepted");
        // A full channel already holds a wake-up; nothing is lost by dropping this one.
        let _ = self.kick.try_send(());
        Ok(job)
    }

    /// One job.
    pub fn get(&self, tenant: &Tenant, id: &str) -> Result<SystemJob> {
        match self.store.get(Table::Jobs, &job_key(tenant, id))? {
            Some(bytes) => decode(&bytes),
            None => Err(JobError::NotFound { id: id.to_owned() }),
        }
    }

    /// Every job of the sandbox, oldest first (jobs are few: an operator's deletions).
    pub fn list(&self, tenant: &Tenant) -> Result<Vec<SystemJob>> {
        let mut jobs =
            crate::job_worker::read_all(self.store.as_ref(), job_prefix(tenant), decode)?;
        jobs.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        Ok(jobs)
    }

    /// Deletes the job record; an unfinished job is cancelled (data already deleted stays
    /// deleted: each chunk was committed on its own).
    pub fn delete(&self, tenant: &Tenant, id: &str) -> Result<()> {
        let job = self.get(tenant, id)?;
        let mut batch = WriteBatch::new();
        batch
            .delete(Table::Jobs, &job_key(tenant, id))
            .delete(Table::Jobs, &queue_key(tenant, id));
        if !job.status.is_finished() {
            batch.delete(Table::Jobs, &guard_key(tenant, &job.target()));
        }
        self.store.commit(batch)?;
        tracing::info!(job = %id, status = ?job.status, "system job deleted");
        Ok(())
    }

    /// The worker side, holding the store but no wake-up handle (the worker thread must not
    /// keep its own channel open).
    pub fn worker(&self) -> Worker {
        Worker {
            store: Arc::clone(&self.store),
            chunk: self.chunk,
        }
    }
}

/// Runs unfinished jobs.
#[derive(Clone)]
pub struct Worker {
    store: Arc<dyn Store>,
    chunk: usize,
}

impl Worker {
    /// Runs every unfinished job until done or until `keep_going` says stop (checked between
    /// chunks); returns how many jobs finished.
    pub fn process_pending(&self, keep_going: &dyn Fn() -> bool) -> Result<usize> {
        let prefix = queue_prefix();
        let queued = self.store.scan(
            Table::Jobs,
            &ScanRange::prefix(prefix),
            Direction::Forward,
            1_000,
        )?;
        let mut finished = 0;
        for row in queued {
            let mut reader = KeyReader::with_scope(&row.key)?.1;
            let _tag = reader.string()?;
            let (org, sandbox, id) = (reader.string()?, reader.string()?, reader.string()?);
            let tenant =
                Tenant::parse(&org, &sandbox).map_err(|e| JobError::Corrupt(e.to_string()))?;
            let _span = tracing::info_span!("system_job", %org, %sandbox, job = %id).entered();
            if self.run(&tenant, &id, keep_going)? {
                finished += 1;
            }
            if !keep_going() {
                break;
            }
        }
        Ok(finished)
    }

    /// Works on one job; `true` once it is finished (or gone).
    fn run(&self, tenant: &Tenant, id: &str, keep_going: &dyn Fn() -> bool) -> Result<bool> {
        let store = self.store.as_ref();
        let key = job_key(tenant, id);
        let mut conflicts = 0;
        loop {
            let Some(bytes) = store.get(Table::Jobs, &key)? else {
                // Cancelled: only the queue entry may be left.
                let mut batch = WriteBatch::new();
                batch.delete(Table::Jobs, &queue_key(tenant, id));
                store.commit(batch)?;
                return Ok(true);
            };
            let mut job = decode(&bytes)?;
            if job.status.is_finished() {
                let mut batch = WriteBatch::new();
                batch.delete(Table::Jobs, &queue_key(tenant, id));
                store.commit(batch)?;
                return Ok(true);
            }
            if !keep_going() {
                return Ok(false);
            }
            let now = now_ms();
            let target = job.target();
            let chunk = match purge::plan_chunk(
                store,
                &job.tenant()?,
                &target,
                &job.progress,
                self.chunk,
            ) {
                Ok(chunk) => chunk,
                Err(tessera_profile::Error::Store(error)) => return Err(error.into()),
                Err(error) => {
                    // Data this build cannot read: the job cannot make progress; a human
                    // must look, so it stops with the reason instead of retrying forever.
                    tracing::error!(%error, "system job failed");
                    job.status = JobStatus::Error;
                    job.error = Some(error.to_string());
                    job.updated_ms = now;
                    self.finish(tenant, &job, bytes)?;
                    return Ok(true);
                }
            };
            let mut batch = chunk.batch;
            if job.started_ms.is_none() {
                job.started_ms = Some(now);
            }
            job.progress = chunk.progress;
            job.updated_ms = now;
            job.status = if job.progress.is_done() {
                JobStatus::Completed
            } else {
                JobStatus::Processing
            };
            batch
                .expect(Table::Jobs, &key, Some(bytes))
                .put(Table::Jobs, &key, encode(&job)?);
            if job.status.is_finished() {
                batch
                    .delete(Table::Jobs, &queue_key(tenant, id))
                    .delete(Table::Jobs, &guard_key(tenant, &target));
            }
            match store.commit(batch) {
                Ok(_) => conflicts = 0,
                Err(tessera_store::Error::Conflict { .. }) => {
                    conflicts += 1;
                    if conflicts >= MAX_CONFLICTS {
                        tracing::warn!(conflicts, "system job keeps conflicting; will retry");
                        return Ok(false);
                    }
                    continue;
                }
                Err(other) => return Err(other.into()),
            }
            if job.status.is_finished() {
                tracing::info!(records = job.progress.records, "system job completed");
                return Ok(true);
            }
        }
    }

    fn finish(&self, tenant: &Tenant, job: &SystemJob, read: Vec<u8>) -> Result<()> {
        let key = job_key(tenant, &job.id);
        let mut batch = WriteBatch::new();
        batch
            .expect(Table::Jobs, &key, Some(read))
            .put(Table::Jobs, &key, encode(job)?)
            .delete(Table::Jobs, &queue_key(tenant, &job.id))
            .delete(Table::Jobs, &guard_key(tenant, &job.target()));
        match self.store.commit(batch) {
            // Cancelled meanwhile: nothing left to record.
            Ok(_) | Err(tessera_store::Error::Conflict { .. }) => Ok(()),
            Err(other) => Err(other.into()),
        }
    }
}

/// Starts the worker thread: it runs unfinished jobs at start (resuming whatever a restart
/// interrupted), when kicked, and every few seconds; it ends when every [`SystemJobs`]
/// handle is dropped, stopping between chunks.
pub fn spawn(jobs: SystemJobs, wake: Receiver<()>) -> std::io::Result<std::thread::JoinHandle<()>> {
    let worker = jobs.worker();
    drop(jobs);
    crate::job_worker::spawn(
        "tessera-system-jobs",
        "system jobs",
        wake,
        move |keep_going| worker.process_pending(keep_going),
    )
}
