#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! Profile retention on catalog datasets
//! (`extensions.adobe_unifiedProfile.rowExpiration.ttlValue`): set on create and with both
//! PATCH paths, returned on reads, merged independently of the data-lake setting, disabled
//! with `null`, and refused with a field-precise 400 when malformed or on a record dataset.

mod common;

use common::ingest::{get, setup, TENANT};
use common::{send, TestServer};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

const PROFILE_TTL: &str = "extensions.adobe_unifiedProfile.rowExpiration.ttlValue";

async fn patch(base: &str, path: &str, body: Value) -> common::Reply {
    send(Method::PATCH, &format!("{base}{path}"), &TENANT, Some(body)).await
}

fn profile_ttl(value: Value) -> Value {
    json!({"extensions": {"adobe_unifiedProfile": {"rowExpiration": {"ttlValue": value}}}})
}

async fn dataset(base: &str, id: &str) -> Value {
    let reply = get(base, &format!("/data/foundation/catalog/dataSets/{id}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json()[id].clone()
}

#[tokio::test]
async fn ttl_is_validated_stored_merged_and_disabled() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let base = setup.base.clone();
    let events = setup.event_dataset.clone();
    let v1 = format!("/data/foundation/catalog/dataSets/{events}");
    let v2 = format!("/data/foundation/catalog/v2/datasets/{events}");

    // AEP's v2 path answers a reference to the dataset.
    let set = patch(&base, &v2, profile_ttl(json!("P30D"))).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    assert_eq!(set.json(), json!([format!("@/dataSets/{events}")]));
    let stored = dataset(&base, &events).await;
    assert_eq!(
        stored["extensions"]["adobe_unifiedProfile"]["rowExpiration"]["ttlValue"],
        "P30D"
    );

    // The data-lake setting is independent: patching it keeps the profile TTL.
    let lake = json!({"extensions": {"adobe_lakeHouse": {"rowExpiration": {"ttlValue": "P12M"}}}});
    assert_eq!(patch(&base, &v1, lake).await.status, StatusCode::OK);
    let stored = dataset(&base, &events).await;
    assert_eq!(
        stored["extensions"]["adobe_unifiedProfile"]["rowExpiration"]["ttlValue"],
        "P30D"
    );
    assert_eq!(
        stored["extensions"]["adobe_lakeHouse"]["rowExpiration"]["ttlValue"],
        "P12M"
    );

    // Malformed values: 400 naming the field, nothing changed.
    for (body, field) in [
        (profile_ttl(json!("30 days")), PROFILE_TTL),
        (profile_ttl(json!("P")), PROFILE_TTL),
        (profile_ttl(json!("p30d")), PROFILE_TTL),
        (profile_ttl(json!("P1.5D")), PROFILE_TTL),
        (profile_ttl(json!("PT30M")), PROFILE_TTL),
        (profile_ttl(json!("P200Y")), PROFILE_TTL),
        (profile_ttl(json!(30)), PROFILE_TTL),
        (
            json!({"extensions": {"adobe_unifiedProfile": {"rowExpiration": "P30D"}}}),
            "extensions.adobe_unifiedProfile.rowExpiration",
        ),
        (
            json!({"extensions": {"adobe_unifiedProfile": []}}),
            "extensions.adobe_unifiedProfile",
        ),
        (json!({"extensions": "P30D"}), "extensions"),
        (
            json!({"extensions": {"adobe_lakeHouse": {"rowExpiration": {"ttlValue": "forever"}}}}),
            "extensions.adobe_lakeHouse.rowExpiration.ttlValue",
        ),
    ] {
        let reply = patch(&base, &v2, body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.text
        );
        assert_eq!(
            reply.json()["report"]["field"],
            field,
            "{body}: {}",
            reply.text
        );
    }
    let stored = dataset(&base, &events).await;
    assert_eq!(
        stored["extensions"]["adobe_unifiedProfile"]["rowExpiration"]["ttlValue"],
        "P30D"
    );

    // `null` disables, and is shown as AEP shows it.
    assert_eq!(
        patch(&base, &v1, profile_ttl(Value::Null)).await.status,
        StatusCode::OK
    );
    let stored = dataset(&base, &events).await;
    assert_eq!(
        stored["extensions"]["adobe_unifiedProfile"]["rowExpiration"],
        json!({"ttlValue": null})
    );
    assert_eq!(
        stored["extensions"]["adobe_lakeHouse"]["rowExpiration"]["ttlValue"],
        "P12M"
    );

    // Unknown dataset on the v2 path.
    let missing = patch(
        &base,
        "/data/foundation/catalog/v2/datasets/nope",
        profile_ttl(json!("P1D")),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.text);
    server.stop().await;
}

#[tokio::test]
async fn ttl_on_a_record_dataset_is_refused() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let base = setup.base.clone();
    let records = format!(
        "/data/foundation/catalog/v2/datasets/{}",
        setup.profile_dataset
    );
    let refused = patch(&base, &records, profile_ttl(json!("P30D"))).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    assert_eq!(refused.json()["report"]["field"], PROFILE_TTL);
    assert!(refused.text.contains("ExperienceEvent"), "{}", refused.text);
    let lake = json!({"extensions": {"adobe_lakeHouse": {"rowExpiration": {"ttlValue": "P30D"}}}});
    let refused = patch(&base, &records, lake).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    // `null` asks for no retention, which any dataset already has.
    let none = patch(&base, &records, profile_ttl(Value::Null)).await;
    assert_eq!(none.status, StatusCode::OK, "{}", none.text);

    // On create as well.
    let created = common::ingest::post(
        &base,
        "/data/foundation/catalog/dataSets",
        json!({
            "name": "CRM with TTL",
            "schemaRef": {"id": setup.profile_schema, "contentType": "application/vnd.adobe.xed-full+json;version=1"},
            "extensions": {"adobe_unifiedProfile": {"rowExpiration": {"ttlValue": "P30D"}}}
        }),
    )
    .await;
    assert_eq!(created.status, StatusCode::BAD_REQUEST, "{}", created.text);
    assert_eq!(created.json()["report"]["field"], PROFILE_TTL);
    let created = common::ingest::post(
        &base,
        "/data/foundation/catalog/dataSets",
        json!({
            "name": "Web with TTL",
            "schemaRef": {"id": setup.event_schema, "contentType": "application/vnd.adobe.xed-full+json;version=1"},
            "extensions": {"adobe_unifiedProfile": {"rowExpiration": {"ttlValue": "PT12H"}}}
        }),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    server.stop().await;
}
