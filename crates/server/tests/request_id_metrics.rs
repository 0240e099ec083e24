#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests index JSON replies and fail loudly
mod common;

use common::{send, TestServer, SANDBOXES};
use hyper::{Method, StatusCode};

#[tokio::test]
async fn request_id_is_echoed_or_generated() {
    let server = TestServer::start(None).await;
    let echoed = send(
        Method::GET,
        &server.url("/health"),
        &[("x-request-id", "abc-123")],
        None,
    )
    .await;
    assert_eq!(echoed.headers["x-request-id"], "abc-123");
    let generated = send(Method::GET, &server.url("/health"), &[], None).await;
    let id = generated.headers["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(id.len(), 36, "uuid expected, got {id}");
    let other = send(Method::GET, &server.url("/health"), &[], None).await;
    assert_ne!(other.headers["x-request-id"].to_str().unwrap(), id);
    // Errors carry it too.
    let error = send(
        Method::GET,
        &server.url(SANDBOXES),
        &[("x-request-id", "err-1")],
        None,
    )
    .await;
    assert_eq!(error.status, StatusCode::BAD_REQUEST);
    assert_eq!(error.headers["x-request-id"], "err-1");
    server.stop().await;
}

#[tokio::test]
async fn metrics_count_requests_per_route_and_status() {
    let server = TestServer::start(None).await;
    for _ in 0..3 {
        send(Method::GET, &server.url("/health"), &[], None).await;
    }
    send(Method::GET, &server.url(SANDBOXES), &[], None).await;
    send(
        Method::GET,
        &server.url(&format!("{SANDBOXES}/prod")),
        &[("x-gw-ims-org-id", "A@AdobeOrg")],
        None,
    )
    .await;
    let metrics = send(Method::GET, &server.url("/metrics"), &[], None).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(metrics.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = metrics.text;
    assert!(
        text.contains(
            r#"tessera_http_requests_total{method="GET",route="/health",status="200"} 3"#
        ),
        "{text}"
    );
    assert!(text.contains(&format!(
        r#"tessera_http_requests_total{{method="GET",route="{SANDBOXES}",status="400"}} 1"#
    )));
    // The route template, not the raw path, is the label.
    assert!(text.contains(&format!(
        r#"tessera_http_requests_total{{method="GET",route="{SANDBOXES}/{{name}}",status="200"}} 1"#
    )));
    assert!(text.contains("tessera_http_request_duration_seconds_bucket"));
    server.stop().await;
}

#[tokio::test]
async fn openapi_describes_the_served_routes() {
    let server = TestServer::start(None).await;
    let spec = send(Method::GET, &server.url("/openapi.json"), &[], None)
        .await
        .json();
    let paths = spec["paths"].as_object().unwrap();
    for path in [
        "/health",
        "/ready",
        "/metrics",
        SANDBOXES,
        &format!("{SANDBOXES}/{{name}}"),
    ] {
        assert!(paths.contains_key(path), "{path} missing from the spec");
    }
    assert!(spec["paths"][SANDBOXES]["post"].is_object());
    let docs = send(Method::GET, &server.url("/docs/"), &[], None).await;
    assert_eq!(docs.status, StatusCode::OK);
    assert!(
        docs.text.contains("swagger"),
        "docs page should be Swagger UI"
    );
    server.stop().await;
}
