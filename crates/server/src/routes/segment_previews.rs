//! AEP segment previews and estimates: `/data/core/ups/preview` and
//! `/data/core/ups/estimate` (the service is [`crate::previews`]).
//!
//! `POST /preview` answers 201 `{state, previewQueryId, previewQueryStatus, previewId,
//! previewExecutionId: 0}` once the expression parsed and type-checked against the sandbox's
//! union schemas (400 naming `predicateExpression` otherwise). `GET /preview/{previewId}`
//! pages the matching profiles (`offset`, `limit`) in AEP's shape: one object per profile,
//! keyed by the XID of its oldest identity, with `_href` (Tessera's profile lookup by XID —
//! AEP's `models/profile` path has no Tessera counterpart) and `endCustomerIds` for the
//! profile's other identities. `GET /estimate/{previewId}` gives the counts; `DELETE
//! /preview/{previewId}` forgets the preview and stops its evaluation.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};
use tessera_identity::IdentityKey;
use tessera_pql::Expr;
use tessera_profile::policy::{GraphType, PROFILE_CLASS};
use tessera_segment::definition::{Expression, PQL_JSON, PQL_TEXT};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::context::SandboxContext;
use crate::error::ApiResult;
use crate::previews::{NewPreview, Preview, PreviewError, PreviewState};
use crate::routes::off_thread;
use crate::routes::segment_definitions::{pql_schema, type_check};
use crate::state::AppState;

const PREVIEW: &str = "/data/core/ups/preview";
/// Default page of matching profiles (AEP's `_self` link shows `limit=1000`).
const DEFAULT_LIMIT: usize = 1000;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_preview))
        .routes(routes!(get_preview, delete_preview))
        .routes(routes!(get_estimate))
}

fn invalid(message: impl Into<String>) -> PreviewError {
    PreviewError::Invalid(message.into())
}

/// Reads and validates a create body; the expression's own problems come back naming
/// `predicateExpression` (or `predicateType`), not the definition fields the checker names.
fn read_request(body: &Value) -> Result<(NewPreview, Expr), PreviewError> {
    if !body.is_object() {
        return Err(invalid(
            "expected {\"predicateExpression\", \"predicateType\", \"predicateModel\"}",
        ));
    }
    let format = match body.get("predicateType") {
        None | Some(Value::Null) => PQL_TEXT,
        Some(Value::String(t)) if t == PQL_TEXT => PQL_TEXT,
        Some(Value::String(t)) if t == PQL_JSON => PQL_JSON,
        Some(other) => {
            return Err(invalid(format!(
                "predicateType must be pql/text or pql/json, not {other}"
            )))
        }
    };
    let value = match body.get("predicateExpression") {
        Some(Value::String(text)) if !text.trim().is_empty() => text.clone(),
        Some(ast @ Value::Object(_)) if format == PQL_JSON => ast.to_string(),
        _ => return Err(invalid("predicateExpression is required: a PQL expression")),
    };
    match body.get("predicateModel") {
        None | Some(Value::Null) => {}
        Some(Value::String(m)) if m == PROFILE_CLASS => {}
        Some(other) => {
            return Err(invalid(format!(
                "predicateModel must be {PROFILE_CLASS}, not {other}"
            )))
        }
    }
    let graph_type = match body.get("graphType") {
        None | Some(Value::Null) => None,
        Some(Value::String(g)) if g == "none" => Some(GraphType::None),
        Some(Value::String(g)) if g == "pdg" => Some(GraphType::Pdg),
        Some(other) => {
            return Err(invalid(format!(
                "graphType must be none or pdg, not {other}"
            )))
        }
    };
    let expression = Expression {
        kind: "PQL".into(),
        format: format.to_owned(),
        value,
    };
    let expr = expression.parsed().map_err(rename_field)?;
    Ok((
        NewPreview {
            expression,
            graph_type,
        },
        expr,
    ))
}

fn rename_field(error: tessera_segment::Error) -> PreviewError {
    match error {
        tessera_segment::Error::Invalid { field, message } => {
            let field = if field == "expression.format" {
                "predicateType"
            } else {
                "predicateExpression"
            };
            invalid(format!("{field}: {message}"))
        }
        other => invalid(format!("predicateExpression: {other}")),
    }
}

/// Create a preview (and its estimate): the expression is evaluated asynchronously.
#[utoipa::path(post, path = "/data/core/ups/preview", tag = "segmentation",
    responses((status = 201, description = "`{state: NEW, previewQueryId, previewQueryStatus, previewId, previewExecutionId}`"),
        (status = 400, description = "invalid, unparsable or ill-typed expression")))]
async fn create_preview(
    State(state): State<AppState>,
    context: SandboxContext,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Json(body) =
        body.map_err(|e| invalid(format!("the body is not valid JSON: {}", e.body_text())))?;
    let tenant = context.tenant.clone();
    let registry = state.schemas.clone();
    let previews = state.previews.clone();
    let store = std::sync::Arc::clone(&state.store);
    let preview = off_thread(move || -> ApiResult<Preview> {
        // Parsing and checking are CPU work proportional to the expression.
        let (request, expr) = read_request(&body)?;
        let schema = pql_schema(store.as_ref(), &registry, &tenant)?;
        type_check(&expr, &schema).map_err(rename_field)?;
        tessera_pql::compile(&expr).map_err(|e| invalid(format!("predicateExpression: {e}")))?;
        Ok(previews.create(&tenant, request)?)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "state": preview.state,
            "previewQueryId": preview.query_id,
            "previewQueryStatus": preview.state,
            "previewId": preview.preview_id,
            "previewExecutionId": 0,
        })),
    ))
}

/// Paging of matching profiles.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct PageParams {
    /// First profile (default 0).
    offset: Option<usize>,
    /// Page size (default 1000, at most 1000).
    limit: Option<usize>,
}

fn href(identity: &IdentityKey) -> (String, Value) {
    let xid = identity.xid().as_str().to_owned();
    let link = json!({"_href": format!("/data/core/ups/access/entities?schema.name=_xdm.context.profile&entityId={xid}")});
    (xid, link)
}

fn result(profile: &[IdentityKey]) -> Value {
    let Some((first, others)) = profile.split_first() else {
        return json!({});
    };
    let (xid, mut entry) = href(first);
    if !others.is_empty() {
        let ids: Map<String, Value> = others.iter().map(href).collect();
        if let Value::Object(map) = &mut entry {
            map.insert("endCustomerIds".into(), Value::Object(ids));
        }
    }
    json!({ xid: entry })
}

/// Matching profiles of a preview, a page at a time.
#[utoipa::path(get, path = "/data/core/ups/preview/{previewId}", tag = "segmentation",
    params(("previewId" = String, Path, description = "previewId from the create"), PageParams),
    responses((status = 200, description = "`{results, state, links{_self,next,prev}, page{offset,size}}`"),
        (status = 404, description = "unknown, deleted or expired preview")))]
async fn get_preview(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
    Query(params): Query<PageParams>,
) -> ApiResult<Json<Value>> {
    let offset = params.offset.unwrap_or(0);
    let limit = params
        .limit
        .unwrap_or(DEFAULT_LIMIT)
        .clamp(1, DEFAULT_LIMIT);
    let previews = state.previews.clone();
    let tenant = context.tenant.clone();
    let preview_id = id.clone();
    let preview = off_thread(move || previews.get(&tenant, &preview_id, offset, limit)).await?;
    let link = |offset: usize| format!("{PREVIEW}/{id}?offset={offset}&limit={limit}");
    let next = if preview.state == PreviewState::ResultReady
        && offset + preview.results.len() < preview.result_count
    {
        link(offset + limit)
    } else {
        String::new()
    };
    let prev = if offset > 0 {
        link(offset.saturating_sub(limit))
    } else {
        String::new()
    };
    let results: Vec<Value> = preview.results.iter().map(|p| result(p)).collect();
    let mut body = json!({
        "results": results,
        "state": preview.state,
        "links": {"_self": link(offset), "next": next, "prev": prev},
        "page": {"offset": offset, "size": results.len()},
    });
    if let (Some(error), Value::Object(map)) = (&preview.error, &mut body) {
        map.insert("error".into(), json!({"description": error}));
    }
    Ok(Json(body))
}

/// Forget a preview (and its estimate); a running evaluation stops.
#[utoipa::path(delete, path = "/data/core/ups/preview/{previewId}", tag = "segmentation",
    params(("previewId" = String, Path, description = "previewId from the create")),
    responses((status = 200, description = "`{status: true, message: KILLED}`"),
        (status = 404, description = "unknown, deleted or expired preview")))]
async fn delete_preview(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    if !state.previews.delete(&context.tenant, &id) {
        return Err(PreviewError::NotFound { id }.into());
    }
    Ok(Json(json!({"status": true, "message": "KILLED"})))
}

/// The estimate of a preview: audience size, sample figures, namespace distribution.
#[utoipa::path(get, path = "/data/core/ups/estimate/{previewId}", tag = "segmentation",
    params(("previewId" = String, Path, description = "previewId from the preview create")),
    responses((status = 200, description = "`{estimatedSize, numRowsToRead, estimatedNamespaceDistribution, state, profilesReadSoFar, standardError, error, profilesMatchedSoFar, totalRows, confidenceInterval, _links}`"),
        (status = 404, description = "unknown, deleted or expired preview")))]
async fn get_estimate(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let previews = state.previews.clone();
    let tenant = context.tenant.clone();
    let preview_id = id.clone();
    let preview = off_thread(move || previews.get(&tenant, &preview_id, 0, 0)).await?;
    let distribution: Vec<Value> = preview
        .by_namespace
        .iter()
        .map(|(ns, n)| json!({"namespaceId": ns, "profilesMatchedSoFar": n}))
        .collect();
    Ok(Json(json!({
        "estimatedSize": preview.estimated_size(),
        "numRowsToRead": preview.rows_to_read,
        "estimatedNamespaceDistribution": distribution,
        "state": preview.state,
        "profilesReadSoFar": preview.read,
        "standardError": preview.standard_error(),
        "error": {"description": preview.error.clone().unwrap_or_default(), "traceback": ""},
        "profilesMatchedSoFar": preview.matched,
        "totalRows": preview.total_rows,
        "confidenceInterval": "95%",
        "_links": {"preview": format!("{PREVIEW}/{id}")},
    })))
}
