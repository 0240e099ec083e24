#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! Catalog datasets over HTTP in AEP's shapes.

mod common;

use common::ingest::{dataset, get, post, setup, TENANT};
use common::{send, TestServer};
use hyper::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn dataset_lifecycle_in_catalog_shapes() {
    let server = TestServer::start(None).await;
    let base = server.url("");
    let setup = setup(&base).await;

    let one = get(
        &base,
        &format!(
            "/data/foundation/catalog/dataSets/{}",
            setup.profile_dataset
        ),
    )
    .await;
    assert_eq!(one.status, StatusCode::OK);
    let doc = &one.json()[&setup.profile_dataset];
    assert_eq!(doc["name"], "CRM");
    assert_eq!(doc["schemaRef"]["id"], setup.profile_schema.as_str());
    assert_eq!(doc["imsOrg"], "INGEST@AdobeOrg");
    assert!(doc["created"].as_i64().unwrap() > 0);

    let only = get(
        &base,
        &format!(
            "/data/foundation/catalog/dataSets/{}?properties=name,tags",
            setup.profile_dataset
        ),
    )
    .await;
    let keys: Vec<String> = only.json()[&setup.profile_dataset]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(keys, ["name", "tags"]);

    let list = get(&base, "/data/foundation/catalog/dataSets").await.json();
    assert_eq!(list.as_object().unwrap().len(), 2);
    let paged = get(&base, "/data/foundation/catalog/dataSets?limit=1&start=1")
        .await
        .json();
    assert_eq!(paged.as_object().unwrap().len(), 1);

    let patched = send(
        Method::PATCH,
        &format!(
            "{base}/data/foundation/catalog/dataSets/{}",
            setup.profile_dataset
        ),
        &TENANT,
        Some(json!({"description": "CRM export", "created": 1})),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    let after = get(
        &base,
        &format!(
            "/data/foundation/catalog/dataSets/{}",
            setup.profile_dataset
        ),
    )
    .await
    .json();
    assert_eq!(after[&setup.profile_dataset]["description"], "CRM export");
    assert_ne!(
        after[&setup.profile_dataset]["created"], 1,
        "server fields cannot be set by clients"
    );

    let schema_change = send(
        Method::PATCH,
        &format!(
            "{base}/data/foundation/catalog/dataSets/{}",
            setup.profile_dataset
        ),
        &TENANT,
        Some(json!({"schemaRef": {"id": setup.event_schema}})),
    )
    .await;
    assert_eq!(schema_change.status, StatusCode::CONFLICT);

    // Bad creations.
    for (body, field) in [
        (json!({"schemaRef": {"id": setup.profile_schema}}), "name"),
        (json!({"name": "x"}), "schemaRef"),
        (
            json!({"name": "x", "schemaRef": {"id": "https://ns.adobe.com/nobody/schemas/nothing"}}),
            "schemaRef.id",
        ),
        (
            json!({"name": "x", "schemaRef": {"id": setup.event_schema}, "tags": {"unifiedProfile": ["enabled:true", "isUpsert:true"]}}),
            "tags.unifiedProfile",
        ),
        (
            json!({"name": "x", "schemaRef": {"id": setup.profile_schema}, "tags": {"unifiedProfile": "enabled:true"}}),
            "tags.unifiedProfile",
        ),
    ] {
        let reply = post(&base, "/data/foundation/catalog/dataSets", body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.text
        );
        assert_eq!(reply.json()["report"]["field"], field, "{body}");
    }

    // Another sandbox does not see the datasets.
    let other = send(
        Method::GET,
        &format!(
            "{base}/data/foundation/catalog/dataSets/{}",
            setup.profile_dataset
        ),
        &[
            ("x-gw-ims-org-id", "OTHER@AdobeOrg"),
            ("x-sandbox-name", "prod"),
        ],
        None,
    )
    .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);

    let upsert = dataset(&base, "Loyalty", &setup.profile_schema, true).await;
    let deleted = send(
        Method::DELETE,
        &format!("{base}/data/foundation/catalog/dataSets/{upsert}"),
        &TENANT,
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.json()[0], format!("@/dataSets/{upsert}").as_str());
    let gone = get(
        &base,
        &format!("/data/foundation/catalog/dataSets/{upsert}"),
    )
    .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    server.stop().await;
}
