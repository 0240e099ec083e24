//! Batch ingestion (`/data/foundation/import/batches`) and batch status through the Catalog
//! (`/data/foundation/catalog/batches`).
//!
//! Create a batch for a dataset, `PUT` files (streamed to disk, never buffered whole),
//! then `POST ?action=COMPLETE`; processing is asynchronous — poll the catalog batch for
//! `status`, `metrics` and `errors` (row, field path, reason).

use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use http_body_util::BodyExt as _;
use serde_json::{json, Map, Value};
use tessera_ingest::InputFormat;
use tokio::io::AsyncWriteExt;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::context::SandboxContext;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::routes::off_thread;
use crate::state::AppState;

/// AEP's limit for one single-request file upload.
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_batch))
        .routes(routes!(batch_action))
        .routes(routes!(upload_file))
        .routes(routes!(list_batches))
        .routes(routes!(get_batch))
}

async fn on_batches<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&tessera_ingest::BatchService) -> tessera_ingest::Result<T> + Send + 'static,
) -> ApiResult<T> {
    let batches = state.batches.clone();
    off_thread(move || work(&batches)).await
}

/// Body of a batch creation.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateBatch {
    /// Target dataset.
    dataset_id: String,
    /// `{"format": "json" | "csv"}`.
    input_format: Option<FormatSpec>,
}

/// Input format wrapper, as AEP nests it.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct FormatSpec {
    /// `json` or `csv`.
    format: String,
}

/// Create a batch.
#[utoipa::path(post, path = "/data/foundation/import/batches", tag = "ingestion", request_body = CreateBatch,
    responses((status = 201, description = "the batch, status `loading`"), (status = 400, description = "invalid request")))]
async fn create_batch(
    State(state): State<AppState>,
    context: SandboxContext,
    body: Result<Json<CreateBatch>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Json(request) = body?;
    let format = match request
        .input_format
        .as_ref()
        .map(|f| f.format.to_ascii_lowercase())
    {
        None => InputFormat::Json,
        Some(f) if f == "json" => InputFormat::Json,
        Some(f) if f == "csv" => InputFormat::Csv,
        Some(other) => {
            return Err(ApiError::problem(
                ErrorCode::InvalidField,
                format!("inputFormat.format {other:?} is not supported; use json or csv"),
            ))
        }
    };
    let tenant = context.tenant.clone();
    let user = context.caller.label().to_owned();
    let created = on_batches(&state, move |b| {
        b.create(&tenant, &request.dataset_id, format, &user)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(created.view())))
}

/// Query of batch actions.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct ActionParams {
    /// `COMPLETE` or `ABORT`.
    action: String,
}

/// Complete (start processing) or abort a batch.
#[utoipa::path(post, path = "/data/foundation/import/batches/{id}", tag = "ingestion",
    params(("id" = String, Path, description = "batch id"), ActionParams),
    responses((status = 200, description = "accepted"), (status = 409, description = "wrong state")))]
async fn batch_action(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
    Query(params): Query<ActionParams>,
) -> ApiResult<Json<Value>> {
    let tenant = context.tenant.clone();
    let record = match params.action.to_ascii_uppercase().as_str() {
        "COMPLETE" => {
            let record = on_batches(&state, move |b| b.complete(&tenant, &id)).await?;
            state.batch_kick.kick();
            record
        }
        "ABORT" => on_batches(&state, move |b| b.abort(&tenant, &id)).await?,
        other => {
            return Err(ApiError::problem(
                ErrorCode::InvalidField,
                format!("action {other:?} is not supported; use COMPLETE or ABORT"),
            ))
        }
    };
    Ok(Json(record.view()))
}

/// Upload one file into a loading batch (`application/octet-stream`, up to 256 MB).
#[utoipa::path(put, path = "/data/foundation/import/batches/{id}/datasets/{dataset_id}/files/{file}", tag = "ingestion",
    params(("id" = String, Path, description = "batch id"), ("dataset_id" = String, Path, description = "the batch's dataset"),
        ("file" = String, Path, description = "file name")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, description = "stored"), (status = 409, description = "batch not loading")))]
async fn upload_file(
    State(state): State<AppState>,
    context: SandboxContext,
    Path((id, dataset_id, file)): Path<(String, String, String)>,
    mut body: Body,
) -> ApiResult<StatusCode> {
    let tenant = context.tenant.clone();
    let (batch_id, name) = (id.clone(), file.clone());
    let path = on_batches(&state, move |b| {
        b.prepare_upload(&tenant, &batch_id, &dataset_id, &name)
    })
    .await?;
    let partial = path.with_extension("part");
    let io_error = |e: std::io::Error| {
        tracing::error!(error = %e, "writing an uploaded batch file failed");
        ApiError::problem(ErrorCode::Internal, "the file could not be stored")
    };
    let mut out = tokio::fs::File::create(&partial).await.map_err(io_error)?;
    let mut size: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::problem(ErrorCode::MalformedBody, format!("upload interrupted: {e}"))
        })?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        size += chunk.len() as u64;
        if size > MAX_FILE_BYTES {
            drop(out);
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(ApiError::problem(
                ErrorCode::InvalidField,
                format!("file exceeds {MAX_FILE_BYTES} bytes; split it into several files"),
            ));
        }
        out.write_all(&chunk).await.map_err(io_error)?;
    }
    // Registered only once its bytes are on disk: a crash never leaves a half file listed.
    out.sync_all().await.map_err(io_error)?;
    drop(out);
    tokio::fs::rename(&partial, &path).await.map_err(io_error)?;
    let tenant = context.tenant.clone();
    on_batches(&state, move |b| b.add_file(&tenant, &id, &file, size)).await?;
    Ok(StatusCode::OK)
}

/// Query of batch listings.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct ListParams {
    /// Records to skip.
    start: Option<usize>,
    /// Page size (default 50, at most 100).
    limit: Option<usize>,
}

/// List batches, keyed by id.
#[utoipa::path(get, path = "/data/foundation/catalog/batches", tag = "catalog", params(ListParams),
    responses((status = 200, description = "object keyed by batch id")))]
async fn list_batches(
    State(state): State<AppState>,
    context: SandboxContext,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<Value>> {
    let tenant = context.tenant.clone();
    let start = params.start.unwrap_or(0);
    let limit = params.limit.unwrap_or(50).clamp(1, 100);
    let records = on_batches(&state, move |b| b.list(&tenant, start, limit)).await?;
    let body: Map<String, Value> = records.iter().map(|r| (r.id.clone(), r.view())).collect();
    Ok(Json(Value::Object(body)))
}

/// A batch with status, metrics and row errors, keyed by id.
#[utoipa::path(get, path = "/data/foundation/catalog/batches/{id}", tag = "catalog",
    params(("id" = String, Path, description = "batch id")),
    responses((status = 200, description = "`{id: batch}`"), (status = 404, description = "unknown batch")))]
async fn get_batch(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let tenant = context.tenant.clone();
    let record = on_batches(&state, move |b| b.get(&tenant, &id)).await?;
    Ok(Json(json!({ record.id.clone(): record.view() })))
}
