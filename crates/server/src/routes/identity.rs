//! AEP Identity Service: namespaces (`/data/core/idnamespace/identities`), XID lookup
//! (`/data/core/identity/identity`) and graph members (`/data/core/identity/cluster/members`,
//! `POST /data/core/identity/clusters/members`).
//!
//! Responses mirror the request form as AEP's do: identities given as XIDs come back as
//! XIDs; given as namespace code or numeric id plus value, they come back in that form.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};
use tessera_identity::namespace::{self, NamespaceRequest};
use tessera_identity::{IdentityKey, Namespace, Namespaces, Xid};
use tessera_ingest::unlink::Unlink;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::context::SandboxContext;
use crate::error::{ApiError, ApiResult};
use crate::routes::blocking;
use crate::state::AppState;

/// AEP's limit of identities per batch request.
const MAX_BATCH: usize = 1000;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_namespaces, create_namespace))
        .routes(routes!(get_namespace, update_namespace))
        .routes(routes!(lookup_xid))
        .routes(routes!(cluster_members))
        .routes(routes!(clusters_members))
}

fn invalid_input(detail: impl Into<String>) -> ApiError {
    ApiError::Identity {
        status: StatusCode::BAD_REQUEST,
        title: "InvalidInput",
        detail: detail.into(),
    }
}

fn now_ms() -> i64 {
    tessera_ingest::ids::now_ms()
}

/// List standard and custom namespaces (a bare array).
#[utoipa::path(get, path = "/data/core/idnamespace/identities", tag = "identity",
    responses((status = 200, description = "array of namespaces")))]
async fn list_namespaces(
    State(state): State<AppState>,
    context: SandboxContext,
) -> ApiResult<Json<Vec<Namespace>>> {
    let tenant = context.tenant.clone();
    let namespaces = blocking(&state, move |store| Ok(Namespaces::load(store, &tenant)?)).await?;
    Ok(Json(namespaces.all().to_vec()))
}

/// Look up a namespace by numeric id.
#[utoipa::path(get, path = "/data/core/idnamespace/identities/{id}", tag = "identity",
    params(("id" = i64, Path, description = "numeric namespace id")),
    responses((status = 200, description = "the namespace"), (status = 404, description = "NAMESPACE_NOT_FOUND")))]
async fn get_namespace(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<i64>,
) -> ApiResult<Json<Namespace>> {
    let tenant = context.tenant.clone();
    let namespaces = blocking(&state, move |store| Ok(Namespaces::load(store, &tenant)?)).await?;
    namespaces
        .by_id(id)
        .cloned()
        .map(Json)
        .ok_or_else(|| namespace::NamespaceProblem::NotFound(id).into())
}

fn request_of(body: Result<Json<Value>, JsonRejection>) -> ApiResult<NamespaceRequest> {
    let Json(value) = body?;
    serde_json::from_value(value)
        .map_err(|e| namespace::NamespaceProblem::Invalid(e.to_string()).into())
}

/// Create a custom namespace.
#[utoipa::path(post, path = "/data/core/idnamespace/identities", tag = "identity",
    responses((status = 200, description = "the created namespace"), (status = 400, description = "INVALID_REQUEST_PARAMS"),
        (status = 409, description = "NAMESPACE_CODE_CONFLICT")))]
async fn create_namespace(
    State(state): State<AppState>,
    context: SandboxContext,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<Namespace>> {
    let request = request_of(body)?;
    let tenant = context.tenant.clone();
    let created = blocking(&state, move |store| {
        Ok(namespace::create(store, &tenant, &request, now_ms())?)
    })
    .await?;
    Ok(Json(created?))
}

/// Replace a custom namespace's name and description (code and idType cannot change).
#[utoipa::path(put, path = "/data/core/idnamespace/identities/{id}", tag = "identity",
    params(("id" = i64, Path, description = "numeric namespace id")),
    responses((status = 200, description = "the updated namespace"), (status = 400, description = "code or idType changed")))]
async fn update_namespace(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<i64>,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<Namespace>> {
    let request = request_of(body)?;
    let tenant = context.tenant.clone();
    let updated = blocking(&state, move |store| {
        Ok(namespace::update(store, &tenant, id, &request, now_ms())?)
    })
    .await?;
    Ok(Json(updated?))
}

/// How an identity was named in a request (the answer uses the same form).
#[derive(Debug, Clone)]
enum Named {
    Xid(String),
    Nsid(i64, String),
    Namespace(String, String),
}

impl Named {
    fn key(&self, namespaces: &Namespaces) -> Option<IdentityKey> {
        match self {
            // In a list, a malformed XID is one identity that cannot be processed rather
            // than a bad request: the others are still answered (single forms refuse it
            // when the query is read).
            Named::Xid(xid) => Xid::parse(xid).ok(),
            Named::Nsid(nsid, id) => namespaces
                .by_id(*nsid)
                .map(|n| IdentityKey::new(n.code.clone(), id.clone())),
            Named::Namespace(code, id) => namespaces
                .by_code(code)
                .map(|n| IdentityKey::new(n.code.clone(), id.clone())),
        }
    }

    /// Normalises the value as ingestion did, so a lookup finds what a record filed.
    fn resolve(&self, namespaces: &Namespaces) -> Option<IdentityKey> {
        let key = self.key(namespaces)?;
        namespaces
            .normalize(&key.namespace, &key.id)
            .ok()
            .map(|(code, id)| IdentityKey::new(code, id))
    }

    fn render(&self, key: &IdentityKey, namespaces: &Namespaces) -> Value {
        match self {
            Named::Xid(_) => json!(key.xid().as_str()),
            Named::Nsid(..) => {
                json!({ "nsid": namespaces.by_code(&key.namespace).map(|n| n.id), "id": key.id })
            }
            Named::Namespace(..) => json!({ "namespace": key.namespace, "id": key.id }),
        }
    }

    fn render_self(&self) -> (&'static str, Value) {
        match self {
            Named::Xid(xid) => ("xid", json!(xid)),
            Named::Nsid(nsid, id) => ("compositeXid", json!({ "nsid": nsid, "id": id })),
            Named::Namespace(code, id) => ("compositeXid", json!({ "namespace": code, "id": id })),
        }
    }
}

/// Query naming one identity.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct IdentityQuery {
    /// XID.
    xid: Option<String>,
    /// Namespace code (wins over `nsid`).
    namespace: Option<String>,
    /// Namespace code (alias used by AEP's docs).
    ns: Option<String>,
    /// Numeric namespace id.
    #[serde(alias = "nsId")]
    nsid: Option<i64>,
    /// Identity value.
    id: Option<String>,
}

impl IdentityQuery {
    fn named(&self, allow_xid: bool) -> ApiResult<Named> {
        if allow_xid {
            if let Some(xid) = &self.xid {
                // One malformed XID is the whole request here: refused, not "not found".
                Xid::parse(xid)?;
                return Ok(Named::Xid(xid.clone()));
            }
        }
        let Some(id) = &self.id else {
            return Err(invalid_input(if allow_xid {
                "Missing required query parameter - xid or (nsid,id)"
            } else {
                "Missing required query parameter - id"
            }));
        };
        if let Some(code) = self.namespace.as_ref().or(self.ns.as_ref()) {
            return Ok(Named::Namespace(code.clone(), id.clone()));
        }
        match self.nsid {
            Some(nsid) => Ok(Named::Nsid(nsid, id.clone())),
            None => Err(invalid_input(
                "Missing required query parameter - namespace",
            )),
        }
    }
}

/// The XID of an identity that has been seen.
#[utoipa::path(get, path = "/data/core/identity/identity", tag = "identity", params(IdentityQuery),
    responses((status = 200, description = "`{xid}`"), (status = 400, description = "InvalidInput")))]
async fn lookup_xid(
    State(state): State<AppState>,
    context: SandboxContext,
    Query(query): Query<IdentityQuery>,
) -> ApiResult<Json<Value>> {
    let named = query.named(false)?;
    let tenant = context.tenant.clone();
    let found = blocking(&state, move |store| {
        let namespaces = Namespaces::load(store, &tenant)?;
        let Some(key) = named.resolve(&namespaces) else {
            return Ok(None);
        };
        Ok(tessera_identity::resolve(store, &tenant, &key)?.map(|_| key))
    })
    .await?;
    match found {
        Some(key) => Ok(Json(json!({ "xid": key.xid().as_str() }))),
        None => Err(invalid_input(format!(
            "The provided namespace={} and id={} is invalid. Please provide a valid namespace and id in your request.",
            query.namespace.or(query.ns).or(query.nsid.map(|n| n.to_string())).unwrap_or_default(),
            query.id.unwrap_or_default()
        ))),
    }
}

fn cluster_of(
    store: &dyn tessera_store::Store,
    tenant: &tessera_model::Tenant,
    namespaces: &Namespaces,
    named: &Named,
) -> ApiResult<Value> {
    let (field, own) = named.render_self();
    let members: Vec<Value> = match named.resolve(namespaces) {
        Some(key) => match tessera_identity::resolve(store, tenant, &key)? {
            Some(graph) => graph
                .identities()
                .map(|m| named.render(m, namespaces))
                .collect(),
            None => Vec::new(),
        },
        None => Vec::new(),
    };
    let mut cluster = serde_json::Map::new();
    cluster.insert(field.to_owned(), own);
    cluster.insert("members".to_owned(), Value::Array(members));
    Ok(Value::Object(cluster))
}

fn clusters_reply(clusters: Vec<Value>) -> Json<Value> {
    Json(
        json!({ "version": "1.1.0", "clusters": clusters, "unprocessedRecords": [], "algo_type": "STITCH_ALL" }),
    )
}

/// Identities in the same graph as one identity.
#[utoipa::path(get, path = "/data/core/identity/cluster/members", tag = "identity", params(IdentityQuery),
    responses((status = 200, description = "`{version, clusters: [{xid | compositeXid, members}], unprocessedRecords}`")))]
async fn cluster_members(
    State(state): State<AppState>,
    context: SandboxContext,
    Query(query): Query<IdentityQuery>,
) -> ApiResult<Json<Value>> {
    let named = query.named(true)?;
    let tenant = context.tenant.clone();
    let cluster = blocking(&state, move |store| {
        let namespaces = Namespaces::load(store, &tenant)?;
        cluster_of(store, &tenant, &namespaces, &named)
    })
    .await?;
    Ok(clusters_reply(vec![cluster]))
}

/// Body of the batch form: the first present of `xids`, `compositeXids`,
/// `compositeXidsWithNamespace` is used.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClustersRequest {
    /// XIDs.
    xids: Option<Vec<String>>,
    /// `{nsid, id}` pairs.
    composite_xids: Option<Vec<CompositeXid>>,
    /// `{namespace, id}` pairs.
    composite_xids_with_namespace: Option<Vec<CompositeXidWithNamespace>>,
}

/// An identity by numeric namespace id.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct CompositeXid {
    /// Namespace id.
    nsid: i64,
    /// Value.
    id: String,
}

/// An identity by namespace code.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct CompositeXidWithNamespace {
    /// Namespace code.
    namespace: String,
    /// Value.
    id: String,
}

/// The identities a batch request names (the first present of `xids`, `compositeXids`,
/// `compositeXidsWithNamespace`), at most 1000.
fn named_list(request: ClustersRequest) -> ApiResult<Vec<Named>> {
    let named: Vec<Named> = if let Some(xids) = request.xids {
        xids.into_iter().map(Named::Xid).collect()
    } else if let Some(composite) = request.composite_xids {
        composite
            .into_iter()
            .map(|c| Named::Nsid(c.nsid, c.id))
            .collect()
    } else if let Some(composite) = request.composite_xids_with_namespace {
        composite
            .into_iter()
            .map(|c| Named::Namespace(c.namespace, c.id))
            .collect()
    } else {
        return Err(invalid_input(
            "Missing required query parameter - xids or compositeXids",
        ));
    };
    if named.len() > MAX_BATCH {
        return Err(invalid_input(format!(
            "There is a limit of {MAX_BATCH} XIDs in a single call"
        )));
    }
    Ok(named)
}

/// Graph members for up to 1000 identities; one cluster per identity asked, in order.
#[utoipa::path(post, path = "/data/core/identity/clusters/members", tag = "identity", request_body = ClustersRequest,
    responses((status = 200, description = "one cluster per requested identity"), (status = 400, description = "InvalidInput")))]
async fn clusters_members(
    State(state): State<AppState>,
    context: SandboxContext,
    body: Result<Json<ClustersRequest>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Json(request) = body?;
    let named = named_list(request)?;
    let tenant = context.tenant.clone();
    let clusters = blocking(&state, move |store| {
        let namespaces = Namespaces::load(store, &tenant)?;
        named
            .iter()
            .map(|n| cluster_of(store, &tenant, &namespaces, n))
            .collect::<ApiResult<Vec<_>>>()
    })
    .await?;
    Ok(clusters_reply(clusters))
}

/// Routes that change the graph by hand: unlink, blocklist, and a graph's history.
pub(crate) fn graph_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(unlink))
        .routes(routes!(delete_identity))
        .routes(routes!(delete_link))
        .routes(routes!(list_blocked, block_identity, unblock_identity))
        .routes(routes!(graph_history))
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(graph_v2))
        .routes(routes!(cluster_history))
        .routes(routes!(clusters_history))
}

fn history_entry(
    store: &dyn tessera_store::Store,
    tenant: &tessera_model::Tenant,
    namespaces: &Namespaces,
    named: &Named,
) -> ApiResult<Option<Value>> {
    let Some(key) = named.resolve(namespaces) else {
        return Ok(None);
    };
    let moves = tessera_identity::cluster_history(store, tenant, &key)?;
    if moves.is_empty() {
        return Ok(None);
    }
    let history: Vec<Value> = moves
        .iter()
        .map(|m| json!({ "clusterId": m.cluster.to_string(), "cRecordedTS": m.at.to_string() }))
        .collect();
    let mut entry = serde_json::Map::new();
    entry.insert("xid".into(), json!(key.xid().as_str()));
    if let Named::Nsid(nsid, id) = named {
        entry.insert("compositeXid".into(), json!({ "nsid": nsid, "id": id }));
    }
    if let Named::Namespace(code, id) = named {
        entry.insert(
            "compositeXid".into(),
            json!({ "namespace": code, "id": id }),
        );
    }
    entry.insert("clusterHistory".into(), Value::Array(history));
    Ok(Some(Value::Object(entry)))
}

fn history_reply(
    store: &dyn tessera_store::Store,
    tenant: &tessera_model::Tenant,
    named: &[Named],
) -> ApiResult<Value> {
    let namespaces = Namespaces::load(store, tenant)?;
    let mut found = Vec::new();
    let mut unprocessed_xids = Vec::new();
    let mut unprocessed_nids = Vec::new();
    for n in named {
        match history_entry(store, tenant, &namespaces, n)? {
            Some(entry) => found.push(entry),
            None => match n {
                Named::Xid(xid) => unprocessed_xids.push(json!(xid)),
                Named::Nsid(nsid, id) => unprocessed_nids.push(json!({ "nsid": nsid, "id": id })),
                Named::Namespace(code, id) => {
                    unprocessed_nids.push(json!({ "namespace": code, "id": id }))
                }
            },
        }
    }
    Ok(json!({
        "version": 1,
        "xidsClusterHistory": found,
        "unprocessedXids": unprocessed_xids,
        "unprocessedNids": unprocessed_nids,
    }))
}

/// The graphs an identity has belonged to, newest first (`clusterId` is Tessera's graph id).
#[utoipa::path(get, path = "/data/core/identity/cluster/history", tag = "identity", params(IdentityQuery),
    responses((status = 200, description = "`{version, xidsClusterHistory, unprocessedXids, unprocessedNids}`")))]
async fn cluster_history(
    State(state): State<AppState>,
    context: SandboxContext,
    Query(query): Query<IdentityQuery>,
) -> ApiResult<Json<Value>> {
    let named = query.named(true)?;
    let tenant = context.tenant.clone();
    Ok(Json(
        blocking(&state, move |store| history_reply(store, &tenant, &[named])).await?,
    ))
}

/// Cluster history of up to 1000 identities.
#[utoipa::path(post, path = "/data/core/identity/clusters/history", tag = "identity", request_body = ClustersRequest,
    responses((status = 200, description = "one history per identity found; the rest unprocessed")))]
async fn clusters_history(
    State(state): State<AppState>,
    context: SandboxContext,
    body: Result<Json<ClustersRequest>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Json(request) = body?;
    let named = named_list(request)?;
    let tenant = context.tenant.clone();
    Ok(Json(
        blocking(&state, move |store| history_reply(store, &tenant, &named)).await?,
    ))
}

/// An identity of the v2 graph API: `ns` (code) or `nsid`, plus `id`.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
pub struct V2CompositeXid {
    /// Namespace code.
    ns: Option<String>,
    /// Namespace id.
    nsid: Option<i64>,
    /// Value.
    id: String,
}

/// Body of `POST /identity/v2/graph`.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct GraphRequest {
    /// XIDs (at most 1000).
    xids: Option<Vec<String>>,
    /// Composite identities (at most 1000).
    composite_xids: Option<Vec<V2CompositeXid>>,
    /// `set` (members) or `graph` (vertices and edges).
    projection_type: Option<String>,
    /// Add `dataset_ids` and `batch_ids` to edges (graph projection).
    #[serde(default)]
    require_edge_meta_data: bool,
}

/// The graph (or member set) of each requested identity, in the form it was asked.
#[utoipa::path(post, path = "/data/core/identity/v2/graph", tag = "identity", request_body = GraphRequest,
    responses((status = 200, description = "`{version, graphs, unprocessed_*, algo_type}`"), (status = 400, description = "invalid request")))]
async fn graph_v2(
    State(state): State<AppState>,
    context: SandboxContext,
    body: Result<Json<GraphRequest>, JsonRejection>,
) -> ApiResult<axum::response::Response> {
    let Json(request) = body?;
    let graph_projection = match request.projection_type.as_deref() {
        Some("graph") => true,
        Some("set") => false,
        _ => {
            return Err(invalid_input(
                "Graph Request Invalid - projection types available are [graph|set].",
            ))
        }
    };
    let by_xid = request.xids.is_some();
    let asked: Vec<(Named, Value)> = match (request.xids, request.composite_xids) {
        (Some(xids), _) => xids
            .into_iter()
            .map(|x| (Named::Xid(x.clone()), json!(x)))
            .collect(),
        (None, Some(composite)) => composite
            .into_iter()
            .map(|c| match (&c.ns, c.nsid) {
                (Some(ns), _) => Ok((
                    Named::Namespace(ns.clone(), c.id.clone()),
                    json!({"ns": ns, "id": c.id}),
                )),
                (None, Some(nsid)) => Ok((
                    Named::Nsid(nsid, c.id.clone()),
                    json!({"nsid": nsid, "id": c.id}),
                )),
                (None, None) => Err(invalid_input("each composite_xid needs ns or nsid")),
            })
            .collect::<ApiResult<_>>()?,
        (None, None) => {
            return Err(invalid_input(
                "Missing required field - xids or composite_xids",
            ))
        }
    };
    if asked.is_empty() || asked.len() > MAX_BATCH {
        return Err(invalid_input(format!(
            "between 1 and {MAX_BATCH} identities are allowed"
        )));
    }
    let with_meta = request.require_edge_meta_data;
    let tenant = context.tenant.clone();
    let (graphs, unprocessed) = blocking(&state, move |store| {
        let namespaces = Namespaces::load(store, &tenant)?;
        let render = |named: &Named, key: &IdentityKey| -> Value {
            match named {
                Named::Xid(_) => json!(key.xid().as_str()),
                Named::Nsid(..) => json!({"nsid": namespaces.by_code(&key.namespace).map(|n| n.id), "id": key.id}),
                Named::Namespace(..) => json!({"ns": key.namespace, "id": key.id}),
            }
        };
        let mut graphs = Vec::new();
        let mut unprocessed = Vec::new();
        for (named, echo) in &asked {
            let graph = match named.resolve(&namespaces) {
                Some(key) => tessera_identity::resolve_with_links(store, &tenant, &key)?,
                None => None,
            };
            let Some(graph) = graph else {
                unprocessed.push(echo.clone());
                continue;
            };
            let own_field = if by_xid { "xid" } else { "composite_xid" };
            let mut entry = serde_json::Map::new();
            entry.insert(own_field.to_owned(), echo.clone());
            if graph_projection {
                let vertex_field = if by_xid { "xid" } else { "composite_xid" };
                let vertices: Vec<Value> = graph
                    .members
                    .iter()
                    .map(|m| json!({ vertex_field: render(named, &m.identity), "last_updated_ts": m.last_seen }))
                    .collect();
                let pair_field = if by_xid { "xid_pair" } else { "composite_xid_pair" };
                let edges: Vec<Value> = graph
                    .links
                    .iter()
                    .map(|l| {
                        let mut edge = serde_json::Map::new();
                        edge.insert(pair_field.to_owned(), json!([render(named, &l.a), render(named, &l.b)]));
                        edge.insert("first_established_ts".into(), json!(l.first_seen));
                        edge.insert("last_established_ts".into(), json!(l.last_seen));
                        if with_meta {
                            let datasets = if l.datasets.is_empty() { vec![l.dataset.clone()] } else { l.datasets.clone() };
                            edge.insert("dataset_ids".into(), json!(datasets));
                            edge.insert("batch_ids".into(), json!(l.batches.iter().map(|b| &b.id).collect::<Vec<_>>()));
                        }
                        Value::Object(edge)
                    })
                    .collect();
                entry.insert("vertices".into(), Value::Array(vertices));
                entry.insert("edges".into(), Value::Array(edges));
            } else {
                let members: Vec<Value> = graph.members.iter().map(|m| render(named, &m.identity)).collect();
                entry.insert("members".into(), Value::Array(members));
            }
            graphs.push(Value::Object(entry));
        }
        Ok((graphs, unprocessed))
    })
    .await?;
    let unprocessed_field = if by_xid {
        "unprocessed_xids"
    } else {
        "unprocessed_composite_xids"
    };
    let mut reply = serde_json::Map::new();
    reply.insert("version".into(), json!("2.0"));
    reply.insert("graphs".into(), Value::Array(graphs));
    reply.insert(unprocessed_field.into(), Value::Array(unprocessed));
    reply.insert("algo_type".into(), json!("STITCH_ALL"));
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static(V2_GRAPH_CONTENT_TYPE),
        )],
        Json(Value::Object(reply)),
    )
        .into_response())
}

/// What AEP's v2 graph API answers with; clients may check the version in it.
const V2_GRAPH_CONTENT_TYPE: &str = "application/json;version=2.2.1;charset=utf-8";

/// The sandbox's identity settings: unique namespaces and namespace priority (AEP sets
/// them in its UI only; Tessera offers this route).
#[utoipa::path(get, path = "/data/core/identity/settings", tag = "identity",
    responses((status = 200, description = "`{uniqueNamespaces, namespacePriority}`")))]
async fn get_settings(
    State(state): State<AppState>,
    context: SandboxContext,
) -> ApiResult<Json<tessera_identity::LinkingRules>> {
    let tenant = context.tenant.clone();
    Ok(Json(
        blocking(&state, move |store| {
            Ok(tessera_identity::rules::load(store, &tenant)?)
        })
        .await?,
    ))
}

/// Replace the identity settings (admin). They apply to links made from now on; existing
/// graphs are corrected when a record next touches them, as in AEP.
#[utoipa::path(put, path = "/data/core/identity/settings", tag = "identity",
    request_body = Object,
    responses((status = 200, description = "the saved settings"), (status = 400, description = "InvalidInput")))]
async fn put_settings(
    State(state): State<AppState>,
    context: SandboxContext,
    body: Result<Json<tessera_identity::LinkingRules>, JsonRejection>,
) -> ApiResult<Json<tessera_identity::LinkingRules>> {
    context.require(crate::auth::Role::Admin)?;
    let Json(rules) = body?;
    let tenant = context.tenant.clone();
    let saved = blocking(&state, move |store| {
        let namespaces = Namespaces::load(store, &tenant)?;
        let valid = rules.validated(&namespaces).map_err(invalid_input)?;
        tessera_identity::rules::save(store, &tenant, &valid)?;
        Ok(valid)
    })
    .await?;
    tracing::info!(unique = ?saved.unique_namespaces, priority = ?saved.namespace_priority, "identity settings saved");
    Ok(Json(saved))
}

/// An identity in a request body.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
pub struct IdentityBody {
    /// Namespace code.
    namespace: String,
    /// Value (normalised as ingestion does).
    id: String,
}

/// What to unlink: one identity (removed from its graph with its links), or one link.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnlinkRequest {
    /// Remove this identity from its graph.
    identity: Option<IdentityBody>,
    /// Remove the link between these two identities.
    link: Option<Vec<IdentityBody>>,
}

fn normalized(namespaces: &Namespaces, namespace: &str, id: &str) -> ApiResult<IdentityKey> {
    namespaces
        .normalize(namespace, id)
        .map(|(code, id)| IdentityKey::new(code, id))
        .map_err(invalid_input)
}

fn not_found(detail: String) -> ApiError {
    ApiError::Identity {
        status: StatusCode::NOT_FOUND,
        title: "NotFound",
        detail,
    }
}

/// Unlink an identity or a link (Tessera extension): the graph splits into the parts that
/// stay connected; history records it. Re-ingesting a record re-creates its links unless an
/// identity is on the blocklist. The same as the two `DELETE` forms, for clients that send
/// a body.
#[utoipa::path(post, path = "/data/core/identity/unlink", tag = "identity", request_body = UnlinkRequest,
    responses((status = 200, description = "`{graphs: [ids that exist afterwards]}`"), (status = 404, description = "no such identity or link")))]
async fn unlink(
    State(state): State<AppState>,
    context: SandboxContext,
    body: Result<Json<UnlinkRequest>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Json(request) = body?;
    run_unlink(&state, &context, move |namespaces| {
        match (&request.identity, &request.link) {
            (Some(identity), None) => Ok(Unlink::Identity(normalized(
                namespaces,
                &identity.namespace,
                &identity.id,
            )?)),
            (None, Some(pair)) => {
                let [a, b] = pair.as_slice() else {
                    return Err(invalid_input("link must name exactly two identities"));
                };
                Ok(Unlink::Link(
                    normalized(namespaces, &a.namespace, &a.id)?,
                    normalized(namespaces, &b.namespace, &b.id)?,
                ))
            }
            _ => Err(invalid_input("give either identity or link")),
        }
    })
    .await
}

/// Remove an identity from its graph, with its links (Tessera extension): the rest splits
/// into the parts that stay connected.
#[utoipa::path(delete, path = "/data/core/identity/identity", tag = "identity", params(CodeQuery),
    responses((status = 200, description = "`{graphs: [ids that exist afterwards]}`"), (status = 404, description = "identity in no graph")))]
async fn delete_identity(
    State(state): State<AppState>,
    context: SandboxContext,
    Query(query): Query<CodeQuery>,
) -> ApiResult<Json<Value>> {
    run_unlink(&state, &context, move |namespaces| {
        Ok(Unlink::Identity(normalized(
            namespaces,
            &query.namespace,
            &query.id,
        )?))
    })
    .await
}

/// The two ends of a link, in query parameters.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
pub struct LinkQuery {
    /// Namespace code of one end.
    namespace: String,
    /// Value of one end.
    id: String,
    /// Namespace code of the other end.
    linked_namespace: String,
    /// Value of the other end.
    linked_id: String,
}

/// Remove the link between two identities (Tessera extension); the graph splits if nothing
/// else connects them.
#[utoipa::path(delete, path = "/data/core/identity/link", tag = "identity", params(LinkQuery),
    responses((status = 200, description = "`{graphs: [ids that exist afterwards]}`"), (status = 404, description = "no such link")))]
async fn delete_link(
    State(state): State<AppState>,
    context: SandboxContext,
    Query(query): Query<LinkQuery>,
) -> ApiResult<Json<Value>> {
    run_unlink(&state, &context, move |namespaces| {
        Ok(Unlink::Link(
            normalized(namespaces, &query.namespace, &query.id)?,
            normalized(namespaces, &query.linked_namespace, &query.linked_id)?,
        ))
    })
    .await
}

async fn run_unlink(
    state: &AppState,
    context: &SandboxContext,
    what: impl FnOnce(&Namespaces) -> ApiResult<Unlink> + Send + 'static,
) -> ApiResult<Json<Value>> {
    let tenant = context.tenant.clone();
    let graphs = blocking(state, move |store| {
        let namespaces = Namespaces::load(store, &tenant)?;
        let what = what(&namespaces)?;
        // The graph change, view invalidations and change-feed entries (segment
        // memberships and computed attributes follow the split) commit together.
        tessera_ingest::unlink::unlink(store, &tenant, &what, now_ms())?.ok_or_else(|| {
            not_found(match &what {
                Unlink::Identity(key) => format!("identity {key} belongs to no graph"),
                Unlink::Link(a, b) => format!("no link between {a} and {b}"),
            })
        })
    })
    .await?;
    tracing::info!(?graphs, "identity graph unlinked by request");
    Ok(Json(json!({ "graphs": graphs })))
}

/// The blocklist: identities that never link.
#[utoipa::path(get, path = "/data/core/identity/blocklist", tag = "identity",
    responses((status = 200, description = "`{blocked: [{namespace, id, reason, created}]}`")))]
async fn list_blocked(
    State(state): State<AppState>,
    context: SandboxContext,
) -> ApiResult<Json<Value>> {
    let tenant = context.tenant.clone();
    let blocked = blocking(&state, move |store| {
        Ok(tessera_identity::blocklist::list(store, &tenant)?)
    })
    .await?;
    Ok(Json(json!({ "blocked": blocked })))
}

/// Block an identity from linking (Tessera extension).
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct BlockRequest {
    /// Namespace code.
    namespace: String,
    /// Value.
    id: String,
    /// Why.
    reason: Option<String>,
}

/// Add an identity to the blocklist.
#[utoipa::path(post, path = "/data/core/identity/blocklist", tag = "identity", request_body = BlockRequest,
    responses((status = 201, description = "the entry")))]
async fn block_identity(
    State(state): State<AppState>,
    context: SandboxContext,
    body: Result<Json<BlockRequest>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Json(request) = body?;
    let tenant = context.tenant.clone();
    let entry = blocking(&state, move |store| {
        let namespaces = Namespaces::load(store, &tenant)?;
        let key = normalized(&namespaces, &request.namespace, &request.id)?;
        Ok(tessera_identity::blocklist::block(
            store,
            &tenant,
            &key,
            request.reason.as_deref().unwrap_or(""),
            now_ms(),
        )?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(json!(entry))))
}

/// Query naming one identity by code.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct CodeQuery {
    /// Namespace code.
    namespace: String,
    /// Value.
    id: String,
}

/// Remove an identity from the blocklist.
#[utoipa::path(delete, path = "/data/core/identity/blocklist", tag = "identity", params(CodeQuery),
    responses((status = 204, description = "removed"), (status = 404, description = "not blocked")))]
async fn unblock_identity(
    State(state): State<AppState>,
    context: SandboxContext,
    Query(query): Query<CodeQuery>,
) -> ApiResult<StatusCode> {
    let tenant = context.tenant.clone();
    let removed = blocking(&state, move |store| {
        let namespaces = Namespaces::load(store, &tenant)?;
        let key = normalized(&namespaces, &query.namespace, &query.id)?;
        Ok(tessera_identity::blocklist::unblock(store, &tenant, &key)?)
    })
    .await?;
    if removed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found("the identity is not blocked".into()))
    }
}

/// The history of the graph an identity belongs to (Tessera extension): created, merged,
/// evicted, split, unlinked — with times and the records that caused them.
#[utoipa::path(get, path = "/data/core/identity/graph/history", tag = "identity", params(CodeQuery),
    responses((status = 200, description = "`{graph, history: [...]}`"), (status = 404, description = "identity in no graph")))]
async fn graph_history(
    State(state): State<AppState>,
    context: SandboxContext,
    Query(query): Query<CodeQuery>,
) -> ApiResult<Json<Value>> {
    let tenant = context.tenant.clone();
    let found = blocking(&state, move |store| {
        let namespaces = Namespaces::load(store, &tenant)?;
        let key = normalized(&namespaces, &query.namespace, &query.id)?;
        let Some(graph) = tessera_identity::resolve(store, &tenant, &key)? else {
            return Err(not_found(format!("identity {key} belongs to no graph")));
        };
        Ok((
            graph.id,
            tessera_identity::history(store, &tenant, graph.id)?,
        ))
    })
    .await?;
    Ok(Json(json!({ "graph": found.0, "history": found.1 })))
}
