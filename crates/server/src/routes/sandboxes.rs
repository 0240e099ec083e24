//! AEP Sandbox management API: `/data/foundation/sandbox-management/sandboxes`.
//!
//! Organisation-scoped (`x-gw-ims-org-id`; `x-sandbox-name` is not needed). Listing and
//! reading need `read` over all of the organisation's sandboxes; changes need `admin`.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Role;
use crate::context::OrgContext;
use crate::error::{ApiError, ApiResult};
use crate::routes::blocking;
use crate::sandboxes::{self, NewSandbox, Sandbox, SandboxType};
use crate::state::AppState;

const BASE: &str = "/data/foundation/sandbox-management/sandboxes";

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_sandboxes, create_sandbox))
        .routes(routes!(get_sandbox, update_sandbox, delete_sandbox))
}

/// Paging parameters of the list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct ListParams {
    /// Page size (default 50, at most 1000).
    limit: Option<usize>,
    /// Records to skip.
    offset: Option<usize>,
}

/// Body of a create request.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSandboxRequest {
    /// Name, `[a-z0-9-]{1,64}`.
    name: String,
    /// Display title.
    title: String,
    /// `development` or `production`.
    #[serde(rename = "type")]
    kind: SandboxType,
}

/// Body of an update request (only the title can change).
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSandboxRequest {
    /// New display title.
    title: String,
}

/// List the organisation's sandboxes (deleted ones included, as AEP does).
#[utoipa::path(get, path = "/data/foundation/sandbox-management/sandboxes", tag = "sandboxes", params(ListParams),
    responses((status = 200, description = "`{sandboxes, _page, _links}`")))]
async fn list_sandboxes(
    State(state): State<AppState>,
    context: OrgContext,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<Value>> {
    context.require(Role::Read)?;
    let limit = params.limit.unwrap_or(50).clamp(1, 1000);
    let offset = params.offset.unwrap_or(0);
    let org = context.org.clone();
    let all = blocking(&state, move |store| sandboxes::list(store, &org)).await?;
    let page: Vec<&Sandbox> = all.iter().skip(offset).take(limit).collect();
    let links = if offset + page.len() < all.len() {
        json!({ "next": { "href": format!("{BASE}?limit={limit}&offset={}", offset + page.len()) } })
    } else {
        json!({})
    };
    Ok(Json(json!({
        "sandboxes": page,
        "_page": { "limit": limit, "count": page.len() },
        "_links": links,
    })))
}

/// Look up one sandbox by name.
#[utoipa::path(get, path = "/data/foundation/sandbox-management/sandboxes/{name}", tag = "sandboxes",
    params(("name" = String, Path, description = "sandbox name")),
    responses((status = 200, body = Sandbox), (status = 404, description = "no such sandbox")))]
async fn get_sandbox(
    State(state): State<AppState>,
    context: OrgContext,
    Path(name): Path<String>,
) -> ApiResult<Json<Sandbox>> {
    context.require(Role::Read)?;
    let org = context.org.clone();
    Ok(Json(
        blocking(&state, move |store| sandboxes::get(store, &org, &name)).await?,
    ))
}

/// Create a sandbox (provisioned at once: its state is `active`).
#[utoipa::path(post, path = "/data/foundation/sandbox-management/sandboxes", tag = "sandboxes", request_body = CreateSandboxRequest,
    responses((status = 200, body = Sandbox), (status = 409, description = "name taken")))]
async fn create_sandbox(
    State(state): State<AppState>,
    context: OrgContext,
    body: Result<Json<CreateSandboxRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<Sandbox>> {
    context.require(Role::Admin)?;
    let Json(request) = body.map_err(ApiError::from)?;
    let org = context.org.clone();
    let by = context.caller.label().to_owned();
    let new = NewSandbox {
        name: request.name,
        title: request.title,
        kind: request.kind,
    };
    let created = blocking(&state, move |store| {
        sandboxes::create(store, &org, new, &by)
    })
    .await?;
    tracing::info!(sandbox = %created.name, "sandbox created");
    Ok(Json(created))
}

/// Change a sandbox's title.
#[utoipa::path(patch, path = "/data/foundation/sandbox-management/sandboxes/{name}", tag = "sandboxes",
    params(("name" = String, Path, description = "sandbox name")), request_body = UpdateSandboxRequest,
    responses((status = 200, body = Sandbox), (status = 404, description = "no such sandbox")))]
async fn update_sandbox(
    State(state): State<AppState>,
    context: OrgContext,
    Path(name): Path<String>,
    body: Result<Json<UpdateSandboxRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<Sandbox>> {
    context.require(Role::Admin)?;
    let Json(request) = body.map_err(ApiError::from)?;
    let org = context.org.clone();
    let by = context.caller.label().to_owned();
    Ok(Json(
        blocking(&state, move |store| {
            sandboxes::update_title(store, &org, &name, &request.title, &by)
        })
        .await?,
    ))
}

/// Delete a sandbox: it stays readable with state `deleted`, data routes refuse it.
#[utoipa::path(delete, path = "/data/foundation/sandbox-management/sandboxes/{name}", tag = "sandboxes",
    params(("name" = String, Path, description = "sandbox name")),
    responses((status = 200, body = Sandbox), (status = 409, description = "default sandbox or already deleted")))]
async fn delete_sandbox(
    State(state): State<AppState>,
    context: OrgContext,
    Path(name): Path<String>,
) -> ApiResult<Json<Sandbox>> {
    context.require(Role::Admin)?;
    let org = context.org.clone();
    let by = context.caller.label().to_owned();
    let deleted = blocking(&state, move |store| {
        sandboxes::delete(store, &org, &name, &by)
    })
    .await?;
    tracing::info!(sandbox = %deleted.name, "sandbox deleted");
    Ok(Json(deleted))
}
