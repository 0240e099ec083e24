//! AEP Profile Access: `GET /data/core/ups/access/entities` — the merged profile of any of a
//! person's identities.
//!
//! `schema.name=_xdm.context.profile` answers the merged profile with the default merge policy
//! (timestamp-ordered attributes, identity graph stitched: AEP's `timestampOrdered` + `pdg`),
//! merging on read; `schema.name=_xdm.context.experienceevent` answers a page of the profile's
//! experience events (`profile_events`). Merge policies, the bulk POST form and the
//! materialized view come with the rest of the profile issue.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::Uri;
use axum::Json;
use serde_json::{json, Map, Value};
use tessera_identity::{IdentityKey, Namespaces, Xid};
use tessera_profile::merged::{timestamp_ordered, Sourced};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::context::SandboxContext;
use crate::error::{ApiError, ApiResult};
use crate::routes::blocking;
use crate::routes::profile_events::{self, EventsParams};
use crate::state::AppState;

/// The built-in merge policy's id.
pub const DEFAULT_MERGE_POLICY: &str = "timestampOrdered-pdg";

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_entity))
}

/// Query of a profile lookup. The event lookup's parameters are listed for the OpenAPI
/// description; `property` repeats, so they are read from the raw query pairs instead.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[allow(dead_code)] // `schema.name` and the event fields are read from the raw pairs
pub struct EntityQuery {
    /// `_xdm.context.profile` or `_xdm.context.experienceevent`.
    #[serde(rename = "schema.name")]
    schema_name: Option<String>,
    /// Identity value, or an XID when `entityIdNS` is absent.
    #[serde(rename = "entityId")]
    entity_id: Option<String>,
    /// Namespace code.
    #[serde(rename = "entityIdNS")]
    entity_id_ns: Option<String>,
    /// Comma-separated dotted paths to return (default: everything).
    fields: Option<String>,
    /// Events: `_xdm.context.profile`.
    #[serde(rename = "relatedSchema.name")]
    related_schema_name: Option<String>,
    /// Events: the profile's identity value, or an XID when `relatedEntityIdNS` is absent.
    #[serde(rename = "relatedEntityId")]
    related_entity_id: Option<String>,
    /// Events: namespace code of `relatedEntityId`.
    #[serde(rename = "relatedEntityIdNS")]
    related_entity_id_ns: Option<String>,
    /// Events: earliest event time, ms, inclusive.
    #[serde(rename = "startTime")]
    start_time: Option<i64>,
    /// Events: latest event time, ms, exclusive.
    #[serde(rename = "endTime")]
    end_time: Option<i64>,
    /// Events: page size, 1 to 10000 (default 1000).
    limit: Option<u32>,
    /// Events: `timestamp`, `+timestamp` or `-timestamp` (`orderBy` also accepted).
    orderby: Option<String>,
    /// Events: up to 3 filters `path op value`, op one of `= != < <= > >=` (repeat the parameter).
    property: Option<String>,
    /// Events: page cursor from `_page.next`.
    start: Option<String>,
}

pub(crate) fn profile_error(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError::Profile {
        status,
        message: message.into(),
    }
}

/// Keeps only the requested dotted paths of `entity`.
pub(crate) fn project(entity: &Map<String, Value>, fields: &str) -> Map<String, Value> {
    let mut out = Map::new();
    for field in fields.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let parts: Vec<&str> = field.split('.').collect();
        let mut source = Some(entity);
        let mut value = None;
        for (index, part) in parts.iter().enumerate() {
            let Some(map) = source else { break };
            match map.get(*part) {
                Some(found) if index + 1 == parts.len() => value = Some(found.clone()),
                Some(Value::Object(next)) => source = Some(next),
                _ => break,
            }
        }
        let Some(value) = value else { continue };
        let mut target = &mut out;
        for (index, part) in parts.iter().enumerate() {
            if index + 1 == parts.len() {
                target.insert((*part).to_owned(), value.clone());
                break;
            }
            let entry = target
                .entry((*part).to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            match entry {
                Value::Object(next) => target = next,
                _ => break,
            }
        }
    }
    out
}

/// The identity named by a lookup: `(namespace, value)` normalized the way ingestion stores
/// it, or an XID when no namespace is given.
pub(crate) fn lookup_key(
    namespaces: &Namespaces,
    entity_id: &str,
    namespace: Option<&str>,
) -> ApiResult<IdentityKey> {
    match namespace {
        Some(code) => {
            let (code, id) = namespaces
                .normalize(code, entity_id)
                .map_err(|reason| profile_error(StatusCode::BAD_REQUEST, reason))?;
            Ok(IdentityKey::new(code, id))
        }
        None => Ok(Xid::parse(entity_id)?),
    }
}

/// Every identity of `key`'s graph (just `key` when it is in none), refused with AEP's 422
/// beyond `max_identities` so that one lookup cannot fan out without bound.
pub(crate) fn graph_members(
    store: &dyn tessera_store::Store,
    tenant: &tessera_model::Tenant,
    key: &IdentityKey,
    max_identities: usize,
) -> ApiResult<Vec<IdentityKey>> {
    let members: Vec<IdentityKey> = match tessera_identity::resolve(store, tenant, key)? {
        Some(graph) => graph.identities().cloned().collect(),
        None => vec![key.clone()],
    };
    if members.len() > max_identities {
        return Err(profile_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Too many related identities",
        ));
    }
    Ok(members)
}

/// A profile (keyed by its XID) or a page of its experience events, by `schema.name`.
#[utoipa::path(get, path = "/data/core/ups/access/entities", tag = "profile", params(EntityQuery),
    responses((status = 200, description = "profile: `{xid: {entityId, sources, tags, identityGraph, entity, lastModifiedAt, mergePolicy}}`; \
experience events: `{_page: {orderby, start, count, next}, children: [{relatedEntityId, entityId, timestamp, entity, lastModifiedAt}], _links: {next: {href}}}`"),
        (status = 400, description = "missing or invalid parameter, bad property filter or cursor"),
        (status = 404, description = "no profile for the identity"), (status = 422, description = "Too many related identities")))]
async fn get_entity(
    State(state): State<AppState>,
    context: SandboxContext,
    uri: Uri,
) -> ApiResult<Json<Value>> {
    let pairs = Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map_err(|rejection| profile_error(StatusCode::BAD_REQUEST, rejection.body_text()))?
        .0;
    let schema_name = pairs
        .iter()
        .find(|(name, _)| name == "schema.name")
        .map(|(_, value)| value.as_str());
    match schema_name {
        Some("_xdm.context.profile") => {}
        Some("_xdm.context.experienceevent") => {
            let params = EventsParams::parse(&pairs, uri.query().unwrap_or_default())?;
            return profile_events::get_events(state, context, params, true).await;
        }
        Some(other) => {
            return Err(profile_error(
                StatusCode::BAD_REQUEST,
                format!("schema.name {other} is not supported; use _xdm.context.profile or _xdm.context.experienceevent"),
            ))
        }
        None => {
            return Err(profile_error(
                StatusCode::BAD_REQUEST,
                "schema.name is required",
            ))
        }
    }
    let Query(query) = Query::<EntityQuery>::try_from_uri(&uri)
        .map_err(|rejection| profile_error(StatusCode::BAD_REQUEST, rejection.body_text()))?;
    get_profile(state, context, query).await
}

/// The merged profile of an identity (keyed by its XID).
async fn get_profile(
    state: AppState,
    context: SandboxContext,
    query: EntityQuery,
) -> ApiResult<Json<Value>> {
    let Some(entity_id) = query.entity_id.clone() else {
        return Err(profile_error(
            StatusCode::BAD_REQUEST,
            "entityId is required",
        ));
    };
    let namespace = query.entity_id_ns.clone();
    let max_identities = state.ingest.limits().max_graph_identities;
    let tenant = context.tenant.clone();
    let found = blocking(&state, move |store| {
        let namespaces = Namespaces::load(store, &tenant)?;
        let key = lookup_key(&namespaces, &entity_id, namespace.as_deref())?;
        let members = graph_members(store, &tenant, &key, max_identities)?;
        let mut fragments = Vec::new();
        for member in &members {
            for (dataset, fragment) in
                tessera_profile::fragment::for_identity(store, &tenant, member)
                    .map_err(|e| profile_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            {
                fragments.push(Sourced {
                    dataset,
                    identity: member.clone(),
                    fragment,
                });
            }
        }
        if fragments.is_empty() {
            return Ok(None);
        }
        Ok(Some((key, members, timestamp_ordered(fragments, &[]))))
    })
    .await?;
    let Some((key, members, merged)) = found else {
        return Err(profile_error(
            StatusCode::NOT_FOUND,
            "no profile exists for this identity",
        ));
    };
    let mut merged = merged;
    if let Some(fields) = &query.fields {
        merged.entity = project(&merged.entity, fields);
    }
    let xid = key.xid().as_str().to_owned();
    let last_modified = time::OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(merged.last_modified) * 1_000_000,
    )
    .ok()
    .and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned());
    Ok(Json(json!({ xid.clone(): {
        "entityId": xid,
        "mergePolicy": { "id": DEFAULT_MERGE_POLICY },
        "sources": merged.sources,
        "tags": merged.tags,
        "identityGraph": members.iter().map(|m| m.xid().as_str().to_owned()).collect::<Vec<_>>(),
        "entity": merged.entity,
        "lastModifiedAt": last_modified,
    }})))
}
