#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests index JSON replies and fail loudly
mod common;

use common::{send, start_probe, SANDBOXES};
use hyper::{Method, StatusCode};
use serde_json::json;
use tessera_server::auth::{new_key, NewKey};

fn key_entry(key: &NewKey, grants: &str) -> String {
    format!(
        "[[auth.keys]]\nclient_id = \"{}\"\nsecret_hash = \"{}\"\ngrants = {grants}\n",
        key.client_id,
        key.secret_hash.encode()
    )
}

#[tokio::test]
async fn credentials_and_grants_are_enforced() {
    let admin = new_key();
    let reader = new_key();
    let dev_writer = new_key();
    let config = [
        key_entry(
            &admin,
            r#"[{ org = "A@AdobeOrg", sandboxes = ["*"], role = "admin" }]"#,
        ),
        key_entry(
            &reader,
            r#"[{ org = "A@AdobeOrg", sandboxes = ["*"], role = "read" }]"#,
        ),
        key_entry(
            &dev_writer,
            r#"[{ org = "A@AdobeOrg", sandboxes = ["prod"], role = "write" }]"#,
        ),
    ]
    .concat();
    let (addr, _dir) = start_probe(Some(&config)).await;
    let url = |p: &str| format!("http://{addr}{p}");
    let org = ("x-gw-ims-org-id", "A@AdobeOrg");
    let prod = ("x-sandbox-name", "prod");
    let bearer = |k: &NewKey| format!("Bearer {}", k.secret);
    let admin_auth = bearer(&admin);
    let reader_auth = bearer(&reader);
    let writer_auth = bearer(&dev_writer);

    // 401: who is calling cannot be established.
    let no_token = send(
        Method::GET,
        &url("/probe"),
        &[org, prod, ("x-api-key", &admin.client_id)],
        None,
    )
    .await;
    assert_eq!(no_token.status, StatusCode::UNAUTHORIZED);
    assert_eq!(no_token.json()["error_code"], "403010");
    let bad_token = send(
        Method::GET,
        &url("/probe"),
        &[
            org,
            prod,
            ("x-api-key", &admin.client_id),
            ("authorization", &reader_auth),
        ],
        None,
    )
    .await;
    assert_eq!(bad_token.status, StatusCode::UNAUTHORIZED);
    assert_eq!(bad_token.json()["error_code"], "401013");
    let no_key = send(
        Method::GET,
        &url("/probe"),
        &[org, prod, ("authorization", &admin_auth)],
        None,
    )
    .await;
    assert_eq!(no_key.status, StatusCode::UNAUTHORIZED);
    assert_eq!(no_key.json()["error_code"], "403000");
    let unknown_key = send(
        Method::GET,
        &url("/probe"),
        &[
            org,
            prod,
            ("x-api-key", "who"),
            ("authorization", &admin_auth),
        ],
        None,
    )
    .await;
    assert_eq!(unknown_key.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown_key.json()["error_code"], "403003");

    let as_admin = [
        ("x-api-key", admin.client_id.as_str()),
        ("authorization", admin_auth.as_str()),
    ];
    let as_reader = [
        ("x-api-key", reader.client_id.as_str()),
        ("authorization", reader_auth.as_str()),
    ];
    let as_writer = [
        ("x-api-key", dev_writer.client_id.as_str()),
        ("authorization", writer_auth.as_str()),
    ];

    // 403: authenticated, but not for this org.
    let other_org = send(
        Method::GET,
        &url("/probe"),
        &[
            ("x-gw-ims-org-id", "B@AdobeOrg"),
            prod,
            as_admin[0],
            as_admin[1],
        ],
        None,
    )
    .await;
    assert_eq!(other_org.status, StatusCode::FORBIDDEN);
    assert_eq!(other_org.json()["error_code"], "403025");

    // Read role: GET allowed, POST forbidden.
    let read = send(
        Method::GET,
        &url("/probe"),
        &[org, prod, as_reader[0], as_reader[1]],
        None,
    )
    .await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.text, "A@AdobeOrg/prod read");
    let write = send(
        Method::POST,
        &url("/probe"),
        &[org, prod, as_reader[0], as_reader[1]],
        None,
    )
    .await;
    assert_eq!(write.status, StatusCode::FORBIDDEN);
    assert_eq!(write.json()["code"], "TSR-1101-403");

    // A grant limited to prod: writes there, nothing in other sandboxes, no org management.
    let writes = send(
        Method::POST,
        &url("/probe"),
        &[org, prod, as_writer[0], as_writer[1]],
        None,
    )
    .await;
    assert_eq!(writes.status, StatusCode::OK);
    let elsewhere = send(
        Method::GET,
        &url("/probe"),
        &[org, ("x-sandbox-name", "dev"), as_writer[0], as_writer[1]],
        None,
    )
    .await;
    assert_eq!(elsewhere.status, StatusCode::FORBIDDEN);
    let list = send(
        Method::GET,
        &url(SANDBOXES),
        &[org, as_writer[0], as_writer[1]],
        None,
    )
    .await;
    assert_eq!(list.status, StatusCode::FORBIDDEN);

    // Sandbox creation needs admin.
    let body = json!({"name": "dev", "title": "Dev", "type": "development"});
    let by_reader = send(
        Method::POST,
        &url(SANDBOXES),
        &[org, as_reader[0], as_reader[1]],
        Some(body.clone()),
    )
    .await;
    assert_eq!(by_reader.status, StatusCode::FORBIDDEN);
    let by_admin = send(
        Method::POST,
        &url(SANDBOXES),
        &[org, as_admin[0], as_admin[1]],
        Some(body),
    )
    .await;
    assert_eq!(by_admin.status, StatusCode::OK, "{}", by_admin.text);
    assert_eq!(by_admin.json()["createdBy"], admin.client_id.as_str());
    let listed = send(
        Method::GET,
        &url(SANDBOXES),
        &[org, as_reader[0], as_reader[1]],
        None,
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK);

    // Operations endpoints stay open for probes.
    assert_eq!(
        send(Method::GET, &url("/health"), &[], None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn dev_mode_ignores_credentials_sent_anyway() {
    let (addr, _dir) = start_probe(None).await;
    let reply = send(
        Method::GET,
        &format!("http://{addr}/probe"),
        &[
            ("x-gw-ims-org-id", "A@AdobeOrg"),
            ("x-sandbox-name", "prod"),
            ("x-api-key", "some-client"),
            ("authorization", "Bearer eyJhbGciOiJSUzI1NiJ9.not-checked"),
        ],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
}
