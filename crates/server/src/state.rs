//! Shared state handed to every handler through axum's `State`.

use std::sync::Arc;

use tessera_store::Store;

use crate::auth::AuthMode;
use crate::metrics::Metrics;

/// Everything a handler may need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The storage backend.
    pub store: Arc<dyn Store>,
    /// How callers are authenticated.
    pub auth: Arc<AuthMode>,
    /// HTTP metrics registry.
    pub metrics: Metrics,
}

impl AppState {
    /// Builds the state around an opened store.
    pub fn new(store: Arc<dyn Store>, auth: AuthMode) -> Self {
        Self {
            store,
            auth: Arc::new(auth),
            metrics: Metrics::new(),
        }
    }
}
