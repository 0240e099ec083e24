//! AEP merge policies: `/data/core/ups/config/mergePolicies`.
//!
//! Shapes follow the Profile API: a policy object carries `imsOrgId` and `sandbox` beside its
//! own fields; lists page with `_page{totalCount, pageSize}` and `_links.next.href`
//! (empty string on the last page); bulk-get answers 207 with `results` keyed by id;
//! DELETE answers 200 with an empty body. Rules live in `tessera_profile::policy`.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};
use tessera_profile::policy::{self, Draft, MergePolicy, MergeType};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::context::SandboxContext;
use crate::error::{ApiError, ApiResult};
use crate::routes::{blocking, with_ingest};
use crate::sandboxes;
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_policies, create_policy))
        .routes(routes!(bulk_get))
        .routes(routes!(get_policy, patch_policy, put_policy, delete_policy))
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::Profile {
        status: StatusCode::BAD_REQUEST,
        message: message.into(),
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::Profile {
        status: StatusCode::NOT_FOUND,
        message: format!("merge policy {id} does not exist"),
    }
}

fn now_epoch() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The policy as the API shows it.
fn render(policy: &MergePolicy, context: &SandboxContext, sandbox: &sandboxes::Sandbox) -> Value {
    let mut value = serde_json::to_value(policy).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("imsOrgId".into(), json!(context.tenant.org.as_str()));
        map.insert(
            "sandbox".into(),
            json!({
                "sandboxId": sandbox.name,
                "sandboxName": sandbox.name,
                "type": sandbox.kind,
                "default": sandbox.is_default,
            }),
        );
    }
    value
}

async fn sandbox_of(state: &AppState, context: &SandboxContext) -> ApiResult<sandboxes::Sandbox> {
    let org = context.tenant.org.clone();
    let name = context.tenant.sandbox.as_str().to_owned();
    blocking(state, move |store| sandboxes::get(store, &org, &name)).await
}

/// Precedence lists must name datasets of this sandbox: a typo would silently drop data.
async fn check_datasets(
    state: &AppState,
    context: &SandboxContext,
    draft: &Draft,
) -> ApiResult<()> {
    if draft.attribute_merge.kind != MergeType::DataSetPrecedence {
        return Ok(());
    }
    let order = draft.attribute_merge.order.clone().unwrap_or_default();
    let tenant = context.tenant.clone();
    let missing = with_ingest(state, move |ingest| {
        for id in &order {
            match ingest.catalog().get(&tenant, id) {
                Ok(_) => {}
                Err(tessera_ingest::Error::DatasetNotFound { .. }) => return Ok(Some(id.clone())),
                Err(other) => return Err(other),
            }
        }
        Ok(None)
    })
    .await?;
    match missing {
        Some(id) => Err(bad_request(format!(
            "attributeMerge.order names dataset {id}, which does not exist in this sandbox"
        ))),
        None => Ok(()),
    }
}

fn body(body: Result<Json<Value>, JsonRejection>) -> ApiResult<Value> {
    body.map(|Json(v)| v)
        .map_err(|rejection| bad_request(format!("the body is not valid JSON: {rejection}")))
}

/// Filters and paging of a policy list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct ListParams {
    /// Only default (or only non-default) policies.
    default: Option<bool>,
    /// Page size (default 20).
    limit: Option<usize>,
    /// `name`, `+name` or `-name`.
    #[serde(rename = "orderBy")]
    order_by: Option<String>,
    /// Only policies active (or not) on edge.
    #[serde(rename = "isActiveOnEdge")]
    is_active_on_edge: Option<bool>,
    /// Only policies of this class.
    #[serde(rename = "schema.name")]
    schema_name: Option<String>,
    /// Only this graph type.
    #[serde(rename = "identityGraph.type")]
    identity_graph_type: Option<String>,
    /// Only this attribute merge type.
    #[serde(rename = "attributeMerge.type")]
    attribute_merge_type: Option<String>,
    /// Page cursor from `_links.next.href`.
    start: Option<String>,
    /// Only this version.
    version: Option<u64>,
}

/// Merge policies of the sandbox, filtered and paged.
#[utoipa::path(get, path = "/data/core/ups/config/mergePolicies", tag = "profile", params(ListParams),
    responses((status = 200, description = "`{_page{totalCount,pageSize}, children, _links{next{href}}}`")))]
async fn list_policies(
    State(state): State<AppState>,
    context: SandboxContext,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<Value>> {
    let limit = params.limit.unwrap_or(20);
    if limit == 0 || limit > 1000 {
        return Err(bad_request("limit must be between 1 and 1000"));
    }
    let start: usize = match params.start.as_deref() {
        None | Some("") => 0,
        Some(cursor) => cursor
            .parse()
            .map_err(|_| bad_request(format!("start {cursor} is not a cursor this API issued")))?,
    };
    let descending = match params.order_by.as_deref() {
        None | Some("") | Some("name") | Some("+name") => false,
        Some("-name") => true,
        Some(other) => {
            return Err(bad_request(format!(
                "orderBy {other} is not supported; use name, +name or -name"
            )))
        }
    };
    let tenant = context.tenant.clone();
    let set = blocking(&state, move |store| Ok(policy::load(store, &tenant)?)).await?;
    let sandbox = sandbox_of(&state, &context).await?;
    let mut matching: Vec<&MergePolicy> =
        set.policies
            .iter()
            .filter(|p| params.default.is_none_or(|d| p.default == d))
            .filter(|p| {
                params
                    .is_active_on_edge
                    .is_none_or(|e| p.is_active_on_edge == e)
            })
            .filter(|p| {
                params
                    .schema_name
                    .as_deref()
                    .is_none_or(|s| p.schema.name == s)
            })
            .filter(|p| params.version.is_none_or(|v| p.version == v))
            .filter(|p| {
                params.identity_graph_type.as_deref().is_none_or(|t| {
                    serde_json::to_value(p.identity_graph.kind).ok() == Some(json!(t))
                })
            })
            .filter(|p| {
                params.attribute_merge_type.as_deref().is_none_or(|t| {
                    serde_json::to_value(p.attribute_merge.kind).ok() == Some(json!(t))
                })
            })
            .collect();
    matching.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    if descending {
        matching.reverse();
    }
    let total = matching.len();
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(limit)
        .map(|p| render(p, &context, &sandbox))
        .collect();
    let next = start + page.len();
    let href = if next < total {
        format!(
            "@/mergePolicies?start={next}&orderBy={}&limit={limit}",
            params.order_by.as_deref().unwrap_or("")
        )
    } else {
        String::new()
    };
    Ok(Json(json!({
        "_page": { "totalCount": total, "pageSize": page.len() },
        "children": page,
        "_links": { "next": { "href": href } },
    })))
}

/// Create a merge policy.
#[utoipa::path(post, path = "/data/core/ups/config/mergePolicies", tag = "profile",
    responses((status = 200, description = "the policy, version 1"), (status = 400, description = "invalid policy")))]
async fn create_policy(
    State(state): State<AppState>,
    context: SandboxContext,
    request: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let draft = Draft::from_json(&body(request)?)?;
    check_datasets(&state, &context, &draft).await?;
    let tenant = context.tenant.clone();
    let created = blocking(&state, move |store| {
        Ok(policy::create(store, &tenant, draft, now_epoch())?)
    })
    .await?;
    let sandbox = sandbox_of(&state, &context).await?;
    Ok(Json(render(&created, &context, &sandbox)))
}

/// Body of a bulk read.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct BulkGet {
    /// `[{"id": ...}]`.
    ids: Vec<BulkId>,
}

/// One requested id.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct BulkId {
    /// Policy id.
    id: String,
}

/// Several merge policies by id (unknown ids are left out of `results`).
#[utoipa::path(post, path = "/data/core/ups/config/mergePolicies/bulk-get", tag = "profile",
    request_body = BulkGet,
    responses((status = 207, description = "`{results: {id: policy}}`")))]
async fn bulk_get(
    State(state): State<AppState>,
    context: SandboxContext,
    request: Result<Json<Value>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let request: BulkGet = serde_json::from_value(body(request)?)
        .map_err(|e| bad_request(format!("expected {{\"ids\": [{{\"id\": ...}}]}}: {e}")))?;
    if request.ids.len() > 100 {
        return Err(bad_request("at most 100 ids per request"));
    }
    let tenant = context.tenant.clone();
    let set = blocking(&state, move |store| Ok(policy::load(store, &tenant)?)).await?;
    let sandbox = sandbox_of(&state, &context).await?;
    let results: Map<String, Value> = request
        .ids
        .iter()
        .filter_map(|BulkId { id }| {
            set.get(id)
                .map(|p| (id.clone(), render(p, &context, &sandbox)))
        })
        .collect();
    Ok((
        StatusCode::MULTI_STATUS,
        Json(json!({ "results": results })),
    ))
}

/// One merge policy.
#[utoipa::path(get, path = "/data/core/ups/config/mergePolicies/{id}", tag = "profile",
    params(("id" = String, Path, description = "policy id")),
    responses((status = 200, description = "the policy"), (status = 404, description = "unknown id")))]
async fn get_policy(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let tenant = context.tenant.clone();
    let set = blocking(&state, move |store| Ok(policy::load(store, &tenant)?)).await?;
    let found = set.get(&id).ok_or_else(|| not_found(&id))?;
    let sandbox = sandbox_of(&state, &context).await?;
    Ok(Json(render(found, &context, &sandbox)))
}

async fn change(
    state: &AppState,
    context: &SandboxContext,
    id: String,
    edit: impl Fn(&MergePolicy) -> tessera_profile::Result<Draft> + Send + 'static,
) -> ApiResult<Json<Value>> {
    // Validate datasets against the draft first (outside the store retry loop).
    let tenant = context.tenant.clone();
    let lookup_id = id.clone();
    let current = blocking(state, move |store| {
        Ok(policy::load(store, &tenant)?.get(&lookup_id).cloned())
    })
    .await?
    .ok_or_else(|| not_found(&id))?;
    check_datasets(state, context, &edit(&current)?).await?;
    let tenant = context.tenant.clone();
    let updated = blocking(state, move |store| {
        policy::update(store, &tenant, &id, now_epoch(), edit)?.ok_or_else(|| not_found(&id))
    })
    .await?;
    let sandbox = sandbox_of(state, context).await?;
    Ok(Json(render(&updated, context, &sandbox)))
}

/// Change a merge policy with JSON Patch (`add`/`replace`/`remove`; paths like
/// `/identityGraph.type` or `/identityGraph/type`).
#[utoipa::path(patch, path = "/data/core/ups/config/mergePolicies/{id}", tag = "profile",
    params(("id" = String, Path, description = "policy id")),
    responses((status = 200, description = "the policy, version incremented"), (status = 404, description = "unknown id")))]
async fn patch_policy(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
    request: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let patch = body(request)?;
    change(&state, &context, id, move |current| {
        policy::patched(current, &patch)
    })
    .await
}

/// Replace a merge policy.
#[utoipa::path(put, path = "/data/core/ups/config/mergePolicies/{id}", tag = "profile",
    params(("id" = String, Path, description = "policy id")),
    responses((status = 200, description = "the policy, version incremented"), (status = 404, description = "unknown id")))]
async fn put_policy(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
    request: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let draft = Draft::from_json(&body(request)?)?;
    change(&state, &context, id, move |_| Ok(draft.clone())).await
}

/// Delete a merge policy (200, empty body). The built-in policy and a policy active on edge
/// cannot be deleted.
#[utoipa::path(delete, path = "/data/core/ups/config/mergePolicies/{id}", tag = "profile",
    params(("id" = String, Path, description = "policy id")),
    responses((status = 200, description = "deleted"), (status = 404, description = "unknown id")))]
async fn delete_policy(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let tenant = context.tenant.clone();
    let deleted = {
        let id = id.clone();
        blocking(&state, move |store| {
            Ok(policy::delete(store, &tenant, &id)?)
        })
        .await?
    };
    if !deleted {
        return Err(not_found(&id));
    }
    Ok(StatusCode::OK)
}
