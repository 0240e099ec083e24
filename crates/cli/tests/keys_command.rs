#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests index JSON replies and fail loudly
//! `tessera keys new` prints a key whose config entry the server accepts and whose secret
//! authenticates against it.

mod common;

use std::process::Command;

#[test]
fn minted_key_works_against_a_server_configured_with_it() {
    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["keys", "new", "--org", "K@AdobeOrg", "--role", "admin"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let value_after = |label: &str| -> String {
        text.lines()
            .find(|l| l.starts_with(label))
            .and_then(|l| l.split_whitespace().last())
            .unwrap_or_else(|| panic!("no {label} in {text}"))
            .to_owned()
    };
    let client_id = value_after("client id");
    let secret = value_after("secret");
    let entry = text
        .split("# paste into the config file:\n")
        .nth(1)
        .unwrap();
    assert!(
        !entry.contains(&secret),
        "the config entry must not contain the secret"
    );

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tessera.toml");
    std::fs::write(&config, entry).unwrap();
    let server = common::Tessera::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let path = "/data/foundation/sandbox-management/sandboxes";
    let bearer = format!("Bearer {secret}");
    let org = ("x-gw-ims-org-id", "K@AdobeOrg");
    let (ok, _) = common::http(
        &server.addr,
        "GET",
        path,
        &[org, ("x-api-key", &client_id), ("authorization", &bearer)],
        None,
    );
    assert_eq!(ok, 200);
    let (no_token, _) = common::http(
        &server.addr,
        "GET",
        path,
        &[org, ("x-api-key", &client_id)],
        None,
    );
    assert_eq!(no_token, 401);
    server.kill_9();

    let bad = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "keys",
            "new",
            "--org",
            "K@AdobeOrg",
            "--sandbox",
            "Bad_Name",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}
