#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! Batch ingestion end to end: create, upload JSON-lines and CSV files, complete, and poll
//! the catalog batch until processing finishes; bad rows are listed with row, path, reason.

mod common;

use std::time::Duration;

use common::ingest::{get, post, setup, Setup, TENANT};
use common::TestServer;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

async fn upload(
    setup: &Setup,
    batch: &str,
    dataset: &str,
    name: &str,
    bytes: Vec<u8>,
) -> StatusCode {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<hyper::body::Bytes>>();
    let mut request = hyper::Request::builder()
        .method(Method::PUT)
        .uri(format!(
            "{}/data/foundation/import/batches/{batch}/datasets/{dataset}/files/{name}",
            setup.base
        ))
        .header("content-type", "application/octet-stream");
    for (k, v) in TENANT {
        request = request.header(k, v);
    }
    let response = client
        .request(request.body(Full::new(bytes.into())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let _ = response.into_body().collect().await;
    status
}

async fn wait_finished(setup: &Setup, batch: &str) -> Value {
    for _ in 0..300 {
        let reply = get(
            &setup.base,
            &format!("/data/foundation/catalog/batches/{batch}"),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let record = reply.json()[batch].clone();
        if !matches!(record["status"].as_str(), Some("loading" | "processing")) {
            return record;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("batch {batch} did not finish");
}

async fn complete(setup: &Setup, batch: &str) -> common::Reply {
    post(
        &setup.base,
        &format!("/data/foundation/import/batches/{batch}?action=COMPLETE"),
        json!({}),
    )
    .await
}

async fn create(setup: &Setup, dataset: &str, format: &str) -> String {
    let reply = post(
        &setup.base,
        "/data/foundation/import/batches",
        json!({"datasetId": dataset, "inputFormat": {"format": format}}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.json()["status"], "loading");
    assert_eq!(reply.json()["relatedObjects"][0]["id"], dataset);
    reply.json()["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn json_lines_batch_with_some_bad_rows_is_partially_applied() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let batch = create(&setup, &setup.event_dataset, "json").await;

    let mut lines = Vec::new();
    for i in 0..1200 {
        let mut event = common::ingest::page_view(&format!("b-{i}"), &format!("{:038}", i));
        if i == 7 {
            event["timestamp"] = json!("not a time");
        }
        if i == 1100 {
            event["web"]["webPageDetails"]["name"] = json!(42);
        }
        lines.push(event.to_string());
    }
    lines.insert(500, "{not json".to_owned());
    let file = lines.join("\n").into_bytes();
    assert_eq!(
        upload(&setup, &batch, &setup.event_dataset, "events.json", file).await,
        StatusCode::OK
    );

    // Uploading to the wrong dataset, or an unsafe name, is refused.
    assert_eq!(
        upload(
            &setup,
            &batch,
            &setup.profile_dataset,
            "x.json",
            b"{}".to_vec()
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        upload(
            &setup,
            &batch,
            &setup.event_dataset,
            "..%2Fescape",
            b"{}".to_vec()
        )
        .await,
        StatusCode::BAD_REQUEST
    );

    let completed = complete(&setup, &batch).await;
    assert_eq!(completed.status, StatusCode::OK, "{}", completed.text);
    let record = wait_finished(&setup, &batch).await;
    assert_eq!(record["status"], "partial-success", "{record}");
    assert_eq!(record["metrics"]["recordsRead"], 1201);
    assert_eq!(record["metrics"]["recordsWritten"], 1198);
    assert_eq!(record["metrics"]["failedRecordCount"], 3);
    let errors = record["errors"].as_array().unwrap();
    let rows: Vec<(u64, &str)> = errors
        .iter()
        .map(|e| (e["rows"][0].as_u64().unwrap(), e["path"].as_str().unwrap()))
        .collect();
    assert_eq!(
        rows,
        [
            (8, "/timestamp"),
            (501, ""),
            (1102, "/web/webPageDetails/name")
        ]
    );
    assert_eq!(errors[1]["code"], "malformed_message");

    // Every good row is on the change feed; completing twice is refused.
    assert_eq!(setup.feed().await.len(), 1198);
    let again = complete(&setup, &batch).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    server.stop().await;
}

#[tokio::test]
async fn csv_batch_maps_dotted_headers_to_xdm_paths() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let batch = create(&setup, &setup.profile_dataset, "csv").await;
    // Identities come from a descriptor on personalEmail.address (identityMap arrays have
    // no dotted CSV path); birthYear is text in CSV and must become the schema's integer.
    let csv = "person.name.firstName,person.name.lastName,personalEmail.address,person.birthYear\n\
               Jane,Doe,jane@example.com,1969\n\
               John,Roe,not-an-email,1970\n";
    // identityMap arrays cannot be expressed by dotted CSV paths; use a descriptor instead.
    let descriptor = post(
        &setup.base,
        "/data/foundation/schemaregistry/tenant/descriptors",
        json!({
            "@type": "xdm:descriptorIdentity",
            "xdm:sourceSchema": setup.profile_schema,
            "xdm:sourceVersion": 1,
            "xdm:sourceProperty": "/personalEmail/address",
            "xdm:namespace": "Email",
            "xdm:property": "xdm:code",
            "xdm:isPrimary": true
        }),
    )
    .await;
    assert_eq!(
        descriptor.status,
        StatusCode::CREATED,
        "{}",
        descriptor.text
    );
    assert_eq!(
        upload(
            &setup,
            &batch,
            &setup.profile_dataset,
            "people.csv",
            csv.as_bytes().to_vec()
        )
        .await,
        StatusCode::OK
    );
    let completed = complete(&setup, &batch).await;
    assert_eq!(completed.status, StatusCode::OK);
    let record = wait_finished(&setup, &batch).await;
    assert_eq!(record["status"], "partial-success", "{record}");
    assert_eq!(record["metrics"]["recordsWritten"], 1);
    assert_eq!(record["errors"][0]["rows"][0], 2);
    assert_eq!(record["errors"][0]["path"], "/personalEmail/address");
    let feed = setup.feed().await;
    assert_eq!(feed.len(), 1);
    assert_eq!(feed[0]["id"], "jane@example.com");
    server.stop().await;
}

#[tokio::test]
async fn batch_state_rules() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let empty = create(&setup, &setup.event_dataset, "json").await;
    let no_files = complete(&setup, &empty).await;
    assert_eq!(no_files.status, StatusCode::CONFLICT);
    let aborted = post(
        &setup.base,
        &format!("/data/foundation/import/batches/{empty}?action=ABORT"),
        json!({}),
    )
    .await;
    assert_eq!(aborted.status, StatusCode::OK);
    assert_eq!(aborted.json()["status"], "aborted");
    assert_eq!(
        upload(
            &setup,
            &empty,
            &setup.event_dataset,
            "late.json",
            b"{}".to_vec()
        )
        .await,
        StatusCode::CONFLICT
    );
    let unknown_dataset = post(
        &setup.base,
        "/data/foundation/import/batches",
        json!({"datasetId": "nope"}),
    )
    .await;
    assert_eq!(unknown_dataset.status, StatusCode::NOT_FOUND);
    let bad_format = post(
        &setup.base,
        "/data/foundation/import/batches",
        json!({"datasetId": setup.event_dataset, "inputFormat": {"format": "parquet"}}),
    )
    .await;
    assert_eq!(bad_format.status, StatusCode::BAD_REQUEST);
    let listed = get(&setup.base, "/data/foundation/catalog/batches")
        .await
        .json();
    assert!(listed.get(&empty).is_some());
    server.stop().await;
}

#[tokio::test]
async fn graphs_remember_the_batches_that_linked_them() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let batch = create(&setup, &setup.profile_dataset, "json").await;
    let record = json!({"identityMap": {
        "CRMID": [{"id": "ann", "primary": true}],
        "Email": [{"id": "ann@example.com"}]}});
    assert_eq!(
        upload(
            &setup,
            &batch,
            &setup.profile_dataset,
            "crm.json",
            record.to_string().into_bytes()
        )
        .await,
        StatusCode::OK
    );
    let completed = complete(&setup, &batch).await;
    assert_eq!(completed.status, StatusCode::OK, "{}", completed.text);
    assert_eq!(wait_finished(&setup, &batch).await["status"], "success");
    // A record streamed later confirms the link without a batch: the batch stays listed.
    let streamed = setup.stream(setup.profile_message(record)).await;
    assert_eq!(streamed.status, StatusCode::OK, "{}", streamed.text);

    let graph = post(
        &setup.base,
        "/data/core/identity/v2/graph",
        json!({"composite_xids": [{"ns": "CRMID", "id": "ann"}], "projection_type": "graph",
            "require_edge_meta_data": true}),
    )
    .await;
    assert_eq!(graph.status, StatusCode::OK, "{}", graph.text);
    let edges = graph.json()["graphs"][0]["edges"].clone();
    assert_eq!(edges.as_array().map(Vec::len), Some(1), "{edges}");
    assert_eq!(edges[0]["batch_ids"], json!([batch]));
    assert_eq!(edges[0]["dataset_ids"], json!([setup.profile_dataset]));
    server.stop().await;
}
