//! AEP computed attributes: `/data/core/ca/attributes` (aep-api.md §3).
//!
//! Shapes follow the computed-attributes API guide: the object carries `type:
//! "ComputedAttribute"`, `imsOrgId`, `sandbox{sandboxId, sandboxName, type, isDefault}`,
//! `path: "_{TENANT_ID}/ComputedAttributes"`, `positionPath`, `mergeFunction{value}`,
//! `schema`, `returnSchema{meta:xdmType}`, `definedOn` and epochs in ms. Lists answer the
//! guide's `{_links{self, next?, prev?, last}, computedAttributes, _page{offset, limit,
//! count, totalCount}}` (the OpenAPI spec's `children` shape is not served). DELETE answers
//! 202 with the deleted object. Rules (validation, lifecycle) live in
//! `tessera_segment::computed::definition`; errors map in `crate::error`.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};
use tessera_segment::computed::definition::{self, ComputedAttribute, Status};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::context::SandboxContext;
use crate::error::{ApiError, ApiResult};
use crate::routes::blocking;
use crate::sandboxes;
use crate::state::AppState;

const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 40;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_attributes, create_attribute))
        .routes(routes!(get_attribute, patch_attribute, delete_attribute))
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::Profile {
        status: StatusCode::BAD_REQUEST,
        message: message.into(),
    }
}

fn now_ms() -> i64 {
    crate::system_jobs::now_ms()
}

fn body(body: Result<Json<Value>, JsonRejection>) -> ApiResult<Value> {
    body.map(|Json(v)| v)
        .map_err(|rejection| bad_request(format!("the body is not valid JSON: {rejection}")))
}

async fn sandbox_of(state: &AppState, context: &SandboxContext) -> ApiResult<sandboxes::Sandbox> {
    let org = context.tenant.org.clone();
    let name = context.tenant.sandbox.as_str().to_owned();
    blocking(state, move |store| sandboxes::get(store, &org, &name)).await
}

/// `lastEvaluationTs` as the spec writes it: ISO local time without zone.
fn evaluation_ts(ms: i64) -> String {
    let text = tessera_pql::time::format_timestamp(ms);
    text.strip_suffix('Z').map(str::to_owned).unwrap_or(text)
}

/// The attribute as the API shows it; `listed` shows drafts' `mergeFunction` as `-`, as
/// AEP's list output does.
fn render(
    attribute: &ComputedAttribute,
    context: &SandboxContext,
    sandbox: &sandboxes::Sandbox,
    listed: bool,
) -> Value {
    let merge_function = if listed && attribute.status == Status::Draft {
        "-"
    } else {
        attribute.merge_function.as_str()
    };
    let mut map = Map::new();
    map.insert("id".into(), json!(attribute.id));
    map.insert("type".into(), json!("ComputedAttribute"));
    map.insert("name".into(), json!(attribute.name));
    map.insert("displayName".into(), json!(attribute.display_name));
    map.insert("description".into(), json!(attribute.description));
    map.insert("imsOrgId".into(), json!(context.tenant.org.as_str()));
    map.insert(
        "sandbox".into(),
        json!({
            "sandboxId": sandbox.name,
            "sandboxName": sandbox.name,
            "type": sandbox.kind,
            "isDefault": sandbox.is_default,
        }),
    );
    map.insert(
        "path".into(),
        json!(format!("{}/ComputedAttributes", attribute.tenant_field)),
    );
    map.insert(
        "positionPath".into(),
        json!([attribute.tenant_field, "ComputedAttributes"]),
    );
    map.insert("keepCurrent".into(), json!(attribute.keep_current));
    map.insert("expression".into(), json!(attribute.expression));
    map.insert("duration".into(), json!(attribute.duration));
    map.insert("mergeFunction".into(), json!({ "value": merge_function }));
    map.insert("status".into(), json!(attribute.status.as_str()));
    map.insert("schema".into(), json!({"name": "_xdm.context.profile"}));
    map.insert(
        "returnSchema".into(),
        json!({"meta:xdmType": attribute.return_type()}),
    );
    map.insert(
        "definedOn".into(),
        json!([{
            "meta:resourceType": "unions",
            "meta:containerId": "tenant",
            "$ref": "https://ns.adobe.com/xdm/context/profile__union",
        }]),
    );
    map.insert("createEpoch".into(), json!(attribute.create_epoch));
    map.insert("updateEpoch".into(), json!(attribute.update_epoch));
    if let Some(ts) = attribute.last_evaluation_ts {
        map.insert("lastEvaluationTs".into(), json!(evaluation_ts(ts)));
    }
    if attribute.allow_larger_windows {
        map.insert("allowLargerWindows".into(), json!(true));
    }
    Value::Object(map)
}

/// Query of a list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct ListParams {
    /// Page size, 1 to 40 (default 20).
    limit: Option<usize>,
    /// Items skipped.
    offset: Option<usize>,
    /// `name`, `status`, `updateEpoch` or `createEpoch`, `-` prefix for descending
    /// (default `-updateEpoch`).
    #[serde(rename = "sortBy")]
    sort_by: Option<String>,
    /// Only this status (case-insensitive; comma-separated for several).
    status: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortField {
    Name,
    Status,
    UpdateEpoch,
    CreateEpoch,
}

fn parse_sort(sort: Option<&str>) -> ApiResult<(SortField, bool)> {
    let Some(sort) = sort.filter(|s| !s.is_empty()) else {
        return Ok((SortField::UpdateEpoch, true));
    };
    let (field, descending) = match sort.strip_prefix('-') {
        Some(field) => (field, true),
        None => (sort.strip_prefix('+').unwrap_or(sort), false),
    };
    let field = match field {
        "name" => SortField::Name,
        "status" => SortField::Status,
        "updateEpoch" => SortField::UpdateEpoch,
        "createEpoch" => SortField::CreateEpoch,
        other => {
            return Err(bad_request(format!(
                "sortBy {other} is not supported; use name, status, updateEpoch or createEpoch"
            )))
        }
    };
    Ok((field, descending))
}

fn href(offset: usize, limit: usize, extra: &str) -> Value {
    json!({ "href": format!("/attributes?offset={offset}&limit={limit}{extra}") })
}

/// Computed attributes of the sandbox, filtered, sorted and paged.
#[utoipa::path(get, path = "/data/core/ca/attributes", tag = "computed attributes", params(ListParams),
    responses((status = 200, description = "`{_links, computedAttributes, _page{offset,limit,count,totalCount}}`"),
        (status = 400, description = "bad paging, sort or status")))]
async fn list_attributes(
    State(state): State<AppState>,
    context: SandboxContext,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<Value>> {
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(bad_request(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let offset = params.offset.unwrap_or(0);
    let (field, descending) = parse_sort(params.sort_by.as_deref())?;
    let statuses: Option<Vec<Status>> = match params.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => Some(
            text.split(',')
                .map(|s| {
                    Status::parse(s.trim()).ok_or_else(|| {
                        bad_request(format!(
                            "status {s} is not one of draft, new, processing, processed, failed, disabled"
                        ))
                    })
                })
                .collect::<ApiResult<_>>()?,
        ),
    };
    let tenant = context.tenant.clone();
    let all = blocking(&state, move |store| Ok(definition::list(store, &tenant)?)).await?;
    let sandbox = sandbox_of(&state, &context).await?;
    let mut matching: Vec<&ComputedAttribute> = all
        .iter()
        .filter(|a| statuses.as_ref().is_none_or(|s| s.contains(&a.status)))
        .collect();
    matching.sort_by(|a, b| {
        let primary = match field {
            SortField::Name => a.name.cmp(&b.name),
            SortField::Status => a.status.as_str().cmp(b.status.as_str()),
            SortField::UpdateEpoch => a.update_epoch.cmp(&b.update_epoch),
            SortField::CreateEpoch => a.create_epoch.cmp(&b.create_epoch),
        };
        let primary = if descending {
            primary.reverse()
        } else {
            primary
        };
        // Ties in id order, so pages never overlap.
        primary.then_with(|| a.id.cmp(&b.id))
    });
    let total = matching.len();
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|a| render(a, &context, &sandbox, true))
        .collect();
    let mut extra = String::new();
    if let Some(sort) = &params.sort_by {
        extra.push_str(&format!("&sortBy={sort}"));
    }
    if let Some(status) = &params.status {
        extra.push_str(&format!("&status={status}"));
    }
    let mut links = Map::new();
    links.insert("self".into(), href(offset, limit, &extra));
    if offset.saturating_add(limit) < total {
        links.insert("next".into(), href(offset + limit, limit, &extra));
    }
    if offset > 0 {
        links.insert(
            "prev".into(),
            href(offset.saturating_sub(limit), limit, &extra),
        );
    }
    let last = total.saturating_sub(1) / limit * limit;
    links.insert("last".into(), href(last, limit, &extra));
    Ok(Json(json!({
        "_links": links,
        "computedAttributes": page,
        "_page": {
            "offset": offset,
            "limit": limit,
            "count": page.len(),
            "totalCount": total,
        },
    })))
}

/// Create a computed attribute. `status` DRAFT (default) or NEW; a NEW attribute is
/// backfilled over existing events in the background (NEW → PROCESSING → PROCESSED).
/// Tessera extension: `allowLargerWindows: true` accepts windows beyond AEP's limits.
#[utoipa::path(post, path = "/data/core/ca/attributes", tag = "computed attributes",
    responses((status = 200, description = "the attribute"),
        (status = 400, description = "invalid name, expression, duration or status; duplicate name")))]
async fn create_attribute(
    State(state): State<AppState>,
    context: SandboxContext,
    request: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let body = body(request)?;
    let tenant = context.tenant.clone();
    let registry = state.schemas.clone();
    let created = blocking(&state, move |store| {
        let tenant_field = format!("_{}", registry.tenant_id(&tenant)?);
        Ok(definition::create(
            store,
            &tenant,
            &body,
            &tenant_field,
            now_ms(),
        )?)
    })
    .await?;
    if created.status == Status::New {
        state.computed.kick();
    }
    let sandbox = sandbox_of(&state, &context).await?;
    Ok(Json(render(&created, &context, &sandbox, false)))
}

/// One computed attribute.
#[utoipa::path(get, path = "/data/core/ca/attributes/{id}", tag = "computed attributes",
    params(("id" = String, Path, description = "attribute id")),
    responses((status = 200, description = "the attribute"), (status = 404, description = "unknown id")))]
async fn get_attribute(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let tenant = context.tenant.clone();
    let target = id.clone();
    let found = blocking(&state, move |store| {
        Ok(definition::get(store, &tenant, &target)?)
    })
    .await?
    .ok_or(tessera_segment::Error::AttributeNotFound(id))?;
    let sandbox = sandbox_of(&state, &context).await?;
    Ok(Json(render(&found, &context, &sandbox, false)))
}

/// Change an attribute per the lifecycle: DRAFT → NEW; NEW: `displayName`, `description`,
/// or → DISABLED; PROCESSING / PROCESSED / FAILED → DISABLED only.
#[utoipa::path(patch, path = "/data/core/ca/attributes/{id}", tag = "computed attributes",
    params(("id" = String, Path, description = "attribute id")),
    responses((status = 200, description = "the changed attribute"),
        (status = 400, description = "a change the lifecycle does not allow"),
        (status = 404, description = "unknown id")))]
async fn patch_attribute(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
    request: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let body = body(request)?;
    let tenant = context.tenant.clone();
    let updated = blocking(&state, move |store| {
        Ok(definition::update(store, &tenant, &id, &body, now_ms())?)
    })
    .await?;
    if updated.status == Status::New {
        state.computed.kick();
    }
    let sandbox = sandbox_of(&state, &context).await?;
    Ok(Json(render(&updated, &context, &sandbox, false)))
}

/// Delete a DRAFT attribute: 202 with the deleted object. Other statuses are refused (409):
/// disable them instead.
#[utoipa::path(delete, path = "/data/core/ca/attributes/{id}", tag = "computed attributes",
    params(("id" = String, Path, description = "attribute id")),
    responses((status = 202, description = "the deleted attribute"), (status = 404, description = "unknown id"),
        (status = 409, description = "not a draft")))]
async fn delete_attribute(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let tenant = context.tenant.clone();
    let deleted = blocking(&state, move |store| {
        Ok(definition::delete(store, &tenant, &id)?)
    })
    .await?;
    let sandbox = sandbox_of(&state, &context).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(render(&deleted, &context, &sandbox, false)),
    ))
}

/// Adds the sandbox's usable computed attributes (not DRAFT, not DISABLED) to a profile
/// union schema, at `_{TENANT_ID}.ComputedAttributes.{name}`, so that segment expressions
/// reading them type-check: SUM is a number, COUNT an integer, MOST_RECENT `{value,
/// timestamp}`; MIN and MAX are left untyped (numbers or date-times, depending on the field).
pub(crate) fn add_to_union(
    store: &dyn tessera_store::Store,
    tenant: &tessera_model::Tenant,
    union: &mut Value,
) -> ApiResult<()> {
    use tessera_segment::computed::window::Function;
    let attributes = definition::list(store, tenant)?;
    for attribute in attributes
        .iter()
        .filter(|a| !matches!(a.status, Status::Draft | Status::Disabled))
    {
        let field_schema = match attribute.merge_function {
            Function::Sum => json!({"type": "number"}),
            Function::Count => json!({"type": "integer"}),
            Function::Min | Function::Max => json!({}),
            Function::MostRecent => json!({"type": "object", "properties": {
                "value": {},
                "timestamp": {"type": "string", "format": "date-time"},
            }}),
        };
        let Some(root) = union.as_object_mut() else {
            return Ok(());
        };
        let properties = root.entry("properties").or_insert_with(|| json!({}));
        let Some(tenant_node) = properties.as_object_mut().map(|p| {
            p.entry(attribute.tenant_field.clone())
                .or_insert_with(|| json!({"type": "object", "properties": {}}))
        }) else {
            continue;
        };
        let Some(tenant_props) = tenant_node
            .as_object_mut()
            .map(|t| t.entry("properties").or_insert_with(|| json!({})))
        else {
            continue;
        };
        let Some(group) = tenant_props.as_object_mut().map(|p| {
            p.entry("ComputedAttributes")
                .or_insert_with(|| json!({"type": "object", "properties": {}}))
        }) else {
            continue;
        };
        if let Some(fields) = group
            .as_object_mut()
            .map(|g| g.entry("properties").or_insert_with(|| json!({})))
            .and_then(Value::as_object_mut)
        {
            fields.insert(attribute.name.clone(), field_schema);
        }
    }
    Ok(())
}
