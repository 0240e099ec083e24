//! AEP Catalog API, datasets: `/data/foundation/catalog/dataSets`.
//!
//! Shapes follow Catalog: create answers 201 with `["@/dataSets/{id}"]`; reads answer an
//! object keyed by dataset id (also for a single dataset), optionally limited to
//! `properties`; list pages with `start` and `limit`.
//!
//! Retention (`extensions.adobe_unifiedProfile.rowExpiration.ttlValue`) is set with either
//! PATCH path: `/dataSets/{id}` or AEP's `/v2/datasets/{id}`, both answering
//! `["@/dataSets/{id}"]`. A create or PATCH that leaves a dataset with a TTL wakes the
//! retention sweeper, so events already past it are deleted at once (reads hide them even
//! sooner: see `profile_events`).

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{Map, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::context::SandboxContext;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::routes::with_ingest;
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_datasets, create_dataset))
        .routes(routes!(get_dataset, patch_dataset, delete_dataset))
        .routes(routes!(patch_dataset_v2))
        .routes(routes!(
            get_labels,
            create_labels,
            replace_labels,
            delete_labels
        ))
}

fn labels_body(body: Result<Json<Value>, JsonRejection>) -> ApiResult<tessera_ingest::Labels> {
    let Json(value) = body?;
    serde_json::from_value(value)
        .map_err(|e| ApiError::problem(ErrorCode::InvalidField, format!("labels body: {e}")))
}

/// Data usage labels of a dataset, keyed `AEP:dataset:{id}`.
#[utoipa::path(get, path = "/data/foundation/catalog/dataSets/{id}/labels", tag = "catalog",
    params(("id" = String, Path, description = "dataset id")),
    responses((status = 200, description = "`{\"AEP:dataset:{id}\": {imsOrg, labels, optionalLabels}}`"),
        (status = 404, description = "unknown dataset")))]
async fn get_labels(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let tenant = context.tenant.clone();
    let key = format!("AEP:dataset:{id}");
    let labels = with_ingest(&state, move |ingest| ingest.catalog().labels(&tenant, &id)).await?;
    Ok(Json(serde_json::json!({ key: {
        "imsOrg": context.tenant.org.as_str(),
        "labels": labels.labels,
        "optionalLabels": labels.optional_labels,
    }})))
}

/// Create the labels of a dataset (409 when it has some: use PUT).
#[utoipa::path(post, path = "/data/foundation/catalog/dataSets/{id}/labels", tag = "catalog",
    params(("id" = String, Path, description = "dataset id")),
    responses((status = 201, description = "the labels"), (status = 409, description = "labels exist")))]
async fn create_labels(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<tessera_ingest::Labels>)> {
    let labels = labels_body(body)?;
    let tenant = context.tenant.clone();
    let saved = with_ingest(&state, move |ingest| {
        ingest.catalog().set_labels(&tenant, &id, labels, true)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(saved)))
}

/// Overwrite the labels of a dataset.
#[utoipa::path(put, path = "/data/foundation/catalog/dataSets/{id}/labels", tag = "catalog",
    params(("id" = String, Path, description = "dataset id")),
    responses((status = 200, description = "the labels")))]
async fn replace_labels(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<tessera_ingest::Labels>> {
    let labels = labels_body(body)?;
    let tenant = context.tenant.clone();
    Ok(Json(
        with_ingest(&state, move |ingest| {
            ingest.catalog().set_labels(&tenant, &id, labels, false)
        })
        .await?,
    ))
}

/// Remove the labels of a dataset.
#[utoipa::path(delete, path = "/data/foundation/catalog/dataSets/{id}/labels", tag = "catalog",
    params(("id" = String, Path, description = "dataset id")),
    responses((status = 200, description = "removed")))]
async fn delete_labels(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let tenant = context.tenant.clone();
    with_ingest(&state, move |ingest| {
        ingest.catalog().delete_labels(&tenant, &id)
    })
    .await?;
    Ok(StatusCode::OK)
}

/// Query of dataset reads.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct ReadParams {
    /// Comma-separated properties to return.
    properties: Option<String>,
    /// Records to skip (list only).
    start: Option<usize>,
    /// Page size, default 50, at most 100 (list only).
    limit: Option<usize>,
}

fn wanted(properties: &Option<String>) -> Option<Vec<&str>> {
    properties.as_deref().map(|p| {
        p.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    })
}

fn body_object(body: Result<Json<Value>, JsonRejection>) -> ApiResult<Map<String, Value>> {
    let Json(value) = body?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::problem(
            ErrorCode::MalformedBody,
            "the body must be a JSON object",
        )),
    }
}

/// List datasets, keyed by id.
#[utoipa::path(get, path = "/data/foundation/catalog/dataSets", tag = "catalog", params(ReadParams),
    responses((status = 200, description = "object keyed by dataset id")))]
async fn list_datasets(
    State(state): State<AppState>,
    context: SandboxContext,
    Query(params): Query<ReadParams>,
) -> ApiResult<Json<Value>> {
    let start = params.start.unwrap_or(0);
    let limit = params.limit.unwrap_or(50).clamp(1, 100);
    let tenant = context.tenant.clone();
    let datasets = with_ingest(&state, move |ingest| {
        ingest.catalog().list(&tenant, start, limit)
    })
    .await?;
    let fields = wanted(&params.properties);
    let body: Map<String, Value> = datasets
        .iter()
        .map(|d| (d.id.clone(), d.view(fields.as_deref())))
        .collect();
    Ok(Json(Value::Object(body)))
}

/// Create a dataset.
#[utoipa::path(post, path = "/data/foundation/catalog/dataSets", tag = "catalog",
    responses((status = 201, description = "`[\"@/dataSets/{id}\"]`"), (status = 400, description = "invalid dataset")))]
async fn create_dataset(
    State(state): State<AppState>,
    context: SandboxContext,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let doc = body_object(body)?;
    let tenant = context.tenant.clone();
    let user = context.caller.label().to_owned();
    let dataset = with_ingest(&state, move |ingest| {
        ingest.catalog().create(&tenant, doc, &user)
    })
    .await?;
    tracing::info!(dataset = %dataset.id, "dataset created");
    if dataset.event_ttl().is_some() {
        state.retention.kick();
    }
    Ok((
        StatusCode::CREATED,
        Json(Value::from(vec![format!("@/dataSets/{}", dataset.id)])),
    ))
}

/// Look up a dataset (answer keyed by its id).
#[utoipa::path(get, path = "/data/foundation/catalog/dataSets/{id}", tag = "catalog",
    params(("id" = String, Path, description = "dataset id"), ReadParams),
    responses((status = 200, description = "`{id: dataset}`"), (status = 404, description = "unknown dataset")))]
async fn get_dataset(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
    Query(params): Query<ReadParams>,
) -> ApiResult<Json<Value>> {
    let tenant = context.tenant.clone();
    let dataset = with_ingest(&state, move |ingest| ingest.catalog().get(&tenant, &id)).await?;
    let fields = wanted(&params.properties);
    let mut body = Map::new();
    body.insert(dataset.id.clone(), dataset.view(fields.as_deref()));
    Ok(Json(Value::Object(body)))
}

/// Update some fields of a dataset (the schema cannot change).
#[utoipa::path(patch, path = "/data/foundation/catalog/dataSets/{id}", tag = "catalog",
    params(("id" = String, Path, description = "dataset id")),
    responses((status = 200, description = "`[\"@/dataSets/{id}\"]`")))]
async fn patch_dataset(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    patch(state, context, id, body).await
}

/// Update some fields of a dataset, AEP's v2 path (used for `rowExpiration`); the same
/// as `PATCH /dataSets/{id}`.
#[utoipa::path(patch, path = "/data/foundation/catalog/v2/datasets/{id}", tag = "catalog",
    params(("id" = String, Path, description = "dataset id")),
    responses((status = 200, description = "`[\"@/dataSets/{id}\"]`"),
        (status = 400, description = "invalid field, e.g. a malformed ttlValue or a TTL on a record dataset")))]
async fn patch_dataset_v2(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    patch(state, context, id, body).await
}

async fn patch(
    state: AppState,
    context: SandboxContext,
    id: String,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let patch = body_object(body)?;
    let tenant = context.tenant.clone();
    let user = context.caller.label().to_owned();
    let previous_ttl = {
        let (tenant, id) = (tenant.clone(), id.clone());
        with_ingest(&state, move |ingest| ingest.catalog().get(&tenant, &id))
            .await?
            .event_ttl()
    };
    let dataset = with_ingest(&state, move |ingest| {
        ingest.catalog().patch(&tenant, &id, patch, &user)
    })
    .await?;
    let ttl = dataset.event_ttl();
    if ttl != previous_ttl {
        tracing::info!(
            dataset = %dataset.id,
            ttl = ttl.as_ref().map(|t| t.as_str()).unwrap_or("none"),
            "dataset profile retention changed"
        );
        // A new or changed TTL may have made events expire: delete them now, as AEP does.
        if ttl.is_some() {
            state.retention.kick();
        }
    }
    Ok(Json(Value::from(vec![format!(
        "@/dataSets/{}",
        dataset.id
    )])))
}

/// Delete a dataset from the catalog.
#[utoipa::path(delete, path = "/data/foundation/catalog/dataSets/{id}", tag = "catalog",
    params(("id" = String, Path, description = "dataset id")),
    responses((status = 200, description = "`[\"@/dataSets/{id}\"]`"), (status = 404, description = "unknown dataset")))]
async fn delete_dataset(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let tenant = context.tenant.clone();
    let reply = Value::from(vec![format!("@/dataSets/{id}")]);
    with_ingest(&state, move |ingest| ingest.catalog().delete(&tenant, &id)).await?;
    Ok(Json(reply))
}
