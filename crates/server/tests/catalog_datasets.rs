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

#[tokio::test]
async fn dataset_labels_follow_the_catalog_labels_api() {
    let server = TestServer::start(None).await;
    let base = server.url("");
    let setup = setup(&base).await;
    let path = format!(
        "/data/foundation/catalog/dataSets/{}/labels",
        setup.profile_dataset
    );
    let empty = get(&base, &path).await;
    assert_eq!(empty.status, StatusCode::OK);
    let key = format!("AEP:dataset:{}", setup.profile_dataset);
    assert_eq!(empty.json()[&key]["labels"], json!([]));

    let body = json!({
        "labels": ["C1", "C2", "I1"],
        "optionalLabels": [{"option": {"id": setup.profile_schema, "contentType": "application/vnd.adobe.xed-full+json;version=1", "schemaPath": "/properties/personalEmail"}, "labels": ["S1"]}]
    });
    let created = post(&base, &path, body.clone()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.json()["labels"], json!(["C1", "C2", "I1"]));
    assert_eq!(post(&base, &path, body).await.status, StatusCode::CONFLICT);
    let read = get(&base, &path).await.json();
    assert_eq!(read[&key]["imsOrg"], "INGEST@AdobeOrg");
    assert_eq!(
        read[&key]["optionalLabels"][0]["option"]["schemaPath"],
        "/properties/personalEmail"
    );

    let replaced = send(
        Method::PUT,
        &format!("{base}{path}"),
        &TENANT,
        Some(json!({"labels": ["C2"]})),
    )
    .await;
    assert_eq!(replaced.status, StatusCode::OK);
    assert_eq!(
        get(&base, &path).await.json()[&key]["labels"],
        json!(["C2"])
    );
    assert_eq!(
        get(&base, &path).await.json()[&key]["optionalLabels"],
        json!([])
    );

    let bad = send(
        Method::PUT,
        &format!("{base}{path}"),
        &TENANT,
        Some(json!({"labels": ["C 1"]})),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let unknown_field = send(
        Method::PUT,
        &format!("{base}{path}"),
        &TENANT,
        Some(json!({"lables": ["C1"]})),
    )
    .await;
    assert_eq!(unknown_field.status, StatusCode::BAD_REQUEST);

    // Labels do not show up as datasets, and go away with their dataset.
    assert_eq!(
        get(&base, "/data/foundation/catalog/dataSets")
            .await
            .json()
            .as_object()
            .unwrap()
            .len(),
        2
    );
    let deleted = send(Method::DELETE, &format!("{base}{path}"), &TENANT, None).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(get(&base, &path).await.json()[&key]["labels"], json!([]));
    let missing = get(
        &base,
        "/data/foundation/catalog/dataSets/000000000000000000000000/labels",
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    server.stop().await;
}
