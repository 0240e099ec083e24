//! AEP Profile system jobs: `/data/core/ups/system/jobs` — delete all profile data of a
//! dataset, or the events of one batch of an experience-event dataset, asynchronously.
//!
//! Azure response shape (AEP reference §4.3): `{id, imsOrgId, dataSetId | batchId,
//! jobType: "DELETE", status: NEW | PROCESSING | COMPLETED | ERROR, createEpoch,
//! updateEpoch}` in seconds, plus `metrics` once started — a JSON *string*
//! `{"recordsProcessed":n,"timeTakenInSec":s}`, as AEP sends it. The work is done by
//! [`crate::system_jobs`].

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};
use tessera_ingest::BatchStatus;
use tessera_profile::purge::Target;
use tessera_schema::XdmClass;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::context::SandboxContext;
use crate::error::{ApiError, ApiResult};
use crate::routes::off_thread;
use crate::state::AppState;
use crate::system_jobs::SystemJob;

/// Most jobs one list page returns.
const MAX_LIMIT: usize = 1_000;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_job, list_jobs))
        .routes(routes!(get_job, delete_job))
}

/// Body of a delete request: exactly one of the two.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateJob {
    /// Delete all profile data of this dataset.
    #[serde(rename = "dataSetId")]
    data_set_id: Option<String>,
    /// Delete the events of this batch (experience-event datasets only).
    batch_id: Option<String>,
}

/// Paging of the job list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// Offset of the first job (default 0).
    start: Option<usize>,
    /// Page size (default 100, at most 1000).
    limit: Option<usize>,
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::Profile {
        status: StatusCode::BAD_REQUEST,
        message: message.into(),
    }
}

fn epoch_seconds(ms: i64) -> i64 {
    ms.div_euclid(1_000)
}

/// The job in AEP's Azure shape.
fn view(job: &SystemJob) -> Value {
    let mut body = Map::new();
    body.insert("id".into(), json!(job.id));
    body.insert("imsOrgId".into(), json!(job.org));
    match &job.batch_id {
        Some(batch) => body.insert("batchId".into(), json!(batch)),
        None => body.insert("dataSetId".into(), json!(job.dataset_id)),
    };
    body.insert("jobType".into(), json!("DELETE"));
    body.insert("status".into(), json!(job.status));
    body.insert("createEpoch".into(), json!(epoch_seconds(job.created_ms)));
    body.insert("updateEpoch".into(), json!(epoch_seconds(job.updated_ms)));
    if let Some(started) = job.started_ms {
        // A JSON string holding JSON: AEP's documented quirk, kept for compatibility.
        let metrics = json!({
            "recordsProcessed": job.progress.records,
            "timeTakenInSec": epoch_seconds(job.updated_ms.saturating_sub(started)),
        });
        body.insert("metrics".into(), json!(metrics.to_string()));
    }
    Value::Object(body)
}

/// Resolves the request body into what to delete, checking the dataset or batch exists.
fn target_of(
    state: &AppState,
    tenant: &tessera_model::Tenant,
    body: CreateJob,
) -> ApiResult<Target> {
    match (body.data_set_id, body.batch_id) {
        (Some(dataset), None) => match state.ingest.catalog().get(tenant, &dataset) {
            Ok(_) => Ok(Target::Dataset { dataset }),
            Err(tessera_ingest::Error::DatasetNotFound { .. }) => Err(bad_request(format!(
                "dataset {dataset} does not exist in sandbox {}",
                tenant.sandbox
            ))),
            Err(other) => Err(other.into()),
        },
        (None, Some(batch)) => {
            let record = match state.batches.get(tenant, &batch) {
                Ok(record) => record,
                Err(tessera_ingest::Error::BatchNotFound { .. }) => {
                    return Err(bad_request(format!(
                        "batch {batch} does not exist in sandbox {}",
                        tenant.sandbox
                    )))
                }
                Err(other) => return Err(other.into()),
            };
            if matches!(
                record.status,
                BatchStatus::Loading | BatchStatus::Processing
            ) {
                return Err(bad_request(format!(
                    "batch {batch} is still being ingested; delete it once it has finished"
                )));
            }
            let schema = match state.ingest.target(tenant, &record.dataset_id)? {
                Ok((_, schema)) => schema,
                Err(rejection) => return Err(bad_request(rejection.message)),
            };
            if *schema.class() != XdmClass::ExperienceEvent {
                // AEP's rule: record batches overwrite one another, so deleting one cannot
                // restore what was there before; only time-series batches can be deleted.
                return Err(bad_request(format!(
                    "batch {batch} belongs to dataset {} which is not an ExperienceEvent (time-series) dataset; \
                     batches of record datasets cannot be deleted, re-ingest the records instead",
                    record.dataset_id
                )));
            }
            Ok(Target::Batch {
                dataset: record.dataset_id,
                batch,
            })
        }
        _ => Err(bad_request(
            "the request must name exactly one of dataSetId and batchId",
        )),
    }
}

/// Starts deleting a dataset's profile data or a batch's events.
#[utoipa::path(post, path = "/data/core/ups/system/jobs", tag = "profile", request_body = CreateJob,
    responses((status = 200, description = "the accepted job, status NEW"),
        (status = 400, description = "unknown dataset or batch, or a record-dataset batch"),
        (status = 422, description = "an unfinished job for the same dataset or batch exists")))]
async fn create_job(
    State(state): State<AppState>,
    context: SandboxContext,
    body: Result<Json<CreateJob>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Json(body) = body?;
    let tenant = context.tenant.clone();
    let job = off_thread(move || {
        let target = target_of(&state, &tenant, body)?;
        state
            .system_jobs
            .create(&tenant, target)
            .map_err(ApiError::from)
    })
    .await?;
    Ok(Json(view(&job)))
}

/// The sandbox's system jobs, oldest first.
#[utoipa::path(get, path = "/data/core/ups/system/jobs", tag = "profile", params(ListQuery),
    responses((status = 200, description = "`{_page: {count, next}, children: [job]}`")))]
async fn list_jobs(
    State(state): State<AppState>,
    context: SandboxContext,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let start = query.start.unwrap_or(0);
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_LIMIT);
    let jobs = state.system_jobs.clone();
    let tenant = context.tenant.clone();
    let all = off_thread(move || jobs.list(&tenant)).await?;
    let page: Vec<Value> = all.iter().skip(start).take(limit).map(view).collect();
    let next = if start.saturating_add(limit) < all.len() {
        (start + limit).to_string()
    } else {
        String::new()
    };
    Ok(Json(json!({
        "_page": { "count": page.len(), "next": next },
        "children": page,
    })))
}

/// One system job.
#[utoipa::path(get, path = "/data/core/ups/system/jobs/{id}", tag = "profile",
    params(("id" = String, Path, description = "job id")),
    responses((status = 200, description = "the job"), (status = 404, description = "no such job")))]
async fn get_job(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let jobs = state.system_jobs.clone();
    let tenant = context.tenant.clone();
    let job = off_thread(move || jobs.get(&tenant, &id)).await?;
    Ok(Json(view(&job)))
}

/// Deletes a job record; a job not yet finished is cancelled.
#[utoipa::path(delete, path = "/data/core/ups/system/jobs/{id}", tag = "profile",
    params(("id" = String, Path, description = "job id")),
    responses((status = 200, description = "deleted (empty body)"), (status = 404, description = "no such job")))]
async fn delete_job(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let jobs = state.system_jobs.clone();
    let tenant = context.tenant.clone();
    off_thread(move || jobs.delete(&tenant, &id)).await?;
    Ok(StatusCode::OK)
}
