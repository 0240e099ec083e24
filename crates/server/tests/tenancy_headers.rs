#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests index JSON replies and fail loudly
mod common;

use common::{send, start_probe, TestServer, SANDBOXES};
use hyper::{Method, StatusCode};

#[tokio::test]
async fn missing_org_header_is_a_gateway_400() {
    let server = TestServer::start(None).await;
    let reply = send(Method::GET, &server.url(SANDBOXES), &[], None).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error_code"], "400003");
    assert!(reply.json()["message"]
        .as_str()
        .unwrap()
        .contains("x-gw-ims-org-id"));
    server.stop().await;
}

#[tokio::test]
async fn sandbox_routes_need_a_valid_existing_sandbox() {
    let (addr, _dir) = start_probe(None).await;
    let url = format!("http://{addr}/probe");
    let org = ("x-gw-ims-org-id", "ACME@AdobeOrg");

    let missing = send(Method::GET, &url, &[org], None).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.json()["error_code"], "400003");
    assert!(missing.json()["message"]
        .as_str()
        .unwrap()
        .contains("x-sandbox-name"));

    for bad in ["Prod", "dev_1", "a b", &"x".repeat(65)] {
        let reply = send(Method::GET, &url, &[org, ("x-sandbox-name", bad)], None).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(reply.json()["code"], "TSR-1002-400", "{bad}");
    }

    let unknown = send(Method::GET, &url, &[org, ("x-sandbox-name", "dev")], None).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.json()["code"], "TSR-1003-400");

    let ok = send(Method::GET, &url, &[org, ("x-sandbox-name", "prod")], None).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.text, "ACME@AdobeOrg/prod admin");
}
