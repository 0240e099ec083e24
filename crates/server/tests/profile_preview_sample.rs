#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! Preview sample status and its reports, computed exactly from the store: profile and
//! fragment counts, profiles per dataset and namespace, dataset and namespace overlaps,
//! unknown profiles, and the `date` parameter (latest, a stored day, a missing day).

mod common;

use common::ingest::{get, setup};
use common::TestServer;
use hyper::StatusCode;
use serde_json::{json, Value};

const BASE: &str = "/data/core/ups/previewsamplestatus";

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[tokio::test]
async fn reports_count_profiles_datasets_namespaces_and_overlaps() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let base = setup.base.clone();
    let (crm, web) = (setup.profile_dataset.clone(), setup.event_dataset.clone());
    let ecid_jane = "11111111111111111111111111111111111111";
    let ecid_anon = "22222222222222222222222222222222222222";
    let messages = [
        // Jane: a CRM record (CRMID + Email), then a web visit linking her ECID.
        setup.profile_message(json!({"identityMap": {"CRMID": [{"id": "jane-1", "primary": true}], "Email": [{"id": "jane@example.com"}]},
            "person": {"name": {"firstName": "Jane"}}})),
        setup.event_message(json!({"_id": "j1", "timestamp": now_rfc3339(),
            "identityMap": {"ECID": [{"id": ecid_jane, "primary": true}], "CRMID": [{"id": "jane-1"}]}})),
        // Bob: a CRM record only, and no events: unknown in every window.
        setup.profile_message(json!({"identityMap": {"Email": [{"id": "bob@example.com", "primary": true}]},
            "person": {"name": {"firstName": "Bob"}}})),
        // An anonymous visitor, active now.
        setup.event_message(json!({"_id": "a1", "timestamp": now_rfc3339(),
            "identityMap": {"ECID": [{"id": ecid_anon, "primary": true}]}})),
        setup.event_message(json!({"_id": "a2", "timestamp": now_rfc3339(),
            "identityMap": {"ECID": [{"id": ecid_anon, "primary": true}]}})),
    ];
    for message in messages {
        let reply = setup.stream(message).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }

    let status = get(&base, BASE).await;
    assert_eq!(status.status, StatusCode::OK, "{}", status.text);
    let status = status.json();
    assert_eq!(status["totalRows"], "3");
    assert_eq!(status["numRowsToRead"], "3");
    assert_eq!(status["totalFragmentCount"], 2);
    assert_eq!(status["cosmosDocCount"], "\"5\"");
    assert_eq!(status["lastBatchId"], "\"null\"");
    assert_eq!(status["streamingDriven"], "\"false\"");
    assert_eq!(status["status"], "TASK_FINISHED");
    assert_eq!(status["samplingRatio"], 1.0);
    assert_eq!(status["sampleJobRunning"]["status"], false);

    let datasets = get(&base, &format!("{BASE}/report/dataset")).await.json();
    let items = datasets["data"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{datasets}");
    let crm_item = items.iter().find(|d| d["value"] == crm.as_str()).unwrap();
    assert_eq!(crm_item["name"], "CRM");
    assert_eq!(crm_item["fullIDsCount"], 2);
    assert_eq!(crm_item["sampleCount"], 2);
    assert_eq!(crm_item["fullIDsPercentage"], 0.666667);
    assert_eq!(crm_item["streamingIngestionEnabled"], "");
    let stamp = datasets["reportTimestamp"].as_str().unwrap();
    assert_eq!(stamp.len(), "2020-08-01T17:57:58.697".len(), "{stamp}");
    assert_eq!(crm_item["reportTimestamp"], stamp);

    let namespaces = get(&base, &format!("{BASE}/report/namespace")).await.json();
    let by_code = |code: &str| {
        namespaces["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["code"] == code)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(by_code("Email")["value"], "6");
    assert_eq!(by_code("Email")["fullIDsCount"], 2);
    assert_eq!(by_code("Email")["fullIDsFragmentCount"], 1);
    assert_eq!(by_code("ECID")["value"], "4");
    assert_eq!(by_code("ECID")["fullIDsCount"], 2);
    assert_eq!(by_code("CRMID")["fullIDsFragmentCount"], 1);

    let mut both = [crm.clone(), web.clone()];
    both.sort();
    let overlap = get(&base, &format!("{BASE}/report/dataset/overlap"))
        .await
        .json();
    assert_eq!(
        overlap["data"],
        json!({ both.join(","): 1, crm.clone(): 1, web.clone(): 1 })
    );
    let overlap = get(&base, &format!("{BASE}/report/namespace/overlap"))
        .await
        .json();
    assert_eq!(
        overlap["data"],
        json!({"CRMID,ECID,Email": 1, "Email": 1, "ECID": 1})
    );

    let unknown = get(&base, &format!("{BASE}/report/unknownProfiles"))
        .await
        .json();
    let data = &unknown["data"];
    assert_eq!(data["totalNumberOfProfiles"], 3);
    assert_eq!(data["totalNumberOfEvents"], 3);
    assert_eq!(
        data["unknownProfiles"]["7days"],
        json!({"countOfProfiles": 1, "eventsAssociated": 0,
            "nsDistribution": {"Email": {"countOfProfiles": 1, "eventsAssociated": 0}}})
    );
    assert!(data["unknownProfiles"]["120days"].is_object());

    // Dates: today's report was stored when computed; a day without one is a 404.
    let today = &stamp[..10];
    let stored = get(&base, &format!("{BASE}/report/dataset?date={today}")).await;
    assert_eq!(stored.status, StatusCode::OK, "{}", stored.text);
    let missing = get(&base, &format!("{BASE}/report/dataset?date=2001-01-01")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.text);
    assert_eq!(missing.json()["statusCode"], "404");
    let bad = get(&base, &format!("{BASE}?date=yesterday")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    server.stop().await;
}
