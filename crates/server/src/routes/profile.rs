//! AEP Profile Access: `GET /data/core/ups/access/entities` — the merged profile of any of a
//! person's identities.
//!
//! This first cut answers `schema.name=_xdm.context.profile` with the default merge policy
//! (timestamp-ordered attributes, identity graph stitched: AEP's `timestampOrdered` + `pdg`),
//! merging on read. Merge policies, experience events, the bulk POST form and the
//! materialized view come with the rest of the profile issue.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};
use tessera_identity::{IdentityKey, Namespaces, Xid};
use tessera_profile::merged::{timestamp_ordered, Sourced};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::context::SandboxContext;
use crate::error::{ApiError, ApiResult};
use crate::routes::blocking;
use crate::state::AppState;

/// The built-in merge policy's id.
pub const DEFAULT_MERGE_POLICY: &str = "timestampOrdered-pdg";

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_entity))
}

/// Query of a profile lookup.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct EntityQuery {
    /// `_xdm.context.profile`.
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
}

fn profile_error(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError::Profile {
        status,
        message: message.into(),
    }
}

/// Keeps only the requested dotted paths of `entity`.
fn project(entity: &Map<String, Value>, fields: &str) -> Map<String, Value> {
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

/// The merged profile of an identity (keyed by its XID).
#[utoipa::path(get, path = "/data/core/ups/access/entities", tag = "profile", params(EntityQuery),
    responses((status = 200, description = "`{xid: {entityId, sources, tags, identityGraph, entity, lastModifiedAt, mergePolicy}}`"),
        (status = 404, description = "no profile for the identity"), (status = 422, description = "Too many related identities")))]
async fn get_entity(
    State(state): State<AppState>,
    context: SandboxContext,
    Query(query): Query<EntityQuery>,
) -> ApiResult<Json<Value>> {
    match query.schema_name.as_deref() {
        Some("_xdm.context.profile") => {}
        Some(other) => {
            return Err(profile_error(
                StatusCode::BAD_REQUEST,
                format!("schema.name {other} is not supported yet; use _xdm.context.profile"),
            ))
        }
        None => {
            return Err(profile_error(
                StatusCode::BAD_REQUEST,
                "schema.name is required",
            ))
        }
    }
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
        let key = match &namespace {
            Some(code) => {
                let (code, id) = namespaces
                    .normalize(code, &entity_id)
                    .map_err(|reason| profile_error(StatusCode::BAD_REQUEST, reason))?;
                IdentityKey::new(code, id)
            }
            None => Xid::parse(&entity_id)?,
        };
        let members: Vec<IdentityKey> = match tessera_identity::resolve(store, &tenant, &key)? {
            Some(graph) => graph.identities().cloned().collect(),
            None => vec![key.clone()],
        };
        if members.len() > max_identities {
            return Err(profile_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Too many related identities",
            ));
        }
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
