//! Tessera's HTTP server: AEP-compatible routes over the store, with tenancy, access
//! control, error mapping, request tracing and metrics.
//!
//! What lives here: everything HTTP — routes grouped by AEP area with their wire types,
//! the request context extractors that enforce tenancy and grants ([`context`]), the one
//! error-to-response mapping ([`error`]), configuration and API keys. What does not: domain
//! logic of profiles, identities, ingestion (their crates), storage (`tessera-store`).
//!
//! Invariants upheld: 5 (every data route takes a context extractor that authenticates and
//! scopes it; ops routes carry no tenant data) and 1 (handlers acknowledge only after the
//! store's commit returned, and the store is flushed on graceful shutdown).

pub mod auth;
pub mod batch_worker;
pub mod computed_worker;
pub mod config;
pub mod context;
pub mod cron;
pub mod error;
pub mod export_jobs;
mod job_worker;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod previews;
pub mod retention;
pub mod routes;
pub mod sandboxes;
pub mod schedules;
pub mod segment_jobs;
pub mod segment_stream;
pub mod state;
pub mod system_jobs;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tessera_store::{EmbeddedStore, Store, StoreOptions};
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

pub use config::{ConfigError, Overrides, ServerConfig};
pub use state::AppState;

/// Why the server could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The store did not open.
    #[error("cannot open the store in {path}: {source}")]
    Store {
        /// Data directory.
        path: String,
        /// Cause.
        source: tessera_store::Error,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
    /// The final flush at shutdown failed: recent writes may not be durable.
    #[error("flushing the store at shutdown failed: {0}")]
    Flush(tessera_store::Error),
}

/// The full application: every route, its OpenAPI document, and the middleware.
pub fn app(state: AppState) -> Router {
    let (router, api) = routes::api().split_for_parts();
    let mut spec = openapi::ApiDoc::openapi();
    spec.merge(api);
    router
        .merge(SwaggerUi::new("/docs").url("/openapi.json", spec))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::track,
        ))
        .with_state(state)
}

/// A bound, not yet serving server (binding first lets callers learn an ephemeral port).
pub struct Server {
    listener: tokio::net::TcpListener,
    store: Arc<EmbeddedStore>,
    state: AppState,
}

impl Server {
    /// Opens the store and binds the listen address.
    pub async fn bind(config: ServerConfig) -> Result<Self, ServeError> {
        let options = StoreOptions {
            durability: config.durability,
            cache_bytes: config.cache_bytes,
            row_cache_bytes: config.row_cache_bytes,
            ..StoreOptions::default()
        };
        let path = config.data_dir.clone();
        let store = tokio::task::spawn_blocking(move || EmbeddedStore::open(&path, options))
            .await
            .map_err(std::io::Error::other)?
            .map_err(|source| ServeError::Store {
                path: config.data_dir.display().to_string(),
                source,
            })?;
        let store = Arc::new(store);
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| ServeError::Bind {
                addr: config.listen,
                source,
            })?;
        let (state, wakes) = AppState::new(
            Arc::clone(&store) as Arc<dyn Store>,
            config.auth,
            config.data_dir.join("batch-files"),
            config.data_dir.join("exports"),
            config.limits.clone(),
            config.preview.clone(),
        );
        batch_worker::spawn(state.batches.clone(), wakes.batches)?;
        system_jobs::spawn(state.system_jobs.clone(), wakes.system_jobs)?;
        segment_jobs::spawn(state.segment_jobs.clone(), wakes.segment_jobs)?;
        schedules::spawn(
            state.schedules.scheduler(state.segment_jobs.clone()),
            wakes.schedules,
        )?;
        previews::spawn(&state.previews, wakes.previews)?;
        segment_stream::spawn(
            Arc::clone(&store) as Arc<dyn Store>,
            wakes.segment_stream,
            config.limits.max_graph_identities,
            state.ingest.recent_events(),
        )?;
        computed_worker::spawn(
            Arc::clone(&store) as Arc<dyn Store>,
            wakes.computed,
            wakes.segment_stream_kick,
        )?;
        export_jobs::spawn(state.export_jobs.clone(), wakes.export_jobs)?;
        retention::spawn(
            state.retention.clone(),
            wakes.retention,
            config.retention.sweep_interval,
        )?;
        Ok(Self {
            listener,
            store,
            state,
        })
    }

    /// The application state (stores and services), for in-process tools such as demo loading.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr, ServeError> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves until `shutdown` resolves, lets in-flight requests finish, then flushes the
    /// store so that nothing acknowledged in relaxed mode is lost.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let app = app(self.state);
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await?;
        let store = self.store;
        tokio::task::spawn_blocking(move || store.flush())
            .await
            .map_err(std::io::Error::other)?
            .map_err(ServeError::Flush)?;
        tracing::info!("store flushed; shut down cleanly");
        Ok(())
    }
}
