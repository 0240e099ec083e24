//! Batch ingestion: batches of files for one dataset, uploaded, completed, then processed
//! asynchronously and resumably (`/data/foundation/import/batches`).
//!
//! A batch moves `loading → processing → success | partial-success | failed`, or `aborted`.
//! Files are streamed to `{files_dir}/{batch id}/{file name}` by the HTTP layer, fsynced, then
//! registered here. Completing a batch queues it in `Table::Jobs`; [`BatchService::process_pending`]
//! works the queue in groups of rows and saves progress after each group, so a crash resumes
//! at the last saved group. Re-applying a group is harmless: records replace (or re-merge the
//! same patch) and events are idempotent on `_id`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};
use tessera_model::Tenant;
use tessera_schema::CompiledSchema;
use tessera_store::{Direction, Key, KeyReader, ScanRange, Scope, Store, Table, WriteBatch};

use crate::dataset::Dataset;
use crate::error::{Error, Rejection, Result};
use crate::ids;
use crate::pipeline::{self, Applied, Operation, Prepared};
use crate::streaming::Ingestor;

/// Rows applied per atomic group (and per progress save).
const GROUP_ROWS: usize = 500;
/// Row errors kept on the batch; the rest are only counted.
const MAX_ROW_ERRORS: usize = 100;
/// Longest accepted file name.
const MAX_FILE_NAME: usize = 255;

/// Input format of a batch's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputFormat {
    /// A JSON array of records, or JSON lines (one record per line).
    Json,
    /// CSV with a header row of dotted XDM paths (`person.name.firstName`).
    Csv,
}

/// Lifecycle of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum BatchStatus {
    /// Accepting files.
    #[serde(rename = "loading")]
    Loading,
    /// Completed by the client; rows are being applied.
    #[serde(rename = "processing")]
    Processing,
    /// Every row was applied.
    #[serde(rename = "success")]
    Success,
    /// Some rows were applied, some refused (see errors).
    #[serde(rename = "partial-success")]
    PartialSuccess,
    /// Nothing could be applied.
    #[serde(rename = "failed")]
    Failed,
    /// Aborted by the client.
    #[serde(rename = "aborted")]
    Aborted,
}

/// A registered file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchFile {
    /// Name given at upload.
    pub name: String,
    /// Size in bytes.
    pub size_bytes: u64,
}

/// One refused row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RowError {
    /// File the row is in.
    pub file: String,
    /// 1-based row number in the file (CSV: data rows after the header).
    pub row: u64,
    /// Rejection code.
    pub code: String,
    /// Field path, when the problem is one field.
    pub path: String,
    /// Reason.
    pub message: String,
}

/// Counters AEP reports under `metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchMetrics {
    /// Rows read.
    pub records_read: u64,
    /// Rows written.
    pub records_written: u64,
    /// Rows refused.
    pub failed_record_count: u64,
    /// Events skipped because their `_id` was already stored.
    pub duplicate_record_count: u64,
}

/// Where processing stands (for resuming).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Index into `files` of the file being processed.
    pub file_index: usize,
    /// Rows of that file already handled.
    pub rows_done: u64,
}

/// A batch as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchRecord {
    /// Batch id.
    pub id: String,
    /// Organisation.
    pub ims_org: String,
    /// Sandbox.
    pub sandbox: String,
    /// Target dataset.
    pub dataset_id: String,
    /// Input format.
    pub input_format: InputFormat,
    /// Status.
    pub status: BatchStatus,
    /// Created (ms).
    pub created: i64,
    /// Last change (ms).
    pub updated: i64,
    /// Creator.
    pub created_user: String,
    /// Files in upload order.
    pub files: Vec<BatchFile>,
    /// Counters.
    pub metrics: BatchMetrics,
    /// The first refused rows.
    pub errors: Vec<RowError>,
    /// Resume point.
    pub progress: Progress,
    /// Why the batch failed as a whole, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

impl BatchRecord {
    /// The batch as AEP's Catalog describes it.
    pub fn view(&self) -> Value {
        let errors: Vec<Value> = self
            .errors
            .iter()
            .map(|e| {
                serde_json::json!({
                    "code": e.code,
                    "description": e.message,
                    "rows": [e.row],
                    "file": e.file,
                    "path": e.path,
                })
            })
            .collect();
        let mut view = serde_json::json!({
            "id": self.id,
            "imsOrg": self.ims_org,
            "sandboxName": self.sandbox,
            "status": self.status,
            "created": self.created,
            "updated": self.updated,
            "createdUser": self.created_user,
            "updatedUser": self.created_user,
            "version": "1.0.0",
            "inputFormat": { "format": self.input_format },
            "relatedObjects": [{ "type": "dataSet", "id": self.dataset_id }],
            "tags": {},
            "metrics": self.metrics,
            "errors": errors,
            "files": self.files,
        });
        if let (Some(failure), Some(object)) = (&self.failure, view.as_object_mut()) {
            object.insert("failure".into(), Value::String(failure.clone()));
        }
        view
    }
}

fn record_key(tenant: &Tenant, id: &str) -> Key {
    Key::tenant(tenant).str(id).finish()
}

fn queue_prefix() -> Key {
    Key::builder(&Scope::System).str("batch-queue").finish()
}

fn queue_key(tenant: &Tenant, id: &str) -> Key {
    Key::extend(&queue_prefix())
        .str(tenant.org.as_str())
        .str(tenant.sandbox.as_str())
        .str(id)
        .finish()
}

fn decode(bytes: &[u8]) -> Result<BatchRecord> {
    serde_json::from_slice(bytes).map_err(|e| Error::Corrupt {
        what: "batch",
        reason: e.to_string(),
    })
}

fn encode(record: &BatchRecord) -> Result<Vec<u8>> {
    serde_json::to_vec(record).map_err(|e| Error::Corrupt {
        what: "batch",
        reason: e.to_string(),
    })
}

/// Checks a client-given file name: it becomes a path component.
pub fn validate_file_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_FILE_NAME
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0']);
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "file name",
            "must be 1-255 characters without '/', '\\' or NUL, and not . or ..",
        ))
    }
}

/// Batches over the store and a files directory.
#[derive(Clone)]
pub struct BatchService {
    ingestor: Ingestor,
    files_dir: Arc<PathBuf>,
}

impl BatchService {
    /// A service storing uploaded files under `files_dir`.
    pub fn new(ingestor: Ingestor, files_dir: PathBuf) -> Self {
        Self {
            ingestor,
            files_dir: Arc::new(files_dir),
        }
    }

    fn store(&self) -> &dyn Store {
        self.ingestor.store().as_ref()
    }

    /// Directory holding a batch's files.
    pub fn batch_dir(&self, id: &str) -> PathBuf {
        self.files_dir.join(id)
    }

    /// Reads a batch.
    pub fn get(&self, tenant: &Tenant, id: &str) -> Result<BatchRecord> {
        match self.store().get(Table::Batches, &record_key(tenant, id))? {
            Some(bytes) => decode(&bytes),
            None => Err(Error::BatchNotFound { id: id.to_owned() }),
        }
    }

    /// Batches of the sandbox, oldest first.
    pub fn list(&self, tenant: &Tenant, start: usize, limit: usize) -> Result<Vec<BatchRecord>> {
        let prefix = Key::scope_prefix(&Scope::Tenant(tenant.clone()));
        self.store()
            .scan(
                Table::Batches,
                &ScanRange::prefix(prefix),
                Direction::Forward,
                start.saturating_add(limit),
            )?
            .iter()
            .skip(start)
            .map(|row| decode(&row.value))
            .collect()
    }

    fn save(&self, tenant: &Tenant, record: &BatchRecord, previous: &BatchRecord) -> Result<()> {
        let key = record_key(tenant, &record.id);
        let mut batch = WriteBatch::new();
        batch
            .expect(Table::Batches, &key, Some(encode(previous)?))
            .put(Table::Batches, &key, encode(record)?);
        self.store().commit(batch)?;
        Ok(())
    }

    /// Changes a batch with compare-and-set, retrying when another request changed it first.
    fn modify(
        &self,
        tenant: &Tenant,
        id: &str,
        mut change: impl FnMut(&mut BatchRecord) -> Result<()>,
    ) -> Result<BatchRecord> {
        loop {
            let current = self.get(tenant, id)?;
            let mut next = current.clone();
            change(&mut next)?;
            next.updated = ids::now_ms();
            match self.save(tenant, &next, &current) {
                Ok(()) => return Ok(next),
                Err(Error::Store(tessera_store::Error::Conflict { .. })) => continue,
                Err(other) => return Err(other),
            }
        }
    }

    /// Creates a batch for an existing dataset.
    pub fn create(
        &self,
        tenant: &Tenant,
        dataset_id: &str,
        format: InputFormat,
        user: &str,
    ) -> Result<BatchRecord> {
        self.ingestor.catalog().get(tenant, dataset_id)?;
        let now = ids::now_ms();
        let record = BatchRecord {
            id: ids::catalog_id(now),
            ims_org: tenant.org.to_string(),
            sandbox: tenant.sandbox.to_string(),
            dataset_id: dataset_id.to_owned(),
            input_format: format,
            status: BatchStatus::Loading,
            created: now,
            updated: now,
            created_user: user.to_owned(),
            files: Vec::new(),
            metrics: BatchMetrics::default(),
            errors: Vec::new(),
            progress: Progress::default(),
            failure: None,
        };
        let key = record_key(tenant, &record.id);
        let mut batch = WriteBatch::new();
        batch
            .expect(Table::Batches, &key, None)
            .put(Table::Batches, &key, encode(&record)?);
        self.store().commit(batch)?;
        Ok(record)
    }

    /// Checks that a file may be uploaded into the batch; returns where to write it.
    pub fn prepare_upload(
        &self,
        tenant: &Tenant,
        id: &str,
        dataset_id: &str,
        name: &str,
    ) -> Result<PathBuf> {
        validate_file_name(name)?;
        let record = self.get(tenant, id)?;
        if record.dataset_id != dataset_id {
            return Err(Error::invalid(
                "datasetId",
                format!("batch {id} belongs to dataset {}", record.dataset_id),
            ));
        }
        if record.status != BatchStatus::Loading {
            return Err(Error::InvalidState(format!(
                "batch {id} no longer accepts files"
            )));
        }
        let dir = self.batch_dir(id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::InvalidState(format!("cannot create {dir:?}: {e}")))?;
        Ok(dir.join(name))
    }

    /// Registers an uploaded (and fsynced) file; uploading the same name again replaces it.
    pub fn add_file(
        &self,
        tenant: &Tenant,
        id: &str,
        name: &str,
        size_bytes: u64,
    ) -> Result<BatchRecord> {
        self.modify(tenant, id, |record| {
            if record.status != BatchStatus::Loading {
                return Err(Error::InvalidState(format!(
                    "batch {id} no longer accepts files"
                )));
            }
            record.files.retain(|f| f.name != name);
            record.files.push(BatchFile {
                name: name.to_owned(),
                size_bytes,
            });
            Ok(())
        })
    }

    /// Closes the batch to uploads and queues it for processing.
    pub fn complete(&self, tenant: &Tenant, id: &str) -> Result<BatchRecord> {
        loop {
            let current = self.get(tenant, id)?;
            if current.status != BatchStatus::Loading {
                return Err(Error::InvalidState(format!(
                    "batch {id} is {:?}, not loading",
                    current.status
                )));
            }
            if current.files.is_empty() {
                return Err(Error::InvalidState(format!("batch {id} has no files")));
            }
            let mut next = current.clone();
            next.status = BatchStatus::Processing;
            next.updated = ids::now_ms();
            let key = record_key(tenant, id);
            let mut batch = WriteBatch::new();
            batch
                .expect(Table::Batches, &key, Some(encode(&current)?))
                .put(Table::Batches, &key, encode(&next)?)
                .put(Table::Jobs, &queue_key(tenant, id), Vec::new());
            match self.store().commit(batch) {
                Ok(_) => return Ok(next),
                Err(tessera_store::Error::Conflict { .. }) => continue,
                Err(other) => return Err(other.into()),
            }
        }
    }

    /// Stops a loading or processing batch; rows already applied stay.
    pub fn abort(&self, tenant: &Tenant, id: &str) -> Result<BatchRecord> {
        self.modify(tenant, id, |record| match record.status {
            BatchStatus::Loading | BatchStatus::Processing => {
                record.status = BatchStatus::Aborted;
                Ok(())
            }
            other => Err(Error::InvalidState(format!(
                "batch {id} is {other:?}; only loading or processing batches can be aborted"
            ))),
        })
    }

    /// Processes every queued batch; returns how many were finished.
    pub fn process_pending(&self) -> Result<usize> {
        let prefix = queue_prefix();
        let prefix_len = prefix.as_bytes().len();
        let queued = self.store().scan(
            Table::Jobs,
            &ScanRange::prefix(prefix),
            Direction::Forward,
            1_000,
        )?;
        let mut finished = 0;
        for row in queued {
            let mut reader = KeyReader::new(row.key.get(prefix_len..).unwrap_or_default());
            let (org, sandbox, id) = (reader.string()?, reader.string()?, reader.string()?);
            let tenant = Tenant::parse(&org, &sandbox).map_err(|e| Error::Corrupt {
                what: "batch queue",
                reason: e.to_string(),
            })?;
            let _span =
                tracing::info_span!("batch", org = %org, sandbox = %sandbox, batch = %id).entered();
            self.process(&tenant, &id)?;
            let mut done = WriteBatch::new();
            done.delete(Table::Jobs, &queue_key(&tenant, &id));
            self.store().commit(done)?;
            finished += 1;
        }
        Ok(finished)
    }

    fn process(&self, tenant: &Tenant, id: &str) -> Result<()> {
        let mut record = match self.get(tenant, id) {
            Ok(record) => record,
            Err(Error::BatchNotFound { .. }) => return Ok(()),
            Err(other) => return Err(other),
        };
        if record.status != BatchStatus::Processing {
            return Ok(());
        }
        let target = match self.ingestor.target(tenant, &record.dataset_id)? {
            Ok(target) => target,
            Err(rejection) => return self.finish(tenant, id, Some(rejection.message)),
        };
        tracing::info!(
            files = record.files.len(),
            resume_file = record.progress.file_index,
            resume_rows = record.progress.rows_done,
            "processing batch"
        );
        while let Some(file) = record.files.get(record.progress.file_index).cloned() {
            let path = self.batch_dir(id).join(&file.name);
            match self.process_file(tenant, &mut record, &target, &file.name, &path)? {
                FileOutcome::Done => {
                    record = self.modify(tenant, id, |r| {
                        r.progress = Progress {
                            file_index: r.progress.file_index + 1,
                            rows_done: 0,
                        };
                        Ok(())
                    })?;
                }
                FileOutcome::Aborted => return Ok(()),
                FileOutcome::Unreadable(reason) => {
                    return self.finish(tenant, id, Some(format!("{}: {reason}", file.name)))
                }
            }
        }
        self.finish(tenant, id, None)
    }

    fn finish(&self, tenant: &Tenant, id: &str, failure: Option<String>) -> Result<()> {
        let record = self.modify(tenant, id, |r| {
            if r.status != BatchStatus::Processing {
                return Ok(());
            }
            r.status = match (
                &failure,
                r.metrics.records_written + r.metrics.duplicate_record_count,
                r.metrics.failed_record_count,
            ) {
                (Some(_), 0, _) => BatchStatus::Failed,
                (Some(_), _, _) => BatchStatus::PartialSuccess,
                (None, 0, failed) if failed > 0 => BatchStatus::Failed,
                (None, _, 0) => BatchStatus::Success,
                (None, _, _) => BatchStatus::PartialSuccess,
            };
            r.failure.clone_from(&failure);
            Ok(())
        })?;
        tracing::info!(status = ?record.status, written = record.metrics.records_written, failed = record.metrics.failed_record_count, "batch finished");
        if let Err(error) = std::fs::remove_dir_all(self.batch_dir(id)) {
            tracing::warn!(%error, "could not remove the batch's files");
        }
        Ok(())
    }

    fn process_file(
        &self,
        tenant: &Tenant,
        record: &mut BatchRecord,
        target: &(Dataset, Arc<CompiledSchema>),
        name: &str,
        path: &Path,
    ) -> Result<FileOutcome> {
        let rows = match open_rows(path, record.input_format) {
            Ok(rows) => rows,
            Err(reason) => return Ok(FileOutcome::Unreadable(reason)),
        };
        let skip = record.progress.rows_done;
        let namespaces = self.ingestor.namespaces(tenant)?;
        let mut group: Vec<(u64, std::result::Result<Prepared, Rejection>)> =
            Vec::with_capacity(GROUP_ROWS);
        for (index, row) in rows.enumerate() {
            let row_number = index as u64 + 1;
            if row_number <= skip {
                continue;
            }
            let received = ids::now_ms();
            let row = match (row, record.input_format) {
                (Ok(mut entity), InputFormat::Csv) => {
                    coerce_strings(&mut entity, target.1.resolved());
                    Ok(entity)
                }
                (other, _) => other,
            };
            let prepared = match row {
                Ok(entity) => pipeline::prepare(
                    tenant,
                    &target.0,
                    &target.1,
                    &namespaces,
                    entity,
                    Operation::Default,
                    received,
                    format!("{}:{name}:{row_number}", record.id),
                    self.ingestor.limits(),
                )
                .map(|prepared| prepared.in_batch(&record.id)),
                Err(rejection) => Err(rejection),
            };
            group.push((row_number, prepared));
            if group.len() >= GROUP_ROWS && !self.flush_group(tenant, record, name, &mut group)? {
                return Ok(FileOutcome::Aborted);
            }
        }
        if !self.flush_group(tenant, record, name, &mut group)? {
            return Ok(FileOutcome::Aborted);
        }
        Ok(FileOutcome::Done)
    }

    /// Applies a group and saves progress; `false` when the batch was aborted meanwhile.
    fn flush_group(
        &self,
        tenant: &Tenant,
        record: &mut BatchRecord,
        name: &str,
        group: &mut Vec<(u64, std::result::Result<Prepared, Rejection>)>,
    ) -> Result<bool> {
        let Some(last_row) = group.last().map(|(row, _)| *row) else {
            return Ok(true);
        };
        let mut good = Vec::new();
        let mut errors = Vec::new();
        for (row, prepared) in group.drain(..) {
            match prepared {
                Ok(item) => good.push(item),
                Err(rejection) => errors.push(row_error(name, row, &rejection)),
            }
        }
        let applied = pipeline::apply(
            self.ingestor.store(),
            &good,
            ids::now_ms(),
            self.ingestor.limits(),
        )?;
        self.ingestor.applied();
        let written = applied
            .iter()
            .filter(|a| matches!(a, Applied::Written { .. }))
            .count() as u64;
        let duplicates = applied.len() as u64 - written;
        let failed = errors.len() as u64;
        let read = written + duplicates + failed;
        let mut aborted = false;
        *record = self.modify(tenant, &record.id.clone(), |r| {
            if r.status != BatchStatus::Processing {
                aborted = true;
                return Ok(());
            }
            r.metrics.records_read += read;
            r.metrics.records_written += written;
            r.metrics.duplicate_record_count += duplicates;
            r.metrics.failed_record_count += failed;
            let room = MAX_ROW_ERRORS.saturating_sub(r.errors.len());
            r.errors.extend(errors.iter().take(room).cloned());
            r.progress.rows_done = last_row;
            Ok(())
        })?;
        Ok(!aborted && record.status == BatchStatus::Processing)
    }
}

enum FileOutcome {
    Done,
    Aborted,
    Unreadable(String),
}

fn row_error(file: &str, row: u64, rejection: &Rejection) -> RowError {
    let first = rejection.problems.first();
    RowError {
        file: file.to_owned(),
        row,
        code: rejection.code.as_str().to_owned(),
        path: first.map(|p| p.path.clone()).unwrap_or_default(),
        message: match first {
            Some(problem) if rejection.problems.len() == 1 => problem.message.clone(),
            Some(problem) => format!(
                "{} (first: {} {})",
                rejection.message, problem.path, problem.message
            ),
            None => rejection.message.clone(),
        },
    }
}

type Row = std::result::Result<Value, Rejection>;

fn malformed(reason: String) -> Rejection {
    Rejection::new(crate::error::RejectionCode::MalformedMessage, reason)
}

/// Rows of a file as JSON objects, lazily (JSON lines and CSV stream; a JSON array is read
/// whole).
fn open_rows(
    path: &Path,
    format: InputFormat,
) -> std::result::Result<Box<dyn Iterator<Item = Row>>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let mut reader = BufReader::new(file);
    match format {
        InputFormat::Json => {
            let starts_with_array = {
                let buffer = reader.fill_buf().map_err(|e| e.to_string())?;
                buffer.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
            };
            if starts_with_array {
                let values: Vec<Value> = serde_json::from_reader(reader)
                    .map_err(|e| format!("not a JSON array: {e}"))?;
                Ok(Box::new(values.into_iter().map(Ok)))
            } else {
                Ok(Box::new(
                    reader
                        .lines()
                        .filter(|line| line.as_ref().map_or(true, |l| !l.trim().is_empty()))
                        .map(|line| {
                            let line =
                                line.map_err(|e| malformed(format!("unreadable line: {e}")))?;
                            serde_json::from_str::<Value>(&line)
                                .map_err(|e| malformed(format!("not JSON: {e}")))
                        }),
                ))
            }
        }
        InputFormat::Csv => {
            let mut csv = csv::ReaderBuilder::new()
                .has_headers(true)
                .from_reader(reader);
            let headers: Vec<String> = csv
                .headers()
                .map_err(|e| format!("no header row: {e}"))?
                .iter()
                .map(str::to_owned)
                .collect();
            Ok(Box::new(csv.into_records().map(move |row| {
                let row = row.map_err(|e| malformed(format!("unreadable CSV row: {e}")))?;
                Ok(nest(&headers, row.iter()))
            })))
        }
    }
}

/// CSV cells are text: turn each into the number, integer or boolean its schema field
/// expects (as AEP's batch ingestion coerces). A cell that does not parse stays text and
/// fails validation with a precise message.
fn coerce_strings(value: &mut Value, schema: &Value) {
    match value {
        Value::Object(fields) => {
            let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
                return;
            };
            for (name, field) in fields.iter_mut() {
                if let Some(field_schema) = properties.get(name) {
                    coerce_strings(field, field_schema);
                }
            }
        }
        Value::String(text) => {
            let coerced = match schema.get("type").and_then(Value::as_str) {
                Some("integer") => text.trim().parse::<i64>().ok().map(Value::from),
                Some("number") => text
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number),
                Some("boolean") => match text.trim() {
                    "true" | "TRUE" | "True" => Some(Value::Bool(true)),
                    "false" | "FALSE" | "False" => Some(Value::Bool(false)),
                    _ => None,
                },
                _ => None,
            };
            if let Some(coerced) = coerced {
                *value = coerced;
            }
        }
        _ => {}
    }
}

/// Builds a nested object from dotted column paths; empty cells are absent fields.
fn nest<'a>(headers: &[String], cells: impl Iterator<Item = &'a str>) -> Value {
    let mut root = Map::new();
    for (header, cell) in headers.iter().zip(cells) {
        if cell.is_empty() {
            continue;
        }
        let mut node = &mut root;
        let mut parts = header.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                node.insert(part.to_owned(), Value::String(cell.to_owned()));
                break;
            }
            let entry = node
                .entry(part.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            match entry.as_object_mut() {
                Some(next) => node = next,
                None => break,
            }
        }
    }
    Value::Object(root)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn csv_columns_nest_by_dots() {
        let headers: Vec<String> = [
            "_id",
            "person.name.firstName",
            "person.name.lastName",
            "empty",
        ]
        .map(String::from)
        .to_vec();
        let row = nest(&headers, ["1", "Jane", "Doe", ""].into_iter());
        assert_eq!(
            row,
            json!({"_id": "1", "person": {"name": {"firstName": "Jane", "lastName": "Doe"}}})
        );
    }

    #[test]
    fn csv_text_becomes_the_schema_type() {
        let schema = json!({"type": "object", "properties": {
            "person": {"type": "object", "properties": {"birthYear": {"type": "integer"}}},
            "loyalty": {"type": "object", "properties": {"points": {"type": "number"}, "member": {"type": "boolean"}}},
            "zip": {"type": "string"}
        }});
        let mut row = json!({"person": {"birthYear": "1969"}, "loyalty": {"points": "12.5", "member": "true"}, "zip": "01234"});
        coerce_strings(&mut row, &schema);
        assert_eq!(
            row,
            json!({"person": {"birthYear": 1969}, "loyalty": {"points": 12.5, "member": true}, "zip": "01234"})
        );
        let mut bad = json!({"person": {"birthYear": "nineteen"}});
        coerce_strings(&mut bad, &schema);
        assert_eq!(bad, json!({"person": {"birthYear": "nineteen"}}));
    }

    #[test]
    fn file_names_cannot_escape_the_batch_directory() {
        for bad in ["", ".", "..", "a/b", "..\\x", "a\0b"] {
            assert!(validate_file_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_file_name("profiles-1.json").is_ok());
    }
}
