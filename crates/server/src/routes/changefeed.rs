//! Change feed inspection: `GET /data/core/ups/system/changefeed/status` (head and each
//! consumer's lag) and `GET /data/core/ups/system/changefeed` (entries after a position).
//!
//! The feed is one log for the whole server, so these need `admin` and return only the
//! caller's own tenant's entries; positions and lags are global numbers (they reveal volume,
//! not content).

use axum::extract::{Query, State};
use axum::Json;
use serde_json::{json, Value};
use tessera_ingest::change_feed;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Role;
use crate::context::SandboxContext;
use crate::error::ApiResult;
use crate::routes::blocking;
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(entries))
}

/// Head position and consumer checkpoints.
#[utoipa::path(get, path = "/data/core/ups/system/changefeed/status", tag = "operations",
    responses((status = 200, description = "`{head, consumers: [{name, checkpoint, lag}]}`")))]
async fn status(State(state): State<AppState>, context: SandboxContext) -> ApiResult<Json<Value>> {
    context.require(Role::Admin)?;
    let (head, consumers) = blocking(&state, |store| {
        Ok((change_feed::head(store)?, change_feed::consumers(store)?))
    })
    .await?;
    let consumers: Vec<Value> = consumers
        .into_iter()
        .map(|(name, checkpoint)| json!({ "name": name, "checkpoint": checkpoint, "lag": head.saturating_sub(checkpoint) }))
        .collect();
    Ok(Json(json!({ "head": head, "consumers": consumers })))
}

/// Query of the entry listing.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct EntriesParams {
    /// Return entries numbered above this position (default 0).
    after: Option<u64>,
    /// At most this many positions are scanned (default 1000, at most 10000).
    limit: Option<usize>,
}

/// Entries of the caller's tenant after a position; `next` resumes the scan.
#[utoipa::path(get, path = "/data/core/ups/system/changefeed", tag = "operations", params(EntriesParams),
    responses((status = 200, description = "`{entries: [{seq, ...}], next}`")))]
async fn entries(
    State(state): State<AppState>,
    context: SandboxContext,
    Query(params): Query<EntriesParams>,
) -> ApiResult<Json<Value>> {
    context.require(Role::Admin)?;
    let after = params.after.unwrap_or(0);
    let limit = params.limit.unwrap_or(1000).clamp(1, 10_000);
    let rows = blocking(&state, move |store| {
        Ok(change_feed::read(store, after, limit)?)
    })
    .await?;
    let next = rows.last().map_or(after, |(seq, _)| *seq);
    let org = context.tenant.org.to_string();
    let sandbox = context.tenant.sandbox.to_string();
    let mine: Vec<Value> = rows
        .into_iter()
        .filter(|(_, e)| e.org == org && e.sandbox == sandbox)
        .map(|(seq, e)| {
            let mut entry = serde_json::to_value(&e).unwrap_or(Value::Null);
            if let Some(object) = entry.as_object_mut() {
                object.insert("seq".to_owned(), json!(seq));
            }
            entry
        })
        .collect();
    Ok(Json(json!({ "entries": mine, "next": next })))
}
