//! Operational endpoints: liveness, readiness, Prometheus metrics.
//!
//! They carry no tenant data, so they sit outside tenancy and authentication: probes and
//! scrapers must reach them without credentials.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(metrics))
}

/// Liveness and readiness answers.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Status {
    /// `ok`, `ready` or `unavailable`.
    pub status: &'static str,
    /// Why the server is not ready, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The process is up and serving HTTP.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "process is up", body = Status)))]
async fn health() -> Json<Status> {
    Json(Status {
        status: "ok",
        reason: None,
    })
}

/// The store is open and accepting writes.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses(
        (status = 200, description = "store open and writable", body = Status),
        (status = 503, description = "store refuses writes", body = Status)))]
async fn ready(State(state): State<AppState>) -> Response {
    match state.store.check_ready() {
        Ok(()) => Json(Status {
            status: "ready",
            reason: None,
        })
        .into_response(),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Status {
                status: "unavailable",
                reason: Some(error.to_string()),
            }),
        )
            .into_response(),
    }
}

/// Prometheus text exposition of the server's metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>) -> Response {
    match state.metrics.render() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "metrics rendering failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
