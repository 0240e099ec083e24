#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! `tessera serve --demo` loads the generated customer base through the real ingestion path,
//! and every generated record is valid against the built-in XDM field groups: no batch
//! refuses a single row, and each dataset holds exactly what the generator's manifest says.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{http, Tessera};
use serde_json::Value;

const ORG: &str = "DEMO@AdobeOrg";

#[test]
fn demo_data_loads_without_a_single_rejected_record() {
    let people = "60";
    let generated = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["generate", "--people", people, "--seed", "42", "--out"])
        .arg(generated.path())
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(generated.path().join("manifest.json")).unwrap(),
    )
    .unwrap();
    let expected: BTreeMap<String, u64> = manifest["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap().to_owned(),
                d["records"].as_u64().unwrap(),
            )
        })
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let server = Tessera::start(dir.path(), &["--demo", "--demo-people", people]);
    let headers = [("x-gw-ims-org-id", ORG), ("x-sandbox-name", "prod")];
    let batches = loop {
        let (status, body) = http(
            &server.addr,
            "GET",
            "/data/foundation/catalog/batches",
            &headers,
            None,
        );
        assert_eq!(status, 200, "{body}");
        let batches: Value = serde_json::from_str(&body).unwrap();
        let pending = batches
            .as_object()
            .unwrap()
            .values()
            .any(|b| matches!(b["status"].as_str(), Some("loading" | "processing")));
        if batches.as_object().unwrap().len() == expected.len() && !pending {
            break batches;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let (_, datasets) = http(
        &server.addr,
        "GET",
        "/data/foundation/catalog/dataSets",
        &headers,
        None,
    );
    let datasets: Value = serde_json::from_str(&datasets).unwrap();
    for batch in batches.as_object().unwrap().values() {
        let dataset_id = batch["relatedObjects"][0]["id"].as_str().unwrap();
        let name = datasets[dataset_id]["name"].as_str().unwrap();
        assert_eq!(batch["status"], "success", "{name}: {batch}");
        assert_eq!(
            batch["metrics"]["failedRecordCount"], 0,
            "{name}: {}",
            batch["errors"]
        );
        assert_eq!(
            batch["metrics"]["recordsWritten"].as_u64(),
            expected.get(name).copied(),
            "{name}"
        );
    }
    let (status, stderr) = server.terminate();
    assert!(status.success());
    assert!(common::error_lines(&stderr).is_empty(), "{stderr}");

    // A second start finds the demo already there and adds nothing.
    let again = Tessera::start(dir.path(), &["--demo", "--demo-people", people]);
    let (_, body) = http(
        &again.addr,
        "GET",
        "/data/foundation/catalog/batches",
        &headers,
        None,
    );
    let batches: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(batches.as_object().unwrap().len(), expected.len());
    again.kill_9();
}
