#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! Acknowledged ⇒ durable for streaming ingestion, on the real binary: records are streamed
//! from several concurrent clients, the server is SIGKILLed mid-stream, and after restart
//! every acknowledged receipt is on the change feed (with its record).

mod common;

use std::sync::{Arc, Mutex};

use common::{http, StreamingClients, Tessera};
use serde_json::{json, Value};

const ORG: &str = "CRASH@AdobeOrg";

fn call(addr: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    common::call(addr, ORG, method, path, body)
}

fn setup(addr: &str) -> String {
    common::dataset_with_inlet(
        addr,
        ORG,
        &[
            "https://ns.adobe.com/xdm/context/experienceevent",
            "https://ns.adobe.com/xdm/context/experienceevent-web",
            "https://ns.adobe.com/xdm/context/identitymap",
        ],
        "crash-inlet",
    );
    "crash-inlet".to_owned()
}

fn event(client: usize, n: usize) -> String {
    json!({
        "header": {},
        "body": {"xdmEntity": {
            "_id": format!("c{client}-e{n}"),
            "timestamp": "2025-05-01T12:00:00Z",
            "identityMap": {"ECID": [{"id": format!("{:038}", client * 1_000_000 + n), "primary": true}]},
            "web": {"webPageDetails": {"name": "home"}}
        }}
    })
    .to_string()
}

#[test]
fn acknowledged_stream_records_survive_kill_9_mid_stream() {
    let dir = tempfile::tempdir().unwrap();
    let server = Tessera::start(dir.path(), &[]);
    let inlet = setup(&server.addr);

    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let receipts = Arc::clone(&acknowledged);
    let clients = StreamingClients::start(
        &server.addr,
        &format!("/collection/{inlet}"),
        4,
        event,
        move |_, _, reply| {
            let receipt: Value = serde_json::from_str(reply).unwrap();
            let receipt = receipt["xactionId"].as_str().unwrap().to_owned();
            receipts.lock().unwrap().push(receipt);
        },
    );
    // Let the clients get going, then kill without warning while they are mid-request.
    while acknowledged.lock().unwrap().len() < 200 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    server.kill_9();
    clients.stop();
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 200);

    let restarted = Tessera::start(dir.path(), &[]);
    let (status, feed) = call(
        &restarted.addr,
        "GET",
        "/data/core/ups/system/changefeed?limit=10000",
        None,
    );
    assert_eq!(status, 200, "{feed}");
    let stored: std::collections::HashSet<&str> = feed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["xactionId"].as_str().unwrap())
        .collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|r| !stored.contains(r.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged records lost: {lost:?}",
        lost.len(),
        acknowledged.len()
    );
    // The inlet still works after recovery, and replays of acknowledged events are no-ops.
    let (status, body) = http(
        &restarted.addr,
        "POST",
        &format!("/collection/{inlet}"),
        &[("content-type", "application/json")],
        Some(&event(0, 0)),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"duplicate\":true"), "{body}");
    let (status, _) = restarted.terminate();
    assert!(status.success());
}

/// A batch being processed when the server is SIGKILLed resumes after restart: every row is
/// applied exactly once (re-applied groups are idempotent) and the batch finishes.
#[test]
fn batch_processing_resumes_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let server = Tessera::start(dir.path(), &[]);
    setup(&server.addr);
    let (_, datasets) = call(
        &server.addr,
        "GET",
        "/data/foundation/catalog/dataSets",
        None,
    );
    let dataset = datasets.as_object().unwrap().keys().next().unwrap().clone();
    let (status, batch) = call(
        &server.addr,
        "POST",
        "/data/foundation/import/batches",
        Some(json!({"datasetId": dataset})),
    );
    assert_eq!(status, 201, "{batch}");
    let batch = batch["id"].as_str().unwrap().to_owned();
    let rows = 20_000;
    let file: String = (0..rows)
        .map(|n| {
            json!({
                "_id": format!("b-{n}"),
                "timestamp": "2025-05-01T12:00:00Z",
                "identityMap": {"ECID": [{"id": format!("{:038}", n), "primary": true}]}
            })
            .to_string()
                + "\n"
        })
        .collect();
    let headers = [
        ("x-gw-ims-org-id", ORG),
        ("x-sandbox-name", "prod"),
        ("content-type", "application/octet-stream"),
    ];
    let (status, body) = http(
        &server.addr,
        "PUT",
        &format!("/data/foundation/import/batches/{batch}/datasets/{dataset}/files/rows.json"),
        &headers,
        Some(&file),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        &server.addr,
        "POST",
        &format!("/data/foundation/import/batches/{batch}?action=COMPLETE"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    // Kill once some, but not all, rows are in.
    loop {
        let (_, record) = call(
            &server.addr,
            "GET",
            &format!("/data/foundation/catalog/batches/{batch}"),
            None,
        );
        let read = record[&batch]["metrics"]["recordsRead"]
            .as_u64()
            .unwrap_or(0);
        assert_ne!(
            record[&batch]["status"], "success",
            "processing finished before the kill; make the batch larger"
        );
        if read > 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    server.kill_9();

    let restarted = Tessera::start(dir.path(), &[]);
    let record = loop {
        let (_, record) = call(
            &restarted.addr,
            "GET",
            &format!("/data/foundation/catalog/batches/{batch}"),
            None,
        );
        let record = record[&batch].clone();
        if record["status"] != "processing" {
            break record;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(record["status"], "success", "{record}");
    let metrics = &record["metrics"];
    let applied = metrics["recordsWritten"].as_u64().unwrap()
        + metrics["duplicateRecordCount"].as_u64().unwrap();
    assert_eq!(applied, rows, "{metrics}");
    assert_eq!(metrics["failedRecordCount"], 0);
    let (_, feed) = call(
        &restarted.addr,
        "GET",
        "/data/core/ups/system/changefeed?limit=10000",
        None,
    );
    let mut seen = feed["entries"].as_array().unwrap().len();
    let mut after = feed["next"].as_u64().unwrap();
    loop {
        let (_, page) = call(
            &restarted.addr,
            "GET",
            &format!("/data/core/ups/system/changefeed?limit=10000&after={after}"),
            None,
        );
        let entries = page["entries"].as_array().unwrap();
        if entries.is_empty() {
            break;
        }
        seen += entries.len();
        after = page["next"].as_u64().unwrap();
    }
    assert_eq!(seen as u64, rows, "each row applied exactly once");
    restarted.kill_9();
}
