#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests index JSON replies and fail loudly
mod common;

use common::{send, start_probe, SANDBOXES};
use hyper::{Method, StatusCode};
use serde_json::json;

/// A sandbox created under one organisation is invisible to another, and data routes in
/// the other organisation refuse it; deleting it closes it to data routes too.
#[tokio::test]
async fn write_under_one_tenant_is_invisible_under_another() {
    let (addr, _dir) = start_probe(None).await;
    let url = |path: &str| format!("http://{addr}{path}");
    let a = ("x-gw-ims-org-id", "A@AdobeOrg");
    let b = ("x-gw-ims-org-id", "B@AdobeOrg");

    let created = send(
        Method::POST,
        &url(SANDBOXES),
        &[a],
        Some(json!({"name": "dev", "title": "Dev", "type": "development"})),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    assert_eq!(created.json()["state"], "active");

    let names = |reply: &common::Reply| -> Vec<String> {
        reply.json()["sandboxes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(&send(Method::GET, &url(SANDBOXES), &[a], None).await),
        ["prod", "dev"]
    );
    assert_eq!(
        names(&send(Method::GET, &url(SANDBOXES), &[b], None).await),
        ["prod"]
    );

    let b_get = send(Method::GET, &url(&format!("{SANDBOXES}/dev")), &[b], None).await;
    assert_eq!(b_get.status, StatusCode::NOT_FOUND);

    let in_a = send(
        Method::GET,
        &url("/probe"),
        &[a, ("x-sandbox-name", "dev")],
        None,
    )
    .await;
    assert_eq!(in_a.status, StatusCode::OK);
    let in_b = send(
        Method::GET,
        &url("/probe"),
        &[b, ("x-sandbox-name", "dev")],
        None,
    )
    .await;
    assert_eq!(in_b.status, StatusCode::BAD_REQUEST);

    // The same name can exist independently in B.
    let b_created = send(
        Method::POST,
        &url(SANDBOXES),
        &[b],
        Some(json!({"name": "dev", "title": "B's dev", "type": "development"})),
    )
    .await;
    assert_eq!(b_created.status, StatusCode::OK);
    let a_dev = send(Method::GET, &url(&format!("{SANDBOXES}/dev")), &[a], None).await;
    assert_eq!(a_dev.json()["title"], "Dev");

    let deleted = send(
        Method::DELETE,
        &url(&format!("{SANDBOXES}/dev")),
        &[a],
        None,
    )
    .await;
    assert_eq!(deleted.json()["state"], "deleted");
    let closed = send(
        Method::GET,
        &url("/probe"),
        &[a, ("x-sandbox-name", "dev")],
        None,
    )
    .await;
    assert_eq!(closed.status, StatusCode::BAD_REQUEST);
    let still_open_in_b = send(
        Method::GET,
        &url("/probe"),
        &[b, ("x-sandbox-name", "dev")],
        None,
    )
    .await;
    assert_eq!(still_open_in_b.status, StatusCode::OK);
}
