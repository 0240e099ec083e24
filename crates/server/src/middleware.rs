//! Per-request plumbing: request id, tracing span, one log line, metrics.
//!
//! Every request runs inside one span carrying method, route template, request id and the
//! tenant it claims (org and sandbox headers as sent; the extractors validate them), and
//! ends with one `request` log line with status and latency. The request id is the client's
//! `x-request-id` when it sent a sane one, else a fresh UUID, and is echoed on the response.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::context::{ORG_HEADER, SANDBOX_HEADER};
use crate::metrics::RequestLabels;
use crate::state::AppState;

/// Request id header (AEP's).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Longest client request id we echo; longer ones are replaced (they end up in logs).
const MAX_REQUEST_ID_LEN: usize = 128;

fn request_id(headers: &HeaderMap) -> HeaderValue {
    headers
        .get(REQUEST_ID_HEADER)
        .filter(|value| {
            let bytes = value.as_bytes();
            !bytes.is_empty()
                && bytes.len() <= MAX_REQUEST_ID_LEN
                && bytes.iter().all(|b| b.is_ascii_graphic())
        })
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
                .unwrap_or_else(|_| HeaderValue::from_static("invalid"))
        })
}

fn claimed(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(MAX_REQUEST_ID_LEN).collect())
        .unwrap_or_default()
}

/// Axum middleware wrapping every route (installed with `Router::layer`, so the matched
/// route template is known).
pub async fn track(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(request.headers());
    // Handlers that record the request id (export jobs' `requestId`) see the generated one
    // too, the same value the response echoes.
    request.headers_mut().insert(REQUEST_ID_HEADER, id.clone());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().clone();
    let span = tracing::info_span!(
        "request",
        method = %method,
        route = %route,
        request_id = id.to_str().unwrap_or_default(),
        org = %claimed(request.headers(), ORG_HEADER),
        sandbox = %claimed(request.headers(), SANDBOX_HEADER),
    );
    let mut response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    span.in_scope(|| {
        tracing::info!(status, latency_us = elapsed.as_micros() as u64, "request");
    });
    state.metrics.observe_request(
        &RequestLabels {
            method: method.to_string(),
            route,
            status,
        },
        elapsed.as_secs_f64(),
    );
    response.headers_mut().insert(REQUEST_ID_HEADER, id);
    response
}
