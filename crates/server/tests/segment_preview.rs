#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! Segment previews and estimates over HTTP: the state machine, matching profiles and their
//! paging, estimate figures and namespace distribution on known data, `graphType: none`,
//! sampling of a larger sandbox, refused expressions, and DELETE.

mod common;

use base64::Engine as _;
use common::ingest::{get, post, setup, Setup, TENANT};
use common::{send, TestServer};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

const PREVIEW: &str = "/data/core/ups/preview";
const ESTIMATE: &str = "/data/core/ups/estimate";

async fn stream(setup: &Setup, record: Value) {
    let reply = setup.stream(setup.profile_message(record)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

/// Three profiles: c1 (CRMID + Email, Basel), c2 (CRMID, Basel), c3 (CRMID, Bern).
async fn known_data(setup: &Setup) {
    stream(
        setup,
        json!({"identityMap": {"CRMID": [{"id": "c1", "primary": true}], "Email": [{"id": "c1@example.com"}]},
               "homeAddress": {"city": "Basel"}}),
    )
    .await;
    stream(
        setup,
        json!({"identityMap": {"CRMID": [{"id": "c2", "primary": true}]}, "homeAddress": {"city": "Basel"}}),
    )
    .await;
    stream(
        setup,
        json!({"identityMap": {"CRMID": [{"id": "c3", "primary": true}]}, "homeAddress": {"city": "Bern"}}),
    )
    .await;
}

async fn create(base: &str, body: Value) -> Value {
    let reply = post(base, PREVIEW, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    reply.json()
}

async fn ready(base: &str, preview_id: &str) -> Value {
    for _ in 0..200 {
        let reply = get(base, &format!("{PREVIEW}/{preview_id}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let body = reply.json();
        match body["state"].as_str().unwrap() {
            "RESULT_READY" | "FAILED" => return body,
            "NEW" | "RUNNING" => {}
            other => panic!("unexpected state {other}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("preview {preview_id} did not finish");
}

fn xid(ns: &str, id: &str) -> String {
    tessera_identity::IdentityKey::new(ns, id)
        .xid()
        .as_str()
        .to_owned()
}

#[tokio::test]
async fn a_preview_runs_to_result_ready_and_pages_its_matching_profiles() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let base = setup.base.clone();
    known_data(&setup).await;

    let created = create(
        &base,
        json!({"predicateExpression": "homeAddress.city = \"Basel\"", "predicateType": "pql/text",
               "predicateModel": "_xdm.context.profile", "graphType": "pdg"}),
    )
    .await;
    assert_eq!(created["state"], "NEW");
    assert_eq!(created["previewQueryStatus"], "NEW");
    assert_eq!(created["previewExecutionId"], 0);
    let preview_id = created["previewId"].as_str().unwrap().to_owned();
    let query_id = created["previewQueryId"].as_str().unwrap();
    let decoded = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(&preview_id)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&preview_id))
        .unwrap();
    let decoded = String::from_utf8(decoded).unwrap();
    let parts: Vec<&str> = decoded.split(':').collect();
    assert_eq!(parts.len(), 4, "{decoded}");
    assert_eq!((parts[0], parts[2], parts[3]), ("0", query_id, "0"));
    assert!(parts[1].starts_with("app-"), "{decoded}");

    let done = ready(&base, &preview_id).await;
    assert_eq!(done["state"], "RESULT_READY");
    assert_eq!(done["page"], json!({"offset": 0, "size": 2}));
    let results = done["results"].as_array().unwrap();
    let c1 = results
        .iter()
        .find(|r| r.get(xid("CRMID", "c1")).is_some())
        .expect("c1 matches");
    let c1 = &c1[xid("CRMID", "c1")];
    assert_eq!(
        c1["_href"],
        format!(
            "/data/core/ups/access/entities?schema.name=_xdm.context.profile&entityId={}",
            xid("CRMID", "c1")
        )
    );
    assert!(
        c1["endCustomerIds"]
            .get(xid("Email", "c1@example.com"))
            .is_some(),
        "{c1}"
    );
    assert!(results.iter().any(|r| r.get(xid("CRMID", "c2")).is_some()));
    assert!(!results.iter().any(|r| r.get(xid("CRMID", "c3")).is_some()));
    assert_eq!(done["links"]["next"], "");
    assert_eq!(done["links"]["prev"], "");

    // The href resolves to the profile.
    let href = c1["_href"].as_str().unwrap();
    let profile = get(&base, href).await;
    assert_eq!(profile.status, StatusCode::OK, "{}", profile.text);

    // Paging.
    let first = get(&base, &format!("{PREVIEW}/{preview_id}?limit=1"))
        .await
        .json();
    assert_eq!(first["page"], json!({"offset": 0, "size": 1}));
    let next = first["links"]["next"].as_str().unwrap();
    assert!(next.contains("offset=1"), "{next}");
    let second = get(&base, next).await.json();
    assert_eq!(second["page"], json!({"offset": 1, "size": 1}));
    assert_eq!(second["links"]["next"], "");
    assert!(second["links"]["prev"]
        .as_str()
        .unwrap()
        .contains("offset=0"));
    assert_ne!(first["results"][0], second["results"][0]);

    // The estimate shares the id.
    let estimate = get(&base, &format!("{ESTIMATE}/{preview_id}")).await;
    assert_eq!(estimate.status, StatusCode::OK, "{}", estimate.text);
    let estimate = estimate.json();
    assert_eq!(estimate["state"], "RESULT_READY");
    assert_eq!(estimate["estimatedSize"], 2);
    assert_eq!(estimate["profilesMatchedSoFar"], 2);
    assert_eq!(estimate["profilesReadSoFar"], 3);
    assert_eq!(estimate["numRowsToRead"], 3);
    assert_eq!(estimate["totalRows"], 3);
    assert_eq!(estimate["standardError"], 0.0);
    assert_eq!(estimate["confidenceInterval"], "95%");
    assert_eq!(
        estimate["error"],
        json!({"description": "", "traceback": ""})
    );
    // CRMID is namespace 100 (both matches), Email 6 (c1 only).
    let mut distribution = estimate["estimatedNamespaceDistribution"]
        .as_array()
        .unwrap()
        .clone();
    distribution.sort_by_key(|d| d["namespaceId"].as_str().unwrap().to_owned());
    assert_eq!(
        distribution,
        vec![
            json!({"namespaceId": "100", "profilesMatchedSoFar": 2}),
            json!({"namespaceId": "6", "profilesMatchedSoFar": 1}),
        ]
    );
    assert_eq!(
        estimate["_links"]["preview"],
        format!("{PREVIEW}/{preview_id}")
    );

    // DELETE forgets it.
    let killed = send(
        Method::DELETE,
        &format!("{base}{PREVIEW}/{preview_id}"),
        &TENANT,
        None,
    )
    .await;
    assert_eq!(killed.status, StatusCode::OK, "{}", killed.text);
    assert_eq!(killed.json(), json!({"status": true, "message": "KILLED"}));
    let gone = get(&base, &format!("{PREVIEW}/{preview_id}")).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "{}", gone.text);
    assert_eq!(
        get(&base, &format!("{ESTIMATE}/{preview_id}")).await.status,
        StatusCode::NOT_FOUND
    );
    let again = send(
        Method::DELETE,
        &format!("{base}{PREVIEW}/{preview_id}"),
        &TENANT,
        None,
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn graph_type_none_evaluates_each_identity_alone() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let base = setup.base.clone();
    known_data(&setup).await;
    let created = create(
        &base,
        json!({"predicateExpression": "homeAddress.city = \"Basel\"", "predicateType": "pql/text",
               "predicateModel": "_xdm.context.profile", "graphType": "none"}),
    )
    .await;
    let preview_id = created["previewId"].as_str().unwrap();
    let done = ready(&base, preview_id).await;
    // The fragments are keyed by the CRMIDs: the Email identity alone has no attributes.
    let results = done["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{done}");
    assert!(results.iter().all(|r| r
        .as_object()
        .unwrap()
        .values()
        .all(|v| v.get("endCustomerIds").is_none())));
    let estimate = get(&base, &format!("{ESTIMATE}/{preview_id}")).await.json();
    assert_eq!(estimate["totalRows"], 4, "four identities: {estimate}");
    assert_eq!(estimate["profilesMatchedSoFar"], 2);
    assert_eq!(
        estimate["estimatedNamespaceDistribution"],
        json!([{"namespaceId": "100", "profilesMatchedSoFar": 2}])
    );
    server.stop().await;
}

#[tokio::test]
async fn a_large_sandbox_is_sampled_and_the_estimate_scaled() {
    // Profiles are sampled by a hash of their random graph ids, each with probability
    // rows / total: 5 of 30 left the sample empty with probability (5/6)^30 = 0.4% (a CI run
    // met it); 10 of 60 does with probability (5/6)^60 = 0.002%.
    let server = TestServer::start(Some("[segmentation]\npreview_sample_size = 10\n")).await;
    let setup = setup(&server.url("")).await;
    let base = setup.base.clone();
    for i in 0..60 {
        let city = if i % 3 == 0 { "Bern" } else { "Basel" };
        stream(
            &setup,
            json!({"identityMap": {"CRMID": [{"id": format!("p{i}"), "primary": true}]}, "homeAddress": {"city": city}}),
        )
        .await;
    }
    let body = json!({"predicateExpression": "homeAddress.city = \"Basel\" or homeAddress.city = \"Bern\"",
                      "predicateType": "pql/text", "predicateModel": "_xdm.context.profile"});
    let first = create(&base, body.clone()).await;
    let first_id = first["previewId"].as_str().unwrap();
    ready(&base, first_id).await;
    let estimate = get(&base, &format!("{ESTIMATE}/{first_id}")).await.json();
    assert_eq!(estimate["totalRows"], 60);
    let read = estimate["profilesReadSoFar"].as_u64().unwrap();
    assert!(
        read > 0 && read < 60,
        "a sample, not everything: {estimate}"
    );
    assert_eq!(estimate["numRowsToRead"], read);
    assert_eq!(
        estimate["profilesMatchedSoFar"], read,
        "every profile matches"
    );
    assert_eq!(estimate["estimatedSize"], 60, "scaled to the sandbox");
    assert_eq!(estimate["standardError"], 0.0, "p = 1 has no spread");

    // The same data gives the same sample.
    let second = create(&base, body).await;
    let second_id = second["previewId"].as_str().unwrap();
    ready(&base, second_id).await;
    let again = get(&base, &format!("{ESTIMATE}/{second_id}")).await.json();
    assert_eq!(again["profilesReadSoFar"], read);
    let a = get(&base, &format!("{PREVIEW}/{first_id}")).await.json();
    let b = get(&base, &format!("{PREVIEW}/{second_id}")).await.json();
    assert_eq!(a["results"], b["results"]);
    server.stop().await;
}

#[tokio::test]
async fn refused_requests_say_why_and_create_nothing() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let base = setup.base.clone();
    for (body, fragment) in [
        (
            json!({"predicateExpression": "homeAddress.city = ", "predicateType": "pql/text"}),
            "predicateExpression",
        ),
        (
            json!({"predicateExpression": "homeAddress.nosuchfield = 1", "predicateType": "pql/text"}),
            "predicateExpression",
        ),
        (
            json!({"predicateExpression": "homeAddress.city", "predicateType": "pql/text"}),
            "boolean",
        ),
        (
            json!({"predicateExpression": "true", "predicateType": "pql/sql"}),
            "predicateType",
        ),
        (
            json!({"predicateExpression": "true", "predicateModel": "_xdm.context.experienceevent"}),
            "predicateModel",
        ),
        (
            json!({"predicateExpression": "true", "graphType": "cluster"}),
            "graphType",
        ),
        (
            json!({"predicateType": "pql/text"}),
            "predicateExpression is required",
        ),
        (json!([]), "expected"),
    ] {
        let reply = post(&base, PREVIEW, body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.text
        );
        let message = reply.json()["message"].as_str().unwrap().to_owned();
        assert!(message.contains(fragment), "{body}: {message}");
    }
    for path in [
        format!("{PREVIEW}/not-a-preview"),
        format!("{ESTIMATE}/not-a-preview"),
        // Well-formed, never created.
        format!(
            "{PREVIEW}/{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("0:app-x:nope:0")
        ),
    ] {
        assert_eq!(
            get(&base, &path).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn previews_are_private_to_their_sandbox() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let base = setup.base.clone();
    known_data(&setup).await;
    let created = create(
        &base,
        json!({"predicateExpression": "homeAddress.city = \"Basel\"", "predicateType": "pql/text"}),
    )
    .await;
    let preview_id = created["previewId"].as_str().unwrap();
    let other = [
        ("x-gw-ims-org-id", "OTHER@AdobeOrg"),
        ("x-sandbox-name", "prod"),
    ];
    let reply = send(
        Method::GET,
        &format!("{base}{PREVIEW}/{preview_id}"),
        &other,
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);
    server.stop().await;
}
