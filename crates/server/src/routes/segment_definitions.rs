//! AEP segment definitions: `/data/core/ups/segment/definitions` and the PQL conversion
//! `/data/core/ups/segment/conversion`.
//!
//! Shapes follow the Segmentation API: a definition carries `imsOrgId`, `sandbox` and
//! `profileInstanceId: "ups"` beside its own fields; lists answer
//! `{segments, page{totalCount, totalPages, sortField, sort, pageSize, limit}, link{next?}}`
//! (`link: {}` on the last page, as the documented example); bulk-get answers 207 with
//! `results` keyed by id; DELETE answers 200 with an empty body. Reads add two read-only
//! fields: `dependents` (definitions that read this one with `inSegment`) and the Tessera
//! extension `aepEligibility` (whether AEP would stream or edge-evaluate it — information
//! only; Tessera evaluates every definition continuously or on lookup).
//!
//! Expressions are type-checked against the sandbox's profile union schema, with events typed
//! by the experience-event union. A class without profile-enabled schemas has no union in the
//! registry; its union is then the bare class (the union of zero schemas), so only the
//! class's own fields check. Rules live in `tessera_segment::definition`; errors use the
//! Profile API envelope (`crate::error`).

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};
use tessera_model::Tenant;
use tessera_pql::checker::{self, Type};
use tessera_pql::Expr;
use tessera_schema::{SchemaRegistry, EXPERIENCE_EVENT_CLASS, PROFILE_CLASS};
use tessera_segment::definition::{self, Described, Draft, SegmentDefinition, PQL_TEXT};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::context::SandboxContext;
use crate::error::{ApiError, ApiResult};
use crate::routes::{blocking, off_thread};
use crate::sandboxes;
use crate::state::AppState;

const DEFINITIONS: &str = "/data/core/ups/segment/definitions";
/// Default page size (AEP's documented `limit` in the list example).
const DEFAULT_LIMIT: usize = 100;
/// Largest page and largest bulk-get.
const MAX_LIMIT: usize = 1000;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_definitions, create_definition))
        .routes(routes!(bulk_get))
        .routes(routes!(get_definition, patch_definition, delete_definition))
        .routes(routes!(convert))
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::Profile {
        status: StatusCode::BAD_REQUEST,
        message: message.into(),
    }
}

fn not_found(id: &str) -> ApiError {
    tessera_segment::Error::NotFound(id.to_owned()).into()
}

fn now_ms() -> i64 {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    i64::try_from(nanos).unwrap_or(i64::MAX)
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

fn tenancy(map: &mut Map<String, Value>, context: &SandboxContext, sandbox: &sandboxes::Sandbox) {
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

/// The definition as the API shows it: stored fields, the client's extra fields at the top
/// level (as sent), tenancy and the derived read-only fields.
fn render(described: &Described, context: &SandboxContext, sandbox: &sandboxes::Sandbox) -> Value {
    let mut map = match serde_json::to_value(&described.definition) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    if let Some(Value::Object(extra)) = map.remove("extra") {
        for (k, v) in extra {
            map.entry(k).or_insert(v);
        }
    }
    tenancy(&mut map, context, sandbox);
    map.insert("dependents".into(), json!(described.dependents));
    if let Some(eligibility) = &described.eligibility {
        map.insert("aepEligibility".into(), json!(eligibility));
    }
    Value::Object(map)
}

// ---------------------------------------------------------------------------- type check

/// The union of `class_id` as the checker reads it (resolved `properties`), or the bare
/// class when no profile-enabled schema of the class exists yet.
fn union_or_class(
    registry: &SchemaRegistry,
    tenant: &Tenant,
    class_id: &str,
) -> Result<Value, tessera_schema::Error> {
    match registry.get_union(tenant, &tessera_schema::ids::union_id(class_id), true) {
        Err(tessera_schema::Error::NotFound { .. }) => Ok(registry
            .builtins()
            .class(class_id)
            .map(tessera_schema::builtin_full_form)
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}))),
        other => other,
    }
}

pub(crate) fn pql_schema(
    store: &dyn tessera_store::Store,
    registry: &SchemaRegistry,
    tenant: &Tenant,
) -> ApiResult<checker::Schema> {
    let mut profile = union_or_class(registry, tenant, PROFILE_CLASS)?;
    // Computed attributes are profile fields (AEP's SystemComputedAttributes field group).
    crate::routes::computed_attributes::add_to_union(store, tenant, &mut profile)?;
    Ok(checker::Schema {
        profile,
        event: Some(union_or_class(registry, tenant, EXPERIENCE_EVENT_CLASS)?),
    })
}

/// Type-checks a segment expression: every problem the checker finds, and a result that is
/// not a boolean (a segment is a predicate on a profile).
pub(crate) fn type_check(expr: &Expr, schema: &checker::Schema) -> tessera_segment::Result<()> {
    let invalid = |message: String| tessera_segment::Error::Invalid {
        field: "expression.value".into(),
        message,
    };
    match checker::check(expr, schema) {
        Ok(Type::Bool | Type::Any) => Ok(()),
        Ok(other) => Err(invalid(format!(
            "a segment definition must be a boolean condition; this expression is {other}"
        ))),
        Err(issues) => Err(invalid(format!(
            "does not type-check against the sandbox's union schema: {}",
            issues
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ))),
    }
}

// ---------------------------------------------------------------------------- list

/// Filters, sort and paging of a definition list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct ListParams {
    /// Offset of the first definition returned (default 0).
    start: Option<String>,
    /// Page size (default 100, at most 1000).
    limit: Option<usize>,
    /// Page number, counted from 0; used when `start` is absent (`start = page × limit`).
    page: Option<usize>,
    /// `{field}:{asc|desc}` with field `creationTime` (default, desc), `updateTime`,
    /// `updateEpoch`, `name` or `id`.
    sort: Option<String>,
    /// Only batch-enabled (or not) definitions.
    #[serde(rename = "evaluationInfo.batch.enabled")]
    batch: Option<bool>,
    /// Only streaming-enabled (or not) definitions.
    #[serde(rename = "evaluationInfo.continuous.enabled")]
    continuous: Option<bool>,
    /// Only edge-enabled (or not) definitions.
    #[serde(rename = "evaluationInfo.synchronous.enabled")]
    synchronous: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortField {
    CreationTime,
    UpdateTime,
    Name,
    Id,
}

fn parse_sort(sort: Option<&str>) -> ApiResult<(SortField, &'static str, bool)> {
    let Some(sort) = sort.filter(|s| !s.is_empty()) else {
        return Ok((SortField::CreationTime, "creationTime", true));
    };
    let (field, direction) = sort.split_once(':').unwrap_or((sort, "asc"));
    let (field, name) = match field {
        "creationTime" => (SortField::CreationTime, "creationTime"),
        "updateTime" => (SortField::UpdateTime, "updateTime"),
        "updateEpoch" => (SortField::UpdateTime, "updateEpoch"),
        "name" => (SortField::Name, "name"),
        "id" => (SortField::Id, "id"),
        other => {
            return Err(bad_request(format!(
                "sort field {other} is not supported; use creationTime, updateTime, updateEpoch, name or id"
            )))
        }
    };
    let descending = match direction {
        "asc" => false,
        "desc" => true,
        other => {
            return Err(bad_request(format!(
                "sort direction {other} is not supported; use asc or desc"
            )))
        }
    };
    Ok((field, name, descending))
}

fn compare(field: SortField, a: &SegmentDefinition, b: &SegmentDefinition) -> std::cmp::Ordering {
    match field {
        SortField::CreationTime => a.creation_time.cmp(&b.creation_time),
        SortField::UpdateTime => a.update_time.cmp(&b.update_time),
        SortField::Name => a.name.cmp(&b.name),
        SortField::Id => std::cmp::Ordering::Equal,
    }
}

/// Segment definitions of the sandbox, filtered, sorted and paged.
#[utoipa::path(get, path = "/data/core/ups/segment/definitions", tag = "segmentation", params(ListParams),
    responses((status = 200, description = "`{segments, page{totalCount,totalPages,sortField,sort,pageSize,limit}, link{next?}}`"),
        (status = 400, description = "bad paging or sort")))]
async fn list_definitions(
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
    let start: usize = match (params.start.as_deref(), params.page) {
        (None | Some(""), None) => 0,
        (None | Some(""), Some(page)) => page.saturating_mul(limit),
        (Some(offset), _) => offset
            .parse()
            .map_err(|_| bad_request(format!("start {offset} is not an offset")))?,
    };
    let (field, field_name, descending) = parse_sort(params.sort.as_deref())?;
    let tenant = context.tenant.clone();
    // The whole sandbox is read (at most a few thousand definitions) because `dependents`
    // and the eligibility of segment-of-segments need every definition's dependencies.
    let described = blocking(&state, move |store| {
        Ok(definition::describe_all(definition::list(store, &tenant)?))
    })
    .await?;
    let sandbox = sandbox_of(&state, &context).await?;
    let mut matching: Vec<&Described> = described
        .iter()
        .filter(|d| {
            let info = &d.definition.evaluation_info;
            params.batch.is_none_or(|b| info.batch.enabled == b)
                && params
                    .continuous
                    .is_none_or(|c| info.continuous.enabled == c)
                && params
                    .synchronous
                    .is_none_or(|s| info.synchronous.enabled == s)
        })
        .collect();
    matching.sort_by(|a, b| {
        let primary = compare(field, &a.definition, &b.definition);
        let primary = if descending {
            primary.reverse()
        } else {
            primary
        };
        // Ties in id order, whatever the direction, so that pages never overlap.
        let by_id = if field == SortField::Id && descending {
            b.definition.id.cmp(&a.definition.id)
        } else {
            a.definition.id.cmp(&b.definition.id)
        };
        primary.then(by_id)
    });
    let total = matching.len();
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(limit)
        .map(|d| render(d, &context, &sandbox))
        .collect();
    let next = start.saturating_add(page.len());
    let mut link = Map::new();
    if next < total {
        let mut href = format!(
            "{DEFINITIONS}?start={next}&limit={limit}&sort={field_name}:{}",
            if descending { "desc" } else { "asc" }
        );
        for (name, value) in [
            ("batch", params.batch),
            ("continuous", params.continuous),
            ("synchronous", params.synchronous),
        ] {
            if let Some(value) = value {
                href.push_str(&format!("&evaluationInfo.{name}.enabled={value}"));
            }
        }
        link.insert("next".into(), json!(href));
    }
    Ok(Json(json!({
        "segments": page,
        "page": {
            "totalCount": total,
            "totalPages": total.div_ceil(limit),
            "sortField": field_name,
            "sort": if descending { "desc" } else { "asc" },
            "pageSize": page.len(),
            "limit": limit,
        },
        "link": link,
    })))
}

// ---------------------------------------------------------------------------- writes

/// Queues the evaluation of a new or changed definition and of the segments built on it. The
/// definition is saved either way: a failure to queue is logged, and the next job catches up.
async fn evaluate_soon(state: &AppState, context: &SandboxContext, id: &str) {
    let jobs = state.segment_jobs.clone();
    let tenant = context.tenant.clone();
    let id = id.to_owned();
    let queued =
        crate::routes::off_thread(move || jobs.after_definition_change(&tenant, &id)).await;
    if let Err(error) = queued {
        tracing::warn!(
            ?error,
            "could not queue the evaluation of a changed segment definition"
        );
    }
}

/// Create a segment definition (`pql/text` or `pql/json`). The expression is parsed and
/// type-checked; `inSegment` targets and `mergePolicyId` must exist. Nothing is saved on error.
#[utoipa::path(post, path = "/data/core/ups/segment/definitions", tag = "segmentation",
    responses((status = 200, description = "the definition"),
        (status = 400, description = "invalid definition: syntax (with line:column), types (with the field path), unknown inSegment target or merge policy")))]
async fn create_definition(
    State(state): State<AppState>,
    context: SandboxContext,
    request: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let body = body(request)?;
    let tenant = context.tenant.clone();
    let registry = state.schemas.clone();
    let created = blocking(&state, move |store| {
        // Parsing and checking are CPU work proportional to the expression: off the async
        // threads with the store work.
        let draft = Draft::from_json(&body)?;
        let schema = pql_schema(store, &registry, &tenant)?;
        let check = |expr: &Expr| type_check(expr, &schema);
        let created = definition::create(store, &tenant, draft, &check, now_ms())?;
        Ok(definition::describe(store, &tenant, created)?)
    })
    .await?;
    evaluate_soon(&state, &context, &created.definition.id).await;
    let sandbox = sandbox_of(&state, &context).await?;
    Ok(Json(render(&created, &context, &sandbox)))
}

/// Change a segment definition. The body is the definition (AEP sends the whole object;
/// fields left out keep their value, `null` resets one), or a JSON Patch array. Validated
/// like a create; dependencies are re-computed and may not form a cycle.
#[utoipa::path(patch, path = "/data/core/ups/segment/definitions/{id}", tag = "segmentation",
    params(("id" = String, Path, description = "definition id")),
    responses((status = 200, description = "the changed definition"), (status = 400, description = "invalid change"),
        (status = 404, description = "unknown id")))]
async fn patch_definition(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
    request: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let body = body(request)?;
    let tenant = context.tenant.clone();
    let registry = state.schemas.clone();
    let updated = blocking(&state, move |store| {
        let schema = pql_schema(store, &registry, &tenant)?;
        let check = |expr: &Expr| type_check(expr, &schema);
        let updated = definition::update(store, &tenant, &id, &body, &check, now_ms())?;
        Ok(definition::describe(store, &tenant, updated)?)
    })
    .await?;
    evaluate_soon(&state, &context, &updated.definition.id).await;
    let sandbox = sandbox_of(&state, &context).await?;
    Ok(Json(render(&updated, &context, &sandbox)))
}

/// Delete a segment definition (200, empty body). Refused (409) while other definitions
/// read it with `inSegment`; the message names them.
#[utoipa::path(delete, path = "/data/core/ups/segment/definitions/{id}", tag = "segmentation",
    params(("id" = String, Path, description = "definition id")),
    responses((status = 200, description = "deleted"), (status = 404, description = "unknown id"),
        (status = 409, description = "other definitions depend on it")))]
async fn delete_definition(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let tenant = context.tenant.clone();
    let target = id.clone();
    let deleted = blocking(&state, move |store| {
        Ok(definition::delete(store, &tenant, &target)?)
    })
    .await?;
    if !deleted {
        return Err(not_found(&id));
    }
    Ok(StatusCode::OK)
}

// ---------------------------------------------------------------------------- reads

/// One segment definition.
#[utoipa::path(get, path = "/data/core/ups/segment/definitions/{id}", tag = "segmentation",
    params(("id" = String, Path, description = "definition id")),
    responses((status = 200, description = "the definition"), (status = 404, description = "unknown id")))]
async fn get_definition(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let tenant = context.tenant.clone();
    let target = id.clone();
    let found = blocking(&state, move |store| {
        match definition::get(store, &tenant, &target)? {
            Some(d) => Ok(Some(definition::describe(store, &tenant, d)?)),
            None => Ok(None),
        }
    })
    .await?
    .ok_or_else(|| not_found(&id))?;
    let sandbox = sandbox_of(&state, &context).await?;
    Ok(Json(render(&found, &context, &sandbox)))
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
    /// Definition id.
    id: String,
}

/// Several segment definitions by id; unknown ids are left out of `results`.
#[utoipa::path(post, path = "/data/core/ups/segment/definitions/bulk-get", tag = "segmentation",
    request_body = BulkGet,
    responses((status = 207, description = "`{results: {id: definition}}`")))]
async fn bulk_get(
    State(state): State<AppState>,
    context: SandboxContext,
    request: Result<Json<Value>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let request: BulkGet = serde_json::from_value(body(request)?)
        .map_err(|e| bad_request(format!("expected {{\"ids\": [{{\"id\": ...}}]}}: {e}")))?;
    if request.ids.len() > MAX_LIMIT {
        return Err(bad_request(format!("at most {MAX_LIMIT} ids per request")));
    }
    let tenant = context.tenant.clone();
    let found = blocking(&state, move |store| {
        let mut found = Vec::new();
        for BulkId { id } in &request.ids {
            if let Some(d) = definition::get(store, &tenant, id)? {
                found.push(definition::describe(store, &tenant, d)?);
            }
        }
        Ok(found)
    })
    .await?;
    let sandbox = sandbox_of(&state, &context).await?;
    let results: Map<String, Value> = found
        .iter()
        .map(|d| (d.definition.id.clone(), render(d, &context, &sandbox)))
        .collect();
    Ok((
        StatusCode::MULTI_STATUS,
        Json(json!({ "results": results })),
    ))
}

// ---------------------------------------------------------------------------- conversion

/// Convert an expression between `pql/text` and `pql/json` (the other format of the one
/// sent). The answer is the request without `name`, `schema`, `profileInstanceId` and
/// `payloadSchema` (as AEP's examples), with `imsOrgId`, `sandbox` and the converted
/// `expression`. pql/text comes out canonical (`tessera_pql::to_text`). Syntax only: no
/// type check.
#[utoipa::path(post, path = "/data/core/ups/segment/conversion", tag = "segmentation",
    responses((status = 200, description = "the converted expression"),
        (status = 400, description = "the expression does not parse (line:column or JSON pointer)")))]
async fn convert(
    State(state): State<AppState>,
    context: SandboxContext,
    request: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Value::Object(mut fields) = body(request)? else {
        return Err(bad_request("the body must be an object with an expression"));
    };
    let expression = fields.remove("expression");
    let converted = off_thread(move || -> ApiResult<Value> {
        let (expression, parsed) = definition::read_expression(expression.as_ref())?;
        Ok(if expression.format == PQL_TEXT {
            json!({"type": "PQL", "format": definition::PQL_JSON,
                "value": tessera_pql::json::to_json_string(&parsed)})
        } else {
            json!({"type": "PQL", "format": PQL_TEXT, "value": tessera_pql::to_text(&parsed)})
        })
    })
    .await?;
    for dropped in ["name", "schema", "profileInstanceId", "payloadSchema"] {
        fields.remove(dropped);
    }
    let sandbox = sandbox_of(&state, &context).await?;
    tenancy(&mut fields, &context, &sandbox);
    fields.insert("expression".into(), converted);
    Ok(Json(Value::Object(fields)))
}
