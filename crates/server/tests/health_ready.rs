#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests index JSON replies and fail loudly
mod common;

use common::{send, TestServer};
use hyper::{Method, StatusCode};

#[tokio::test]
async fn health_and_ready_answer_without_credentials() {
    let server = TestServer::start(None).await;
    let health = send(Method::GET, &server.url("/health"), &[], None).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json()["status"], "ok");
    let ready = send(Method::GET, &server.url("/ready"), &[], None).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.json()["status"], "ready");
    let unknown = send(Method::GET, &server.url("/nope"), &[], None).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    server.stop().await;
}
