//! Streaming connections through AEP's Flow Service shape:
//! `/data/foundation/flowservice/connections`.
//!
//! Creating an "HTTP API streaming connection" returns its `id` (the inlet id) and, on read,
//! `auth.params.inletUrl` — the URL to post messages to. Tessera extensions: a top-level
//! `id` lets operators pick a stable inlet id, and `auth.params.datasetId` binds the inlet
//! to a dataset so messages may omit `header.datasetId`.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};
use tessera_ingest::{inlet, Inlet, NewInlet};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AuthMode;
use crate::context::SandboxContext;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::routes::with_ingest;
use crate::state::AppState;

/// Flow Service's connection spec id for streaming (HTTP API) connections.
pub const STREAMING_CONNECTION_SPEC: &str = "bc7b00d6-623a-4dfc-9fdb-f1240aeadaeb";

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_connections, create_connection))
        .routes(routes!(get_connection, delete_connection))
}

fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:8080");
    format!("http://{host}")
}

fn view(inlet: &Inlet, base: &str) -> Value {
    json!({
        "id": inlet.id,
        "name": inlet.name,
        "description": inlet.description,
        "createdAt": inlet.created,
        "updatedAt": inlet.created,
        "createdBy": inlet.created_by,
        "sandboxName": inlet.sandbox,
        "imsOrgId": inlet.org,
        "state": "enabled",
        "connectionSpec": { "id": STREAMING_CONNECTION_SPEC, "version": "1.0" },
        "auth": {
            "specName": "Streaming Connection",
            "params": {
                "inletId": inlet.id,
                "inletUrl": format!("{base}/collection/{}", inlet.id),
                "dataType": "xdm",
                "name": inlet.name,
                "authenticationRequired": inlet.authentication_required,
                "datasetId": inlet.dataset_id,
            }
        }
    })
}

/// Create a streaming connection (inlet).
#[utoipa::path(post, path = "/data/foundation/flowservice/connections", tag = "ingestion",
    responses((status = 201, description = "`{id, etag}`"), (status = 400, description = "invalid connection")))]
async fn create_connection(
    State(state): State<AppState>,
    context: SandboxContext,
    headers: HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Json(body) = body?;
    let invalid = |detail: &str| ApiError::problem(ErrorCode::InvalidField, detail.to_owned());
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("name is required"))?;
    if let Some(spec) = body
        .get("connectionSpec")
        .and_then(|s| s.get("id"))
        .and_then(Value::as_str)
    {
        if spec != STREAMING_CONNECTION_SPEC {
            return Err(invalid(&format!(
                "connectionSpec.id {spec} is not supported; Tessera offers streaming HTTP API connections ({STREAMING_CONNECTION_SPEC})"
            )));
        }
    }
    let params = body.get("auth").and_then(|a| a.get("params"));
    // Secure by default when keys are configured; AEP's own default (open inlet) otherwise.
    let default_auth = matches!(*state.auth, AuthMode::Keys(_));
    let authentication_required = match params.and_then(|p| p.get("authenticationRequired")) {
        None => default_auth,
        Some(Value::Bool(flag)) => *flag,
        Some(_) => {
            return Err(invalid(
                "auth.params.authenticationRequired must be a boolean",
            ))
        }
    };
    let dataset_id = params
        .and_then(|p| p.get("datasetId"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let new = NewInlet {
        id: body.get("id").and_then(Value::as_str).map(str::to_owned),
        name: name.to_owned(),
        description: body
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        dataset_id: dataset_id.clone(),
        authentication_required,
    };
    let tenant = context.tenant.clone();
    let user = context.caller.label().to_owned();
    let created = with_ingest(&state, move |ingest| {
        if let Some(dataset) = &dataset_id {
            ingest.catalog().get(&tenant, dataset)?;
        }
        inlet::create(ingest.store().as_ref(), &tenant, new, &user)
    })
    .await?;
    tracing::info!(inlet = %created.id, "streaming connection created");
    let base = base_url(&headers);
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": created.id,
            "etag": format!("\"{}\"", created.created),
            "inletUrl": format!("{base}/collection/{}", created.id),
        })),
    ))
}

/// List the sandbox's streaming connections.
#[utoipa::path(get, path = "/data/foundation/flowservice/connections", tag = "ingestion",
    responses((status = 200, description = "`{items: [...]}`")))]
async fn list_connections(
    State(state): State<AppState>,
    context: SandboxContext,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let tenant = context.tenant.clone();
    let inlets = with_ingest(&state, move |ingest| {
        inlet::list(ingest.store().as_ref(), &tenant)
    })
    .await?;
    let base = base_url(&headers);
    Ok(Json(
        json!({ "items": inlets.iter().map(|i| view(i, &base)).collect::<Vec<_>>() }),
    ))
}

/// Look up a streaming connection.
#[utoipa::path(get, path = "/data/foundation/flowservice/connections/{id}", tag = "ingestion",
    params(("id" = String, Path, description = "connection id")),
    responses((status = 200, description = "`{items: [connection]}`"), (status = 404, description = "unknown connection")))]
async fn get_connection(
    State(state): State<AppState>,
    context: SandboxContext,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let tenant = context.tenant.clone();
    let found = with_ingest(&state, move |ingest| {
        inlet::get(ingest.store().as_ref(), &tenant, &id)
    })
    .await?;
    Ok(Json(
        json!({ "items": [view(&found, &base_url(&headers))] }),
    ))
}

/// Delete a streaming connection; its inlet URL stops accepting messages.
#[utoipa::path(delete, path = "/data/foundation/flowservice/connections/{id}", tag = "ingestion",
    params(("id" = String, Path, description = "connection id")),
    responses((status = 204, description = "deleted"), (status = 404, description = "unknown connection")))]
async fn delete_connection(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let tenant = context.tenant.clone();
    with_ingest(&state, move |ingest| {
        inlet::delete(ingest.store().as_ref(), &tenant, &id)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
