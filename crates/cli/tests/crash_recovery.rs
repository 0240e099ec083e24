#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests index JSON replies and fail loudly
//! Acknowledged ⇒ durable (DESIGN.md invariant 1), on the real binary: every write the
//! server acknowledged is there after SIGKILL and restart.

mod common;

use common::{error_lines, Tessera};

const SANDBOXES: &str = "/data/foundation/sandbox-management/sandboxes";
const ORG: &str = "CRASH@AdobeOrg";

fn create(server: &Tessera, name: &str) -> u16 {
    let body = format!(r#"{{"name":"{name}","title":"Sandbox {name}","type":"development"}}"#);
    server.request("POST", SANDBOXES, ORG, Some(&body)).0
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let server = Tessera::start(dir.path(), &[]);
    let mut acknowledged = Vec::new();
    for i in 0..40 {
        let name = format!("sb-{i}");
        assert_eq!(create(&server, &name), 200);
        acknowledged.push(name);
    }
    // Concurrent writers too: the group-commit path.
    let addr = server.addr.clone();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                (0..10)
                    .map(|i| {
                        let name = format!("par-{t}-{i}");
                        let body =
                            format!(r#"{{"name":"{name}","title":"p","type":"development"}}"#);
                        let (status, _) = common::http(
                            &addr,
                            "POST",
                            SANDBOXES,
                            &[("x-gw-ims-org-id", ORG)],
                            Some(&body),
                        );
                        assert_eq!(status, 200);
                        name
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for handle in handles {
        acknowledged.extend(handle.join().unwrap());
    }
    server.kill_9();

    let restarted = Tessera::start(dir.path(), &[]);
    let (status, body) = restarted.request("GET", &format!("{SANDBOXES}?limit=1000"), ORG, None);
    assert_eq!(status, 200);
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = listed["sandboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for name in &acknowledged {
        assert!(
            names.contains(&name.as_str()),
            "acknowledged sandbox {name} lost after kill -9"
        );
    }
    assert_eq!(
        names.len(),
        acknowledged.len() + 1,
        "prod plus every acknowledged sandbox"
    );
    let (status, stderr) = restarted.terminate();
    assert!(status.success());
    assert!(
        error_lines(&stderr).is_empty(),
        "unexpected errors:\n{stderr}"
    );
}

#[test]
fn relaxed_mode_flushes_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let server = Tessera::start(dir.path(), &["--durability", "relaxed"]);
    for i in 0..20 {
        assert_eq!(create(&server, &format!("r-{i}")), 200);
    }
    let (status, stderr) = server.terminate();
    assert!(
        status.success(),
        "graceful shutdown should exit 0: {stderr}"
    );
    assert!(stderr.contains("store flushed"), "{stderr}");
    assert!(
        error_lines(&stderr).is_empty(),
        "unexpected errors:\n{stderr}"
    );

    let restarted = Tessera::start(dir.path(), &[]);
    for i in 0..20 {
        let (status, _) = restarted.request("GET", &format!("{SANDBOXES}/r-{i}"), ORG, None);
        assert_eq!(status, 200, "r-{i} lost");
    }
    restarted.kill_9();
}

#[test]
fn dev_mode_refuses_a_public_address() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(tempfile::tempdir().unwrap().path())
        .env_remove("TESSERA_CONFIG")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("loopback"), "{stderr}");
}
