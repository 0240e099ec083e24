#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! Streaming ingestion end to end over HTTP: accepted records are on the change feed when
//! acknowledged; every kind of bad input gets a 4xx naming the field and reason and writes
//! nothing.

mod common;

use common::ingest::{page_view, person, setup, Setup};
use common::{send, TestServer};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

const ECID: &str = "12345678901234567890123456789012345678";

fn problems(reply: &common::Reply) -> Vec<(String, String)> {
    reply.json()["report"]["cause"]["_streamingValidation"][0]["causingExceptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["pointerToViolation"].as_str().unwrap().to_owned(),
                c["keyword"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn assert_rejected(setup: &Setup, message: Value, code: &str, expect: &[(&str, &str)]) {
    let before = setup.feed().await.len();
    let reply = setup.stream(message).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert_eq!(reply.json()["code"], code, "{}", reply.text);
    assert_eq!(reply.json()["title"], "Invalid XDM Message Format");
    let found = problems(&reply);
    for (path, keyword) in expect {
        assert!(
            found.iter().any(|(p, k)| p == path && k == keyword),
            "expected {keyword} at {path}, got {found:?}"
        );
    }
    assert_eq!(
        setup.feed().await.len(),
        before,
        "a rejected record must write nothing"
    );
}

#[tokio::test]
async fn accepted_records_are_acknowledged_with_receipts_on_the_feed() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;

    let reply = setup
        .stream(setup.profile_message(person("Jane@Example.com")))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let body = reply.json();
    assert_eq!(body["inletId"], setup.inlet.as_str());
    assert_eq!(body["syncValidation"]["skipped"], true);
    let receipt = body["xactionId"].as_str().unwrap().to_owned();

    let event = setup
        .stream(setup.event_message(page_view("ev-1", ECID)))
        .await;
    assert_eq!(event.status, StatusCode::OK, "{}", event.text);

    let feed = setup.feed().await;
    assert_eq!(feed.len(), 2);
    assert_eq!(feed[0]["xactionId"], receipt.as_str());
    assert_eq!(feed[0]["kind"], "record");
    assert_eq!(feed[0]["namespace"], "Email");
    assert_eq!(
        feed[0]["id"], "jane@example.com",
        "email identities are normalised"
    );
    assert_eq!(feed[1]["kind"], "event");
    assert_eq!(feed[1]["eventMs"], 1_740_823_200_000_i64);

    // Replaying the same event _id is acknowledged but stores nothing new.
    let replay = setup
        .stream(setup.event_message(page_view("ev-1", ECID)))
        .await;
    assert_eq!(replay.status, StatusCode::OK);
    assert_eq!(replay.json()["duplicate"], true);
    assert_eq!(setup.feed().await.len(), 2);

    // Validation only: answered, nothing written.
    let dry = send(
        Method::POST,
        &format!(
            "{}/collection/{}?syncValidation=true",
            setup.base, setup.inlet
        ),
        &[("content-type", "application/json")],
        Some(setup.profile_message(person("other@example.com"))),
    )
    .await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.text);
    assert_eq!(dry.json()["synchronousValidation"]["status"], "pass");
    assert_eq!(setup.feed().await.len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn field_level_violations_name_path_and_reason() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;

    let mut wrong_type = person("a@example.com");
    wrong_type["person"]["name"]["firstName"] = json!(5);
    assert_rejected(
        &setup,
        setup.profile_message(wrong_type),
        "validation_failed",
        &[("#/person/name/firstName", "wrong_type")],
    )
    .await;

    let mut bad_email = person("a@example.com");
    bad_email["personalEmail"]["address"] = json!("not-an-email");
    assert_rejected(
        &setup,
        setup.profile_message(bad_email),
        "validation_failed",
        &[("#/personalEmail/address", "bad_format")],
    )
    .await;

    let mut bad_date = person("a@example.com");
    bad_date["person"]["birthDate"] = json!("14/03/1969");
    assert_rejected(
        &setup,
        setup.profile_message(bad_date),
        "validation_failed",
        &[("#/person/birthDate", "bad_format")],
    )
    .await;

    let mut out_of_range = person("a@example.com");
    out_of_range["person"]["birthYear"] = json!(40000);
    assert_rejected(
        &setup,
        setup.profile_message(out_of_range),
        "validation_failed",
        &[("#/person/birthYear", "out_of_range")],
    )
    .await;

    let mut unknown = person("a@example.com");
    unknown["favouriteColour"] = json!("blue");
    assert_rejected(
        &setup,
        setup.profile_message(unknown),
        "validation_failed",
        &[("#/favouriteColour", "unknown_field")],
    )
    .await;

    // Several problems are all reported.
    let mut many = person("a@example.com");
    many["person"]["name"]["firstName"] = json!(5);
    many["personalEmail"]["address"] = json!("nope");
    assert_rejected(
        &setup,
        setup.profile_message(many),
        "validation_failed",
        &[
            ("#/person/name/firstName", "wrong_type"),
            ("#/personalEmail/address", "bad_format"),
        ],
    )
    .await;

    let mut no_id = page_view("x", ECID);
    no_id.as_object_mut().unwrap().remove("_id");
    assert_rejected(
        &setup,
        setup.event_message(no_id),
        "validation_failed",
        &[("#/_id", "missing_required")],
    )
    .await;

    let mut bad_time = page_view("y", ECID);
    bad_time["timestamp"] = json!("yesterday");
    assert_rejected(
        &setup,
        setup.event_message(bad_time),
        "validation_failed",
        &[("#/timestamp", "bad_format")],
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn record_level_problems_are_refused() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;

    let mut huge = person("big@example.com");
    huge["person"]["name"]["firstName"] = json!("x".repeat(110 * 1024));
    assert_rejected(&setup, setup.profile_message(huge), "too_large", &[]).await;

    let mut crowded = person("crowd@example.com");
    let many: Vec<Value> = (0..21).map(|i| json!({"id": format!("crm-{i}")})).collect();
    crowded["identityMap"]["CRMID"] = json!(many);
    assert_rejected(
        &setup,
        setup.profile_message(crowded),
        "too_many_identities",
        &[],
    )
    .await;

    let bad_ecid = page_view("z", "123");
    assert_rejected(
        &setup,
        setup.event_message(bad_ecid),
        "invalid_identity",
        &[("#/identityMap/ECID/0/id", "invalid_identity")],
    )
    .await;

    let mut unknown_dataset = setup.profile_message(person("a@example.com"));
    unknown_dataset["header"]["datasetId"] = json!("000000000000000000000000");
    assert_rejected(&setup, unknown_dataset, "unknown_dataset", &[]).await;

    // An event (class ExperienceEvent) sent to the profile dataset names the wrong schema.
    let mut wrong_class = setup.event_message(page_view("w", ECID));
    wrong_class["header"]["datasetId"] = json!(setup.profile_dataset);
    assert_rejected(&setup, wrong_class, "schema_mismatch", &[]).await;

    let mut other_org = setup.profile_message(person("a@example.com"));
    other_org["header"]["imsOrgId"] = json!("SOMEONE@AdobeOrg");
    assert_rejected(&setup, other_org, "org_mismatch", &[]).await;

    let no_entity = json!({"header": {"datasetId": setup.profile_dataset}, "body": {}});
    assert_rejected(&setup, no_entity, "malformed_message", &[]).await;
    server.stop().await;
}

#[tokio::test]
async fn transport_level_problems() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let url = format!("{}/collection/{}", setup.base, setup.inlet);

    let unknown_inlet = send(
        Method::POST,
        &format!("{}/collection/no-such-inlet", setup.base),
        &[("content-type", "application/json")],
        Some(json!({})),
    )
    .await;
    assert_eq!(unknown_inlet.status, StatusCode::NOT_FOUND);

    let not_json = raw_post(&url, "application/json", b"{\"header\": ".to_vec()).await;
    assert_eq!(not_json.0, StatusCode::BAD_REQUEST, "{}", not_json.1);
    let wrong_type = raw_post(&url, "text/plain", b"{}".to_vec()).await;
    assert_eq!(wrong_type.0, StatusCode::BAD_REQUEST);
    assert!(wrong_type.1.contains("content-type"), "{}", wrong_type.1);
    let oversized = raw_post(&url, "application/json", vec![b' '; 1024 * 1024 + 10]).await;
    assert_eq!(oversized.0, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(setup.feed().await.is_empty());
    server.stop().await;
}

async fn raw_post(url: &str, content_type: &str, body: Vec<u8>) -> (StatusCode, String) {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<hyper::body::Bytes>>();
    let request = hyper::Request::post(url)
        .header("content-type", content_type)
        .body(Full::new(body.into()))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn multi_message_requests_answer_207_per_message() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let mut bad = person("b@example.com");
    bad["personalEmail"]["address"] = json!("nope");
    let reply = setup
        .stream_batch(vec![
            setup.profile_message(person("a@example.com")),
            setup.profile_message(bad),
            setup.event_message(page_view("e-1", ECID)),
            setup.event_message(page_view("e-1", ECID)),
        ])
        .await;
    assert_eq!(reply.status, StatusCode::MULTI_STATUS, "{}", reply.text);
    let body = reply.json();
    let batch_id = body["batchId"].as_str().unwrap();
    let responses = body["responses"].as_array().unwrap();
    assert_eq!(responses.len(), 4);
    assert_eq!(responses[0]["xactionId"], format!("{batch_id}:0").as_str());
    assert_eq!(responses[1]["statusCode"], 400);
    assert_eq!(responses[1]["code"], "validation_failed");
    assert_eq!(
        responses[1]["report"]["cause"]["_streamingValidation"][0]["causingExceptions"][0]
            ["pointerToViolation"],
        "#/personalEmail/address"
    );
    assert_eq!(responses[2]["xactionId"], format!("{batch_id}:2").as_str());
    assert_eq!(
        responses[3]["duplicate"], true,
        "the same _id twice in one request is stored once"
    );
    let feed = setup.feed().await;
    let receipts: Vec<&str> = feed
        .iter()
        .map(|e| e["xactionId"].as_str().unwrap())
        .collect();
    assert_eq!(receipts, [format!("{batch_id}:0"), format!("{batch_id}:2")]);
    server.stop().await;
}
