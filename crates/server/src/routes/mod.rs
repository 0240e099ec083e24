//! HTTP routes, grouped by AEP area, with their wire types beside them. Each group returns
//! an `OpenApiRouter` so that a route and its OpenAPI description are registered together
//! and the published spec cannot drift from what is served.

pub mod batches;
pub mod catalog;
pub mod changefeed;
pub mod collection;
pub mod identity;
pub mod inlets;
pub mod ops;
pub mod profile;
pub mod sandboxes;
pub mod schemas;

use std::sync::Arc;

use tessera_store::Store;
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiResult;
use crate::state::AppState;

/// Every route of the API with its description.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(ops::routes())
        .merge(sandboxes::routes())
        .merge(schemas::routes())
        .merge(catalog::routes())
        .merge(inlets::routes())
        .merge(collection::routes())
        .merge(changefeed::routes())
        .merge(batches::routes())
        .merge(identity::routes())
        .merge(identity::graph_routes())
        .merge(profile::routes())
}

/// Runs catalog and ingestion work on the blocking pool (it reads and commits the store).
pub(crate) async fn with_ingest<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&tessera_ingest::Ingestor) -> tessera_ingest::Result<T> + Send + 'static,
) -> ApiResult<T> {
    let ingest = state.ingest.clone();
    Ok(tokio::task::spawn_blocking(move || work(&ingest)).await??)
}

/// Runs store work on the blocking pool: commits wait for fsync, and scans can take longer
/// than an async task may block.
pub(crate) async fn blocking<T, F>(state: &AppState, work: F) -> ApiResult<T>
where
    T: Send + 'static,
    F: FnOnce(&dyn Store) -> ApiResult<T> + Send + 'static,
{
    let store: Arc<dyn Store> = Arc::clone(&state.store);
    tokio::task::spawn_blocking(move || work(store.as_ref())).await?
}
