//! HTTP routes, grouped by AEP area, with their wire types beside them. Each group returns
//! an `OpenApiRouter` so that a route and its OpenAPI description are registered together
//! and the published spec cannot drift from what is served.

pub mod batches;
pub mod catalog;
pub mod changefeed;
pub mod collection;
pub mod computed_attributes;
pub mod export_jobs;
pub mod identity;
pub mod inlets;
pub mod merge_policies;
pub mod ops;
pub mod preview;
pub mod profile;
pub mod profile_events;
pub mod sandboxes;
pub mod schedules;
pub mod schemas;
pub mod segment_definitions;
pub mod segment_jobs;
pub mod segment_previews;
pub mod system_jobs;

use std::sync::Arc;

use tessera_store::Store;
use utoipa_axum::router::OpenApiRouter;

use crate::error::{ApiError, ApiResult};
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
        .merge(merge_policies::routes())
        .merge(segment_jobs::routes())
        .merge(system_jobs::routes())
        .merge(export_jobs::routes())
        .merge(preview::routes())
        .merge(segment_definitions::routes())
        .merge(segment_previews::routes())
        .merge(schedules::routes())
        .merge(computed_attributes::routes())
}

/// Runs `work` on the blocking pool: commits wait for fsync, and scans can take longer than
/// an async task may block. Every route's store, catalog, batch and registry work goes
/// through here, so a panicked task and a domain error become an API error in one place.
pub(crate) async fn off_thread<T, E, F>(work: F) -> ApiResult<T>
where
    T: Send + 'static,
    E: Into<ApiError> + Send + 'static,
    F: FnOnce() -> Result<T, E> + Send + 'static,
{
    tokio::task::spawn_blocking(work).await?.map_err(Into::into)
}

/// Catalog and ingestion work, off the async threads.
pub(crate) async fn with_ingest<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&tessera_ingest::Ingestor) -> tessera_ingest::Result<T> + Send + 'static,
) -> ApiResult<T> {
    let ingest = state.ingest.clone();
    off_thread(move || work(&ingest)).await
}

/// Store work, off the async threads.
pub(crate) async fn blocking<T, F>(state: &AppState, work: F) -> ApiResult<T>
where
    T: Send + 'static,
    F: FnOnce(&dyn Store) -> ApiResult<T> + Send + 'static,
{
    let store: Arc<dyn Store> = Arc::clone(&state.store);
    off_thread(move || work(store.as_ref())).await
}
