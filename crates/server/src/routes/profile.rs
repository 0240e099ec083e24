//! AEP Profile Access: `/data/core/ups/access/entities` — the merged profile of any of a
//! person's identities (`GET` one, `POST` up to 100), a page of the person's experience
//! events (`GET` with `schema.name=_xdm.context.experienceevent`, in `profile_events`), and
//! the person's erasure (`DELETE`).
//!
//! The merge policy is `mergePolicyId` or the sandbox's default for the profile class; the
//! merged profile comes from `tessera_profile::lookup` (materialized view, else a merge).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::Json;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use tessera_identity::{IdentityKey, Namespaces, Xid};
use tessera_profile::lookup::{Lookup, Profile};
use tessera_profile::policy::{self, MergePolicy, PROFILE_CLASS};
pub(crate) use tessera_profile::projection::project;
use tessera_store::Store;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::context::SandboxContext;
use crate::error::{ApiError, ApiResult};
use crate::routes::blocking;
use crate::routes::profile_events::{self, EventsParams};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_entity, post_entities, delete_entity))
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
    /// Merge policy (default: the sandbox's default for the profile class).
    #[serde(rename = "mergePolicyId")]
    merge_policy_id: Option<String>,
    /// Events: `_xdm.context.profile`.
    #[serde(rename = "relatedSchema.name")]
    #[allow(dead_code)] // read from the raw pairs by `profile_events`
    related_schema_name: Option<String>,
    /// Events: the profile's identity value, or an XID when `relatedEntityIdNS` is absent.
    #[serde(rename = "relatedEntityId")]
    #[allow(dead_code)]
    related_entity_id: Option<String>,
    /// Events: namespace code of `relatedEntityId`.
    #[serde(rename = "relatedEntityIdNS")]
    #[allow(dead_code)]
    related_entity_id_ns: Option<String>,
    /// Events: earliest event time, ms, inclusive.
    #[serde(rename = "startTime")]
    #[allow(dead_code)]
    start_time: Option<i64>,
    /// Events: latest event time, ms, exclusive.
    #[serde(rename = "endTime")]
    #[allow(dead_code)]
    end_time: Option<i64>,
    /// Events: page size, 1 to 10000 (default 1000).
    #[allow(dead_code)]
    limit: Option<u32>,
    /// Events: `timestamp`, `+timestamp` or `-timestamp` (`orderBy` also accepted).
    #[allow(dead_code)]
    orderby: Option<String>,
    /// Events: up to 3 filters `path op value`, op one of `= != < <= > >=` (repeat the parameter).
    #[allow(dead_code)]
    property: Option<String>,
    /// Events: page cursor from `_page.next`.
    #[allow(dead_code)]
    start: Option<String>,
    /// `true` adds the live computed attributes at `_{TENANT_ID}.ComputedAttributes.{name}`
    /// (default `false`, as in AEP).
    #[serde(rename = "withCA")]
    with_ca: Option<bool>,
}

pub(crate) fn profile_error(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError::Profile {
        status,
        message: message.into(),
    }
}

/// The merge policy a request names, or the sandbox's default for the profile class.
pub(crate) fn choose_policy(
    policies: &policy::PolicyCache,
    store: &dyn Store,
    tenant: &tessera_model::Tenant,
    id: Option<&str>,
) -> ApiResult<MergePolicy> {
    let set = policies.get(store, tenant)?;
    match id.filter(|id| !id.is_empty()) {
        None => Ok(set.default_for(PROFILE_CLASS)),
        Some(id) => set.get(id).cloned().ok_or_else(|| {
            profile_error(
                StatusCode::BAD_REQUEST,
                format!("merge policy {id} does not exist in this sandbox"),
            )
        }),
    }
}

/// The identity a request names: `entityId` + `entityIdNS`, or an XID alone.
pub(crate) fn requested_identity(
    namespaces: &Namespaces,
    entity_id: &str,
    namespace: Option<&str>,
) -> ApiResult<IdentityKey> {
    match namespace.filter(|ns| !ns.is_empty()) {
        Some(code) => {
            let (code, id) = namespaces
                .normalize(code, entity_id)
                .map_err(|reason| profile_error(StatusCode::BAD_REQUEST, reason))?;
            Ok(IdentityKey::new(code, id))
        }
        None => Ok(Xid::parse(entity_id)?),
    }
}

/// The identities whose data a lookup under a policy covers: every identity of `key`'s graph
/// when the policy stitches (just `key` when it is in none), refused with AEP's 422 beyond
/// `max_identities` so that one lookup cannot fan out without bound; else `key` alone.
pub(crate) fn graph_members(
    store: &dyn Store,
    tenant: &tessera_model::Tenant,
    key: &IdentityKey,
    stitch: bool,
    max_identities: usize,
) -> ApiResult<Vec<IdentityKey>> {
    if !stitch {
        return Ok(vec![key.clone()]);
    }
    let members: Vec<IdentityKey> = match tessera_identity::resolve(store, tenant, key)? {
        Some(graph) => graph.identities().cloned().collect(),
        None => vec![key.clone()],
    };
    if members.len() > max_identities {
        return Err(too_many());
    }
    Ok(members)
}

/// Adds the profile's segment memberships to a found profile as `segmentMembership` (kept
/// apart from the materialized view, so an evaluation does not invalidate merged profiles).
/// Synchronous (edge) segments are evaluated now, so the answer does not wait for the
/// streaming consumer.
fn with_memberships(
    store: &dyn Store,
    state: &AppState,
    tenant: &tessera_model::Tenant,
    key: &IdentityKey,
    found: Lookup,
) -> ApiResult<Lookup> {
    let Lookup::Found(mut profile) = found else {
        return Ok(found);
    };
    let graph = match profile.graph {
        Some(graph) => graph,
        None => match tessera_identity::graph_id(store, tenant, key)? {
            Some(graph) => graph,
            None => return Ok(Lookup::Found(profile)),
        },
    };
    let segment_error = crate::segment_jobs::SegmentJobError::from;
    let edge = state
        .edge_segments
        .segments(store, tenant)
        .map_err(segment_error)?;
    let memberships = match tessera_identity::graph::graph_by_id(store, tenant, graph)? {
        Some(live) if !edge.is_empty() => tessera_segment::edge::memberships(
            store,
            tenant,
            &live,
            &edge,
            crate::system_jobs::now_ms(),
            state.ingest.limits().max_graph_identities,
        )
        .map_err(segment_error)?,
        _ => tessera_segment::membership::of_graph(store, tenant, graph).map_err(segment_error)?,
    };
    if let Some(xdm) = tessera_segment::membership::to_xdm(&memberships) {
        // The entity is a JSON object's text: insert the field after its opening brace.
        let text = profile.entity.get();
        let rest = text.strip_prefix('{').unwrap_or(text).trim_start();
        let spliced = if rest.starts_with('}') {
            format!("{{\"segmentMembership\":{xdm}}}")
        } else {
            format!("{{\"segmentMembership\":{xdm},{rest}")
        };
        profile.entity = RawValue::from_string(spliced)
            .map_err(|e| profile_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    }
    Ok(Lookup::Found(profile))
}

/// Adds the profile's computed attribute values (`withCA=true`) to a found profile, under
/// `_{TENANT_ID}.ComputedAttributes`; kept apart from the materialized view because the
/// values move with the clock (window expiry), not only with writes.
fn with_computed(
    store: &dyn Store,
    tenant: &tessera_model::Tenant,
    key: &IdentityKey,
    found: Lookup,
) -> ApiResult<Lookup> {
    let Lookup::Found(mut profile) = found else {
        return Ok(found);
    };
    let graph = match profile.graph {
        Some(graph) => graph,
        None => match tessera_identity::graph_id(store, tenant, key)? {
            Some(graph) => graph,
            None => return Ok(Lookup::Found(profile)),
        },
    };
    let now = crate::system_jobs::now_ms();
    let values = tessera_segment::computed::upkeep::values(store, tenant, graph, now)?;
    if values.is_empty() {
        return Ok(Lookup::Found(profile));
    }
    let internal =
        |e: serde_json::Error| profile_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let mut entity: Value = serde_json::from_str(profile.entity.get()).map_err(internal)?;
    tessera_segment::computed::upkeep::apply(&values, &mut entity);
    profile.entity = RawValue::from_string(serde_json::to_string(&entity).map_err(internal)?)
        .map_err(internal)?;
    Ok(Lookup::Found(profile))
}

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// One profile in the response map, as AEP shapes it.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct EntityOut {
    entity_id: String,
    merge_policy: Value,
    sources: Vec<String>,
    tags: Vec<String>,
    identity_graph: Vec<String>,
    /// The stored JSON text when no projection applies (served without re-encoding).
    entity: Box<RawValue>,
    last_modified_at: String,
}

fn entity_out(
    xid: &str,
    policy: &MergePolicy,
    profile: Profile,
    fields: Option<&str>,
) -> ApiResult<EntityOut> {
    let entity = match fields.filter(|f| !f.trim().is_empty()) {
        None => profile.entity,
        Some(fields) => {
            let full: Map<String, Value> = serde_json::from_str(profile.entity.get())
                .map_err(|e| profile_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            serde_json::value::to_raw_value(&project(&full, fields))
                .map_err(|e| profile_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        }
    };
    Ok(EntityOut {
        entity_id: xid.to_owned(),
        merge_policy: json!({ "id": policy.id }),
        sources: profile.sources,
        tags: profile.tags,
        identity_graph: profile
            .members
            .iter()
            .map(|m| m.xid().as_str().to_owned())
            .collect(),
        entity,
        last_modified_at: rfc3339(profile.last_modified),
    })
}

fn not_found() -> ApiError {
    profile_error(StatusCode::NOT_FOUND, "no profile exists for this identity")
}

fn too_many() -> ApiError {
    profile_error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "Too many related identities",
    )
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
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse as _;
    let pairs = Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map_err(|rejection| profile_error(StatusCode::BAD_REQUEST, rejection.body_text()))?
        .0;
    let value_of = |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    if value_of("schema.name").as_deref() == Some("_xdm.context.experienceevent") {
        let params = EventsParams::parse(&pairs, uri.query().unwrap_or_default())?;
        let tenant = context.tenant.clone();
        let policies = Arc::clone(&state.policies);
        let policy_id = value_of("mergePolicyId");
        let policy = blocking(&state, move |store| {
            choose_policy(&policies, store, &tenant, policy_id.as_deref())
        })
        .await?;
        return Ok(
            profile_events::get_events(state, context, params, policy.stitches())
                .await?
                .into_response(),
        );
    }
    let Query(query) = Query::<EntityQuery>::try_from_uri(&uri)
        .map_err(|rejection| profile_error(StatusCode::BAD_REQUEST, rejection.body_text()))?;
    Ok(get_profile(state, context, query).await?.into_response())
}

/// The merged profile of an identity (keyed by its XID).
async fn get_profile(
    state: AppState,
    context: SandboxContext,
    query: EntityQuery,
) -> ApiResult<Json<std::collections::HashMap<String, EntityOut>>> {
    match query.schema_name.as_deref() {
        Some("_xdm.context.profile") => {}
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
    let Some(entity_id) = query.entity_id.clone() else {
        return Err(profile_error(
            StatusCode::BAD_REQUEST,
            "entityId is required",
        ));
    };
    let max_identities = state.ingest.limits().max_graph_identities;
    let tenant = context.tenant.clone();
    let namespace = query.entity_id_ns.clone();
    let policy_id = query.merge_policy_id.clone();
    let with_ca = query.with_ca.unwrap_or(false);
    let (ingest, policies) = (state.ingest.clone(), Arc::clone(&state.policies));
    let worker = state.clone();
    let (key, policy, found) = blocking(&state, move |store| {
        let namespaces = ingest.namespaces(&tenant)?;
        let key = requested_identity(&namespaces, &entity_id, namespace.as_deref())?;
        let policy = choose_policy(&policies, store, &tenant, policy_id.as_deref())?;
        let found = tessera_profile::lookup::lookup(store, &tenant, &key, &policy, max_identities)?;
        let found = with_memberships(store, &worker, &tenant, &key, found)?;
        let found = if with_ca {
            with_computed(store, &tenant, &key, found)?
        } else {
            found
        };
        Ok((key, policy, found))
    })
    .await?;
    let profile = match found {
        Lookup::Found(profile) => profile,
        Lookup::NotFound => return Err(not_found()),
        Lookup::TooManyIdentities(_) => return Err(too_many()),
    };
    let xid = key.xid().as_str().to_owned();
    let out = entity_out(&xid, &policy, profile, query.fields.as_deref())?;
    Ok(Json(std::collections::HashMap::from([(xid, out)])))
}

/// One identity of a bulk request.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkIdentity {
    /// Identity value, or an XID without `entityIdNS`.
    entity_id: Option<String>,
    /// `{"code": ...}`.
    entity_id_n_s: Option<NamespaceCode>,
    /// XID form used by event lookups.
    related_entity_id: Option<String>,
}

/// `{"code": "Email"}`.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct NamespaceCode {
    /// Namespace code.
    code: String,
}

/// Body of `POST /access/entities`.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkRequest {
    /// `{"name": "_xdm.context.profile"}`.
    schema: Option<SchemaName>,
    /// Dotted paths to return.
    #[serde(default)]
    fields: Vec<String>,
    /// Up to 100 identities.
    #[serde(default)]
    identities: Vec<BulkIdentity>,
    /// Merge policy.
    merge_policy_id: Option<String>,
}

/// `{"name": ...}`.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct SchemaName {
    /// Class name.
    name: String,
}

/// Most identities one bulk request may name (AEP's limit).
const BULK_LIMIT: usize = 100;

/// Merged profiles of up to 100 identities, keyed by XID (with
/// `schema.name=_xdm.context.experienceevent`, pages of their events instead). Identities without a profile come
/// back in AEP's empty shape; when some identities fail (invalid, too many related
/// identities) the answer is 207 with one item per identity: `{xid, error}` for failures,
/// `{xid, entity}` (the profile object) for the rest.
#[utoipa::path(post, path = "/data/core/ups/access/entities", tag = "profile", request_body = BulkRequest,
    responses((status = 200, description = "`{xid: profile}`"), (status = 207, description = "partial failure: `[{xid, error}|{xid, entity}]`")))]
async fn post_entities(
    State(state): State<AppState>,
    context: SandboxContext,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Json(body) = body.map_err(|e| profile_error(StatusCode::BAD_REQUEST, e.body_text()))?;
    if body.pointer("/schema/name").and_then(Value::as_str) == Some("_xdm.context.experienceevent")
    {
        let tenant = context.tenant.clone();
        let policies = Arc::clone(&state.policies);
        let policy_id = body
            .get("mergePolicyId")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let policy = blocking(&state, move |store| {
            choose_policy(&policies, store, &tenant, policy_id.as_deref())
        })
        .await?;
        return profile_events::post_events(state, context, body, policy.stitches()).await;
    }
    let request: BulkRequest = serde_json::from_value(body)
        .map_err(|e| profile_error(StatusCode::BAD_REQUEST, format!("invalid request: {e}")))?;
    match request.schema.as_ref().map(|s| s.name.as_str()) {
        Some("_xdm.context.profile") => {}
        Some(other) => {
            return Err(profile_error(
                StatusCode::BAD_REQUEST,
                format!("schema.name {other} is not supported; use _xdm.context.profile"),
            ))
        }
        None => {
            return Err(profile_error(
                StatusCode::BAD_REQUEST,
                "schema.name is required",
            ))
        }
    }
    if request.identities.is_empty() || request.identities.len() > BULK_LIMIT {
        return Err(profile_error(
            StatusCode::BAD_REQUEST,
            format!("identities must list 1 to {BULK_LIMIT} identities"),
        ));
    }
    let max_identities = state.ingest.limits().max_graph_identities;
    let tenant = context.tenant.clone();
    let fields = (!request.fields.is_empty()).then(|| request.fields.join(","));
    let (ingest, policies) = (state.ingest.clone(), Arc::clone(&state.policies));
    let worker = state.clone();
    let results = blocking(&state, move |store| {
        let namespaces = ingest.namespaces(&tenant)?;
        let policy = choose_policy(
            &policies,
            store,
            &tenant,
            request.merge_policy_id.as_deref(),
        )?;
        let mut results = Vec::with_capacity(request.identities.len());
        for requested in &request.identities {
            let raw = requested
                .entity_id
                .as_deref()
                .or(requested.related_entity_id.as_deref())
                .unwrap_or_default()
                .to_owned();
            let key = requested_identity(
                &namespaces,
                &raw,
                requested.entity_id_n_s.as_ref().map(|n| n.code.as_str()),
            );
            let outcome = match key {
                Ok(key) => {
                    let found = tessera_profile::lookup::lookup(
                        store,
                        &tenant,
                        &key,
                        &policy,
                        max_identities,
                    )?;
                    let found = with_memberships(store, &worker, &tenant, &key, found)?;
                    (key.xid().as_str().to_owned(), Ok(found))
                }
                Err(error) => (raw, Err(error)),
            };
            results.push(outcome);
        }
        Ok((policy, results))
    })
    .await?;
    let (policy, results) = results;
    let mut profiles = Map::new();
    let mut items = Vec::new();
    let mut failed = false;
    for (xid, outcome) in results {
        let item = match outcome {
            Ok(Lookup::Found(profile)) => {
                let out = entity_out(&xid, &policy, profile, fields.as_deref())?;
                serde_json::to_value(out)
                    .map_err(|e| profile_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            }
            Ok(Lookup::NotFound) => json!({
                "entityId": xid, "sources": [""], "entity": {}, "lastModifiedAt": "1970-01-01T00:00:00Z",
            }),
            Ok(Lookup::TooManyIdentities(_)) => {
                failed = true;
                items.push(json!({"xid": xid, "error": {"message": "Too many related identities", "statusCode": "422"}}));
                continue;
            }
            Err(error) => {
                failed = true;
                let status = error.status();
                let message = match &error {
                    ApiError::Profile { message, .. } => message.clone(),
                    ApiError::Identity { detail, .. } => detail.clone(),
                    other => format!("{other:?}"),
                };
                items.push(json!({"xid": xid, "error": {"message": message, "statusCode": status.as_u16().to_string()}}));
                continue;
            }
        };
        items.push(json!({"xid": xid, "entity": item.clone()}));
        profiles.insert(xid, item);
    }
    if failed {
        return Ok((StatusCode::MULTI_STATUS, Json(Value::Array(items))));
    }
    Ok((StatusCode::OK, Json(Value::Object(profiles))))
}

/// Query of an erasure.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct DeleteQuery {
    /// `_xdm.context.profile`.
    #[serde(rename = "schema.name")]
    schema_name: Option<String>,
    /// Identity value, or an XID when `entityIdNS` is absent.
    #[serde(rename = "entityId")]
    entity_id: Option<String>,
    /// Namespace code.
    #[serde(rename = "entityIdNS")]
    entity_id_ns: Option<String>,
    /// Merge policy: with `pdg` the whole graph is erased, with `none` the one identity.
    #[serde(rename = "mergePolicyId")]
    merge_policy_id: Option<String>,
}

/// Erase a person: fragments, events and identities (the whole graph under a stitching
/// merge policy). 202 `{}`; a later lookup answers 404. The erasure is recorded in the
/// change feed (kind `erased`), which is also its audit trail.
#[utoipa::path(delete, path = "/data/core/ups/access/entities", tag = "profile", params(DeleteQuery),
    responses((status = 202, description = "`{}`"), (status = 404, description = "nothing stored for the identity")))]
async fn delete_entity(
    State(state): State<AppState>,
    context: SandboxContext,
    Query(query): Query<DeleteQuery>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if query.schema_name.as_deref() != Some("_xdm.context.profile") {
        return Err(profile_error(
            StatusCode::BAD_REQUEST,
            "schema.name must be _xdm.context.profile",
        ));
    }
    let Some(entity_id) = query.entity_id.clone() else {
        return Err(profile_error(
            StatusCode::BAD_REQUEST,
            "entityId is required",
        ));
    };
    let tenant = context.tenant.clone();
    let by = context.caller.label().to_owned();
    let (ingest, policies) = (state.ingest.clone(), Arc::clone(&state.policies));
    let erased = blocking(&state, move |store| {
        let namespaces = ingest.namespaces(&tenant)?;
        let key = requested_identity(&namespaces, &entity_id, query.entity_id_ns.as_deref())?;
        let policy = choose_policy(&policies, store, &tenant, query.merge_policy_id.as_deref())?;
        let now = time::OffsetDateTime::now_utc();
        let at_ms = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
        let erased = tessera_profile::erase::erase(
            store,
            &tenant,
            &key,
            policy.stitches(),
            at_ms,
            |batch, erased| {
                // A whole person erased leaves no segment membership behind.
                if let (true, Some(graph)) = (policy.stitches(), erased.graph) {
                    tessera_segment::membership::remove_graph(store, batch, &tenant, graph)
                        .map_err(|e| tessera_profile::Error::Corrupt {
                            what: "segment membership",
                            reason: e.to_string(),
                        })?;
                }
                tessera_ingest::change_feed::append(
                    batch,
                    &tessera_ingest::change_feed::ChangeEntry {
                        org: tenant.org.to_string(),
                        sandbox: tenant.sandbox.to_string(),
                        dataset_id: String::new(),
                        kind: tessera_ingest::change_feed::ChangeKind::Erased,
                        namespace: key.namespace.clone(),
                        id: key.id.clone(),
                        identities: erased
                            .identities
                            .iter()
                            .map(|i| (i.namespace.clone(), i.id.clone()))
                            .collect(),
                        xaction_id: format!("erase:{by}"),
                        applied_ms: at_ms,
                        event_ms: None,
                        event_id: None,
                        graph: erased.graph,
                        segment: None,
                    },
                )
                .map_err(|e| tessera_profile::Error::Corrupt {
                    what: "change feed entry",
                    reason: e.to_string(),
                })
            },
        )?;
        Ok(erased)
    })
    .await?;
    let Some(erased) = erased else {
        return Err(not_found());
    };
    tracing::info!(
        tenant = %context.tenant,
        caller = context.caller.label(),
        identities = erased.identities.len(),
        fragments = erased.fragments,
        events = erased.events,
        "profile erased"
    );
    Ok((StatusCode::ACCEPTED, Json(json!({}))))
}
