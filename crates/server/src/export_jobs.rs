//! Profile export jobs (AEP `/export/jobs`): every merged profile of a sandbox written as JSON
//! lines to a file, by a background worker that survives restarts.
//!
//! Stored in `Table::Jobs` (a persisted format: fields are only ever added, with defaults):
//! - `tenant, "export-seq"` → the last job id (u64, big-endian): AEP's job ids are integers,
//!   so ids are allocated by compare-and-set on this counter in the same batch that stores
//!   the job (two concurrent creations cannot get one id, on any backend);
//! - `tenant, "export", id` → the [`ExportJob`] document (kept after it finished, so its
//!   status and metrics stay readable, cancelled jobs included);
//! - `system, "export-queue", org, sandbox, id` → nothing, while the job is unfinished, so
//!   the worker finds work without scanning every tenant.
//!
//! The work: [`tessera_profile::walk`] hands out profiles a page at a time,
//! [`tessera_profile::export`] merges (through the lookup's merge) and projects each into a
//! line. After each page the lines are appended to `<dir>/<id>.jsonl.partial` and fsynced,
//! *then* the job's new cursor, byte offset and counts are committed with a precondition on
//! the job document. A restart truncates the partial file back to the committed offset and
//! continues from the committed cursor, so no line is lost or written twice; a file shorter
//! than the offset (lost or replaced) restarts the export from scratch. At the end the file
//! is renamed to `<dir>/<id>.jsonl`: a file with that name is always complete. A cancel
//! (HTTP DELETE) rewrites the document, so the worker's next commit fails its precondition
//! and it stops there, removing its file. HTTP shapes live in `routes::export_jobs`.
//!
//! With `destination.segmentPerBatch` (AEP: "one segment ID into one batch ID") the job has
//! one output batch per `filter.segments` entry, each its own file
//! `<dir>/<id>-<batchId>.jsonl`, holding the profiles that pass that entry. The walk is still
//! one pass: a profile is merged once and its lines are appended to every batch it belongs
//! to. Each page appends to and fsyncs every file it wrote, then commits every file's
//! offset with the cursor; a restart truncates each file back to its committed offset. At
//! the end every file is synced and renamed; a crash between two renames leaves a file
//! under its final name for a job that has not succeeded, which a restart moves back to its
//! partial name (nothing reads the final name before the job says `SUCCEEDED`).

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use tessera_model::Tenant;
use tessera_profile::export::{self, Spec, Tally};
use tessera_profile::walk::{self, Cursor};
use tessera_store::{Direction, Key, KeyReader, ScanRange, Scope, Store, Table, WriteBatch};

/// Profiles (graphs, or identities of the second walk phase) per checkpoint: each checkpoint
/// costs a file fsync and a store commit, so pages must be large enough to amortise both,
/// and small enough that a cancel or a shutdown is noticed within a fraction of a second.
pub const PAGE: usize = 500;
/// Attempts at a compare-and-set (id allocation, cancel) before giving up with a conflict.
const MAX_ATTEMPTS: usize = 20;
/// AEP's error code for "Error writing profiles to output path".
pub const WRITE_ERROR_CODE: &str = "0090000009";
/// Tessera's code for stored data the export could not read.
pub const READ_ERROR_CODE: &str = "0090000010";

/// Why an export-job operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] tessera_store::Error),
    /// Reading profile data failed.
    #[error(transparent)]
    Profile(#[from] tessera_profile::Error),
    /// No job with this id in the sandbox.
    #[error("export job {id} does not exist")]
    NotFound {
        /// Job id as asked for.
        id: String,
    },
    /// The job's file is asked for before the job succeeded.
    #[error("export job {id} has status {status}; its file is available once it has SUCCEEDED")]
    NotReady {
        /// Job id.
        id: u64,
        /// Its status.
        status: ExportStatus,
    },
    /// A job that wrote one batch per segment was asked for its file without naming a batch.
    #[error(
        "export job {id} wrote one batch per segment; name one with batchId (one of {batches:?})"
    )]
    BatchRequired {
        /// Job id.
        id: u64,
        /// Its batch ids.
        batches: Vec<String>,
    },
    /// The job wrote no batch with this id.
    #[error("export job {id} has no batch {batch}")]
    BatchNotFound {
        /// Job id.
        id: u64,
        /// Batch id as asked for.
        batch: String,
    },
    /// Concurrent changes kept winning.
    #[error("export job {id} kept changing concurrently; retry")]
    Contended {
        /// Job id (0 while allocating one).
        id: u64,
    },
    /// A stored job document (or the id counter) does not decode.
    #[error("stored export job is unreadable: {0}")]
    Corrupt(String),
    /// The output file could not be read.
    #[error("export file of job {id} cannot be read: {source}")]
    File {
        /// Job id.
        id: u64,
        /// Cause.
        source: std::io::Error,
    },
}

/// Result alias for export jobs.
pub type Result<T> = std::result::Result<T, ExportError>;

/// A job's status: AEP's `NEW`, `PROCESSING`, `SUCCEEDED`, `FAILED`, plus `CANCELLED` for a
/// job deleted before it finished (AEP's profile API answers the DELETE with 204 and
/// documents no status for it; Tessera keeps the job readable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExportStatus {
    /// Accepted, not started.
    New,
    /// Walking profiles.
    Processing,
    /// The file is complete.
    Succeeded,
    /// Stopped by an error (see `errors`).
    Failed,
    /// Deleted before it finished.
    Cancelled,
}

impl ExportStatus {
    /// Whether the job will not change any more.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

impl std::fmt::Display for ExportStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::New => "NEW",
            Self::Processing => "PROCESSING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
        })
    }
}

/// Where a job stands: everything a restart needs to continue.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// The walk's position after the last committed page.
    #[serde(default)]
    pub cursor: Cursor,
    /// Bytes of the partial file that belong to committed pages.
    #[serde(default)]
    pub bytes: u64,
    /// Profiles exported and left out so far.
    #[serde(default)]
    pub tally: Tally,
    /// With one batch per segment: each batch file's committed bytes and lines, in the
    /// order of the job's `batches` (`bytes` above is then unused).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batches: Vec<BatchProgress>,
}

/// Where one batch file of a `segmentPerBatch` job stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchProgress {
    /// Bytes of its partial file that belong to committed pages.
    pub bytes: u64,
    /// Lines (profiles) written to it.
    pub profiles: u64,
}

/// One output batch of a `segmentPerBatch` job: the profiles passing one `filter.segments`
/// entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentBatch {
    /// Index of its entry in the job's `segments`.
    pub filter: usize,
    /// The batch id allocated for it (32 hex digits, like the whole-export batch id).
    pub batch_id: String,
}

/// One error of a failed job, as AEP reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobFailure {
    /// Stable code.
    pub code: String,
    /// Explanation.
    pub msg: String,
}

/// A stored export job.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportJob {
    /// Job id (per sandbox, from 1).
    pub id: u64,
    /// Organisation.
    pub org: String,
    /// Sandbox.
    pub sandbox: String,
    /// Request id of the creating request.
    pub request_id: String,
    /// `_xdm.context.profile`.
    pub schema_name: String,
    /// What to write.
    pub spec: Spec,
    /// Segment filters (empty: every profile).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<SegmentFilter>,
    /// The destination dataset named by the request.
    pub dataset_id: String,
    /// The batch id allocated for the output (the whole export when `batches` is empty).
    pub batch_id: String,
    /// `destination.segmentPerBatch`: one output batch per segment filter, in the order of
    /// `segments` (empty: one batch for the whole export).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batches: Vec<SegmentBatch>,
    /// Status.
    pub status: ExportStatus,
    /// Created (ms).
    pub created_ms: i64,
    /// Last change (ms).
    pub updated_ms: i64,
    /// When the walk started (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<i64>,
    /// When the walk ended (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exported_ms: Option<i64>,
    /// When the job finished, whatever the outcome (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<i64>,
    /// Where the work stands.
    #[serde(default)]
    pub progress: Progress,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<JobFailure>,
}

/// What a caller asks for; validated by the route.
#[derive(Debug, Clone)]
pub struct NewExport {
    /// Only profiles in one of these segments (empty: every profile).
    pub segments: Vec<SegmentFilter>,
    /// Request id of the creating request.
    pub request_id: String,
    /// `_xdm.context.profile`.
    pub schema_name: String,
    /// What to write.
    pub spec: Spec,
    /// Destination dataset.
    pub dataset_id: String,
    /// One output batch per segment filter (`destination.segmentPerBatch`); the route
    /// refuses it without segment filters.
    pub segment_per_batch: bool,
}

/// `filter.segments[]`: profiles whose membership in the segment has one of `statuses`
/// (AEP: `realized`, `existing`, `exited`), last qualified inside `window` when given.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentFilter {
    /// Segment definition id.
    pub segment_id: String,
    /// Accepted statuses.
    pub statuses: Vec<String>,
    /// `segmentQualificationTime` (ms, start inclusive, end exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<(i64, i64)>,
}

type Memberships = std::collections::BTreeMap<String, tessera_segment::membership::Membership>;

impl SegmentFilter {
    /// Whether a profile with `memberships` passes this filter.
    fn passes(&self, memberships: &Memberships) -> bool {
        memberships.get(&self.segment_id).is_some_and(|m| {
            self.statuses.iter().any(|s| s == m.status.as_str())
                && self
                    .window
                    .is_none_or(|(start, end)| (start..end).contains(&m.last_qualification_time))
        })
    }
}

fn job_prefix(tenant: &Tenant) -> Key {
    Key::tenant(tenant).str("export").finish()
}

fn job_key(tenant: &Tenant, id: u64) -> Key {
    Key::extend(&job_prefix(tenant)).u64(id).finish()
}

fn seq_key(tenant: &Tenant) -> Key {
    Key::tenant(tenant).str("export-seq").finish()
}

fn queue_prefix() -> Key {
    Key::builder(&Scope::System).str("export-queue").finish()
}

fn queue_key(tenant: &Tenant, id: u64) -> Key {
    Key::extend(&queue_prefix())
        .str(tenant.org.as_str())
        .str(tenant.sandbox.as_str())
        .u64(id)
        .finish()
}

fn decode(bytes: &[u8]) -> Result<ExportJob> {
    serde_json::from_slice(bytes).map_err(|e| ExportError::Corrupt(e.to_string()))
}

fn encode(job: &ExportJob) -> Result<Vec<u8>> {
    serde_json::to_vec(job).map_err(|e| ExportError::Corrupt(e.to_string()))
}

fn decode_seq(bytes: &[u8]) -> Result<u64> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| ExportError::Corrupt(format!("id counter of {} bytes", bytes.len())))?;
    Ok(u64::from_be_bytes(array))
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default(),
    )
    .unwrap_or(i64::MAX)
}

/// Path of a finished export's file.
fn final_path(dir: &Path, tenant: &Tenant, id: u64) -> PathBuf {
    tenant_dir(dir, tenant).join(format!("{id}.jsonl"))
}

/// Path of one finished batch file of a `segmentPerBatch` job (batch ids are 32 hex
/// digits, so a safe path component).
fn batch_final_path(dir: &Path, tenant: &Tenant, id: u64, batch_id: &str) -> PathBuf {
    tenant_dir(dir, tenant).join(format!("{id}-{batch_id}.jsonl"))
}

/// The partial name of a file: the final name with `.partial` appended.
fn partial_of(done: &Path) -> PathBuf {
    let mut name = done.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// The files a job writes, final names, in output order: one for the whole export, or one
/// per batch.
fn output_paths(dir: &Path, tenant: &Tenant, job: &ExportJob) -> Vec<PathBuf> {
    if job.batches.is_empty() {
        return vec![final_path(dir, tenant, job.id)];
    }
    job.batches
        .iter()
        .map(|b| batch_final_path(dir, tenant, job.id, &b.batch_id))
        .collect()
}

/// Removes every file of `job`, partial and (with `finished` too) final.
fn remove_outputs(dir: &Path, tenant: &Tenant, job: &ExportJob, finished: bool) {
    for done in output_paths(dir, tenant, job) {
        remove_if_present(&partial_of(&done));
        if finished {
            remove_if_present(&done);
        }
    }
}

/// Ids are per sandbox, so files are too: `<dir>/<org>/<sandbox>/`. Both names are
/// validated identifiers (no separators), so they are safe path components.
fn tenant_dir(dir: &Path, tenant: &Tenant) -> PathBuf {
    dir.join(tenant.org.as_str()).join(tenant.sandbox.as_str())
}

fn remove_if_present(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        // Only disk space is at stake; the job's status is already final.
        Err(error) => {
            tracing::warn!(%error, path = %path.display(), "cannot remove an export file")
        }
    }
}

/// The export-job service: create, read, cancel, the output file, and the worker.
#[derive(Clone)]
pub struct ExportJobs {
    store: Arc<dyn Store>,
    kick: SyncSender<()>,
    dir: Arc<PathBuf>,
    page: usize,
}

impl std::fmt::Debug for ExportJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportJobs")
            .field("dir", &self.dir)
            .field("page", &self.page)
            .finish_non_exhaustive()
    }
}

impl ExportJobs {
    /// The service writing files under `dir`, and the receiver its worker waits on (see
    /// [`spawn`]).
    pub fn new(store: Arc<dyn Store>, dir: PathBuf) -> (Self, Receiver<()>) {
        let (kick, wake) = sync_channel(1);
        (
            Self {
                store,
                kick,
                dir: Arc::new(dir),
                page: PAGE,
            },
            wake,
        )
    }

    /// The same service walking at most `page` profiles per checkpoint (tests of resumption).
    pub fn with_page(mut self, page: usize) -> Self {
        self.page = page.max(1);
        self
    }

    /// Accepts an export; the worker is woken to run it.
    pub fn create(&self, tenant: &Tenant, request: NewExport) -> Result<ExportJob> {
        let store = self.store.as_ref();
        let seq = seq_key(tenant);
        for _ in 0..MAX_ATTEMPTS {
            let read = store.get(Table::Jobs, &seq)?;
            let last = read.as_deref().map(decode_seq).transpose()?.unwrap_or(0);
            let id = last.saturating_add(1);
            let now = now_ms();
            let job = ExportJob {
                id,
                org: tenant.org.to_string(),
                sandbox: tenant.sandbox.to_string(),
                request_id: request.request_id.clone(),
                schema_name: request.schema_name.clone(),
                spec: request.spec.clone(),
                segments: request.segments.clone(),
                dataset_id: request.dataset_id.clone(),
                batch_id: uuid::Uuid::new_v4().simple().to_string(),
                batches: if request.segment_per_batch {
                    (0..request.segments.len())
                        .map(|filter| SegmentBatch {
                            filter,
                            batch_id: uuid::Uuid::new_v4().simple().to_string(),
                        })
                        .collect()
                } else {
                    Vec::new()
                },
                status: ExportStatus::New,
                created_ms: now,
                updated_ms: now,
                started_ms: None,
                exported_ms: None,
                finished_ms: None,
                progress: Progress {
                    batches: if request.segment_per_batch {
                        vec![BatchProgress::default(); request.segments.len()]
                    } else {
                        Vec::new()
                    },
                    ..Progress::default()
                },
                errors: Vec::new(),
            };
            let mut batch = WriteBatch::new();
            batch
                .expect(Table::Jobs, &seq, read)
                .put(Table::Jobs, &seq, id.to_be_bytes().to_vec())
                .put(Table::Jobs, &job_key(tenant, id), encode(&job)?)
                .put(Table::Jobs, &queue_key(tenant, id), Vec::new());
            match store.commit(batch) {
                Ok(_) => {
                    tracing::info!(job = id, dataset = %job.dataset_id, "export job accepted");
                    // A full channel already holds a wake-up; nothing is lost.
                    let _ = self.kick.try_send(());
                    return Ok(job);
                }
                // Another creation took this id: read the counter again.
                Err(tessera_store::Error::Conflict { .. }) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(ExportError::Contended { id: 0 })
    }

    /// One job; `id` as the caller sent it (not a number: no such job).
    pub fn get(&self, tenant: &Tenant, id: &str) -> Result<ExportJob> {
        Ok(self.read(tenant, id)?.0)
    }

    fn read(&self, tenant: &Tenant, id: &str) -> Result<(ExportJob, Vec<u8>)> {
        let not_found = || ExportError::NotFound { id: id.to_owned() };
        let number: u64 = id.parse().map_err(|_| not_found())?;
        let bytes = self
            .store
            .get(Table::Jobs, &job_key(tenant, number))?
            .ok_or_else(not_found)?;
        Ok((decode(&bytes)?, bytes))
    }

    /// A page of the sandbox's jobs, newest first: skips `start`, returns at most `limit`,
    /// and whether more follow.
    pub fn list(
        &self,
        tenant: &Tenant,
        start: usize,
        limit: usize,
    ) -> Result<(Vec<ExportJob>, bool)> {
        // Ids grow with creation time, so key order reversed is newest first.
        let wanted = start.saturating_add(limit).saturating_add(1);
        let rows = self.store.scan(
            Table::Jobs,
            &ScanRange::prefix(job_prefix(tenant)),
            Direction::Reverse,
            wanted,
        )?;
        let more = rows.len() > start.saturating_add(limit);
        let jobs = rows
            .iter()
            .skip(start)
            .take(limit)
            .map(|row| decode(&row.value))
            .collect::<Result<Vec<_>>>()?;
        Ok((jobs, more))
    }

    /// Cancels an unfinished job (it stays readable with status `CANCELLED`); a finished job
    /// is left as it is. Returns the job as it now stands.
    pub fn cancel(&self, tenant: &Tenant, id: &str) -> Result<ExportJob> {
        for _ in 0..MAX_ATTEMPTS {
            let (mut job, read) = self.read(tenant, id)?;
            if job.status.is_finished() {
                return Ok(job);
            }
            let now = now_ms();
            job.status = ExportStatus::Cancelled;
            job.updated_ms = now;
            job.finished_ms = Some(now);
            let key = job_key(tenant, job.id);
            let mut batch = WriteBatch::new();
            batch
                .expect(Table::Jobs, &key, Some(read))
                .put(Table::Jobs, &key, encode(&job)?)
                .delete(Table::Jobs, &queue_key(tenant, job.id));
            match self.store.commit(batch) {
                Ok(_) => {
                    // The worker may still hold the files open; it removes them again when
                    // its next commit fails, so neither order leaves a file behind.
                    remove_outputs(&self.dir, tenant, &job, false);
                    tracing::info!(job = job.id, "export job cancelled");
                    return Ok(job);
                }
                // The worker committed a page meanwhile: read it again.
                Err(tessera_store::Error::Conflict { .. }) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(ExportError::Contended { id: 0 })
    }

    /// The finished file of a job that succeeded, opened for reading: its one file, or with
    /// one batch per segment the file of `batch` (which must then be named).
    pub fn open_file(
        &self,
        tenant: &Tenant,
        id: &str,
        batch: Option<&str>,
    ) -> Result<(ExportJob, File)> {
        let job = self.get(tenant, id)?;
        let path = match (job.batches.is_empty(), batch) {
            (true, None) => final_path(&self.dir, tenant, job.id),
            (true, Some(b)) if b == job.batch_id => final_path(&self.dir, tenant, job.id),
            (false, Some(b)) if job.batches.iter().any(|s| s.batch_id == b) => {
                batch_final_path(&self.dir, tenant, job.id, b)
            }
            (false, None) => {
                return Err(ExportError::BatchRequired {
                    id: job.id,
                    batches: job.batches.iter().map(|b| b.batch_id.clone()).collect(),
                })
            }
            (_, Some(b)) => {
                return Err(ExportError::BatchNotFound {
                    id: job.id,
                    batch: b.to_owned(),
                })
            }
        };
        if job.status != ExportStatus::Succeeded {
            return Err(ExportError::NotReady {
                id: job.id,
                status: job.status,
            });
        }
        let file = File::open(path).map_err(|source| ExportError::File { id: job.id, source })?;
        Ok((job, file))
    }

    /// Where a succeeded job's file is.
    pub fn file_path(&self, tenant: &Tenant, id: u64) -> PathBuf {
        final_path(&self.dir, tenant, id)
    }

    /// Where a succeeded `segmentPerBatch` job's file of `batch_id` is.
    pub fn batch_file_path(&self, tenant: &Tenant, id: u64, batch_id: &str) -> PathBuf {
        batch_final_path(&self.dir, tenant, id, batch_id)
    }

    /// The worker side, without the wake-up handle (the worker thread must not keep its own
    /// channel open).
    pub fn worker(&self) -> Worker {
        Worker {
            store: Arc::clone(&self.store),
            dir: Arc::clone(&self.dir),
            page: self.page,
        }
    }
}

/// Runs unfinished export jobs.
#[derive(Clone)]
pub struct Worker {
    store: Arc<dyn Store>,
    dir: Arc<PathBuf>,
    page: usize,
}

/// Why one page could not be exported.
enum PageError {
    /// Retry later (the store failed).
    Retry(ExportError),
    /// The job cannot succeed: it fails with this code and message.
    Fail(&'static str, String),
}

impl From<tessera_profile::Error> for PageError {
    fn from(error: tessera_profile::Error) -> Self {
        match error {
            tessera_profile::Error::Store(store) => PageError::Retry(store.into()),
            // Data this build cannot read: retrying cannot help, a human must look.
            other => PageError::Fail(READ_ERROR_CODE, other.to_string()),
        }
    }
}

fn write_failure(error: &std::io::Error, path: &Path) -> (&'static str, String) {
    (
        WRITE_ERROR_CODE,
        format!(
            "error writing profiles to output path {}: {error}",
            path.display()
        ),
    )
}

impl Worker {
    /// Runs every unfinished job until done or until `keep_going` says stop (checked between
    /// pages); returns how many jobs finished.
    pub fn process_pending(&self, keep_going: &dyn Fn() -> bool) -> Result<usize> {
        let queued = self.store.scan(
            Table::Jobs,
            &ScanRange::prefix(queue_prefix()),
            Direction::Forward,
            1_000,
        )?;
        let mut finished = 0;
        for row in queued {
            let mut reader = KeyReader::with_scope(&row.key)?.1;
            let _tag = reader.string()?;
            let (org, sandbox, id) = (reader.string()?, reader.string()?, reader.u64()?);
            let tenant =
                Tenant::parse(&org, &sandbox).map_err(|e| ExportError::Corrupt(e.to_string()))?;
            let _span = tracing::info_span!("export_job", %org, %sandbox, job = id).entered();
            if self.run(&tenant, id, keep_going)? {
                finished += 1;
            }
            if !keep_going() {
                break;
            }
        }
        Ok(finished)
    }

    /// Works on one job; `true` once it is finished (or gone).
    fn run(&self, tenant: &Tenant, id: u64, keep_going: &dyn Fn() -> bool) -> Result<bool> {
        let store = self.store.as_ref();
        let key = job_key(tenant, id);
        'job: loop {
            let Some(bytes) = store.get(Table::Jobs, &key)? else {
                self.dequeue(tenant, id)?;
                return Ok(true);
            };
            let mut job = decode(&bytes)?;
            if job.status.is_finished() {
                if job.status == ExportStatus::Cancelled {
                    remove_outputs(&self.dir, tenant, &job, true);
                }
                self.dequeue(tenant, id)?;
                return Ok(true);
            }
            if !keep_going() {
                return Ok(false);
            }
            let outputs = output_paths(&self.dir, tenant, &job);
            let mut files = match open_outputs(&outputs, &mut job.progress) {
                Ok(files) => files,
                Err((error, path)) => {
                    let (code, msg) = write_failure(&error, &path);
                    tracing::error!(code, %msg, "export job failed");
                    return self.fail(tenant, job, bytes, code, msg);
                }
            };
            if job.started_ms.is_none() {
                job.started_ms = Some(now_ms());
            }
            let mut read = bytes;
            loop {
                if !keep_going() {
                    return Ok(false);
                }
                let out = match self.next_page(tenant, &mut job, &mut files, &outputs) {
                    Ok(out) => out,
                    Err(PageError::Retry(error)) => return Err(error),
                    Err(PageError::Fail(code, msg)) => {
                        tracing::error!(code, %msg, "export job failed");
                        return self.fail(tenant, job, read, code, msg);
                    }
                };
                job.updated_ms = now_ms();
                job.status = ExportStatus::Processing;
                if job.progress.cursor.is_done() {
                    job.exported_ms = Some(job.updated_ms);
                    if let Err((error, path)) = finalize(files, &outputs) {
                        let (code, msg) = write_failure(&error, &path);
                        tracing::error!(code, %msg, "export job failed");
                        return self.fail(tenant, job, read, code, msg);
                    }
                    let now = now_ms();
                    job.status = ExportStatus::Succeeded;
                    job.finished_ms = Some(now);
                    job.updated_ms = now;
                    return self.commit_final(tenant, &job, read);
                }
                let encoded = encode(&job)?;
                let mut batch = WriteBatch::new();
                batch
                    .expect(Table::Jobs, &key, Some(read))
                    .put(Table::Jobs, &key, encoded.clone());
                match store.commit(batch) {
                    Ok(_) => read = encoded,
                    // Cancelled (or changed) meanwhile: start over from what is stored; the
                    // bytes written since the last commit are cut off again.
                    Err(tessera_store::Error::Conflict { .. }) => continue 'job,
                    Err(other) => return Err(other.into()),
                }
                tracing::debug!(
                    exported = job.progress.tally.exported,
                    bytes = job.progress.bytes,
                    lines = out,
                    "export checkpoint"
                );
            }
        }
    }

    /// The outputs (indexes into `files`) `subject` goes to: the one file, or with one batch
    /// per segment every batch whose segment filter it passes; empty when it is filtered out.
    fn targets(
        &self,
        tenant: &Tenant,
        job: &ExportJob,
        subject: &walk::Subject,
    ) -> std::result::Result<Vec<usize>, PageError> {
        if job.segments.is_empty() {
            return Ok(vec![0]);
        }
        // Memberships are kept per graph: a profile outside any graph is in no segment.
        let Some(graph) = subject.graph else {
            return Ok(Vec::new());
        };
        let memberships = tessera_segment::membership::of_graph(self.store.as_ref(), tenant, graph)
            .map_err(|e| PageError::Fail("0090000003", e.to_string()))?;
        if job.batches.is_empty() {
            let passes = job.segments.iter().any(|f| f.passes(&memberships));
            return Ok(if passes { vec![0] } else { Vec::new() });
        }
        Ok(job
            .batches
            .iter()
            .enumerate()
            .filter(|(_, b)| {
                job.segments
                    .get(b.filter)
                    .is_some_and(|f| f.passes(&memberships))
            })
            .map(|(index, _)| index)
            .collect())
    }

    /// Walks one page, appends its lines to the files they belong to and syncs those; updates
    /// the job's progress in memory (the caller commits it). Returns the profiles exported.
    fn next_page(
        &self,
        tenant: &Tenant,
        job: &mut ExportJob,
        files: &mut [File],
        paths: &[PathBuf],
    ) -> std::result::Result<u64, PageError> {
        let store = self.store.as_ref();
        let page = walk::page(store, tenant, &job.progress.cursor, self.page)?;
        let mut outs: Vec<Vec<u8>> = vec![Vec::new(); files.len()];
        let mut lines = vec![0_u64; files.len()];
        let mut tally = job.progress.tally;
        let mut profile = Vec::new();
        for subject in &page.subjects {
            let targets = self.targets(tenant, job, subject)?;
            if targets.is_empty() {
                tally.filtered += 1;
                continue;
            }
            // Merged and projected once, whatever the number of batches it goes to.
            profile.clear();
            let before = tally.exported;
            export::write(store, tenant, subject, &job.spec, &mut profile, &mut tally)?;
            let written = tally.exported.saturating_sub(before);
            for target in targets {
                if let (Some(out), Some(count)) = (outs.get_mut(target), lines.get_mut(target)) {
                    out.extend_from_slice(&profile);
                    *count += written;
                }
            }
        }
        for ((file, out), done) in files.iter_mut().zip(&outs).zip(paths) {
            if out.is_empty() {
                continue;
            }
            file.write_all(out)
                .and_then(|()| file.sync_data())
                .map_err(|e| {
                    let (code, msg) = write_failure(&e, &partial_of(done));
                    PageError::Fail(code, msg)
                })?;
        }
        let size = |out: &Vec<u8>| u64::try_from(out.len()).unwrap_or(u64::MAX);
        let mut progress = Progress {
            cursor: page.next,
            tally,
            ..job.progress.clone()
        };
        if job.batches.is_empty() {
            let written = outs.first().map_or(0, size);
            progress.bytes = progress.bytes.saturating_add(written);
        } else {
            for ((batch, out), count) in progress.batches.iter_mut().zip(&outs).zip(&lines) {
                batch.bytes = batch.bytes.saturating_add(size(out));
                batch.profiles = batch.profiles.saturating_add(*count);
            }
        }
        let exported = tally.exported.saturating_sub(job.progress.tally.exported);
        job.progress = progress;
        Ok(exported)
    }

    fn commit_final(&self, tenant: &Tenant, job: &ExportJob, read: Vec<u8>) -> Result<bool> {
        let key = job_key(tenant, job.id);
        let mut batch = WriteBatch::new();
        batch
            .expect(Table::Jobs, &key, Some(read))
            .put(Table::Jobs, &key, encode(job)?)
            .delete(Table::Jobs, &queue_key(tenant, job.id));
        match self.store.commit(batch) {
            Ok(_) => {
                let tally = job.progress.tally;
                if tally.too_large > 0 {
                    tracing::warn!(
                        profiles = tally.too_large,
                        "profiles left out of the export: graphs larger than the lookup limit"
                    );
                }
                tracing::info!(
                    exported = tally.exported,
                    filtered = tally.filtered,
                    bytes = job.progress.bytes,
                    batches = job.batches.len(),
                    "export job succeeded"
                );
                Ok(true)
            }
            // Cancelled while finishing: the cancel wins, its files go.
            Err(tessera_store::Error::Conflict { .. }) => {
                remove_outputs(&self.dir, tenant, job, true);
                self.dequeue(tenant, job.id)?;
                Ok(true)
            }
            Err(other) => Err(other.into()),
        }
    }

    fn fail(
        &self,
        tenant: &Tenant,
        mut job: ExportJob,
        read: Vec<u8>,
        code: &str,
        msg: String,
    ) -> Result<bool> {
        let now = now_ms();
        job.status = ExportStatus::Failed;
        job.updated_ms = now;
        job.finished_ms = Some(now);
        job.errors = vec![JobFailure {
            code: code.to_owned(),
            msg,
        }];
        remove_outputs(&self.dir, tenant, &job, false);
        let key = job_key(tenant, job.id);
        let mut batch = WriteBatch::new();
        batch
            .expect(Table::Jobs, &key, Some(read))
            .put(Table::Jobs, &key, encode(&job)?)
            .delete(Table::Jobs, &queue_key(tenant, job.id));
        match self.store.commit(batch) {
            Ok(_) => Ok(true),
            // Cancelled meanwhile: that status stands.
            Err(tessera_store::Error::Conflict { .. }) => {
                self.dequeue(tenant, job.id)?;
                Ok(true)
            }
            Err(other) => Err(other.into()),
        }
    }

    fn dequeue(&self, tenant: &Tenant, id: u64) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.delete(Table::Jobs, &queue_key(tenant, id));
        self.store.commit(batch)?;
        Ok(())
    }
}

/// Bytes of output `index` that belong to committed pages.
fn committed(progress: &Progress, index: usize) -> u64 {
    if progress.batches.is_empty() {
        return if index == 0 { progress.bytes } else { 0 };
    }
    progress.batches.get(index).map_or(0, |b| b.bytes)
}

/// Opens every output's partial file positioned after its committed bytes: created empty for
/// a job that has not written yet, truncated back to the committed offset (lines of an
/// uncommitted page) otherwise. A file already under its final name (a crash between the
/// renames of the last step) is moved back first. Any file shorter than its offset restarts
/// the export (`progress` reset). Errors name the file.
fn open_outputs(
    paths: &[PathBuf],
    progress: &mut Progress,
) -> std::result::Result<Vec<File>, (std::io::Error, PathBuf)> {
    let mut files = Vec::with_capacity(paths.len());
    let mut short = false;
    for (index, done) in paths.iter().enumerate() {
        let partial = partial_of(done);
        let at = |error| (error, partial.clone());
        if let Some(parent) = partial.parent() {
            std::fs::create_dir_all(parent).map_err(at)?;
        }
        if !partial.exists() && done.exists() {
            std::fs::rename(done, &partial).map_err(at)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&partial)
            .map_err(at)?;
        let len = file.metadata().map_err(at)?.len();
        if len < committed(progress, index) {
            tracing::warn!(
                len,
                committed = committed(progress, index),
                file = %partial.display(),
                "export file is shorter than its committed progress; restarting the export"
            );
            short = true;
        }
        files.push(file);
    }
    if short {
        *progress = Progress {
            batches: vec![BatchProgress::default(); progress.batches.len()],
            ..Progress::default()
        };
    }
    for ((index, file), done) in files.iter_mut().enumerate().zip(paths) {
        let offset = committed(progress, index);
        file.set_len(offset)
            .and_then(|()| file.seek(SeekFrom::Start(offset)).map(drop))
            .map_err(|e| (e, partial_of(done)))?;
    }
    Ok(files)
}

/// Makes the finished files durable under their final names.
fn finalize(
    files: Vec<File>,
    paths: &[PathBuf],
) -> std::result::Result<(), (std::io::Error, PathBuf)> {
    for (file, done) in files.into_iter().zip(paths) {
        let partial = partial_of(done);
        file.sync_all().map_err(|e| (e, partial.clone()))?;
        drop(file);
        std::fs::rename(&partial, done).map_err(|e| (e, done.clone()))?;
    }
    // The renames are durable once the directory is.
    if let Some(parent) = paths.first().and_then(|p| p.parent()) {
        File::open(parent)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| (e, parent.to_path_buf()))?;
    }
    Ok(())
}

/// Starts the worker thread: it runs unfinished jobs at start (resuming whatever a restart
/// interrupted), when kicked, and every few seconds; it ends when every [`ExportJobs`]
/// handle is dropped, stopping between pages.
pub fn spawn(jobs: ExportJobs, wake: Receiver<()>) -> std::io::Result<std::thread::JoinHandle<()>> {
    let worker = jobs.worker();
    drop(jobs);
    crate::job_worker::spawn(
        "tessera-export-jobs",
        "export jobs",
        wake,
        move |keep_going| worker.process_pending(keep_going),
    )
}
