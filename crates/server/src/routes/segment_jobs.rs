//! AEP segment jobs: `/data/core/ups/segment/jobs` — on-demand batch evaluation.
//!
//! Shapes follow the Segmentation API: POST takes an array `[{"segmentId": ...}]` (or the
//! object form `{"schema": ..., "segments": [{"segmentId": "*"}]}` for every segment); a job
//! carries `status`, `segments`, `metrics` (AEP's names) and `_links`; lists page with
//! `_page{totalCount, pageSize}`; bulk-get answers 207. Cancelling answers 200 with AEP's
//! `{"status": true, "message": ...}` body (documented as 204 with a body, which HTTP cannot
//! carry).

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::context::SandboxContext;
use crate::error::{ApiError, ApiResult};
use crate::routes::{blocking, off_thread};
use crate::sandboxes;
use crate::segment_jobs::{metrics_json, SegmentJob, SegmentJobStatus};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_jobs, create_job))
        .routes(routes!(bulk_get))
        .routes(routes!(get_job, cancel_job))
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::Profile {
        status: StatusCode::BAD_REQUEST,
        message: message.into(),
    }
}

fn render(job: &SegmentJob, sandbox: &sandboxes::Sandbox) -> Value {
    let segments: Vec<Value> = if job.all_segments {
        vec![json!({"segmentId": "*"})]
    } else {
        job.segment_ids
            .iter()
            .map(|id| json!({"segmentId": id}))
            .collect()
    };
    let href = format!("/segment/jobs/{}", job.id);
    let mut value = json!({
        "id": job.id,
        "imsOrgId": job.org,
        "sandbox": {"sandboxId": sandbox.name, "sandboxName": sandbox.name, "type": sandbox.kind, "default": sandbox.is_default},
        "profileInstanceId": "ups",
        "source": job.source,
        "status": job.status,
        "segments": segments,
        "metrics": metrics_json(job),
        "schema": {"name": "_xdm.context.profile"},
        "_links": {
            "cancel": {"href": href, "method": "DELETE"},
            "checkStatus": {"href": href, "method": "GET"},
        },
        "creationTime": job.creation_time,
        "updateTime": job.update_time,
        "updateEpoch": job.update_time / 1000,
    });
    if let (Some(error), Value::Object(map)) = (&job.error, &mut value) {
        map.insert(
            "errors".into(),
            json!([{"code": "0100000003", "msg": error}]),
        );
    }
    value
}

async fn sandbox_of(state: &AppState, context: &SandboxContext) -> ApiResult<sandboxes::Sandbox> {
    let org = context.tenant.org.clone();
    let name = context.tenant.sandbox.as_str().to_owned();
    blocking(state, move |store| sandboxes::get(store, &org, &name)).await
}

/// Start a batch evaluation of segments.
#[utoipa::path(post, path = "/data/core/ups/segment/jobs", tag = "segmentation",
    responses((status = 200, description = "the job, status NEW"), (status = 400, description = "no or unknown segment")))]
async fn create_job(
    State(state): State<AppState>,
    context: SandboxContext,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Json(body) = body.map_err(|e| bad_request(e.body_text()))?;
    let items = match &body {
        Value::Array(items) => items.clone(),
        Value::Object(map) => map
            .get("segments")
            .and_then(Value::as_array)
            .cloned()
            .ok_or_else(|| {
                bad_request("expected [{\"segmentId\": ...}] or {\"segments\": [...]}")
            })?,
        _ => return Err(bad_request("expected [{\"segmentId\": ...}]")),
    };
    let mut ids = Vec::with_capacity(items.len());
    for item in &items {
        let Some(id) = item.get("segmentId").and_then(Value::as_str) else {
            return Err(bad_request("every item needs a segmentId"));
        };
        ids.push(id.to_owned());
    }
    let segments = if ids.iter().any(|id| id == "*") {
        None
    } else {
        Some(ids)
    };
    let jobs = state.segment_jobs.clone();
    let tenant = context.tenant.clone();
    let job = off_thread(move || jobs.create(&tenant, segments)).await?;
    let sandbox = sandbox_of(&state, &context).await?;
    Ok(Json(render(&job, &sandbox)))
}

/// Paging and filters of a job list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct ListParams {
    /// Offset.
    start: Option<usize>,
    /// Page size (default 100).
    limit: Option<usize>,
    /// Only jobs in this status (e.g. `SUCCEEDED`).
    status: Option<String>,
}

/// Segment jobs of the sandbox, newest first.
#[utoipa::path(get, path = "/data/core/ups/segment/jobs", tag = "segmentation", params(ListParams),
    responses((status = 200, description = "`{_page{totalCount,pageSize}, children, _links{next}}`")))]
async fn list_jobs(
    State(state): State<AppState>,
    context: SandboxContext,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<Value>> {
    let limit = params.limit.unwrap_or(100).clamp(1, 1000);
    let start = params.start.unwrap_or(0);
    let jobs = state.segment_jobs.clone();
    let tenant = context.tenant.clone();
    let all = off_thread(move || jobs.list(&tenant)).await?;
    let wanted = params.status.map(|s| s.to_ascii_uppercase());
    let matching: Vec<&SegmentJob> = all
        .iter()
        .filter(|j| {
            wanted.as_deref().is_none_or(|w| {
                serde_json::to_value(j.status).ok() == Some(Value::String(w.to_owned()))
            })
        })
        .collect();
    let sandbox = sandbox_of(&state, &context).await?;
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(limit)
        .map(|j| render(j, &sandbox))
        .collect();
    let next = start + page.len();
    let links = if next < matching.len() {
        json!({"next": {"href": format!("/segment/jobs?start={next}&limit={limit}")}})
    } else {
        json!({"next": {}})
    };
    Ok(Json(json!({
        "_page": {"totalCount": matching.len(), "pageSize": page.len()},
        "children": page,
        "_links": links,
    })))
}

/// One job.
#[utoipa::path(get, path = "/data/core/ups/segment/jobs/{id}", tag = "segmentation",
    params(("id" = String, Path, description = "job id")),
    responses((status = 200, description = "the job"), (status = 404, description = "unknown job")))]
async fn get_job(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let jobs = state.segment_jobs.clone();
    let tenant = context.tenant.clone();
    let job = off_thread(move || jobs.get(&tenant, &id)).await?;
    let sandbox = sandbox_of(&state, &context).await?;
    Ok(Json(render(&job, &sandbox)))
}

/// Several jobs by id (207; unknown ids are left out).
#[utoipa::path(post, path = "/data/core/ups/segment/jobs/bulk-get", tag = "segmentation",
    responses((status = 207, description = "`{results: {id: job}}`")))]
async fn bulk_get(
    State(state): State<AppState>,
    context: SandboxContext,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Json(body) = body.map_err(|e| bad_request(e.body_text()))?;
    let ids: Vec<String> = body
        .get("ids")
        .and_then(Value::as_array)
        .ok_or_else(|| bad_request("expected {\"ids\": [{\"id\": ...}]}"))?
        .iter()
        .filter_map(|i| i.get("id").and_then(Value::as_str).map(str::to_owned))
        .collect();
    let jobs = state.segment_jobs.clone();
    let tenant = context.tenant.clone();
    let all = off_thread(move || jobs.list(&tenant)).await?;
    let sandbox = sandbox_of(&state, &context).await?;
    let results: Map<String, Value> = all
        .iter()
        .filter(|j| ids.contains(&j.id))
        .map(|j| (j.id.clone(), render(j, &sandbox)))
        .collect();
    Ok((
        StatusCode::MULTI_STATUS,
        Json(json!({ "results": results })),
    ))
}

/// Cancel a job (asynchronous: the worker stops at its next page).
#[utoipa::path(delete, path = "/data/core/ups/segment/jobs/{id}", tag = "segmentation",
    params(("id" = String, Path, description = "job id")),
    responses((status = 200, description = "`{status: true, message}`"), (status = 404, description = "unknown job")))]
async fn cancel_job(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let jobs = state.segment_jobs.clone();
    let tenant = context.tenant.clone();
    let job_id = id.clone();
    let job = off_thread(move || jobs.cancel(&tenant, &job_id)).await?;
    let message = match job.status {
        SegmentJobStatus::Cancelling | SegmentJobStatus::Cancelled => {
            format!("Segment job with id '{id}' has been marked for cancelling")
        }
        _ => format!("Segment job with id '{id}' has already finished"),
    };
    Ok(Json(json!({"status": true, "message": message})))
}
