//! AEP Identity Service: namespaces (`/data/core/idnamespace/identities`), XID lookup
//! (`/data/core/identity/identity`) and graph members (`/data/core/identity/cluster/members`,
//! `POST /data/core/identity/clusters/members`).
//!
//! Responses mirror the request form as AEP's do: identities given as XIDs come back as
//! XIDs; given as namespace code or numeric id plus value, they come back in that form.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use tessera_identity::namespace::{self, NamespaceRequest};
use tessera_identity::{IdentityKey, Namespace, Namespaces, Xid};
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
    fn key(&self, namespaces: &Namespaces) -> ApiResult<Option<IdentityKey>> {
        Ok(match self {
            Named::Xid(xid) => Some(Xid::parse(xid)?),
            Named::Nsid(nsid, id) => namespaces
                .by_id(*nsid)
                .map(|n| IdentityKey::new(n.code.clone(), id.clone())),
            Named::Namespace(code, id) => namespaces
                .by_code(code)
                .map(|n| IdentityKey::new(n.code.clone(), id.clone())),
        })
    }

    /// Normalises the value as ingestion did, so a lookup finds what a record filed.
    fn resolve(&self, namespaces: &Namespaces) -> ApiResult<Option<IdentityKey>> {
        let Some(key) = self.key(namespaces)? else {
            return Ok(None);
        };
        Ok(namespaces
            .normalize(&key.namespace, &key.id)
            .ok()
            .map(|(code, id)| IdentityKey::new(code, id)))
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
        let Some(key) = named.resolve(&namespaces)? else {
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
    let members: Vec<Value> = match named.resolve(namespaces)? {
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

/// Graph members for up to 1000 identities; one cluster per identity asked, in order.
#[utoipa::path(post, path = "/data/core/identity/clusters/members", tag = "identity", request_body = ClustersRequest,
    responses((status = 200, description = "one cluster per requested identity"), (status = 400, description = "InvalidInput")))]
async fn clusters_members(
    State(state): State<AppState>,
    context: SandboxContext,
    body: Result<Json<ClustersRequest>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Json(request) = body?;
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
