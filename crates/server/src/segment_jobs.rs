//! Segment jobs (AEP `/segment/jobs`): batch evaluation of segments over every profile of a
//! sandbox, asynchronous, with AEP's status machine and metrics.
//!
//! Stored in `Table::Jobs`:
//! - `tenant, "segjob", id` → [`SegmentJob`];
//! - `system, "segjob-queue", org, sandbox, id` → nothing, while the job is unfinished, so the
//!   worker finds work (after a restart too) without scanning every tenant.
//!
//! A run is [`tessera_segment::batch::run`]; membership changes reach the change feed as
//! `membership` entries in the same batches. A job interrupted by a restart runs again from
//! the start (evaluation is idempotent up to `realized` turning into `existing` for profiles
//! the first attempt had already evaluated). Cancelling sets `CANCELLING`; the worker stops
//! at its next page and records `CANCELLED`.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tessera_ingest::change_feed;
use tessera_model::Tenant;
use tessera_segment::batch::{self, Change, Metrics, Outcome, Run};
use tessera_store::{Direction, Key, KeyReader, ScanRange, Scope, Store, Table, WriteBatch};

use crate::system_jobs::now_ms;

/// Why a segment-job operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SegmentJobError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] tessera_store::Error),
    /// Segmentation failed.
    #[error(transparent)]
    Segment(#[from] tessera_segment::Error),
    /// Reading merge policies failed.
    #[error(transparent)]
    Profile(#[from] tessera_profile::Error),
    /// No such job.
    #[error("segment job {id} does not exist")]
    NotFound {
        /// Requested id.
        id: String,
    },
    /// The request names no segment, or one that does not exist.
    #[error("{0}")]
    Invalid(String),
    /// A stored job does not decode.
    #[error("stored segment job is unreadable: {0}")]
    Corrupt(String),
}

type Result<T> = std::result::Result<T, SegmentJobError>;

/// AEP's job statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SegmentJobStatus {
    /// Accepted.
    New,
    /// Running.
    Processing,
    /// Done.
    Succeeded,
    /// Stopped by an error.
    Failed,
    /// Cancel requested.
    Cancelling,
    /// Cancelled.
    Cancelled,
}

impl SegmentJobStatus {
    /// Whether the job will not change any more.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentJob {
    /// Id.
    pub id: String,
    /// Organisation.
    pub org: String,
    /// Sandbox.
    pub sandbox: String,
    /// Segment ids evaluated (resolved from `*` at creation).
    pub segment_ids: Vec<String>,
    /// Whether the request asked for every segment (`*`).
    pub all_segments: bool,
    /// Who started it: `api`, or `definition` (a definition was created or changed, so it and
    /// the segments built on it are evaluated at once).
    #[serde(default = "api_source")]
    pub source: String,
    /// Status.
    pub status: SegmentJobStatus,
    /// Created (ms).
    pub creation_time: i64,
    /// Last change (ms).
    pub update_time: i64,
    /// Run start (ms).
    #[serde(default)]
    pub started_ms: Option<i64>,
    /// Run end (ms).
    #[serde(default)]
    pub ended_ms: Option<i64>,
    /// Figures of the finished run.
    #[serde(default)]
    pub metrics: Option<Metrics>,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<String>,
}

fn api_source() -> String {
    "api".to_owned()
}

fn job_key(tenant: &Tenant, id: &str) -> Key {
    Key::tenant(tenant).str("segjob").str(id).finish()
}

fn job_prefix(tenant: &Tenant) -> Key {
    Key::tenant(tenant).str("segjob").finish()
}

fn queue_prefix() -> Key {
    Key::builder(&Scope::System).str("segjob-queue").finish()
}

fn queue_key(tenant: &Tenant, id: &str) -> Key {
    Key::extend(&queue_prefix())
        .str(tenant.org.as_str())
        .str(tenant.sandbox.as_str())
        .str(id)
        .finish()
}

fn encode(job: &SegmentJob) -> Result<Vec<u8>> {
    serde_json::to_vec(job).map_err(|e| SegmentJobError::Corrupt(e.to_string()))
}

fn decode(bytes: &[u8]) -> Result<SegmentJob> {
    serde_json::from_slice(bytes).map_err(|e| SegmentJobError::Corrupt(e.to_string()))
}

/// The segment-job service.
#[derive(Clone)]
pub struct SegmentJobs {
    store: Arc<dyn Store>,
    kick: SyncSender<()>,
    engine: Engine,
}

/// What runs jobs: the store, without the wake-up handle (a worker holding the sending side
/// would keep its own channel open and never see the service go away).
#[derive(Clone)]
pub struct Engine {
    store: Arc<dyn Store>,
    max_identities: usize,
}

impl std::fmt::Debug for SegmentJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentJobs").finish_non_exhaustive()
    }
}

impl SegmentJobs {
    /// The service and the receiver its worker waits on (see [`spawn`]).
    pub fn new(store: Arc<dyn Store>, max_identities: usize) -> (Self, Receiver<()>) {
        let (kick, wake) = sync_channel(1);
        (
            Self {
                engine: Engine {
                    store: Arc::clone(&store),
                    max_identities,
                },
                store,
                kick,
            },
            wake,
        )
    }

    /// Accepts a job over `segments` (`None`: every segment of the sandbox).
    pub fn create(&self, tenant: &Tenant, segments: Option<Vec<String>>) -> Result<SegmentJob> {
        self.create_from(tenant, segments, "api")
    }

    /// Accepts a job started by a schedule (`source: scheduler`, as AEP reports it).
    pub fn create_from_schedule(
        &self,
        tenant: &Tenant,
        segments: Option<Vec<String>>,
    ) -> Result<SegmentJob> {
        self.create_from(tenant, segments, "scheduler")
    }

    /// Evaluates `segment` and every segment built on it (`inSegment`, transitively): after a
    /// definition was created or changed, memberships follow at once instead of at the next
    /// scheduled run.
    pub fn after_definition_change(&self, tenant: &Tenant, segment: &str) -> Result<SegmentJob> {
        let mut ids = vec![segment.to_owned()];
        ids.extend(tessera_segment::dependency::affected(
            self.store.as_ref(),
            tenant,
            segment,
        )?);
        self.create_from(tenant, Some(ids), "definition")
    }

    fn create_from(
        &self,
        tenant: &Tenant,
        segments: Option<Vec<String>>,
        source: &str,
    ) -> Result<SegmentJob> {
        let known = tessera_segment::definition::list(self.store.as_ref(), tenant)?;
        let all_segments = segments.is_none();
        let segment_ids = match segments {
            None => known.iter().map(|d| d.id.clone()).collect(),
            Some(ids) => {
                if ids.is_empty() {
                    return Err(SegmentJobError::Invalid(
                        "name at least one segment: [{\"segmentId\": ...}]".into(),
                    ));
                }
                if let Some(missing) = ids.iter().find(|id| !known.iter().any(|d| &d.id == *id)) {
                    return Err(SegmentJobError::Invalid(format!(
                        "segment {missing} does not exist in this sandbox"
                    )));
                }
                ids
            }
        };
        let now = now_ms();
        let job = SegmentJob {
            id: uuid::Uuid::new_v4().to_string(),
            org: tenant.org.to_string(),
            sandbox: tenant.sandbox.to_string(),
            segment_ids,
            all_segments,
            source: source.to_owned(),
            status: SegmentJobStatus::New,
            creation_time: now,
            update_time: now,
            started_ms: None,
            ended_ms: None,
            metrics: None,
            error: None,
        };
        let mut batch = WriteBatch::new();
        batch
            .put(Table::Jobs, &job_key(tenant, &job.id), encode(&job)?)
            .put(Table::Jobs, &queue_key(tenant, &job.id), Vec::new());
        self.store.commit(batch)?;
        tracing::info!(job = %job.id, segments = job.segment_ids.len(), "segment job accepted");
        let _ = self.kick.try_send(());
        Ok(job)
    }

    /// One job.
    pub fn get(&self, tenant: &Tenant, id: &str) -> Result<SegmentJob> {
        match self.store.get(Table::Jobs, &job_key(tenant, id))? {
            Some(bytes) => decode(&bytes),
            None => Err(SegmentJobError::NotFound { id: id.to_owned() }),
        }
    }

    /// Every job of the sandbox, newest first.
    pub fn list(&self, tenant: &Tenant) -> Result<Vec<SegmentJob>> {
        let mut jobs =
            crate::job_worker::read_all(self.store.as_ref(), job_prefix(tenant), decode)?;
        jobs.sort_by(|a, b| (b.creation_time, &b.id).cmp(&(a.creation_time, &a.id)));
        Ok(jobs)
    }

    /// Asks an unfinished job to stop (a finished one is left as it is).
    pub fn cancel(&self, tenant: &Tenant, id: &str) -> Result<SegmentJob> {
        loop {
            let key = job_key(tenant, id);
            let Some(bytes) = self.store.get(Table::Jobs, &key)? else {
                return Err(SegmentJobError::NotFound { id: id.to_owned() });
            };
            let mut job = decode(&bytes)?;
            if job.status.is_finished() || job.status == SegmentJobStatus::Cancelling {
                return Ok(job);
            }
            job.status = if job.status == SegmentJobStatus::New {
                SegmentJobStatus::Cancelled
            } else {
                SegmentJobStatus::Cancelling
            };
            job.update_time = now_ms();
            let mut batch = WriteBatch::new();
            batch
                .expect(Table::Jobs, &key, Some(bytes))
                .put(Table::Jobs, &key, encode(&job)?);
            if job.status.is_finished() {
                batch.delete(Table::Jobs, &queue_key(tenant, id));
            }
            match self.store.commit(batch) {
                Ok(_) => return Ok(job),
                Err(tessera_store::Error::Conflict { .. }) => continue,
                Err(other) => return Err(other.into()),
            }
        }
    }

    /// The job runner (for the worker thread, and tests that run jobs in place).
    pub fn engine(&self) -> Engine {
        self.engine.clone()
    }
}

impl Engine {
    fn get(&self, tenant: &Tenant, id: &str) -> Result<SegmentJob> {
        match self.store.get(Table::Jobs, &job_key(tenant, id))? {
            Some(bytes) => decode(&bytes),
            None => Err(SegmentJobError::NotFound { id: id.to_owned() }),
        }
    }

    /// Runs every unfinished job; returns how many finished.
    pub fn process_pending(&self) -> Result<usize> {
        let queued = self.store.scan(
            Table::Jobs,
            &ScanRange::prefix(queue_prefix()),
            Direction::Forward,
            10_000,
        )?;
        let prefix_len = queue_prefix().as_bytes().len();
        let mut done = 0;
        for row in queued {
            let Some(rest) = row.key.get(prefix_len..) else {
                continue;
            };
            let mut reader = KeyReader::new(rest);
            let (org, sandbox, id) = (reader.string()?, reader.string()?, reader.string()?);
            let Ok(tenant) = Tenant::parse(&org, &sandbox) else {
                continue;
            };
            self.run_job(&tenant, &id)?;
            done += 1;
        }
        Ok(done)
    }

    fn save(&self, tenant: &Tenant, job: &SegmentJob) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.put(Table::Jobs, &job_key(tenant, &job.id), encode(job)?);
        if job.status.is_finished() {
            batch.delete(Table::Jobs, &queue_key(tenant, &job.id));
        }
        self.store.commit(batch)?;
        Ok(())
    }

    fn run_job(&self, tenant: &Tenant, id: &str) -> Result<()> {
        let mut job = match self.get(tenant, id) {
            Ok(job) => job,
            Err(SegmentJobError::NotFound { .. }) => {
                let mut batch = WriteBatch::new();
                batch.delete(Table::Jobs, &queue_key(tenant, id));
                self.store.commit(batch)?;
                return Ok(());
            }
            Err(other) => return Err(other),
        };
        if job.status.is_finished() {
            return self.save(tenant, &job);
        }
        let started = now_ms();
        job.status = SegmentJobStatus::Processing;
        job.started_ms = Some(started);
        job.update_time = started;
        self.save(tenant, &job)?;
        let outcome = self.evaluate(tenant, &job);
        let ended = now_ms();
        job.ended_ms = Some(ended);
        job.update_time = ended;
        match outcome {
            Ok(Outcome::Completed(metrics)) => {
                job.status = SegmentJobStatus::Succeeded;
                job.metrics = Some(metrics);
            }
            Ok(Outcome::Stopped(metrics)) => {
                job.status = SegmentJobStatus::Cancelled;
                job.metrics = Some(metrics);
            }
            Err(error) => {
                tracing::warn!(job = %job.id, %error, "segment job failed");
                job.status = SegmentJobStatus::Failed;
                job.error = Some(error.to_string());
            }
        }
        tracing::info!(job = %job.id, status = ?job.status, ms = ended - started, "segment job finished");
        self.save(tenant, &job)
    }

    fn evaluate(&self, tenant: &Tenant, job: &SegmentJob) -> Result<Outcome> {
        let store = self.store.as_ref();
        let definitions: Vec<_> = tessera_segment::definition::list(store, tenant)?
            .into_iter()
            .filter(|d| job.segment_ids.contains(&d.id))
            .collect();
        let policies = tessera_profile::policy::load(store, tenant)?;
        let compiled = batch::compile(definitions, &policies)?;
        let job_key = job_key(tenant, &job.id);
        let should_stop = || {
            store
                .get(Table::Jobs, &job_key)
                .ok()
                .flatten()
                .and_then(|bytes| decode(&bytes).ok())
                .is_none_or(|j| j.status == SegmentJobStatus::Cancelling)
        };
        let record = |batch: &mut WriteBatch, changes: &[Change]| -> tessera_segment::Result<()> {
            for change in changes {
                change_feed::append(
                    batch,
                    &batch::feed_entry(tenant, change, "segment-job", now_ms()),
                )?;
            }
            Ok(())
        };
        let run = Run {
            store,
            tenant,
            now_ms: now_ms(),
            max_identities: self.max_identities,
            should_stop: &should_stop,
            record: &record,
            use_views: false,
        };
        Ok(batch::run(&run, &compiled)?)
    }
}

/// Per-segment figures in AEP's metric names, for the job's `metrics`.
pub fn metrics_json(job: &SegmentJob) -> serde_json::Value {
    let total = |start: Option<i64>, end: Option<i64>| {
        let mut t = serde_json::Map::new();
        if let Some(s) = start {
            t.insert("startTimeInMs".into(), s.into());
        }
        if let Some(e) = end {
            t.insert("endTimeInMs".into(), e.into());
        }
        if let (Some(s), Some(e)) = (start, end) {
            t.insert("totalTimeInMs".into(), (e - s).into());
        }
        serde_json::Value::Object(t)
    };
    let mut value = serde_json::json!({
        "totalTime": total(Some(job.creation_time), job.ended_ms),
        "profileSegmentationTime": total(job.started_ms, job.ended_ms),
    });
    if let (Some(metrics), serde_json::Value::Object(map)) = (&job.metrics, &mut value) {
        if let Ok(serde_json::Value::Object(figures)) = serde_json::to_value(metrics) {
            map.extend(figures);
        }
    }
    value
}

/// Starts the worker thread: it runs unfinished jobs at start, when kicked, and every few
/// seconds; it ends when every [`SegmentJobs`] handle is dropped.
pub fn spawn(
    jobs: SegmentJobs,
    wake: Receiver<()>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let jobs = jobs.engine();
    crate::job_worker::spawn(
        "tessera-segment-jobs",
        "segment jobs",
        wake,
        // A run stops between pages through its own document (cancel), not the kick channel.
        move |_keep_going| jobs.process_pending(),
    )
}
