#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! `tessera inlet create` and `tessera import` against a running server: the admin commands
//! go through the public API and report what happened, refused rows included.

mod common;

use std::process::Command;

use common::{http, Tessera};
use serde_json::{json, Value};

const ORG: &str = "IMPORT@AdobeOrg";

fn tessera(args: &[&str], server: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .env("TESSERA_SERVER", format!("http://{server}"))
        .env("TESSERA_ORG", ORG)
        .output()
        .unwrap()
}

#[test]
fn import_and_inlet_commands_drive_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Tessera::start(&dir.path().join("data"), &[]);
    let headers = [("x-gw-ims-org-id", ORG), ("x-sandbox-name", "prod")];
    let schema = json!({"type": "object", "title": "Events", "meta:immutableTags": ["union"], "allOf": [
        {"$ref": "https://ns.adobe.com/xdm/context/experienceevent"},
        {"$ref": "https://ns.adobe.com/xdm/context/identitymap"}]});
    let (status, body) = http(
        &server.addr,
        "POST",
        "/data/foundation/schemaregistry/tenant/schemas",
        &headers,
        Some(&schema.to_string()),
    );
    assert_eq!(status, 201, "{body}");
    let schema_id = serde_json::from_str::<Value>(&body).unwrap()["$id"]
        .as_str()
        .unwrap()
        .to_owned();
    let dataset = json!({"name": "events", "schemaRef": {"id": schema_id}, "tags": {"unifiedProfile": ["enabled:true"]}});
    let (status, body) = http(
        &server.addr,
        "POST",
        "/data/foundation/catalog/dataSets",
        &headers,
        Some(&dataset.to_string()),
    );
    assert_eq!(status, 201, "{body}");
    let dataset_id = serde_json::from_str::<Value>(&body).unwrap()[0]
        .as_str()
        .unwrap()
        .trim_start_matches("@/dataSets/")
        .to_owned();

    let file = dir.path().join("events.json");
    let mut lines: Vec<String> = (0..50)
        .map(|i| json!({"_id": format!("i{i}"), "timestamp": "2025-01-01T00:00:00Z", "identityMap": {"ECID": [{"id": format!("{i:038}"), "primary": true}]}}).to_string())
        .collect();
    lines.push(json!({"_id": "bad", "timestamp": "nope", "identityMap": {"ECID": [{"id": "1".repeat(38)}]}}).to_string());
    std::fs::write(&file, lines.join("\n")).unwrap();

    let output = tessera(
        &["import", "--dataset", &dataset_id, file.to_str().unwrap()],
        &server.addr,
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("partial-success"), "{stdout}");
    assert!(stdout.contains("written 50"), "{stdout}");
    assert!(stdout.contains("refused 1"), "{stdout}");
    assert!(stdout.contains("row 51: /timestamp"), "{stdout}");

    let output = tessera(
        &[
            "inlet",
            "create",
            "--id",
            "web-inlet",
            "--dataset",
            &dataset_id,
            "--open",
        ],
        &server.addr,
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("inlet id:  web-inlet"), "{stdout}");
    let message = json!({"header": {}, "body": {"xdmEntity": {"_id": "s1", "timestamp": "2025-01-01T00:00:00Z", "identityMap": {"ECID": [{"id": "2".repeat(38)}]}}}});
    let (status, body) = http(
        &server.addr,
        "POST",
        "/collection/web-inlet",
        &[("content-type", "application/json")],
        Some(&message.to_string()),
    );
    assert_eq!(status, 200, "{body}");

    // The same id again is refused with the server's message.
    let again = tessera(&["inlet", "create", "--id", "web-inlet"], &server.addr);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("409"));
    server.kill_9();
}
