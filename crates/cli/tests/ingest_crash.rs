#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! Acknowledged ⇒ durable for streaming ingestion, on the real binary: records are streamed
//! from several concurrent clients, the server is SIGKILLed mid-stream, and after restart
//! every acknowledged receipt is on the change feed (with its record).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::{http, try_http, Tessera};
use serde_json::{json, Value};

const ORG: &str = "CRASH@AdobeOrg";

fn call(addr: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let headers = [("x-gw-ims-org-id", ORG), ("x-sandbox-name", "prod")];
    let text = body.map(|b| b.to_string());
    let (status, reply) = http(addr, method, path, &headers, text.as_deref());
    (status, serde_json::from_str(&reply).unwrap_or(Value::Null))
}

fn setup(addr: &str) -> String {
    let (status, schema) = call(
        addr,
        "POST",
        "/data/foundation/schemaregistry/tenant/schemas",
        Some(json!({
            "type": "object", "title": "Events",
            "allOf": [
                {"$ref": "https://ns.adobe.com/xdm/context/experienceevent"},
                {"$ref": "https://ns.adobe.com/xdm/context/experienceevent-web"},
                {"$ref": "https://ns.adobe.com/xdm/context/identitymap"}
            ],
            "meta:immutableTags": ["union"]
        })),
    );
    assert_eq!(status, 201, "{schema}");
    let (status, dataset) = call(
        addr,
        "POST",
        "/data/foundation/catalog/dataSets",
        Some(
            json!({"name": "web", "schemaRef": {"id": schema["$id"]}, "tags": {"unifiedProfile": ["enabled:true"]}}),
        ),
    );
    assert_eq!(status, 201, "{dataset}");
    let dataset_id = dataset[0]
        .as_str()
        .unwrap()
        .trim_start_matches("@/dataSets/")
        .to_owned();
    let (status, inlet) = call(
        addr,
        "POST",
        "/data/foundation/flowservice/connections",
        Some(
            json!({"id": "crash-inlet", "name": "crash", "auth": {"params": {"datasetId": dataset_id, "authenticationRequired": false}}}),
        ),
    );
    assert_eq!(status, 201, "{inlet}");
    inlet["id"].as_str().unwrap().to_owned()
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
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|client| {
            let addr = server.addr.clone();
            let path = format!("/collection/{inlet}");
            let acknowledged = Arc::clone(&acknowledged);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    // A killed server shows up as a failed connection or a truncated reply.
                    let Ok((status, body)) = try_http(
                        &addr,
                        "POST",
                        &path,
                        &[("content-type", "application/json")],
                        Some(&event(client, n)),
                    ) else {
                        return;
                    };
                    if status != 200 {
                        return;
                    }
                    let receipt: Value = serde_json::from_str(&body).unwrap();
                    acknowledged
                        .lock()
                        .unwrap()
                        .push(receipt["xactionId"].as_str().unwrap().to_owned());
                }
            })
        })
        .collect();
    // Let the clients get going, then kill without warning while they are mid-request.
    while acknowledged.lock().unwrap().len() < 200 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    server.kill_9();
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        let _ = client.join();
    }
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
