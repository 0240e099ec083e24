//! AEP Profile export jobs: `/data/core/ups/export/jobs` — write every merged profile of the
//! sandbox (projected, optionally with its events) as JSON lines, asynchronously.
//!
//! Shapes follow AEP (reference §4.1): integer `id`, `profileInstanceId: "ups"`,
//! `jobType: "BATCH"`, `status` `NEW` → `PROCESSING` → `SUCCEEDED` | `FAILED`, `metrics` with
//! `totalTime`, and once finished `profileExportTime` and `aCPDatasetWriteTime`, each
//! `{startTimeInMs, endTimeInMs, totalTimeInMs}`. Tessera extensions: `metrics.profileCount`
//! (profiles exported), status `CANCELLED` for a job deleted before it finished, and
//! `GET /export/jobs/{id}/file`, which streams the finished file. The work is done by
//! [`crate::export_jobs`].
//!
//! `destination.segmentPerBatch: true` (with `filter.segments`) writes one batch per segment
//! filter; the job then shows `destination.batches: [{segmentId, segmentNs, status,
//! batchId}]` instead of `destination.batchId`, as AEP's Segmentation API guide to export
//! jobs documents, and `/file` takes `?batchId=` to pick one.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use tessera_profile::export::{EventList, Spec};
use tessera_profile::policy::PROFILE_CLASS;
use tokio::io::AsyncReadExt;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::context::SandboxContext;
use crate::error::{ApiError, ApiResult};
use crate::export_jobs::{ExportJob, ExportStatus, NewExport};
use crate::middleware::REQUEST_ID_HEADER;
use crate::routes::off_thread;
use crate::routes::profile::{choose_policy, profile_error};
use crate::state::AppState;

/// Most jobs one list page returns.
const MAX_LIMIT: usize = 1_000;
/// Bytes read from the export file per chunk of the response.
const FILE_CHUNK: usize = 64 * 1024;
const JOBS_PATH: &str = "/data/core/ups/export/jobs";

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_job, list_jobs))
        .routes(routes!(get_job, delete_job))
        .routes(routes!(get_file))
}

/// `mergePolicy` of the request.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct PolicyRef {
    /// Merge policy id.
    id: String,
    /// Expected version (optional; a different current version is refused).
    version: Option<u64>,
}

/// `filter` of the request.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    /// Segment filters: `[{segmentId, segmentNs: "ups", status: [...]}]`.
    #[schema(value_type = Option<Object>)]
    segments: Option<Value>,
    /// Segment qualification window `{startTime, endTime}` (RFC 3339).
    #[schema(value_type = Option<Object>)]
    segment_qualification_time: Option<Value>,
    /// RFC 3339: only profiles changed at or after it.
    from_ingest_timestamp: Option<String>,
    /// Also profiles without record fragments (default false).
    empty_profiles: Option<bool>,
}

/// `additionalFields.eventList.filter`.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventFilter {
    /// RFC 3339: only events received at or after it.
    from_ingest_timestamp: Option<String>,
}

/// `additionalFields.eventList`.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct EventListRequest {
    /// Comma-separated dotted paths of each event (default: whole events).
    fields: Option<String>,
    /// Which events.
    filter: Option<EventFilter>,
}

/// `additionalFields`.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdditionalFields {
    /// Include each profile's events as `timeSeriesEvents`.
    event_list: Option<EventListRequest>,
}

/// `destination`.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    /// An existing dataset of the sandbox (AEP wants one on the profile union schema;
    /// Tessera accepts any existing dataset and does not write into it).
    dataset_id: Option<String>,
    /// One batch (file) per `filter.segments` entry instead of one for the whole export
    /// (default false); needs `filter.segments`.
    segment_per_batch: Option<bool>,
}

/// `schema`.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct SchemaName {
    /// `_xdm.context.profile`.
    name: Option<String>,
}

/// Body of an export request.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateExport {
    /// Comma-separated dotted paths of each profile (default: everything).
    fields: Option<String>,
    /// Merge policy (default: the sandbox's default for the profile class).
    merge_policy: Option<PolicyRef>,
    /// Which profiles.
    filter: Option<Filter>,
    /// Events to add.
    additional_fields: Option<AdditionalFields>,
    /// Where the output goes (required).
    destination: Option<Destination>,
    /// The class exported (required).
    schema: Option<SchemaName>,
}

/// Paging of the job list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// Offset of the first job, newest first (default 0).
    start: Option<usize>,
    /// Page size (default 100, at most 1000).
    limit: Option<usize>,
}

fn bad_request(message: impl Into<String>) -> ApiError {
    profile_error(StatusCode::BAD_REQUEST, message)
}

fn rfc3339_ms(field: &str, text: &str) -> ApiResult<i64> {
    let parsed =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .map_err(|e| {
                bad_request(format!(
                    "{field} must be an RFC 3339 date-time such as 2018-01-01T00:00:00Z, got {text:?}: {e}"
                ))
            })?;
    i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| bad_request(format!("{field} is out of range: {text:?}")))
}

fn not_blank(text: Option<String>) -> Option<String> {
    text.filter(|t| !t.trim().is_empty())
}

/// `filter.segments` (with `segmentQualificationTime`) as the job keeps them: segments of this
/// sandbox, namespace `ups`, statuses among AEP's (default `realized` and `existing`).
fn segment_filters(
    state: &AppState,
    tenant: &tessera_model::Tenant,
    filter: &Filter,
) -> ApiResult<Vec<crate::export_jobs::SegmentFilter>> {
    let items = match &filter.segments {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(_) => return Err(bad_request("filter.segments must be an array")),
    };
    let window = match &filter.segment_qualification_time {
        None | Some(Value::Null) => None,
        Some(window) => {
            let bound = |name: &str| -> ApiResult<Option<i64>> {
                window
                    .get(name)
                    .and_then(Value::as_str)
                    .map(|t| rfc3339_ms(&format!("filter.segmentQualificationTime.{name}"), t))
                    .transpose()
            };
            Some((
                bound("startTime")?.unwrap_or(i64::MIN),
                bound("endTime")?.unwrap_or(i64::MAX),
            ))
        }
    };
    if window.is_some() && items.is_empty() {
        return Err(bad_request(
            "filter.segmentQualificationTime needs filter.segments",
        ));
    }
    let mut filters = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let Some(segment_id) = item.get("segmentId").and_then(Value::as_str) else {
            return Err(bad_request(format!(
                "filter.segments[{index}].segmentId is required"
            )));
        };
        if let Some(ns) = item.get("segmentNs").and_then(Value::as_str) {
            if ns != "ups" {
                return Err(bad_request(format!(
                    "filter.segments[{index}].segmentNs {ns:?} is not supported; Tessera audiences are in \"ups\""
                )));
            }
        }
        let statuses = match item.get("status") {
            None | Some(Value::Null) => vec!["realized".to_owned(), "existing".to_owned()],
            Some(Value::Array(list)) => {
                let mut statuses = Vec::new();
                for status in list {
                    match status.as_str() {
                        Some(s @ ("realized" | "existing" | "exited")) => statuses.push(s.to_owned()),
                        _ => {
                            return Err(bad_request(format!(
                                "filter.segments[{index}].status lists realized, existing or exited, not {status}"
                            )))
                        }
                    }
                }
                statuses
            }
            Some(_) => {
                return Err(bad_request(format!(
                    "filter.segments[{index}].status must be an array"
                )))
            }
        };
        let exists = tessera_segment::definition::get(state.store.as_ref(), tenant, segment_id)
            .map_err(crate::segment_jobs::SegmentJobError::from)?
            .is_some();
        if !exists {
            return Err(bad_request(format!(
                "filter.segments[{index}]: segment {segment_id} does not exist in this sandbox"
            )));
        }
        filters.push(crate::export_jobs::SegmentFilter {
            segment_id: segment_id.to_owned(),
            statuses,
            window,
        });
    }
    Ok(filters)
}

/// Validates the request into what the job stores (everything that can be refused is
/// refused here, before a job exists).
fn new_export(
    state: &AppState,
    tenant: &tessera_model::Tenant,
    body: CreateExport,
    request_id: String,
) -> ApiResult<NewExport> {
    let schema_name = body.schema.and_then(|s| s.name).unwrap_or_default();
    if schema_name.is_empty() {
        return Err(bad_request(
            "schema.name is required (_xdm.context.profile)",
        ));
    }
    if schema_name != PROFILE_CLASS {
        return Err(bad_request(format!(
            "schema.name must be {PROFILE_CLASS}, got {schema_name:?}"
        )));
    }
    let destination = body.destination.unwrap_or_default();
    let Some(dataset_id) = not_blank(destination.dataset_id) else {
        return Err(bad_request("destination.datasetId is required"));
    };
    let filter = body.filter.unwrap_or_default();
    let segments = segment_filters(state, tenant, &filter)?;
    let segment_per_batch = destination.segment_per_batch.unwrap_or(false);
    if segment_per_batch && segments.is_empty() {
        // Without segments there is nothing to split by; exporting everything into one
        // batch instead would give the caller a different shape than asked for.
        return Err(bad_request(
            "destination.segmentPerBatch=true needs filter.segments: one batch is written per listed segment",
        ));
    }
    let from_ingest_ms = filter
        .from_ingest_timestamp
        .as_deref()
        .map(|t| rfc3339_ms("filter.fromIngestTimestamp", t))
        .transpose()?;
    let events = body
        .additional_fields
        .and_then(|a| a.event_list)
        .map(|list| -> ApiResult<EventList> {
            Ok(EventList {
                fields: not_blank(list.fields),
                from_ingest_ms: list
                    .filter
                    .and_then(|f| f.from_ingest_timestamp)
                    .as_deref()
                    .map(|t| rfc3339_ms("additionalFields.eventList.filter.fromIngestTimestamp", t))
                    .transpose()?,
            })
        })
        .transpose()?;
    let requested = body.merge_policy;
    let policy = choose_policy(
        &state.policies,
        state.store.as_ref(),
        tenant,
        requested.as_ref().map(|p| p.id.as_str()),
    )?;
    if let Some(version) = requested.and_then(|p| p.version) {
        if version != policy.version {
            return Err(bad_request(format!(
                "merge policy {} is at version {}, not {version}",
                policy.id, policy.version
            )));
        }
    }
    if policy.schema.name != PROFILE_CLASS {
        return Err(bad_request(format!(
            "merge policy {} is for {}, not {PROFILE_CLASS}",
            policy.id, policy.schema.name
        )));
    }
    match state.ingest.catalog().get(tenant, &dataset_id) {
        Ok(_) => {}
        Err(tessera_ingest::Error::DatasetNotFound { .. }) => {
            return Err(bad_request(format!(
                "destination dataset {dataset_id} does not exist in sandbox {}",
                tenant.sandbox
            )))
        }
        Err(other) => return Err(other.into()),
    }
    Ok(NewExport {
        segments,
        request_id,
        schema_name,
        spec: Spec {
            policy,
            fields: not_blank(body.fields),
            from_ingest_ms,
            empty_profiles: filter.empty_profiles.unwrap_or(false),
            events,
            max_identities: state.ingest.limits().max_graph_identities,
        },
        dataset_id,
        segment_per_batch,
    })
}

fn span(start: Option<i64>, end: Option<i64>) -> Value {
    let mut out = Map::new();
    if let Some(start) = start {
        out.insert("startTimeInMs".into(), json!(start));
    }
    if let Some(end) = end {
        out.insert("endTimeInMs".into(), json!(end));
        if let Some(start) = start {
            out.insert("totalTimeInMs".into(), json!(end.saturating_sub(start)));
        }
    }
    Value::Object(out)
}

/// `destination`: one `batchId`, or with `segmentPerBatch` one `batches` entry per segment
/// filter (AEP's shape), each with its lines written once the job started (extension).
fn destination(job: &ExportJob) -> Value {
    if job.batches.is_empty() {
        return json!({ "dataSetId": job.dataset_id, "segmentPerBatch": false, "batchId": job.batch_id });
    }
    let batches: Vec<Value> = job
        .batches
        .iter()
        .enumerate()
        .map(|(index, batch)| {
            let mut entry = Map::new();
            if let Some(filter) = job.segments.get(batch.filter) {
                entry.insert("segmentId".into(), json!(filter.segment_id));
                entry.insert("segmentNs".into(), json!("ups"));
                entry.insert("status".into(), json!(filter.statuses));
            }
            entry.insert("batchId".into(), json!(batch.batch_id));
            if job.started_ms.is_some() {
                let lines = job.progress.batches.get(index).map_or(0, |b| b.profiles);
                entry.insert("profileCount".into(), json!(lines));
            }
            Value::Object(entry)
        })
        .collect();
    json!({ "dataSetId": job.dataset_id, "segmentPerBatch": true, "batches": batches })
}

/// The job in AEP's shape.
fn view(job: &ExportJob) -> Value {
    let mut metrics = Map::new();
    metrics.insert(
        "totalTime".into(),
        span(Some(job.created_ms), job.finished_ms),
    );
    if job.status == ExportStatus::Succeeded {
        metrics.insert(
            "profileExportTime".into(),
            span(job.started_ms, job.exported_ms),
        );
        metrics.insert(
            "aCPDatasetWriteTime".into(),
            span(job.exported_ms, job.finished_ms),
        );
    }
    if job.started_ms.is_some() {
        metrics.insert("profileCount".into(), json!(job.progress.tally.exported));
    }
    let mut body = Map::new();
    body.insert("profileInstanceId".into(), json!("ups"));
    body.insert("jobType".into(), json!("BATCH"));
    body.insert("id".into(), json!(job.id));
    body.insert("schema".into(), json!({ "name": job.schema_name }));
    body.insert(
        "mergePolicy".into(),
        json!({ "id": job.spec.policy.id, "version": job.spec.policy.version }),
    );
    body.insert("status".into(), json!(job.status));
    body.insert("requestId".into(), json!(job.request_id));
    body.insert("computeGatewayJobId".into(), json!({}));
    body.insert("metrics".into(), Value::Object(metrics));
    body.insert("destination".into(), destination(job));
    body.insert("updateTime".into(), json!(job.updated_ms));
    body.insert("imsOrgId".into(), json!(job.org));
    body.insert("creationTime".into(), json!(job.created_ms));
    if !job.errors.is_empty() {
        body.insert("errors".into(), json!(job.errors));
    }
    Value::Object(body)
}

/// Starts exporting the sandbox's profiles.
#[utoipa::path(post, path = "/data/core/ups/export/jobs", tag = "profile", request_body = CreateExport,
    responses((status = 200, description = "the accepted job, status NEW"),
        (status = 400, description = "missing schema.name or destination.datasetId, unknown dataset or merge policy, \
bad timestamp, unknown segment, or segmentPerBatch=true without filter.segments")))]
async fn create_job(
    State(state): State<AppState>,
    context: SandboxContext,
    headers: HeaderMap,
    body: Result<Json<CreateExport>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Json(body) = body.map_err(|rejection| bad_request(rejection.body_text()))?;
    let request_id = headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned);
    let tenant = context.tenant.clone();
    let job = off_thread(move || {
        let request = new_export(&state, &tenant, body, request_id)?;
        state
            .export_jobs
            .create(&tenant, request)
            .map_err(ApiError::from)
    })
    .await?;
    Ok(Json(view(&job)))
}

/// The sandbox's export jobs, newest first.
#[utoipa::path(get, path = "/data/core/ups/export/jobs", tag = "profile", params(ListQuery),
    responses((status = 200, description = "`{records: [job], page: {sortField, sort, pageOffset, pageSize}, link: {next}}`")))]
async fn list_jobs(
    State(state): State<AppState>,
    context: SandboxContext,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let start = query.start.unwrap_or(0);
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_LIMIT);
    let jobs = state.export_jobs.clone();
    let tenant = context.tenant.clone();
    let (page, more) = off_thread(move || jobs.list(&tenant, start, limit)).await?;
    let next = if more {
        format!(
            "{JOBS_PATH}?start={}&limit={limit}",
            start.saturating_add(limit)
        )
    } else {
        String::new()
    };
    Ok(Json(json!({
        "records": page.iter().map(view).collect::<Vec<_>>(),
        "page": {
            "sortField": "createdTime",
            "sort": "desc",
            "pageOffset": start.to_string(),
            "pageSize": page.len(),
        },
        "link": { "next": next },
    })))
}

/// One export job.
#[utoipa::path(get, path = "/data/core/ups/export/jobs/{id}", tag = "profile",
    params(("id" = String, Path, description = "job id")),
    responses((status = 200, description = "the job"), (status = 404, description = "no such job")))]
async fn get_job(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let jobs = state.export_jobs.clone();
    let tenant = context.tenant.clone();
    let job = off_thread(move || jobs.get(&tenant, &id)).await?;
    Ok(Json(view(&job)))
}

/// Cancels an unfinished job (it stays readable with status `CANCELLED`); a finished job is
/// left as it is.
#[utoipa::path(delete, path = "/data/core/ups/export/jobs/{id}", tag = "profile",
    params(("id" = String, Path, description = "job id")),
    responses((status = 204, description = "cancelled, or already finished"), (status = 404, description = "no such job")))]
async fn delete_job(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let jobs = state.export_jobs.clone();
    let tenant = context.tenant.clone();
    off_thread(move || jobs.cancel(&tenant, &id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Which file of a job.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
pub struct FileQuery {
    /// The batch, for a job that wrote one per segment (required then); for other jobs it
    /// may name the job's one batch.
    batch_id: Option<String>,
}

/// The finished export as JSON lines (Tessera extension: AEP writes into a dataset instead).
#[utoipa::path(get, path = "/data/core/ups/export/jobs/{id}/file", tag = "profile",
    params(("id" = String, Path, description = "job id"), FileQuery),
    responses((status = 200, description = "`application/x-ndjson`: one merged profile per line"),
        (status = 400, description = "a segmentPerBatch job and no batchId"),
        (status = 404, description = "no such job or batch"), (status = 409, description = "the job has not SUCCEEDED")))]
async fn get_file(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
    Query(query): Query<FileQuery>,
) -> ApiResult<Response> {
    let jobs = state.export_jobs.clone();
    let tenant = context.tenant.clone();
    let batch = query.batch_id.clone();
    let (job, file) = off_thread(move || jobs.open_file(&tenant, &id, batch.as_deref())).await?;
    let length = file.metadata().ok().map(|m| m.len());
    // Streamed in chunks: an export can be far larger than a response should buffer.
    let file = tokio::fs::File::from_std(file);
    let stream = futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buffer = vec![0; FILE_CHUNK];
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(read) => {
                buffer.truncate(read);
                Some((Ok(bytes::Bytes::from(buffer)), Some(file)))
            }
            Err(error) => {
                // The status line is already sent: log, and end the body with an error so
                // the client sees a broken transfer, not a short file.
                tracing::error!(%error, "reading an export file failed mid-response");
                Some((Err(error), None))
            }
        }
    });
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/x-ndjson"),
    );
    if let Some(length) = length {
        headers.insert(header::CONTENT_LENGTH, header::HeaderValue::from(length));
    }
    let name = match &query.batch_id {
        Some(batch) if !job.batches.is_empty() => format!("export-{}-{batch}.jsonl", job.id),
        _ => format!("export-{}.jsonl", job.id),
    };
    if let Ok(value) = header::HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
