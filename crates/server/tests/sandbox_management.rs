#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests index JSON replies and fail loudly
mod common;

use common::{send, TestServer, SANDBOXES};
use hyper::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn sandbox_lifecycle_follows_aep() {
    let server = TestServer::start(None).await;
    let org = ("x-gw-ims-org-id", "ACME@AdobeOrg");
    let url = |p: &str| server.url(p);

    let prod = send(
        Method::GET,
        &url(&format!("{SANDBOXES}/prod")),
        &[org],
        None,
    )
    .await;
    assert_eq!(prod.status, StatusCode::OK);
    assert_eq!(prod.json()["isDefault"], true);
    assert_eq!(prod.json()["type"], "production");

    let body = json!({"name": "acme-dev", "title": "Acme dev", "type": "development"});
    let created = send(Method::POST, &url(SANDBOXES), &[org], Some(body.clone())).await;
    assert_eq!(created.status, StatusCode::OK);
    assert_eq!(created.json()["eTag"], 1);

    let duplicate = send(Method::POST, &url(SANDBOXES), &[org], Some(body)).await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    assert_eq!(duplicate.json()["status"], 409);

    for bad in [
        json!({"name": "Bad Name", "title": "x", "type": "development"}),
        json!({"name": "ok", "title": " ", "type": "development"}),
        json!({"name": "ok", "title": "x", "type": "staging"}),
        json!({"name": "ok", "title": "x", "type": "development", "extra": 1}),
    ] {
        let reply = send(Method::POST, &url(SANDBOXES), &[org], Some(bad.clone())).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            reply.text
        );
        assert!(reply.json()["detail"]
            .as_str()
            .is_some_and(|d| !d.is_empty()));
    }
    let not_json = send(
        Method::POST,
        &url(SANDBOXES),
        &[org, ("content-type", "application/json")],
        None,
    )
    .await;
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);

    let patched = send(
        Method::PATCH,
        &url(&format!("{SANDBOXES}/acme-dev")),
        &[org],
        Some(json!({"title": "Acme development"})),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK);
    assert_eq!(patched.json()["title"], "Acme development");
    assert_eq!(patched.json()["eTag"], 2);

    let prod_delete = send(
        Method::DELETE,
        &url(&format!("{SANDBOXES}/prod")),
        &[org],
        None,
    )
    .await;
    assert_eq!(prod_delete.status, StatusCode::CONFLICT);

    let deleted = send(
        Method::DELETE,
        &url(&format!("{SANDBOXES}/acme-dev")),
        &[org],
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.json()["state"], "deleted");
    let again = send(
        Method::DELETE,
        &url(&format!("{SANDBOXES}/acme-dev")),
        &[org],
        None,
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let missing = send(
        Method::DELETE,
        &url(&format!("{SANDBOXES}/nope")),
        &[org],
        None,
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // Paging: limit 1 gives one record and a next link.
    let page = send(
        Method::GET,
        &url(&format!("{SANDBOXES}?limit=1")),
        &[org],
        None,
    )
    .await;
    let page = page.json();
    assert_eq!(page["sandboxes"].as_array().unwrap().len(), 1);
    assert_eq!(page["_page"]["count"], 1);
    assert!(page["_links"]["next"]["href"]
        .as_str()
        .unwrap()
        .contains("offset=1"));
    let last = send(
        Method::GET,
        &url(&format!("{SANDBOXES}?limit=1&offset=1")),
        &[org],
        None,
    )
    .await;
    assert!(last.json()["_links"].get("next").is_none());
    server.stop().await;
}
