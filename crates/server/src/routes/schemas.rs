//! AEP Schema Registry API: `/data/foundation/schemaregistry`.
//!
//! Global container (read-only): built-in classes and field groups. Tenant container:
//! schemas (create, list, look up by URL-encoded `$id` or `meta:altId`, JSON Patch, delete),
//! identity and other descriptors, unions per class, and `/stats` (the tenant id).
//!
//! `Accept` variants, as the AEP docs define them: lists answer `application/vnd.adobe.xed-id+json`
//! (summaries: `title`, `$id`, `meta:altId`, `version`; the default) or `…xed+json` (whole
//! documents); look-ups answer `…xed+json` (raw, with `allOf`; the default), `…xed-full+json`
//! (refs and `allOf` resolved into `properties`), and the `-notext` forms of both (no titles or
//! descriptions). A `version=` parameter is accepted but not required. Descriptor lists answer
//! `application/vnd.adobe.xdm-link+json` (paths; the default), `…xdm-id+json` (ids) or
//! `…xdm+json` (objects), grouped by `@type`.
//!
//! Domain logic lives in `tessera-schema`; this file only maps HTTP to it.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use tessera_schema::{builtin_full_form, Builtin, SchemaRegistry};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::context::SandboxContext;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::routes::off_thread;
use crate::state::AppState;

const BASE: &str = "/data/foundation/schemaregistry";
/// AEP's cap on one page of a list.
const MAX_PAGE: usize = 300;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_classes))
        .routes(routes!(get_class))
        .routes(routes!(list_field_groups))
        .routes(routes!(get_field_group))
        .routes(routes!(list_schemas, create_schema))
        .routes(routes!(get_schema, patch_schema, delete_schema))
        .routes(routes!(list_descriptors, create_descriptor))
        .routes(routes!(get_descriptor, delete_descriptor))
        .routes(routes!(list_unions))
        .routes(routes!(get_union))
        .routes(routes!(stats))
}

/// Runs registry work on the blocking pool (it reads and commits to the store).
async fn run<T, F>(state: &AppState, work: F) -> ApiResult<T>
where
    T: Send + 'static,
    F: FnOnce(&SchemaRegistry) -> tessera_schema::Result<T> + Send + 'static,
{
    let registry = state.schemas.clone();
    off_thread(move || work(&registry)).await
}

fn accept(headers: &HeaderMap) -> String {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase()
}

fn body_json(bytes: &Bytes) -> ApiResult<Value> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::problem(
            ErrorCode::MalformedBody,
            format!("the body is not valid JSON: {e}"),
        )
    })
}

/// Removes titles and descriptions of schema nodes (never fields that happen to be named
/// `title`), for the `-notext` Accept variants.
fn strip_text(value: &mut Value, field_map: bool) {
    match value {
        Value::Object(object) if field_map => {
            for field in object.values_mut() {
                strip_text(field, false);
            }
        }
        Value::Object(object) => {
            for key in ["title", "description", "meta:titleId", "meta:descriptionId"] {
                object.remove(key);
            }
            for (key, child) in object.iter_mut() {
                match key.as_str() {
                    "properties" | "definitions" => strip_text(child, true),
                    "items" | "additionalProperties" | "allOf" => strip_text(child, false),
                    _ => {}
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| strip_text(item, false)),
        _ => {}
    }
}

fn summary(doc: &Value) -> Value {
    json!({
        "$id": doc.get("$id"),
        "meta:altId": doc.get("meta:altId"),
        "version": doc.get("version"),
        "title": doc.get("title"),
    })
}

/// Percent-decodes one query component (`+` is a space).
fn decode_component(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        let hex = |i: usize| bytes.get(i).and_then(|b| (*b as char).to_digit(16));
        match byte {
            b'%' => match (hex(index + 1), hex(index + 2)) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    index += 3;
                    continue;
                }
                _ => out.push(byte),
            },
            b'+' => out.push(b' '),
            other => out.push(other),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// List parameters: `limit`, `start` (offset), `orderby` (`title`, `-title`...), and any
/// number of `property` filters (`name==value`, `name!=value`, `name~text`, or `name`).
#[derive(Debug, Default)]
struct ListQuery {
    limit: usize,
    start: usize,
    orderby: Option<String>,
    properties: Vec<String>,
}

fn list_query(raw: Option<String>) -> ApiResult<ListQuery> {
    let mut query = ListQuery {
        limit: MAX_PAGE,
        ..ListQuery::default()
    };
    for pair in raw
        .as_deref()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = decode_component(value);
        let number = |what: &str| {
            value.parse::<usize>().map_err(|_| {
                ApiError::problem(
                    ErrorCode::InvalidField,
                    format!("{what} must be a non-negative integer"),
                )
            })
        };
        match decode_component(name).as_str() {
            "limit" => query.limit = number("limit")?.clamp(1, MAX_PAGE),
            "start" => query.start = number("start")?,
            "orderby" => query.orderby = Some(value),
            "property" => query.properties.push(value),
            _ => {}
        }
    }
    Ok(query)
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Whether a document passes one `property` filter. Array fields match when an element does.
fn matches(doc: &Value, filter: &str) -> bool {
    let (name, op, expected) = if let Some((n, v)) = filter.split_once("!=") {
        (n, "!=", v)
    } else if let Some((n, v)) = filter.split_once("==") {
        (n, "==", v)
    } else if let Some((n, v)) = filter.split_once('~') {
        (n, "~", v)
    } else {
        return doc.get(filter).is_some();
    };
    let candidates: Vec<String> = match doc.get(name) {
        None => Vec::new(),
        Some(Value::Array(items)) => items.iter().map(text_of).collect(),
        Some(value) => vec![text_of(value)],
    };
    match op {
        "==" => candidates.iter().any(|c| c == expected),
        "!=" => !candidates.iter().any(|c| c == expected),
        _ => candidates.iter().any(|c| c.contains(expected)),
    }
}

/// Filters, orders and pages documents into AEP's list envelope.
fn list_response(
    mut docs: Vec<Value>,
    query: &ListQuery,
    headers: &HeaderMap,
    global: &str,
) -> Value {
    docs.retain(|doc| query.properties.iter().all(|filter| matches(doc, filter)));
    if let Some(orderby) = &query.orderby {
        let (field, descending) = match orderby.strip_prefix('-') {
            Some(field) => (field, true),
            None => (orderby.trim_start_matches('+'), false),
        };
        docs.sort_by_key(|doc| doc.get(field).map(text_of).unwrap_or_default());
        if descending {
            docs.reverse();
        }
    }
    let total = docs.len();
    let page: Vec<Value> = docs
        .into_iter()
        .skip(query.start)
        .take(query.limit)
        .collect();
    let full = accept(headers).contains("xed+json");
    let count = page.len();
    let results: Vec<Value> = if full {
        page
    } else {
        page.iter().map(summary).collect()
    };
    let next = (query.start + count < total).then(|| query.start + count);
    json!({
        "results": results,
        "_page": {"orderby": query.orderby, "next": next, "count": count},
        "_links": {
            "next": next.map(|n| json!({"href": format!("{BASE}{global}?start={n}&limit={}", query.limit)})),
            "global_schemas": {"href": format!("{BASE}/global/schemas")},
        },
    })
}

fn render(mut doc: Value, headers: &HeaderMap) -> Json<Value> {
    if accept(headers).contains("notext") {
        strip_text(&mut doc, false);
    }
    Json(doc)
}

fn builtin_doc(builtin: &Builtin, headers: &HeaderMap) -> Json<Value> {
    let doc = if accept(headers).contains("xed-full") {
        builtin_full_form(builtin)
    } else {
        builtin.doc.clone()
    };
    render(doc, headers)
}

fn not_found(kind: &str, id: &str) -> ApiError {
    ApiError::problem(ErrorCode::NotFound, format!("{kind} {id:?} not found"))
}

// ---------------------------------------------------------------------- global container

/// List the built-in classes.
#[utoipa::path(get, path = "/data/foundation/schemaregistry/global/classes", tag = "schema registry",
    responses((status = 200, description = "`{results, _page, _links}`")))]
async fn list_classes(
    State(state): State<AppState>,
    _context: SandboxContext,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let query = list_query(raw)?;
    let registry = &state.schemas;
    let docs = registry
        .builtins()
        .classes()
        .iter()
        .map(|c| c.doc.clone())
        .collect();
    Ok(Json(list_response(
        docs,
        &query,
        &headers,
        "/global/classes",
    )))
}

/// Look up a built-in class by URL-encoded `$id` or `meta:altId`.
#[utoipa::path(get, path = "/data/foundation/schemaregistry/global/classes/{id}", tag = "schema registry",
    params(("id" = String, Path, description = "URL-encoded `$id` or `meta:altId`")),
    responses((status = 200, description = "the class"), (status = 404, description = "no such class")))]
async fn get_class(
    State(state): State<AppState>,
    _context: SandboxContext,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let registry = &state.schemas;
    let class = registry
        .builtins()
        .class(&id)
        .ok_or_else(|| not_found("class", &id))?;
    Ok(builtin_doc(class, &headers))
}

/// List the built-in (standard) field groups.
#[utoipa::path(get, path = "/data/foundation/schemaregistry/global/fieldgroups", tag = "schema registry",
    responses((status = 200, description = "`{results, _page, _links}`")))]
async fn list_field_groups(
    State(state): State<AppState>,
    _context: SandboxContext,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let query = list_query(raw)?;
    let registry = &state.schemas;
    let docs = registry
        .builtins()
        .field_groups()
        .iter()
        .map(|g| g.doc.clone())
        .collect();
    Ok(Json(list_response(
        docs,
        &query,
        &headers,
        "/global/fieldgroups",
    )))
}

/// Look up a built-in field group by URL-encoded `$id` or `meta:altId`.
#[utoipa::path(get, path = "/data/foundation/schemaregistry/global/fieldgroups/{id}", tag = "schema registry",
    params(("id" = String, Path, description = "URL-encoded `$id` or `meta:altId`")),
    responses((status = 200, description = "the field group"), (status = 404, description = "no such field group")))]
async fn get_field_group(
    State(state): State<AppState>,
    _context: SandboxContext,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let registry = &state.schemas;
    let group = registry
        .builtins()
        .field_group(&id)
        .ok_or_else(|| not_found("field group", &id))?;
    Ok(builtin_doc(group, &headers))
}

// ---------------------------------------------------------------------- tenant schemas

/// List the sandbox's schemas (`property=meta:immutableTags==union&property=meta:class==…`
/// lists a union's members).
#[utoipa::path(get, path = "/data/foundation/schemaregistry/tenant/schemas", tag = "schema registry",
    responses((status = 200, description = "`{results, _page, _links}`")))]
async fn list_schemas(
    State(state): State<AppState>,
    context: SandboxContext,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let query = list_query(raw)?;
    let tenant = context.tenant.clone();
    let docs = run(&state, move |registry| registry.list_schemas(&tenant)).await?;
    Ok(Json(list_response(
        docs,
        &query,
        &headers,
        "/tenant/schemas",
    )))
}

/// Create a schema: `allOf` one class, any field groups, and custom fields under `_{TENANT_ID}`.
#[utoipa::path(post, path = "/data/foundation/schemaregistry/tenant/schemas", tag = "schema registry",
    request_body(content = Object, content_type = "application/json", description = "`{title, description?, allOf: [{$ref: class}, {$ref: field group}...], meta:immutableTags?}`"),
    responses((status = 201, description = "the created schema"), (status = 400, description = "invalid schema"),
              (status = 409, description = "title taken or union conflict")))]
async fn create_schema(
    State(state): State<AppState>,
    context: SandboxContext,
    body: Bytes,
) -> ApiResult<Response> {
    let body = body_json(&body)?;
    let tenant = context.tenant.clone();
    let doc = run(&state, move |registry| {
        registry.create_schema(&tenant, body)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(doc)).into_response())
}

/// Look up a schema (or a union, by its `…__union` id).
#[utoipa::path(get, path = "/data/foundation/schemaregistry/tenant/schemas/{id}", tag = "schema registry",
    params(("id" = String, Path, description = "URL-encoded `$id` or `meta:altId`")),
    responses((status = 200, description = "the schema"), (status = 404, description = "no such schema")))]
async fn get_schema(
    State(state): State<AppState>,
    context: SandboxContext,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let tenant = context.tenant.clone();
    let full = accept(&headers).contains("xed-full");
    let doc = run(&state, move |registry| {
        if id.ends_with(tessera_schema::ids::UNION_SUFFIX) {
            registry.get_union(&tenant, &id, full)
        } else if full {
            registry.resolved_schema(&tenant, &id)
        } else {
            registry.get_schema(&tenant, &id)
        }
    })
    .await?;
    Ok(render(doc, &headers))
}

/// Change a schema with a JSON Patch (RFC 6902) array.
#[utoipa::path(patch, path = "/data/foundation/schemaregistry/tenant/schemas/{id}", tag = "schema registry",
    params(("id" = String, Path, description = "URL-encoded `$id` or `meta:altId`")),
    request_body(content = Vec<Object>, content_type = "application/json", description = "JSON Patch operations"),
    responses((status = 200, description = "the updated schema"), (status = 400, description = "invalid patch or schema"),
              (status = 404, description = "no such schema"), (status = 409, description = "union conflict or immutable tag")))]
async fn patch_schema(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let patch = body_json(&body)?;
    let tenant = context.tenant.clone();
    let doc = run(&state, move |registry| {
        registry.patch_schema(&tenant, &id, &patch)
    })
    .await?;
    Ok(Json(doc))
}

/// Delete a schema (refused while a dataset uses it).
#[utoipa::path(delete, path = "/data/foundation/schemaregistry/tenant/schemas/{id}", tag = "schema registry",
    params(("id" = String, Path, description = "URL-encoded `$id` or `meta:altId`")),
    responses((status = 204, description = "deleted"), (status = 404, description = "no such schema"),
              (status = 409, description = "used by a dataset")))]
async fn delete_schema(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let tenant = context.tenant.clone();
    run(&state, move |registry| registry.delete_schema(&tenant, &id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------- descriptors

/// List descriptors, grouped by `@type`.
#[utoipa::path(get, path = "/data/foundation/schemaregistry/tenant/descriptors", tag = "schema registry",
    responses((status = 200, description = "`{\"xdm:descriptorIdentity\": [...], ...}`")))]
async fn list_descriptors(
    State(state): State<AppState>,
    context: SandboxContext,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let tenant = context.tenant.clone();
    let docs = run(&state, move |registry| registry.list_descriptors(&tenant)).await?;
    let accept = accept(&headers);
    let mut grouped = Map::new();
    for doc in docs {
        let kind = doc.get("@type").map(text_of).unwrap_or_default();
        let id = doc.get("@id").map(text_of).unwrap_or_default();
        let item = if accept.contains("xdm-id+json") {
            json!(id)
        } else if accept.contains("xdm+json") || accept.contains("xdm-v2+json") {
            doc
        } else {
            json!(format!("/tenant/descriptors/{id}"))
        };
        if let Some(list) = grouped
            .entry(kind)
            .or_insert_with(|| json!([]))
            .as_array_mut()
        {
            list.push(item);
        }
    }
    Ok(Json(Value::Object(grouped)))
}

/// Create a descriptor (identity: `xdm:sourceSchema`, `xdm:sourceProperty`, `xdm:namespace`, `xdm:isPrimary`).
#[utoipa::path(post, path = "/data/foundation/schemaregistry/tenant/descriptors", tag = "schema registry",
    request_body(content = Object, content_type = "application/json", description = "descriptor with `@type` and `xdm:sourceSchema`"),
    responses((status = 201, description = "the descriptor with its `@id`"), (status = 400, description = "invalid descriptor")))]
async fn create_descriptor(
    State(state): State<AppState>,
    context: SandboxContext,
    body: Bytes,
) -> ApiResult<Response> {
    let body = body_json(&body)?;
    let tenant = context.tenant.clone();
    let doc = run(&state, move |registry| {
        registry.create_descriptor(&tenant, body)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(doc)).into_response())
}

/// Look up a descriptor by `@id`.
#[utoipa::path(get, path = "/data/foundation/schemaregistry/tenant/descriptors/{id}", tag = "schema registry",
    params(("id" = String, Path, description = "descriptor `@id`")),
    responses((status = 200, description = "the descriptor"), (status = 404, description = "no such descriptor")))]
async fn get_descriptor(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let tenant = context.tenant.clone();
    Ok(Json(
        run(&state, move |registry| {
            registry.get_descriptor(&tenant, &id)
        })
        .await?,
    ))
}

/// Delete a descriptor.
#[utoipa::path(delete, path = "/data/foundation/schemaregistry/tenant/descriptors/{id}", tag = "schema registry",
    params(("id" = String, Path, description = "descriptor `@id`")),
    responses((status = 204, description = "deleted"), (status = 404, description = "no such descriptor")))]
async fn delete_descriptor(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let tenant = context.tenant.clone();
    run(&state, move |registry| {
        registry.delete_descriptor(&tenant, &id)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------- unions, stats

/// List the unions (one per class with a profile-enabled schema).
#[utoipa::path(get, path = "/data/foundation/schemaregistry/tenant/unions", tag = "schema registry",
    responses((status = 200, description = "`{results}`")))]
async fn list_unions(
    State(state): State<AppState>,
    context: SandboxContext,
) -> ApiResult<Json<Value>> {
    let tenant = context.tenant.clone();
    let unions = run(&state, move |registry| registry.list_unions(&tenant)).await?;
    Ok(Json(json!({ "results": unions })))
}

/// Look up a union by URL-encoded `$id` (`…__union`) or `meta:altId`.
#[utoipa::path(get, path = "/data/foundation/schemaregistry/tenant/unions/{id}", tag = "schema registry",
    params(("id" = String, Path, description = "URL-encoded union `$id` or `meta:altId`")),
    responses((status = 200, description = "the union"), (status = 404, description = "no such union")))]
async fn get_union(
    State(state): State<AppState>,
    context: SandboxContext,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let tenant = context.tenant.clone();
    let full = accept(&headers).contains("xed-full");
    let doc = run(&state, move |registry| {
        registry.get_union(&tenant, &id, full)
    })
    .await?;
    Ok(render(doc, &headers))
}

/// Registry statistics, including the `tenantId` that namespaces custom fields.
#[utoipa::path(get, path = "/data/foundation/schemaregistry/stats", tag = "schema registry",
    responses((status = 200, description = "`{imsOrg, tenantId, counts, ...}`")))]
async fn stats(State(state): State<AppState>, context: SandboxContext) -> ApiResult<Json<Value>> {
    let tenant = context.tenant.clone();
    Ok(Json(
        run(&state, move |registry| registry.stats(&tenant)).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_filters() {
        let doc = json!({"meta:immutableTags": ["union"], "meta:class": "https://ns.adobe.com/xdm/context/profile", "title": "CRM"});
        assert!(matches(&doc, "meta:immutableTags==union"));
        assert!(matches(
            &doc,
            "meta:class==https://ns.adobe.com/xdm/context/profile"
        ));
        assert!(!matches(
            &doc,
            "meta:class!=https://ns.adobe.com/xdm/context/profile"
        ));
        assert!(matches(&doc, "title~R"));
        assert!(matches(&doc, "title"));
        assert!(!matches(&doc, "description"));
        assert_eq!(
            decode_component("meta%3Aclass%3D%3Dhttps%3A%2F%2Fx+y"),
            "meta:class==https://x y"
        );
    }

    #[test]
    fn notext_keeps_fields_named_title() {
        let mut doc =
            json!({"title": "S", "properties": {"title": {"type": "string", "title": "T"}}});
        strip_text(&mut doc, false);
        assert_eq!(doc, json!({"properties": {"title": {"type": "string"}}}));
    }
}
