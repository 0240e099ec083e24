//! The streaming inlets: `POST /collection/{id}` (one message) and
//! `POST /collection/batch/{id}` (many), as AEP's Data Collection Core Service answers them.
//!
//! The tenant comes from the inlet, not from headers. Inlets created with
//! `authenticationRequired` demand credentials with `write` in the inlet's sandbox; open
//! inlets accept anyone, as in AEP. Every accepted record is durable before the response is
//! sent; refused records are explained and nothing of them is written.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};
use tessera_ingest::{inlet, Inlet};
use tessera_model::{OrgId, SandboxName};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Role;
use crate::context::API_KEY_HEADER;
use crate::error::{streaming_validation, ApiError, ApiResult, ErrorCode};
use crate::routes::{blocking, with_ingest};
use crate::sandboxes;
use crate::state::AppState;

/// DCS refuses payloads over 1 MB with 413.
pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(collect_one))
        .routes(routes!(collect_batch))
        .layer(DefaultBodyLimit::max(MAX_PAYLOAD_BYTES))
}

/// Query of the single-message inlet.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
pub struct CollectParams {
    /// Validate and report without writing (also accepted as `synchronousValidation`).
    sync_validation: Option<bool>,
    /// Alias of `syncValidation` used by AEP's record tutorial.
    synchronous_validation: Option<bool>,
}

async fn open_inlet(state: &AppState, id: String, headers: &HeaderMap) -> ApiResult<Inlet> {
    let found = with_ingest(state, move |ingest| {
        inlet::resolve(ingest.store().as_ref(), &id)
    })
    .await?;
    let org = OrgId::parse(&found.org)?;
    let sandbox = SandboxName::parse(&found.sandbox)?;
    if found.authentication_required {
        let caller = state.auth.authenticate(
            headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok()),
            headers.get("authorization").and_then(|v| v.to_str().ok()),
        )?;
        if caller
            .role_in(&org, &sandbox)
            .is_none_or(|role| role < Role::Write)
        {
            return Err(ApiError::problem(
                ErrorCode::Forbidden,
                format!(
                    "key {} may not write to sandbox {org}/{sandbox}",
                    caller.label()
                ),
            ));
        }
    }
    let active = blocking(state, move |store| {
        sandboxes::is_active(store, &org, &sandbox)
    })
    .await?;
    if !active {
        return Err(ApiError::problem(
            ErrorCode::UnknownSandbox,
            format!("the inlet's sandbox {} was deleted", found.sandbox),
        ));
    }
    Ok(found)
}

fn parse_json(body: &Bytes, headers: &HeaderMap) -> ApiResult<Value> {
    let json_content = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if !json_content {
        return Err(ApiError::problem(
            ErrorCode::MalformedBody,
            "A valid content-type must be specified (application/json)",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::problem(
            ErrorCode::MalformedBody,
            format!("the body is not valid JSON: {e}"),
        )
    })
}

/// Stream one XDM message.
#[utoipa::path(post, path = "/collection/{id}", tag = "ingestion",
    params(("id" = String, Path, description = "inlet (connection) id"), CollectParams),
    request_body(content = Object, content_type = "application/json", description = "DCS message envelope"),
    responses(
        (status = 200, description = "`{inletId, xactionId, receivedTimeMs, ...}`; durable when sent"),
        (status = 400, description = "invalid message: DCS problem with `_streamingValidation`"),
        (status = 404, description = "unknown inlet"),
        (status = 413, description = "payload over 1 MB")))]
async fn collect_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<CollectParams>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let found = open_inlet(&state, id, &headers).await?;
    let message = parse_json(&body, &headers)?;
    let validate_only = params
        .sync_validation
        .or(params.synchronous_validation)
        .unwrap_or(false);
    let received = tessera_ingest::ids::now_ms();
    let inlet_id = found.id.clone();
    let org = found.org.clone();
    let outcome = with_ingest(&state, move |ingest| {
        ingest.stream(&found, vec![message], validate_only, None)
    })
    .await?
    .into_iter()
    .next();
    match outcome {
        Some(Ok(receipt)) => {
            let mut reply = serde_json::Map::new();
            reply.insert("inletId".into(), json!(inlet_id));
            reply.insert("xactionId".into(), json!(receipt.xaction_id));
            reply.insert("receivedTimeMs".into(), json!(received));
            if validate_only {
                reply.insert("synchronousValidation".into(), json!({ "status": "pass" }));
            } else {
                reply.insert("syncValidation".into(), json!({ "skipped": true }));
            }
            if receipt.duplicate {
                reply.insert("duplicate".into(), json!(true));
            }
            Ok(Json(Value::Object(reply)))
        }
        Some(Err(rejection)) => Err(ApiError::Rejected {
            inlet_id,
            org,
            rejection,
        }),
        None => Err(ApiError::problem(
            ErrorCode::Internal,
            "no outcome for the message",
        )),
    }
}

/// Stream many XDM messages (`{"messages": [...]}`); always 207 with one response per message.
#[utoipa::path(post, path = "/collection/batch/{id}", tag = "ingestion",
    params(("id" = String, Path, description = "inlet (connection) id")),
    request_body(content = Object, content_type = "application/json", description = "`{\"messages\": [envelope, ...]}`"),
    responses(
        (status = 207, description = "`{inletId, batchId, receivedTimeMs, responses: [...]}`"),
        (status = 400, description = "body is not `{messages: [...]}`"),
        (status = 404, description = "unknown inlet"),
        (status = 413, description = "payload over 1 MB")))]
async fn collect_batch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let found = open_inlet(&state, id, &headers).await?;
    let mut envelope = parse_json(&body, &headers)?;
    let Some(Value::Array(messages)) = envelope.get_mut("messages").map(Value::take) else {
        return Err(ApiError::problem(
            ErrorCode::MalformedBody,
            "the body must be {\"messages\": [...]}",
        ));
    };
    let received = tessera_ingest::ids::now_ms();
    let batch_id = state.ingest.receipt_id(received);
    let inlet_id = found.id.clone();
    let org = found.org.clone();
    let outcomes = {
        let batch_id = batch_id.clone();
        with_ingest(&state, move |ingest| {
            ingest.stream(&found, messages, false, Some(&batch_id))
        })
    }
    .await?;
    let responses: Vec<Value> = outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Ok(receipt) if receipt.duplicate => {
                json!({ "xactionId": receipt.xaction_id, "duplicate": true })
            }
            Ok(receipt) => json!({ "xactionId": receipt.xaction_id }),
            Err(rejection) => json!({
                "statusCode": 400,
                "code": rejection.code.as_str(),
                "message": format!("inletId: [{inlet_id}] imsOrgId: [{org}] {}", rejection.message),
                "report": { "cause": streaming_validation(&rejection) },
            }),
        })
        .collect();
    Ok((
        StatusCode::MULTI_STATUS,
        Json(json!({
            "inletId": inlet_id,
            "batchId": batch_id,
            "receivedTimeMs": received,
            "responses": responses,
        })),
    ))
}
